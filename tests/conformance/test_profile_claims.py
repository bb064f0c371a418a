"""Who claims which profile (issue 4), and unclaimed profiles are never passed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from memslice_conformance.impls import ALL_PROFILES, resolve
from memslice_conformance.runner import run_conformance

CORRECTNESS = frozenset({"core", "concurrency"})


@pytest.mark.glib
@pytest.mark.parametrize(
    ("spec", "claims"),
    [
        ("reference", ALL_PROFILES),
        ("glib", ALL_PROFILES),
        ("glib:debug-blocks", frozenset({"core", "concurrency", "debug-blocks", "glib-2.74"})),
        ("reference:debug-blocks", frozenset({"core", "concurrency", "debug-blocks", "glib-2.74"})),
        ("glib:always-malloc", CORRECTNESS),
        ("reference:always-malloc", CORRECTNESS),
        ("malloc", CORRECTNESS),
    ],
)
def test_builtin_claims(spec: str, claims: frozenset[str]) -> None:
    assert resolve(spec).profiles == claims


def test_a_lib_claims_core_and_concurrency(clib: Callable[[str], str]) -> None:
    assert resolve(clib("CORRECT")).profiles == CORRECTNESS


def test_python_impls_declare_their_claims() -> None:
    impl = resolve("py:profile_support:ClaimsAll")
    assert impl.profiles == ALL_PROFILES
    assert resolve("py:pyimpls:ArenaAllocator").profiles == frozenset({"core"})


@pytest.mark.glib
def test_unclaimed_profiles_are_reported_not_claimed_never_passed() -> None:
    report = run_conformance(
        "glib:always-malloc",
        profiles=["all"],
        checks=["stress", "layout", "debug_blocks", "reuse", "trim"],
    )
    assert [c.name for c in report.checks] == ["stress"]
    by_profile: dict[str, set[str]] = {}
    for clause in report.clauses:
        by_profile.setdefault(clause.profile, set()).add(clause.status)
    for profile in ("glib-2.74", "debug-blocks", "reuse"):
        assert by_profile[profile] == {"not-claimed"}, profile
    assert "pass" in by_profile["concurrency"]
    assert report.conforming


def test_a_lib_declares_more_claims_through_its_exported_string(
    clib: Callable[[str], str],
) -> None:
    """Unknown names in the string are ignored, known ones added."""
    spec = clib("CLAIMS_REUSE")
    assert resolve(spec).profiles == CORRECTNESS | {"reuse"}
    report = run_conformance(spec, profiles=["reuse"], checks=["reuse", "trim"])
    assert [(c.name, c.status) for c in report.checks] == [
        ("reuse", "pass"),
        ("trim", "not-checked"),
    ]


@pytest.mark.slow
@pytest.mark.glib
@pytest.mark.parametrize("spec", ["reference", "glib"])
def test_run_profile_all_passes_on_reference_and_glib(spec: str) -> None:
    """Issue 4's Done-when, end to end (about 15 to 30 s each)."""
    report = run_conformance(spec, profiles=["all"])
    assert report.conforming, [c for c in report.checks if c.status == "fail"]
    ran = {c.profile for c in report.checks if c.status == "pass"}
    assert ran == ALL_PROFILES
