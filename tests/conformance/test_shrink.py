"""Failures come back minimal and readable: shrunk traces, the failing call, a C reproducer.

Planted bugs: the Python ones of ``impls/pyimpls.py`` (fast, in-process) and
the C library ``impls/planted.c`` (BUG_REUSE_TWICE: a double handout after
alloc, free, alloc; BUG_CHAIN_WALK: a chain walk that follows a wild
pointer).  A bug that needs k calls must come back in at most about 2k
(RUN-007); the emitted C program must fail on the buggy library and pass on
a correct one (RUN-008).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from c_builds import c_library_builder

from memslice_conformance.checks.model import StepFailure
from memslice_conformance.cli import main
from memslice_conformance.reporting.emit_c import emit_c
from memslice_conformance.reporting.shrink import same_failure
from memslice_conformance.reporting.trace import Trace, call_lines, load_trace, parse_trace
from memslice_conformance.runner import failing_call, run_conformance

IMPLS = Path(__file__).parent / "impls"
ROOT = Path(__file__).resolve().parents[2]


def _gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is required to build the planted-bug libraries and reproducers")
    return gcc


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Build ``impls/planted.c`` as ``<variant>/libmyslice.so``; returns its directory."""
    build = c_library_builder(tmp_path_factory, IMPLS / "planted.c", "libmyslice.so")
    return lambda variant: build(variant).parent


@pytest.mark.parametrize(
    ("impl", "check", "needed"),
    [
        ("py:pyimpls:ReusedWhileLive", "hammer", 9),  # the 9th allocation repeats the 8th
        ("py:pyimpls:ReusedWhileLive", "sizes_sweep", 9),
        ("py:pyimpls:ChainIgnoresOffset", "chain_sweep", 4),  # alloc, alloc, write, chain
        ("py:pyimpls:FourAligned", "machine", 1),
    ],
)
def test_failing_traces_are_shrunk_to_about_the_calls_the_bug_needs(
    impl: str, check: str, needed: int
) -> None:
    report = run_conformance(impl, checks=[check], max_examples=20)
    [result] = report.checks
    assert result.status == "fail" and result.trace is not None
    trace = result.trace
    assert trace.op_count <= 2 * needed, call_lines(trace.steps)
    assert trace.shrink is not None and trace.shrink["reproduced"] is True
    assert trace.shrink["from_ops"] >= trace.op_count
    # The failing call is the trace's last, named as a C call.
    assert trace.call == trace.op_count
    assert failing_call(result).startswith(f"call {trace.call}: ")
    assert "g_slice_" in failing_call(result)
    assert report.limits["shrink_seconds_per_failure"] > 0


def test_a_crash_keeps_its_signal_and_a_violation_its_clause() -> None:
    segv = StepFailure(("API-008",), "implementation crashed (signal SIGSEGV)", "crash")
    abort = StepFailure(("API-008",), "implementation crashed (signal SIGABRT)", "crash")
    overlap = StepFailure(("API-004", "API-009"), "overlaps", "violation")
    assert same_failure(segv, StepFailure(("API-005",), segv.message, "crash"))
    assert not same_failure(segv, abort)
    assert same_failure(overlap, StepFailure(("API-004",), "other words", "violation"))
    assert not same_failure(overlap, StepFailure(("API-009",), "overlaps", "violation"))
    assert not same_failure(overlap, None)


_DOUBLE_HANDOUT = [
    [{"op": "alloc", "size": 24, "as": "b1"}],
    [{"op": "free1", "block": "b1"}],
    [{"op": "alloc", "size": 24, "as": "b2"}],
    [{"op": "alloc", "size": 24, "as": "b3"}],
]
_CHAIN_WALK = [
    [{"op": "alloc", "size": 16, "as": "b1"}, {"op": "alloc", "size": 16, "as": "b2"}],
    [{"op": "write", "block": "b1", "offset": 0, "data": "d928760b705ca592b4253e755dde6b3f"}],
    [{"op": "free_chain", "blocks": ["b1", "b2"], "next_offset": 8, "thread": "t1"}],
]


