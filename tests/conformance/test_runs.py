"""Runs that must end honestly: hostile traces, hostile implementations, deadlines, paths.

Each test reproduces one defect of issue 12 and cites the RUN clause it
holds the suite to (spec/18-suite-runs.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memslice_conformance.cli import main
from memslice_conformance.failures import ImplUnavailable
from memslice_conformance.reporting.trace import TraceError, load_trace
from memslice_conformance.runner import resolve_within, trace_file_name

IMPLS = Path(__file__).parent / "impls"
SLOW_PROXY = f"cmd:{sys.executable} {IMPLS / 'slow_proxy.py'}"
ROOT = Path(__file__).resolve().parents[2]


def _trace(steps: object, **extra: object) -> dict[str, object]:
    return {"format": "memslice-conformance-trace", "version": 1, "check": "machine",
            "impl": "malloc", "seed": 0, "failure": None, "steps": steps, **extra}


def _write(tmp_path: Path, value: object) -> Path:
    path = tmp_path / "t.json"
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


# -- RUN-002: a trace is data; it never chooses or starts what runs


def test_replay_never_runs_the_implementation_a_trace_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    evil = _write(tmp_path, _trace([[{"op": "alloc", "size": 8, "as": "b1"}]],
                                   impl=f"cmd:sh -c 'touch {marker}'"))
    assert main(["replay", str(evil)]) == 2
    out = capsys.readouterr().out
    assert "needs --impl" in out and "touch" in out  # named, as information only
    assert main(["replay", str(evil), "--print"]) == 0
    assert main(["replay", str(evil), "--emit-c", str(tmp_path / "r.c")]) == 0
    assert not marker.exists()


def test_replay_never_loads_a_library_a_trace_names(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is required to build the library with a constructor")
    marker = tmp_path / "constructed"
    source = tmp_path / "ctor.c"
    source.write_text(
        "#include <stdio.h>\n__attribute__((constructor)) static void hello(void) {\n"
        f'  FILE *f = fopen("{marker}", "w"); if (f) fclose(f);\n}}\n'
    )
    library = tmp_path / "libctor.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    evil = _write(tmp_path, _trace([[{"op": "alloc", "size": 8, "as": "b1"}]],
                                   impl=f"lib:{library}"))
    assert main(["replay", str(evil)]) == 2
    assert main(["replay", str(evil), "--print"]) == 0
    assert not marker.exists()


_ALLOC = {"op": "alloc", "size": 40, "as": "b1"}

MALFORMED: dict[str, object] = {
    "steps a dict": _trace({"a": 1}),
    "steps an int": _trace(5),
    "a step an int": _trace([5]),
    "an op an int": _trace([[5]]),
    "missing op": _trace([[{"size": 40, "as": "b1"}]]),
    "missing size": _trace([[{"op": "alloc", "as": "b1"}]]),
    "unknown op": _trace([[{"op": "exec", "cmd": "sh"}]]),
    "unknown handle in free_chain": _trace(
        [[_ALLOC], [{"op": "free_chain", "blocks": ["b1", "b9"], "next_offset": 0}]]),
    "clauses: 5": _trace([[_ALLOC]], failure={"clauses": 5, "kind": "violation",
                                              "message": "x"}),
    "negative write offset": _trace(
        [[_ALLOC], [{"op": "write", "block": "b1", "offset": -8, "data": "00"}]]),
    "write past the block": _trace(
        [[_ALLOC], [{"op": "write", "block": "b1", "offset": 39, "data": "0000"}]]),
    "free of a freed block": _trace(
        [[_ALLOC], [{"op": "free1", "block": "b1"}], [{"op": "free1", "block": "b1"}]]),
    "absurd size": _trace([[{"op": "alloc", "size": 1 << 40, "as": "b1"}]]),
    "not JSON": "{",
    "deep nesting": "[" * 200_000,
    "another format": {"format": "something-else"},
    "a list": [1, 2],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_traces_are_typed_errors_and_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, MALFORMED[case])
    with pytest.raises(TraceError):
        load_trace(path)
    assert main(["replay", str(path), "--impl", "malloc"]) == 2
    out = capsys.readouterr().out
    assert "cannot read trace" in out and "Traceback" not in out


def test_files_that_are_not_traces_are_refused_without_reading_them(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes: reading would block for ever
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(1 << 30)  # 1 GB, sparse
    for path in (Path("/dev/zero"), fifo, huge, tmp_path, tmp_path / "missing.json"):
        with pytest.raises(TraceError):
            load_trace(path)
        assert main(["replay", str(path), "--impl", "malloc"]) == 2


def test_a_trace_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _trace([[_ALLOC]]))
    with pytest.raises(TraceError, match="limit"):
        load_trace(path, limit=16)


# -- RUN-003: anything an implementation raises fails the check that ran


@pytest.mark.parametrize(
    ("impl", "check", "shown"),
    [
        ("py:hostile:ExitsOnFree", "edges", "SystemExit"),
        ("py:hostile:InterruptsOnFree", "edges", "KeyboardInterrupt"),
        ("py:hostile:UnprintableError", "edges", "no string for you"),
        ("py:hostile:RecursesOnChain", "chain_sweep", "RecursionError"),
    ],
)
def test_base_exceptions_from_the_implementation_fail_the_check(
    impl: str, check: str, shown: str, tmp_path: Path
) -> None:
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    status = main(["run", "--impl", impl, "--check", check, "--quiet", "--shrink-seconds", "5",
                   "--report", str(report), "--junit", str(junit),
                   "--trace-dir", str(tmp_path / "traces")])
    assert status == 1
    data = json.loads(report.read_text())
    assert data["status"] == "not-conforming" and data["conforming"] is False
    [result] = data["checks"]
    assert result["status"] == "fail"
    assert shown in json.dumps(result["failure"])
    assert "<failure" in junit.read_text()


def test_the_users_ctrl_c_ends_the_run_incomplete_with_a_report(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "memslice_conformance.cli", "run", "--impl", SLOW_PROXY,
         "--check", "machine", "--check", "hammer", "--quiet", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, out
    data = json.loads(report.read_text())
    assert data["status"] == "incomplete" and data["conforming"] is False
    assert "Ctrl-C" in data["incomplete_reason"]
    assert all(c["status"] != "pass" for c in data["checks"])


# -- RUN-005: deadlines; a slow implementation gets a verdict in bounded time


def test_a_slow_implementation_gets_an_incomplete_verdict_in_bounded_time(
    tmp_path: Path,
) -> None:
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    started = time.monotonic()
    status = main(["run", "--impl", SLOW_PROXY, "--check", "machine", "--check", "edges",
                   "--check-deadline", "2", "--quiet", "--report", str(report),
                   "--junit", str(junit)])
    assert time.monotonic() - started < 30
    assert status == 3
    data = json.loads(report.read_text())
    assert data["status"] == "incomplete"
    assert data["limits"]["check_deadline_seconds"] == 2
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert statuses["machine"] == "incomplete"
    assert "API-004" not in [c["id"] for c in data["clauses"] if c["status"] == "pass"]
    assert "<error" in junit.read_text()


def test_the_run_deadline_stops_the_run_and_names_what_did_not_run(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    status = main(["run", "--impl", SLOW_PROXY, "--check", "machine", "--check", "hammer",
                   "--run-deadline", "2", "--quiet", "--report", str(report), "--jobs", "1"])
    assert status == 3
    data = json.loads(report.read_text())
    assert "not run: hammer" in data["incomplete_reason"]
    # In two lanes both checks start at once: each runs out of time, or the
    # lane that stops first stops the other, whose check is then not run (RUN-015).
    status = main(["run", "--impl", SLOW_PROXY, "--check", "machine", "--check", "hammer",
                   "--run-deadline", "2", "--quiet", "--report", str(report), "--jobs", "2"])
    assert status == 3
    data = json.loads(report.read_text())
    statuses = [(c["name"], c["status"]) for c in data["checks"]]
    assert statuses in ([("machine", "incomplete"), ("hammer", "incomplete")],
                        [("machine", "incomplete")], [("hammer", "incomplete")]), statuses
    assert data["status"] == "incomplete"


def test_loading_is_bounded_by_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(ImplUnavailable, match="deadline"):
        resolve_within("py:hostile:sleeping_factory", 1)
    tag = "987654.5"
    with pytest.raises(ImplUnavailable, match="deadline"):
        resolve_within(f"cmd:sleep {tag}", 1)  # never answers hello
    assert time.monotonic() - started < 15
    assert main(["run", "--impl", "py:hostile:sleeping_factory", "--check-deadline", "1",
                 "--quiet"]) == 2
    left = subprocess.run(["pgrep", "-f", f"sleep {tag}"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


# -- RUN-006: output paths are checked first; trace names are short


@pytest.mark.parametrize(
    "option",
    [
        lambda tmp: ["--junit", str(tmp)],
        lambda tmp: ["--report", str(tmp / "no" / "such" / "dir" / "r.json")],
        lambda tmp: ["--trace-dir", str(tmp / "file")],
        lambda tmp: ["--report", str(tmp / ("x" * 300))],
    ],
    ids=["junit-is-a-directory", "report-dir-missing", "trace-dir-is-a-file", "name-too-long"],
)
def test_bad_output_paths_exit_2_before_anything_runs(
    option: Callable[[Path], list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    started = time.monotonic()
    assert main(["run", "--impl", SLOW_PROXY, "--quiet", *option(tmp_path)]) == 2
    assert time.monotonic() - started < 2  # refused before loading the implementation
    assert "cannot write output" in capsys.readouterr().out


def test_trace_file_names_are_short_and_safe() -> None:
    name = trace_file_name("py:" + "a/b:c " * 2000, "machine")
    assert len(name) < 100 and name.endswith(".json")
    assert all(ch.isalnum() or ch in "_.-" for ch in name)
    assert trace_file_name("lib:/x/libone.so", "hammer") != trace_file_name(
        "lib:/y/libone.so", "hammer")


# -- RUN-010: `pytest` alone is the quick run


def test_pytest_deselects_slow_tests_by_default() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    addopts = next(line for line in text.splitlines() if line.startswith("addopts"))
    assert "-m 'not slow'" in addopts
    for line in (ROOT / "tox.ini").read_text().splitlines():
        # An env that runs slow tests asks for them; a later -m overrides addopts.
        if line.strip().startswith("pytest") and "slow" in line:
            assert "-m slow" in line or '-m "not slow"' in line


# -- RUN-009


def test_fail_fast_stops_at_the_first_failing_check(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    assert main(["run", "--impl", "py:pyimpls:FourAligned", "--check", "sizes_sweep",
                 "--check", "edges", "--fail-fast", "--quiet", "--shrink-seconds", "2",
                 "--report", str(report), "--trace-dir", str(tmp_path / "t")]) == 1
    data = json.loads(report.read_text())
    # Checks run in the profile's order: edges first, and it fails.
    assert [(c["name"], c["status"]) for c in data["checks"]] == [("edges", "fail")]
    assert data["status"] == "not-conforming"
    sweep_only = [c for c in data["clauses"] if c["id"] == "API-013"]
    assert sweep_only and sweep_only[0]["status"] == "not-checked"


@pytest.mark.parametrize("after", [2.5, 4.0])
def test_ctrl_c_inside_the_state_machine_is_incomplete_not_a_failure(
    tmp_path: Path, after: float
) -> None:
    """The user's Ctrl-C lands in Hypothesis's engine, which may turn the cut-short
    example into FlakyStrategyDefinition on replay: still "incomplete", exit 3,
    never a failure of a correct implementation (RUN-004)."""
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "memslice_conformance.cli", "run", "--impl", "malloc",
         "--check", "machine", "--check", "threads", "--quiet", "--report", str(report),
         "--trace-dir", str(tmp_path / "traces")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    time.sleep(after)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, out
    data = json.loads(report.read_text())
    assert data["status"] == "incomplete", out
    assert not [c for c in data["checks"] if c["status"] == "fail"], out
