"""The command line: exit statuses, reports, traces and replay."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from memslice_conformance.cli import main

DOCS_REPORTS = Path(__file__).parents[2] / "docs" / "_data" / "conformance"


def _valid_report(path: Path) -> dict[str, Any]:
    """The report at ``path``, after checking it against schema/report-v1.json."""
    schema = json.loads(
        files("memslice_conformance").joinpath("schema/report-v1.json").read_text())
    data: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def test_run_conforming_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    status = main(["run", "--impl", "malloc", "--check", "edges", "--quiet",
                   "--report", str(report), "--junit", str(junit)])
    assert status == 0
    data = _valid_report(report)
    assert data["conforming"] is True and data["load_error"] is None
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
    data = _valid_report(report)
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


def test_a_library_that_cannot_be_loaded_still_gets_its_report_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 as before, and the report and JUnit file say why, with no check passed
    (LOAD-012): a CI job that uploads them finds them."""
    monkeypatch.chdir(tmp_path)
    status = main(["run", "--impl", "lib:./missing.so", "--profile", "core", "--profile",
                   "glib-2.74", "--report", "out.json", "--junit", "out.xml"])
    printed = capsys.readouterr().out
    assert status == 2
    [reason] = [line.removeprefix("cannot load implementation: ")
                for line in printed.splitlines() if line.startswith("cannot load")]
    assert "missing.so" in reason and "wrote out.json and out.xml" in printed
    data = _valid_report(tmp_path / "out.json")
    assert data["load_error"] == reason
    assert (data["status"], data["conforming"], data["checks"]) == ("incomplete", False, [])
    assert data["impl"] == "lib:./missing.so" and data["claimed_profiles"] == []
    assert {c["profile"] for c in data["clauses"]} == {"core", "glib-2.74"}
    assert {c["status"] for c in data["clauses"]} == {"not-checked"}
    assert all(reason in c["note"] for c in data["clauses"])
    root = ET.parse(tmp_path / "out.xml").getroot()
    [error] = root.findall(".//testcase[@name='implementation loaded']/error")
    assert error.text == reason
    assert root.find(".//failure") is None
    assert not root.findall(".//testcase[@name='run finished']")
    # A wrong profile is a wrong argument, said before anything loads: no report.
    (tmp_path / "out.json").unlink()
    assert main(["run", "--impl", "lib:./missing.so", "--profile", "nonsense",
                 "--report", "out.json"]) == 2
    assert "nonsense" in capsys.readouterr().out
    assert not (tmp_path / "out.json").exists()


def test_the_committed_reports_match_the_published_schema() -> None:
    """Reports written before LOAD-012 (no ``load_error``) are still v1 reports."""
    reports = sorted(DOCS_REPORTS.glob("*.json"))
    assert reports
    for path in reports:
        _valid_report(path)


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
