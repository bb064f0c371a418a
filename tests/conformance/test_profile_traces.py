"""Failures of the custom checks: a replayable trace where one is sound, else why and how to rerun.

RUN-012: a failing ``scale`` phase (a bulk program) comes back as a shrunk
trace of single calls that replays, prints and emits as C like any core
check's.  RUN-013: a failure that a chain free caused names it and cites
API-008.  RUN-014: the checks whose failures no trace can hold say why and
end with the exact command that reruns them.

The planted bugs: ``pyimpls.CarveWrapsAtScale`` (the 301st carve of a size
hands out its first chunk again: 301 calls), ``pyimpls.ChainFreesTwiceAtScale``
(a chain walk frees its 500th node twice: 500 allocations, the chain, two
allocations), and ``planted/slab.c`` built with ``-DBUG_COUNTER_WRAP`` (4097
allocations) and ``-DBUG_CHAIN_BATCH``.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from c_builds import c_library_builder
from profile_support import failed_clauses

from memslice_conformance.cli import main
from memslice_conformance.impl.impls import resolve
from memslice_conformance.impl.session import SessionFactory
from memslice_conformance.profiles.bulk_trace import (
    BulkOutcome,
    BulkStep,
    reduce_program,
    translate,
)
from memslice_conformance.profiles.registry import rerun_command
from memslice_conformance.profiles.scale import FULL, IN_PROCESS, programs
from memslice_conformance.reporting.emit_c import emit_c
from memslice_conformance.reporting.report import fail_lines
from memslice_conformance.reporting.results import CheckResult, inline_call
from memslice_conformance.reporting.trace import (
    ReplayOutcome,
    Trace,
    call_lines,
    check_steps,
    load_trace,
    replay_outcome,
)
from memslice_conformance.runner import failing_call, run_conformance

PLANTED = Path(__file__).parent / "planted" / "slab.c"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``planted/slab.c`` built as ``<variant>/libmyslice.so``; returns the library."""
    return c_library_builder(tmp_path_factory, PLANTED, "libmyslice.so")


def _scale_failure(spec: str, traces: Path) -> tuple[CheckResult, Trace]:
    report = run_conformance(spec, checks=["scale"], shrink_seconds=0.5, trace_dir=traces)
    [result] = report.checks
    assert result.status == "fail", result
    assert result.trace is not None and result.trace_path is not None
    # The saved file is a trace the replayer accepts (RUN-002), and it is the one reported.
    saved = load_trace(Path(result.trace_path))
    assert saved.steps == result.trace.steps and saved.call == result.trace.call
    return result, saved


def _replayed(trace: Trace, spec: str) -> ReplayOutcome:
    """``trace`` replayed on a fresh instance of ``spec`` (its workers stopped after)."""
    factory = SessionFactory(resolve(spec))
    try:
        return replay_outcome(trace, factory)
    finally:
        factory.close()


def _names_the_failing_call(result: CheckResult, trace: Trace, call: str) -> None:
    """The FAIL line and the trace name the failing call as C (RUN-007)."""
    assert trace.call == trace.op_count  # the failing call ends the trace
    line = call_lines(trace.steps)[trace.call - 1]
    assert line.startswith(call), line
    assert failing_call(result) == f"call {trace.call}: {inline_call(line)}"
    head = fail_lines(result)[0]
    assert f"call {trace.call}: " in head and call in head, head


# -- RUN-012: scale failures as traces of single calls


@pytest.mark.parametrize(
    ("impl", "needed", "clauses"),
    [
        ("py:pyimpls:CarveWrapsAtScale", 301, ("API-004",)),
        # RUN-013: the overlap is met by an innocent alloc; the chain free is named.
        ("py:pyimpls:ChainFreesTwiceAtScale", 503, ("API-004", "API-008")),
    ],
)
def test_a_scale_failure_is_a_short_trace_that_replays(
    impl: str, needed: int, clauses: tuple[str, ...], tmp_path: Path
) -> None:
    result, trace = _scale_failure(impl, tmp_path)
    assert result.failure is not None
    assert set(clauses) <= set(result.failure.clauses), result.failure
    assert trace.op_count <= 2 * needed, trace.op_count
    assert trace.shrink is not None and trace.shrink["reproduced"] is True
    _names_the_failing_call(result, trace, "b")
    assert "= g_slice_alloc(" in failing_call(result)
    # Replayed on a fresh instance: the same clause, at the same call ...
    outcome = _replayed(trace, impl)
    assert outcome.failure is not None and outcome.failure.clauses[0] == "API-004"
    assert outcome.call == trace.call
    # ... and nothing on a correct allocator.
    assert _replayed(trace, "py:pyimpls:ArenaAllocator").failure is None
    if "API-008" in clauses:
        assert "cause: the chain free" in result.failure.message


