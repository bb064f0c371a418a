"""The reuse profile: bounded reuse (GLib's known-pages bound) and depot trimming."""

from __future__ import annotations

import pytest
from profile_support import NeverReuses, failed_clauses, run_check

from memslice_conformance.impl.impls import python_impl
from memslice_conformance.profiles.reuse import trim_scenario
from memslice_conformance.runner import run_conformance


@pytest.mark.glib
@pytest.mark.parametrize("spec", ["glib", "reference"])
def test_glib_and_the_reference_reuse_within_the_bound(spec: str) -> None:
    report = run_check(spec, "reuse", "reuse")
    assert [c.status for c in report.checks] == ["pass"], report.checks


def test_an_allocator_that_never_reuses_fails_mag_010() -> None:
    report = run_check(python_impl(NeverReuses, "never"), "reuse", "reuse")
    assert failed_clauses(report, "reuse") == ("MAG-010",)
    [check] = report.checks
    assert check.failure is not None and "after the freeing thread exited" in (
        check.failure.message
    )


def test_the_reference_trims_only_after_the_working_set_expires() -> None:
    kept = trim_scenario(0)
    trimmed = trim_scenario(16_000)
    assert kept[1] == kept[0] > 0  # DEPOT-009: retained
    assert trimmed[1] < trimmed[0] // 4  # DEPOT-010: most pages released
    report = run_check("reference", "reuse", "trim")
    assert [c.status for c in report.checks] == ["pass"]


@pytest.mark.glib
def test_glib_trim_is_not_checked_with_a_reason_never_passed() -> None:
    report = run_conformance("glib", profiles=["reuse"], checks=["trim"])
    [check] = report.checks
    assert check.status == "not-checked" and check.note and "15 s" in check.note
    statuses = {c.id: c.status for c in report.clauses}
    assert statuses["DEPOT-010"] == "not-checked"
    assert report.conforming is False  # nothing was actually checked
