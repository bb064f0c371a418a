"""The command line: exit statuses, reports, traces and replay."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from memslice_conformance.cli import main


def test_run_conforming_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    status = main(["run", "--impl", "malloc", "--check", "edges", "--quiet",
                   "--report", str(report), "--junit", str(junit)])
    assert status == 0
    data = json.loads(report.read_text())
    assert data["conforming"] is True
    assert data["impl"] == "malloc" and data["profiles"] == ["core"] and data["seed"] == 0
    assert set(data["versions"]) >= {"spec", "suite"}
    statuses = {c["id"]: c["status"] for c in data["clauses"]}
    assert statuses["API-007"] == "pass"
    # Clauses only other checks cover were not run here: never "pass".
    assert statuses["API-008"] == "not-checked"
    root = ET.fromstring(junit.read_text())
    assert root.find(".//testcase") is not None
    assert "conforming" in capsys.readouterr().out


def test_run_failing_writes_a_trace_that_replays(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    traces = tmp_path / "traces"
    status = main(["run", "--impl", "py:pyimpls:FourAligned", "--check", "machine", "--quiet",
                   "--max-examples", "10", "--report", str(report), "--trace-dir", str(traces)])
    assert status == 1
    data = json.loads(report.read_text())
    assert data["conforming"] is False
    [failed] = [c for c in data["clauses"] if c["status"] == "fail"]
    assert failed["id"] == "API-006"
    trace_file = Path(failed["failures"][0]["trace_file"])
    assert trace_file.exists()
    # The trace fails again on the broken implementation, not on a correct one;
    # the implementation always comes from --impl, never from the trace (RUN-002).
    assert main(["replay", str(trace_file)]) == 2
    assert main(["replay", str(trace_file), "--impl", "py:pyimpls:FourAligned"]) == 1
    assert main(["replay", str(trace_file), "--impl", "malloc"]) == 0


def test_unloadable_implementation_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--impl", "lib:/no/such/lib.so", "--quiet"]) == 2
    assert main(["run", "--impl", "malloc", "--profile", "nonsense", "--quiet"]) == 2
    assert main(["replay", "/no/such/trace.json"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["run", "--bogus-flag"])
    assert info.value.code == 2


def test_list_shows_profiles_checks_and_impls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("core", "glib-2.74", "machine", "lib:PATH", "API-004"):
        assert word in out


def test_unclaimed_profiles_are_never_passed(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    main(["run", "--impl", "malloc", "--check", "edges", "--profile", "core",
          "--profile", "glib-2.74", "--quiet", "--report", str(report)])
    data = json.loads(report.read_text())
    glib = [c for c in data["clauses"] if c["profile"] == "glib-2.74"]
    assert glib and all(c["status"] == "not-claimed" for c in glib)


def test_validate_protocol_command() -> None:
    assert main(["validate-protocol", "--impl", "malloc"]) == 0


def test_a_run_of_only_unclaimed_profiles_does_not_conform(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    status = main(["run", "--impl", "malloc", "--profile", "glib-2.74", "--quiet",
                   "--report", str(report)])
    assert status == 1
    data = json.loads(report.read_text())
    assert data["conforming"] is False and data["checks"] == []


def test_help_imports_neither_rich_nor_hypothesis_nor_the_checks() -> None:
    """`--help` starts fast: the heavy modules load only when a command runs (issue 14)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from memslice_conformance.cli import main\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('rich', 'hypothesis', 'memslice_conformance.profiles.registry',\n"
        "    'memslice_conformance.runner', 'jsonschema') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
