"""The glib-2.74 profile: the real GLib matches the reference oracle; allocators
with other colours, reuse orders or routes do not."""

from __future__ import annotations

import random

import pytest
from profile_support import ClaimsAll, claiming, failed_clauses, reference_variant, run_check

from memslice_conformance.checks import layout
from memslice_conformance.impl.impls import python_impl, resolve
from memslice_conformance.profiles.layout import CLAUSES, random_trace


def test_traces_are_seeded_and_varied() -> None:
    one = random_trace(random.Random(3))
    assert one == random_trace(random.Random(3))
    assert one != random_trace(random.Random(4))
    kinds = {type(op) for op in one}
    assert {layout.Alloc, layout.Free, layout.ThreadStart, layout.ThreadExit} <= kinds
    layout.check_trace(one)
    alone = random_trace(random.Random(3), side_threads=False)
    assert {op.thread for op in alone} == {layout.MAIN}


@pytest.mark.glib
@pytest.mark.parametrize("spec", ["glib", "glib:debug-blocks", "reference"])
def test_glib_and_the_reference_match_the_oracle(spec: str) -> None:
    report = run_check(spec, "glib-2.74", "layout")
    assert [c.status for c in report.checks] == ["pass"], report.checks


def test_no_colouring_fails_naming_the_colour_clause() -> None:
    report = run_check(reference_variant("no-colour", color_increment=0), "glib-2.74", "layout")
    clauses = failed_clauses(report, "layout")
    assert "COLOR-002" in clauses
    [check] = report.checks
    assert check.failure is not None and "colours" in check.failure.message


def test_a_shorter_working_set_shows_in_get_config() -> None:
    report = run_check(reference_variant("ws", working_set_msecs=1000), "glib-2.74", "layout")
    [check] = report.checks
    assert check.failure is not None and "get_config(0..7)" in check.failure.message
    assert failed_clauses(report, "layout") == CLAUSES


def test_an_arena_allocator_fails() -> None:
    report = run_check(python_impl(ClaimsAll, "arena"), "glib-2.74", "layout")
    assert failed_clauses(report, "layout") == CLAUSES
    # RUN-014: no trace can state the oracle's layout; the message says how to rerun.
    [check] = report.checks
    assert check.trace is None and check.failure is not None
    assert "rerun this check alone: memslice-conformance run --impl py:arena --profile " \
        "glib-2.74 --check layout --seed 0 --max-examples" in check.failure.message


@pytest.mark.glib
def test_malloc_claiming_glib_layout_fails_on_routes() -> None:
    report = run_check(claiming(resolve("malloc"), "glib-2.74"), "glib-2.74", "layout")
    [check] = report.checks
    assert check.failure is not None and "route='malloc'" in check.failure.message
