"""The concurrency profile passes real allocators and rejects thread-unsafe ones.

The thread-unsafe C library (``cslice.c -DBUG_NO_LOCK``) passes every
Python-level thread test the core profile has; only the native driver that
the ``stress`` check runs can see it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from profile_support import Racy, failed_clauses, run_check

from memslice_conformance.checks.threads import CLAUSES
from memslice_conformance.impl.impls import python_impl


@pytest.mark.glib
@pytest.mark.parametrize(
    "spec", ["reference", "glib", "glib:always-malloc", "glib:debug-blocks", "malloc"]
)
def test_real_allocators_pass(spec: str) -> None:
    report = run_check(spec, "concurrency", "stress")
    assert [c.status for c in report.checks] == ["pass"], report.checks


def test_the_correct_c_library_passes(clib: Callable[[str], str]) -> None:
    report = run_check(clib("CORRECT"), "concurrency", "stress")
    assert [c.status for c in report.checks] == ["pass"], report.checks


def test_a_thread_unsafe_c_library_fails_naming_the_thread_clauses(
    clib: Callable[[str], str],
) -> None:
    report = run_check(clib("BUG_NO_LOCK"), "concurrency", "stress")
    assert failed_clauses(report, "stress") == CLAUSES
    [check] = report.checks
    assert check.failure is not None and "native stress driver" in check.failure.message
    assert not report.conforming


def test_a_racy_python_implementation_fails() -> None:
    report = run_check(python_impl(Racy, "racy"), "concurrency", "stress")
    clauses = failed_clauses(report, "stress")
    assert "API-004" in clauses, report.checks
