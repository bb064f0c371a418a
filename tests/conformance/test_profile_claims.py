"""Who claims which profile (issue 4), and unclaimed profiles are never passed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from memslice_conformance.impl.impls import ALL_PROFILES, resolve
from memslice_conformance.runner import run_conformance

CORRECTNESS = frozenset({"core", "concurrency"})
#: The malloc shim and a library with the configuration API (LOAD-003).
CONFIGURABLE = CORRECTNESS | {"config"}


@pytest.mark.glib
@pytest.mark.parametrize(
    ("spec", "claims"),
    [
        ("reference", ALL_PROFILES),
        ("glib", ALL_PROFILES),
        ("glib:debug-blocks", CONFIGURABLE | {"debug-blocks", "glib-2.74"}),
        ("reference:debug-blocks", CONFIGURABLE | {"debug-blocks", "glib-2.74"}),
        # Under always-malloc get_config_state(CONTENTION_COUNTER) reads
        # through NULL in GLib 2.74 (CONF-012): config is not claimed.
        ("glib:always-malloc", CORRECTNESS),
        ("reference:always-malloc", CORRECTNESS),
        ("malloc", CONFIGURABLE),
    ],
)
def test_builtin_claims(spec: str, claims: frozenset[str]) -> None:
    assert resolve(spec).profiles == claims


def test_a_lib_claims_core_concurrency_and_config_if_it_exports_it(
    clib: Callable[[str], str],
) -> None:
    """The configuration API is optional: all three functions claim config (LOAD-003)."""
    assert resolve(clib("CORRECT")).profiles == CONFIGURABLE
    assert resolve(clib("NO_CONFIG_API")).profiles == CORRECTNESS
    partial = resolve(clib("PARTIAL_CONFIG_API"))
    assert partial.profiles == CORRECTNESS
    [note] = partial.notes
    assert "g_slice_get_config" in note and "int64_t *g_slice_get_config_state(" in note


def test_python_impls_declare_their_claims() -> None:
    impl = resolve("py:profile_support:ClaimsAll")
    assert impl.profiles == ALL_PROFILES
    # It has get_config, set_config and get_config_state: config (LOAD-003).
    assert resolve("py:pyimpls:ArenaAllocator").profiles == frozenset({"core", "config"})
    assert resolve("py:pyimpls:NoConfigAPI").profiles == frozenset({"core"})


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
    assert resolve(spec).profiles == CONFIGURABLE | {"reuse"}
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