def test_a_long_run_of_like_calls_is_judged_once_per_chunk_size() -> None:
    """RUN-012: all 301 allocations are needed; the shrinker learns that from a few
    replays per chunk size (one per call would be over 600), and says the result
    is not proven minimal."""
    report = run_conformance("py:pyimpls:CarveWrapsAtScale", checks=["scale"],
                             shrink_seconds=60)
    [result] = report.checks
    assert result.trace is not None and result.trace.shrink is not None
    shrink = result.trace.shrink
    assert result.trace.op_count == 301
    assert isinstance(shrink["replays"], int) and shrink["replays"] < 100, shrink
    assert isinstance(shrink["assumed"], int) and shrink["assumed"] > 0
    assert shrink["complete"] is False
    assert "not proven minimal" in "\n".join(fail_lines(result))


def test_the_scale_trace_replays_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result, _ = _scale_failure("py:pyimpls:CarveWrapsAtScale", tmp_path)
    assert result.trace_path is not None
    capsys.readouterr()
    assert main(["replay", result.trace_path, "--impl", "py:pyimpls:CarveWrapsAtScale"]) == 1
    assert "call 301: b301 = g_slice_alloc(16);" in capsys.readouterr().out
    assert main(["replay", result.trace_path, "--impl", "py:pyimpls:ArenaAllocator"]) == 0
    assert main(["replay", result.trace_path, "--print"]) == 0
    printed = capsys.readouterr().out
    assert "b301 = g_slice_alloc(16);  <-- fails here" in printed


@pytest.mark.slow  # the quick run meets this library in test_power.py
def test_the_c_planted_counter_wrap_comes_back_as_its_4097_calls(
    planted: Callable[[str], Path], tmp_path: Path
) -> None:
    """BUG_COUNTER_WRAP needs 4097 blocks of one class: the trace holds exactly
    those (reduced from 262,000 calls of the wide phase), the 4097th named."""
    spec = f"lib:{planted('BUG_COUNTER_WRAP')}"
    result, trace = _scale_failure(spec, tmp_path)
    assert result.failure is not None and result.failure.clauses[0] == "API-004"
    assert trace.op_count <= 2 * 4097
    _names_the_failing_call(result, trace, "b")
    outcome = _replayed(trace, spec)
    assert outcome.failure is not None and outcome.call == trace.call


@pytest.mark.slow
def test_the_c_planted_chain_bug_is_blamed_on_the_chain_and_emits_as_c(
    planted: Callable[[str], Path], tmp_path: Path
) -> None:
    """BUG_CHAIN_BATCH: the trace's chain frees 1024 nodes, a later alloc meets a
    node freed twice; blame names the chain (API-008); the C program fails on the
    buggy library and passes on the correct one (RUN-008)."""
    buggy, correct = planted("BUG_CHAIN_BATCH"), planted("PLAIN")
    result, trace = _scale_failure(f"lib:{buggy}", tmp_path)
    assert result.failure is not None
    assert {"API-004", "API-008"} <= set(result.failure.clauses), result.failure
    assert any(op["op"] == "free_chain" for step in trace.steps for op in step)
    _names_the_failing_call(result, trace, "b")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is required to build the C reproducer")
    source = tmp_path / "repro.c"
    source.write_text(emit_c(trace))
    for library, status in ((buggy, 1), (correct, 0)):
        binary = tmp_path / f"repro-{library.parent.name}"
        subprocess.run([gcc, "-o", str(binary), str(source), f"-L{library.parent}",
                        "-lmyslice", "-lpthread"], check=True)
        ran = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60,
                             env={"LD_LIBRARY_PATH": str(library.parent)})
        assert ran.returncode == status, ran.stdout[-2000:]
        if status:
            assert f"FAIL [API-004] call {trace.call}: " in ran.stdout


