"""Suite power (issue 11): planted bugs that hide at scale, on failure paths, in
races and behind an earlier step are rejected; no clause passes unexercised.

The planted family is ``planted/slab.c``: a correct slab allocator with per-
thread caches, plus one bug per ``-D`` flag (see its header).  Each test uses
the check that should catch the bug, with the settings users get; the
``slow`` tests run the whole default profile on every variant, as a user's
``memslice-conformance run --impl lib:...`` does.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pyimpls
import pytest
from c_builds import c_library_builder

from memslice_conformance.checks import coverage
from memslice_conformance.checks.stress import run_stress
from memslice_conformance.impl.impls import python_impl
from memslice_conformance.runner import Report, failing_call, run_conformance

PLANTED = Path(__file__).parent / "planted" / "slab.c"

#: variant -> (the check that must catch it, a clause it must fail).
CAUGHT_BY = {
    "BUG_COUNTER_WRAP": ("scale", "API-004"),
    "BUG_CHAIN_BATCH": ("scale", "API-008"),
    "BUG_OOM_NULL": ("failure_paths", "API-001"),
    "BUG_TRIPLE": ("contention_triple", "CONF-010"),
    "BUG_LATE_CONFIG": ("config", "CONF-004"),
    "BUG_EXIT_REUSE": ("thread_churn", "EXIT-001"),
}

#: The profiles a user runs to meet each bug: the configuration API is optional
#: (its own profile, CONF-021), so its bugs are found by ``--profile config``.
def _profiles(variant: str) -> list[str]:
    return ["core", "config"] if CAUGHT_BY[variant][1].startswith("CONF") else ["core"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """Compile ``planted/slab.c`` with one -D flag; returns the ``lib:`` spec."""
    build = c_library_builder(tmp_path_factory, PLANTED, "libplanted_{variant}.so")
    return lambda variant: f"lib:{build(variant)}"


def _failed(report: Report) -> set[str]:
    return {c.id for c in report.clauses if c.status == "fail"}


#: One planted bug per class runs in the default test run; the rest are slow.
#: (BUG_LATE_CONFIG's quick test is test_blame_names_the_late_set_config.)
_QUICK = ("BUG_COUNTER_WRAP", "BUG_OOM_NULL", "BUG_TRIPLE")


@pytest.mark.parametrize(
    "variant",
    [v if v in _QUICK else pytest.param(v, marks=pytest.mark.slow) for v in sorted(CAUGHT_BY)],
)
def test_planted_bug_is_rejected_by_its_check(
    variant: str, planted: Callable[[str], str]
) -> None:
    """Each bug class is caught by the check built for it, at the default seed,
    and the failing clause names it (for late-config and thread-exit bugs, the
    clause of the earlier step the crash needed: blame by cause)."""
    check, clause = CAUGHT_BY[variant]
    report = run_conformance(
        planted(variant), _profiles(variant), checks=[check], seed=0, shrink_seconds=0.5
    )
    assert not report.conforming
    assert clause in _failed(report), [c.failure for c in report.checks]
    if check in ("failure_paths", "contention_triple"):
        # RUN-014: no trace; the message says why and how to rerun the check.
        [result] = report.checks
        assert result.trace is None and result.failure is not None
        assert "no replayable trace: " in result.failure.message
        assert (f"rerun this check alone: memslice-conformance run --impl {planted(variant)} "
                f"--profile {_profiles(variant)[-1]} --check {check} --seed 0"
                ) in result.failure.message
    if check == "scale":
        # RUN-012: the bulk finding comes back as a trace of single calls that
        # names the failing call (test_profile_traces.py checks it in full).
        [result] = report.checks
        assert result.trace is not None and result.trace.call == result.trace.op_count
        assert failing_call(result).startswith(f"call {result.trace.call}: ")


def test_correct_base_passes_the_power_checks(planted: Callable[[str], str]) -> None:
    report = run_conformance(
        planted("CORRECT"),
        ["core", "config"],
        checks=["scale", "failure_paths", "contention_triple", "config", "edges"],
    )
    assert report.conforming, [c.failure for c in report.checks if c.failure]
    statuses = {c.id: c.status for c in report.clauses}
    assert statuses["API-001"] == "pass"  # nonzero, zero and failure paths all ran
    assert statuses["CONF-010"] == "pass"


def test_blame_names_the_late_set_config(planted: Callable[[str], str]) -> None:
    report = run_conformance(planted("BUG_LATE_CONFIG"), ["config"], checks=["config"])
    [edges] = report.checks
    assert edges.failure is not None and edges.failure.kind == "crash"
    # Blame halves the suspects within a time budget; on a loaded machine it
    # may stop at the group of late set_config calls, which still names the cause.
    assert "cause:" in edges.failure.message and "set_config(" in edges.failure.message
    assert "CONF-004" in edges.failure.clauses


def test_a_clause_whose_path_never_ran_is_not_passed() -> None:
    """COVER-002/003: the edges check cites API-001 and passes, but without
    failure_paths no allocation failed, so API-001 is not-checked, with why."""
    import pyimpls

    report = run_conformance(python_impl(pyimpls.ArenaAllocator), checks=["edges"])
    clause = {c.id: c for c in report.clauses}["API-001"]
    assert report.conforming
    assert clause.status == "not-checked"
    assert clause.note is not None and "could not be satisfied" in clause.note
    assert clause.checks == ("edges",)


def test_an_allocator_that_never_fails_cannot_earn_the_failure_path() -> None:
    """An implementation that hands back an address even for 2**62 bytes never
    runs API-001's failure path: the clause is not passed."""
    import pyimpls

    class NeverFails(pyimpls.ArenaAllocator):
        name = "never-fails"

        def alloc(self, size: int, /) -> int:
            return super().alloc(min(size, 64))

        def alloc0(self, size: int, /) -> int:
            return super().alloc0(min(size, 64))

    report = run_conformance(python_impl(NeverFails), checks=["failure_paths", "edges"])
    clause = {c.id: c for c in report.clauses}["API-001"]
    assert clause.status == "not-checked", clause