def _hand_trace(steps: list[list[dict[str, object]]]) -> Trace:
    return parse_trace({"format": "memslice-conformance-trace", "version": 1,
                        "check": "hand", "impl": "lib:./libmyslice.so", "seed": 0,
                        "failure": None, "steps": steps})


def _compile(source: str, tmp_path: Path, library: Path) -> Path:
    c_file = tmp_path / "repro.c"
    c_file.write_text(source)
    binary = tmp_path / f"repro-{library.name}"
    subprocess.run([_gcc(), "-Wall", "-Werror", "-o", str(binary), str(c_file),
                    f"-L{library}", "-lmyslice", "-lpthread"], check=True)
    return binary


def _run(binary: Path, library: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary)], capture_output=True, text=True, timeout=30,
                          env={"LD_LIBRARY_PATH": str(library)})


def test_the_c_reproducer_fails_on_the_buggy_library_and_passes_on_a_correct_one(
    planted: Callable[[str], Path], tmp_path: Path
) -> None:
    source = emit_c(_hand_trace(_DOUBLE_HANDOUT))
    buggy, correct = planted("BUG_REUSE_TWICE"), planted("CORRECT")
    found = _run(_compile(source, tmp_path, buggy), buggy)
    assert found.returncode == 1
    assert "FAIL [API-004] call 4: b3 = g_slice_alloc(24);" in found.stdout
    assert _run(_compile(source, tmp_path, correct), correct).returncode == 0

    source = emit_c(_hand_trace(_CHAIN_WALK))  # the chain is freed on thread t1
    crashed = _run(_compile(source, tmp_path, planted("BUG_CHAIN_WALK")),
                   planted("BUG_CHAIN_WALK"))
    assert crashed.returncode < 0  # killed by a signal, as in the suite
    assert _run(_compile(source, tmp_path, correct), correct).returncode == 0


_LINK_PAST_END = [
    [{"op": "alloc", "size": 8, "as": "b3"}],
    [{"op": "free_chain", "blocks": ["b3"], "next_offset": 0, "thread": "t1"}],
]


