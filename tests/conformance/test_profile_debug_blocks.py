"""The debug-blocks profile: GLib and the reference catch all six bad releases with
GLib's exact text; implementations that let any through fail with the clause named."""

from __future__ import annotations

import pytest
from profile_support import ClaimsAll, IgnoresBadFrees, claiming, failed_clauses, run_check

from memslice_conformance.impl.impls import python_impl, resolve
from memslice_conformance.profiles.debug_blocks import invalid_size, non_allocated


def test_messages_are_glibs_text() -> None:
    # DEBUG-005's worked example, character for character.
    assert invalid_size(0x55D0C6A3E2A0, 24, 17) == (
        "GSlice: MemChecker: attempt to release block with invalid size: "
        "0x55d0c6a3e2a0 size=24 invalid-size=17"
    )
    assert non_allocated(0x10, 24) == (
        "GSlice: MemChecker: attempt to release non-allocated block: 0x10 size=24"
    )


@pytest.mark.glib
@pytest.mark.parametrize(
    "spec",
    [
        "glib:debug-blocks",
        "glib",
        "reference",
        "reference:debug-blocks",
        "worker:reference:debug-blocks",
    ],
)
def test_glib_and_the_reference_pass(spec: str) -> None:
    impl = resolve(spec)
    if "debug-blocks" not in impl.profiles:  # worker:IMPL hosts report only core
        impl = claiming(impl, "debug-blocks")
    report = run_check(impl, "debug-blocks", "debug_blocks")
    assert [c.status for c in report.checks] == ["pass"], report.checks


def test_an_implementation_that_ignores_bad_frees_fails_every_case() -> None:
    report = run_check(python_impl(IgnoresBadFrees, "lax"), "debug-blocks", "debug_blocks")
    clauses = failed_clauses(report, "debug_blocks")
    for clause in ("DEBUG-003", "DEBUG-004", "DEBUG-005", "DEBUG-006", "DEBUG-007"):
        assert clause in clauses
    [check] = report.checks
    assert check.failure is not None
    for case in (
        "double-free",
        "never-handed-out",
        "interior",
        "wrong-size-slab",
        "wrong-size-malloc",
        "chain-wrong-size",
    ):
        assert case in check.failure.message


def test_an_implementation_with_other_messages_fails() -> None:
    # ClaimsAll raises on a double free, but not with GLib's text.
    report = run_check(python_impl(ClaimsAll, "claims-all"), "debug-blocks", "debug_blocks")
    assert "DEBUG-003" in failed_clauses(report, "debug_blocks")


@pytest.mark.glib
def test_malloc_claiming_debug_blocks_fails() -> None:
    """glibc's own double-free abort is not GLib's message (and wrong sizes pass)."""
    report = run_check(claiming(resolve("malloc"), "debug-blocks"), "debug-blocks", "debug_blocks")
    clauses = failed_clauses(report, "debug_blocks")
    assert {"DEBUG-003", "DEBUG-005", "DEBUG-006"} <= set(clauses)