def test_evidence_is_per_check_and_reset_per_run() -> None:
    coverage.reset()
    coverage.begin("one")
    coverage.exercised("API-004")
    assert coverage.evidence() == {("API-004", "run"): frozenset({"one"})}
    coverage.reset()
    assert coverage.evidence() == {}


def test_stress_failure_shows_each_threads_calls(planted: Callable[[str], str]) -> None:
    """A crash in the native driver comes with the threads' last calls, merged
    in global order (the interleaving that led there)."""
    library = planted("BUG_RACE").removeprefix("lib:")
    for seed in range(1, 13):
        run = run_stress(library, seed=seed, operations=20000, timeout=60)
        if not run.passed:
            break
    else:
        pytest.fail("the planted race was not caught in 12 driver runs")
    assert run.interleaving, run
    assert len({e.thread for e in run.interleaving}) >= 2
    text = run.describe()
    assert "g_slice_alloc(" in text and "T" in text


@pytest.mark.slow
@pytest.mark.parametrize("variant", [*sorted(CAUGHT_BY), "CORRECT"])
def test_default_core_run_on_planted_family(
    variant: str, planted: Callable[[str], str]
) -> None:
    """The default run (seed 0, default examples) of the profiles the bug lives in,
    as a user runs it: core, plus config for a bug of the configuration API."""
    profiles = _profiles(variant) if variant in CAUGHT_BY else ["core", "config"]
    report = run_conformance(planted(variant), profiles)
    if variant == "CORRECT":
        assert report.conforming, [c.failure for c in report.checks if c.failure]
    else:
        assert not report.conforming
        assert CAUGHT_BY[variant][1] in _failed(report)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["BUG_RACE", "CORRECT"])
