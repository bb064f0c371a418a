"""Test the tester: broken implementations are rejected by the clause they
break, unusual but correct ones are accepted.

Each run here uses the real checks with a small example budget; the full
default run per implementation (the figures in the closing note) is the
``slow`` test at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import pyimpls
import pytest

from memslice_conformance.impl.impls import python_impl
from memslice_conformance.runner import Report, run_conformance

SMALL = 6
#: The broken ones need no stress run to be caught: every planted bug shows
#: in these (the slow tests below run everything with the defaults).
FOCUSED = ("edges", "sizes_sweep", "chain_sweep", "machine", "thread_churn")
#: Everything but the hammer (seconds of stress): the default test run checks
#: odd-but-correct implementations with these; the slow tests run it all.
NO_HAMMER = (*FOCUSED, "threads")
# Shrinking is what makes failures readable, not what finds them; the unit
# tests cap it to stay fast (the slow default runs shrink normally).


def failed_clauses(report: Report) -> set[str]:
    return {c for check in report.checks if check.failure for c in check.failure.clauses}


@pytest.mark.parametrize("cls", pyimpls.BROKEN, ids=lambda c: c.__name__)
def test_broken_python_implementation_is_rejected_by_its_clause(
    cls: type[pyimpls.ArenaAllocator],
) -> None:
    """Every planted bug fails the run, and the clause it breaks is among
    the failing ones (API-001..API-009, EXIT-001)."""
    report = run_conformance(
        python_impl(cls), max_examples=SMALL, seed=0, shrink_seconds=0.5, checks=FOCUSED
    )
    assert not report.conforming
    assert set(cls.BREAKS) <= failed_clauses(report), (cls.BREAKS, failed_clauses(report))
    failing = {c.id for c in report.clauses if c.status == "fail"}
    assert set(cls.BREAKS) <= failing


@pytest.mark.parametrize("cls", pyimpls.CORRECT, ids=lambda c: c.__name__)
def test_unusual_but_correct_python_implementation_is_accepted(
    cls: type[pyimpls.ArenaAllocator],
) -> None:
    """FIFO reuse, garbage in fresh memory, far-apart and only-8-aligned
    blocks are all allowed (API-006, API-015)."""
    report = run_conformance(python_impl(cls), max_examples=SMALL, seed=0, checks=NO_HAMMER)
    assert report.conforming, [c.failure for c in report.checks if c.failure]


#: C variant -> (a clause that must fail, the failure kind expected).
C_BROKEN = {
    "BUG_OVERLAP": ("API-004", "violation"),
    "BUG_ALLOC0_DIRTY": ("API-002", "violation"),
    "BUG_SEGV": ("API-005", "crash"),
    "BUG_ABORT": ("API-003", "crash"),
    "BUG_CHAIN_OFFSET0": ("API-008", "crash"),
    "BUG_HANG": ("API-008", "hang"),
}


@pytest.mark.parametrize("variant", sorted(C_BROKEN))
def test_broken_c_library_is_rejected(variant: str, clib: Callable[[str], str]) -> None:
    """Native bugs, crashes (SIGSEGV, SIGABRT) and hangs fail the check that
    was running, and the run carries on with the next check."""
    clause, kind = C_BROKEN[variant]
    report = run_conformance(
        clib(variant), max_examples=6, seed=0, deadline=2.0, shrink_seconds=0.5,
        checks=["edges", "sizes_sweep", "chain_sweep"],
    )
    assert not report.conforming
    kinds = {c.failure.kind for c in report.checks if c.failure}
    assert kind in kinds
    assert clause in failed_clauses(report)
    if kind == "crash":
        signal = "SIGABRT" if variant == "BUG_ABORT" else "SIGSEGV"
        assert any(signal in c.failure.message for c in report.checks if c.failure)
    # The run went on after the failure: every requested check has a verdict.
    assert len(report.checks) == 3


def test_correct_c_library_is_accepted(clib: Callable[[str], str]) -> None:
    report = run_conformance(clib("CORRECT"), max_examples=SMALL, seed=0)
    assert report.conforming, [c.failure for c in report.checks if c.failure]


@pytest.mark.parametrize("impl", ["reference", "malloc"])
def test_builtin_implementations_are_accepted(impl: str) -> None:
    report = run_conformance(impl, max_examples=SMALL, seed=0)
    assert report.conforming, [c.failure for c in report.checks if c.failure]


@pytest.mark.glib
@pytest.mark.parametrize("impl", ["glib", "glib:always-malloc", "glib:debug-blocks"])
def test_glib_is_accepted(impl: str) -> None:
    checks = None if impl == "glib" else NO_HAMMER
    report = run_conformance(impl, max_examples=3, seed=0, checks=checks)
    assert report.conforming, [c.failure for c in report.checks if c.failure]


def test_failures_carry_a_minimal_replayable_trace() -> None:
    """A shrunk failure of the state machine is a short trace that replays."""
    report = run_conformance(
        python_impl(pyimpls.FourAligned), max_examples=SMALL, seed=0, checks=["machine"]
    )
    [check] = report.checks
    assert check.failure is not None and check.trace is not None
    assert check.failure.clauses[0] == "API-006"
    assert len(check.trace.steps) <= 2
    assert check.reproduced is True


@pytest.mark.slow
@pytest.mark.parametrize("cls", pyimpls.CORRECT, ids=lambda c: c.__name__)
def test_default_run_accepts_correct_python(cls: type[pyimpls.ArenaAllocator]) -> None:
    report = run_conformance(python_impl(cls))
    assert report.conforming, [c.failure for c in report.checks if c.failure]


@pytest.mark.slow
@pytest.mark.parametrize("cls", pyimpls.BROKEN, ids=lambda c: c.__name__)
def test_default_run_rejects_broken_python(cls: type[pyimpls.ArenaAllocator]) -> None:
    report = run_conformance(python_impl(cls))
    assert not report.conforming
    assert set(cls.BREAKS) <= failed_clauses(report)


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(C_BROKEN))
def test_default_run_rejects_broken_c(variant: str, clib: Callable[[str], str]) -> None:
    report = run_conformance(clib(variant))
    assert not report.conforming
    assert C_BROKEN[variant][0] in failed_clauses(report)


def test_a_hanging_python_implementation_fails_the_check_and_the_run_goes_on() -> None:
    """In-process hangs are caught by the deadline too (the stuck thread is
    abandoned); the hang is reported against the clause of the running op."""
    report = run_conformance(
        python_impl(pyimpls.HangsOnChains), max_examples=4, seed=0, deadline=1.0,
        checks=["edges", "chain_sweep", "sizes_sweep"],
    )
    kinds = {c.name: (c.status, c.failure.kind if c.failure else None) for c in report.checks}
    assert kinds == {
        "edges": ("pass", None),
        "chain_sweep": ("fail", "hang"),
        "sizes_sweep": ("pass", None),
    }
    assert "API-008" in failed_clauses(report)