def test_a_link_read_past_the_block_crashes_the_c_reproducer_as_it_crashes_the_worker(
    planted: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new-user trial's case: the walk reads never-written slack past an 8-byte
    block; the worker holds garbage there and crashes, and the C program's heap must
    hold garbage there too, not the zero a fresh process has (RUN-008); on a correct
    library it exits 0 and, as the trace recorded a failure, says what it cannot
    check (RUN-016)."""
    buggy, correct = planted("BUG_LINK_PAST_END"), planted("CORRECT")
    crash = {"clauses": ["API-008"], "kind": "crash",
             "message": "implementation crashed (signal SIGSEGV)", "call": 2}
    trace_file = tmp_path / "trace.json"
    trace_file.write_text(json.dumps({
        "format": "memslice-conformance-trace", "version": 1, "check": "chain_sweep",
        "impl": "lib:./libmyslice.so", "seed": 0, "failure": crash, "steps": _LINK_PAST_END}))
    assert main(["replay", str(trace_file), "--impl", f"lib:{buggy / 'libmyslice.so'}"]) == 1
    assert "SIGSEGV" in capsys.readouterr().out
    source = emit_c(_hand_trace(_LINK_PAST_END))
    found = _run(_compile(source, tmp_path, buggy), buggy)
    assert found.returncode < 0, found.stdout  # before the fix: 0, "no failure"
    clean = _run(_compile(emit_c(load_trace(trace_file)), tmp_path, correct), correct)
    assert clean.returncode == 0
    said = " ".join(clean.stdout.split())
    assert "no failure: 2 calls made" in said
    assert "the suite saw this trace fail [API-008] (crash) at call 2:" in said
    assert "cannot check" in said and "never wrote" in said


def test_the_worker_s_threads_hold_garbage_where_a_library_reads_unwritten_memory(
    planted: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RUN-017: BUG_CHAIN_WALK reads a fresh block's first word, never written, as a
    link.  In a worker child forked for an example, the serving thread's C heap was
    fresh: that word read as zero and the walk stopped cleanly, so the shrinker needed
    13 calls of recycled blocks before the walk crashed.  The worker now dirties each
    serving thread's heap first: the two calls the bug needs crash, in the run as in
    a replay."""
    buggy = planted("BUG_CHAIN_WALK")
    traces = tmp_path / "traces"
    assert main(["run", "--impl", f"lib:{buggy / 'libmyslice.so'}", "--check", "chain_sweep",
                 "--quiet", "--trace-dir", str(traces)]) == 1
    assert "SIGSEGV" in capsys.readouterr().out
    [trace_file] = traces.iterdir()
    calls = [call for step in json.loads(trace_file.read_text())["steps"] for call in step]
    assert [call["op"] for call in calls] == ["alloc", "free_chain"], calls


def test_replay_print_shows_the_calls_and_marks_the_failing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--print marks the failing call; the FAIL line names it with the same notes (RUN-007)."""
    traces = tmp_path / "traces"
    assert main(["run", "--impl", "py:pyimpls:ChainIgnoresOffset", "--check", "chain_sweep",
                 "--quiet", "--trace-dir", str(traces)]) == 1
    out = capsys.readouterr().out
    fail_line = next(line for line in out.splitlines() if line.startswith("FAIL"))
    assert "call " in fail_line and "g_slice_free_chain_with_offset(" in fail_line
    assert "steps before it" in out
    [trace_file] = traces.iterdir()
    assert main(["replay", str(trace_file), "--print"]) == 0
    printed = capsys.readouterr().out
    assert "<-- fails here" in printed and "g_slice_alloc(" in printed
    # The FAIL line and --print agree on the failing call, its chain note included.
    [marked] = [line for line in printed.splitlines() if line.endswith("<-- fails here")]
    call, chain = marked.split(None, 1)[1].removesuffix("<-- fails here").split("  // ")[:2]
    chain = chain.strip()
    assert chain.startswith("chain b") and chain.endswith(" -> NULL"), marked
    assert f"{call.removesuffix(';')} /* {chain}" in fail_line, (fail_line, marked)
    data = json.loads(trace_file.read_text())
    assert data["failure"]["call_text"].startswith("g_slice_free_chain_with_offset(")


@pytest.mark.slow
def test_a_c_library_failure_end_to_end(
    planted: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an implementer sees: FAIL line, trace, replay --print, and gcc on --emit-c."""
    buggy, correct = planted("BUG_CHAIN_WALK"), planted("CORRECT")
    traces = tmp_path / "traces"
    assert main(["run", "--impl", f"lib:{buggy / 'libmyslice.so'}", "--check", "chain_sweep",
                 "--quiet", "--trace-dir", str(traces)]) == 1
    out = capsys.readouterr().out
    assert "g_slice_free_chain_with_offset(" in out and "SIGSEGV" in out
    [trace_file] = traces.iterdir()
    data = json.loads(trace_file.read_text())
    assert sum(len(step) for step in data["steps"]) <= 8
    repro = tmp_path / "repro.c"
    assert main(["replay", str(trace_file), "--emit-c", str(repro)]) == 0
    binary = _compile(repro.read_text(), tmp_path, buggy)
    assert _run(binary, buggy).returncode < 0
    assert _run(_compile(repro.read_text(), tmp_path, correct), correct).returncode == 0
    assert main(["replay", str(trace_file), "--impl", f"lib:{buggy / 'libmyslice.so'}"]) == 1
    assert main(["replay", str(trace_file), "--impl", f"lib:{correct / 'libmyslice.so'}"]) == 0


@pytest.mark.slow
def test_slow_tests_are_deselected_unless_asked_for() -> None:
    """`pytest` alone is the quick run (RUN-010); `-m slow` asks for the slow ones."""
    def collect(*extra: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             *extra, str(Path(__file__))],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        ).stdout

    assert "test_a_c_library_failure_end_to_end" not in collect()
    assert "test_a_c_library_failure_end_to_end" in collect("-m", "slow")