def test_default_concurrency_run_on_planted_race(
    variant: str, planted: Callable[[str], str]
) -> None:
    report = run_conformance(planted(variant), profiles=["concurrency"])
    assert report.conforming == (variant == "CORRECT"), [c.failure for c in report.checks]


class _WrappingArena:
    """A toy allocator whose carve counter wraps at 64 blocks (a scale bug)."""

    def __init__(self) -> None:
        self.memory = bytearray(1 << 16)
        self.carved = 0

    def alloc(self, size: int, /) -> int:
        self.carved += 1
        return 4096 + ((self.carved - 1) % 64) * 64

    def alloc0(self, size: int, /) -> int:
        addr = self.alloc(size)
        self.write(addr, bytes(size))
        return addr

    def read(self, addr: int, size: int, /) -> bytes:
        return bytes(self.memory[addr - 4096 : addr - 4096 + size])

    def write(self, addr: int, data: bytes, /) -> None:
        self.memory[addr - 4096 : addr - 4096 + len(data)] = data

    def free1(self, size: int, addr: int, /) -> None:
        return None


def test_bulk_finds_a_block_handed_out_twice_past_a_wrap() -> None:
    from memslice_conformance.impl.bulk import run_bulk

    arena = _WrappingArena()
    clean = run_bulk(arena, [{"do": "alloc", "pool": "p", "sizes": [48], "count": 64},
                             {"do": "verify"}, {"do": "reset"}])
    assert clean["violation"] is None
    found = run_bulk(_WrappingArena(), [{"do": "alloc", "pool": "p", "sizes": [48], "count": 65},
                                        {"do": "verify"}])
    violation = found["violation"]
    assert isinstance(violation, dict) and violation["kind"] == "overlap"
    assert "no. 65 of 48 bytes" in str(violation["detail"])


def test_a_program_without_the_bulk_op_gets_scale_not_checked() -> None:
    """The bulk op is optional for cmd: programs: the check says so, and the
    clauses it would have exercised are not passed on its account."""
    if shutil.which("perl") is None:
        pytest.fail("perl is required for the example cmd: program")
    example = Path(__file__).parents[2] / "conformance/memslice_conformance/examples/slice_impl.pl"
    report = run_conformance(f"cmd:perl {example}", checks=["scale"])
    [scale] = report.checks
    assert scale.status == "not-checked" and scale.note is not None and "bulk" in scale.note
    api004 = {c.id: c for c in report.clauses}["API-004"]
    assert api004.status == "not-checked" and api004.note is not None and "scale" in api004.note


def _machine_finds(cls: type[pyimpls.ArenaAllocator], seed: int) -> bool:
    report = run_conformance(python_impl(cls), checks=["machine"], seed=seed,
                             shrink_seconds=0.5)
    return "API-004" in _failed(report)


def test_the_machine_alone_finds_a_one_size_free_list_bug() -> None:
    """A 24-byte free list whose pop does not advance its head shows only after a
    free and two more allocations of exactly 24 bytes.  The machine draws struct
    sizes and repeats its latest sizes, so it finds the bug alone, with the
    default examples (API-004); before, it missed it at this seed and at 13 of
    seeds 0..19, leaving it to thread_churn, hammer and chain_sweep (the slow
    test below runs 20 seeds)."""
    assert _machine_finds(pyimpls.PopStuckAt24, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize(("stuck", "at_least"), [(24, 15), (40, 10)])
def test_the_machine_finds_one_size_free_list_bugs_at_most_seeds(
    stuck: int, at_least: int
) -> None:
    """The same bug at 24 and 40 bytes over seeds 0..19: found at 17 to 19 and 13
    seeds when written (the count moves by a seed or two between processes);
    before the machine drew struct sizes and repeated sizes, at 7 and 1 (API-004)."""
    cls = type(f"PopStuckAt{stuck}", (pyimpls.PopStuckAt24,), {"STUCK": stuck})
    found = sum(_machine_finds(cls, seed) for seed in range(20))
    assert found >= at_least, found