def test_every_scale_phase_translates_into_a_valid_trace() -> None:
    """Each phase's calls, as trace steps, pass the replayer's own rules (RUN-002)."""
    for scale in (IN_PROCESS, FULL):
        for _, program in programs(scale):
            if scale is FULL and any(s.get("pool") == "wide" for s in program):
                continue  # 262,000 calls: past MAX_TRACE_OPS, never translated
            numbers = iter(range(1, 1 << 30))
            steps = translate(program, lambda numbers=numbers: f"b{next(numbers)}")
            check_steps(steps)
            assert steps


def test_reducing_keeps_only_programs_seen_to_fail() -> None:
    """A fake allocator that overlaps once 37 blocks of size 48 are live: the
    program is narrowed to that size, stripped of the other steps, and its
    count bisected to 37, each candidate judged by a run."""
    target = BulkOutcome("violation", "overlap", 2, 48)
    runs: list[Sequence[BulkStep]] = []

    def run(program: Sequence[BulkStep]) -> BulkOutcome:
        runs.append(program)
        count = sum(
            sum(1 for i in range(int(str(s["count"])))
                if list(s["sizes"])[i % len(list(s["sizes"]))] == 48)  # type: ignore[arg-type]
            for s in program if s["do"] == "alloc"
        )
        return target if count >= 37 else BulkOutcome("pass")

    program: list[BulkStep] = [
        {"do": "alloc", "pool": "a", "sizes": [16], "count": 500},
        {"do": "alloc", "pool": "b", "sizes": [16, 48, 64], "count": 3000},
        {"do": "verify"},
        {"do": "free", "pool": "b"},
    ]
    reduced = reduce_program(run, program, target, stop_at=float("inf"))
    assert reduced == [
        {"do": "alloc", "pool": "b", "sizes": [48], "count": 37},
        {"do": "verify"},
    ]
    assert all(run(candidate) == target for candidate in [reduced])
    assert len(runs) < 40


# -- RUN-014: no trace, but why, and the command that reruns the check


def _rerun_from(message: str) -> list[str]:
    command = message.rsplit("rerun this check alone: ", 1)[1].rstrip("]")
    words = shlex.split(command)
    assert words[:2] == ["memslice-conformance", "run"]
    return words[1:]


def test_an_untraced_failure_says_why_and_its_rerun_command_reproduces_it(
    capsys: pytest.CaptureFixture[str]
) -> None:
    spec = "py:profile_support:NeverReuses"
    report = run_conformance(spec, ["reuse"], checks=["reuse"], seed=3)
    [check] = report.checks
    assert check.failure is not None and check.trace is None
    message = check.failure.message
    assert "no replayable trace: " in message
    assert "x = g_slice_alloc(24); g_slice_free1(24, x);" in message  # the calls, as C
    assert _rerun_from(message) == shlex.split(rerun_command(spec, "reuse", 3))[1:]
    assert "--profile reuse --check reuse --seed 3" in message
    capsys.readouterr()
    assert main([*_rerun_from(message), "--quiet"]) == 1
    assert "FAIL reuse [MAG-010]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("impl", "profile", "check", "shows"),
    [
        ("py:profile_support:IgnoresBadFrees", "debug-blocks", "debug_blocks",
         "g_slice_free1(24, a); g_slice_free1(24, a);"),
        ("py:pyimpls:NullForHuge", "core", "failure_paths",
         "call 1: g_slice_alloc(4611686018427387904) returned NULL"),
    ],
)
def test_untraced_failures_name_their_calls(
    impl: str, profile: str, check: str, shows: str
) -> None:
    report = run_conformance(impl, [profile], checks=[check])
    [result] = report.checks
    assert result.status == "fail" and result.failure is not None and result.trace is None
    assert shows in result.failure.message
    assert _rerun_from(result.failure.message)[:4] == ["run", "--impl", impl, "--profile"]
    assert failed_clauses(report, check)
