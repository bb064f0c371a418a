"""Every core MUST clause has a check, and every cited clause exists."""

from __future__ import annotations

from memslice_conformance.checks.model import CLAUSES as OP_CLAUSES
from memslice_conformance.checks.threads import CLAUSES as THREAD_CLAUSES
from memslice_conformance.profiles.registry import CHECKS, PROFILE_PREFIXES, PROFILES
from memslice_conformance.runner import _profile_clauses, _spec_clauses
from memslice_conformance.spec import load_spec


def test_every_core_must_clause_is_checked() -> None:
    spec = load_spec()
    core = {c.id for c in spec.core_must_clauses() if c.prefix not in PROFILE_PREFIXES}
    cited = {c for name in PROFILES["core"].checks for c in CHECKS[name].clauses}
    assert core - cited == set(), f"core MUST clauses without a check: {sorted(core - cited)}"
    # The MUST clauses of the optional profiles are each checked by their profile.
    for prefix, profile in PROFILE_PREFIXES.items():
        bound = {c.id for c in spec.core_must_clauses() if c.prefix == prefix}
        covered = {c for name in PROFILES[profile].checks for c in CHECKS[name].clauses}
        assert bound - covered == set(), (profile, sorted(bound - covered))


def test_every_clause_the_suite_cites_exists() -> None:
    spec = load_spec()
    cited = {c for check in CHECKS.values() for c in check.clauses}
    cited |= {c for clauses in OP_CLAUSES.values() for c in clauses}
    cited |= set(THREAD_CLAUSES)
    assert cited - set(spec.clauses) == set()


def test_core_profile_lists_exactly_the_spec_core_clauses() -> None:
    spec = load_spec()
    listed = set(_profile_clauses("core", _spec_clauses()))
    core = {c.id for c in spec.core_must_clauses() if c.prefix not in PROFILE_PREFIXES}
    assert core <= listed
    # The optional configuration API never decides core (CONF-021).
    assert not any(c.startswith("CONF-") for c in listed)
    # Anything beyond the MUST clauses is a clause the checks cite.
    cited = {c for name in PROFILES["core"].checks for c in CHECKS[name].clauses}
    assert listed - core <= cited


def test_custom_checks_slot_into_a_profile() -> None:
    """A later profile's check registers itself and is reported per clause;
    until the implementation claims the profile its clauses are not-claimed."""
    from memslice_conformance.failures import Violation
    from memslice_conformance.impl.impls import python_impl
    from memslice_conformance.profiles.registry import CUSTOM_RUNNERS, CheckInfo, register_check
    from memslice_conformance.runner import run_conformance

    calls: list[int] = []

    def runner(impl: object, seed: int, max_examples: int) -> None:
        calls.append(seed)
        raise Violation(("DEBUG-003",), "double free let through")

    import pyimpls

    class DebugClaiming(pyimpls.ArenaAllocator):
        name = "claims-debug-blocks"
        profiles = frozenset({"core", "debug-blocks"})

    saved_checks = dict(CHECKS)
    saved_profiles = dict(PROFILES)
    try:
        register_check(CheckInfo("fake_debug", "debug-blocks", ("DEBUG-003",), "custom", "x"),
                       runner)
        report = run_conformance(python_impl(DebugClaiming), profiles=["debug-blocks"], seed=5)
        assert calls == [5]
        statuses = {c.id: c.status for c in report.clauses}
        assert statuses["DEBUG-003"] == "fail"
        assert not report.conforming
        unclaimed = run_conformance(python_impl(pyimpls.ArenaAllocator), profiles=["debug-blocks"])
        assert {c.status for c in unclaimed.clauses} == {"not-claimed"}
    finally:
        CHECKS.clear()
        CHECKS.update(saved_checks)
        PROFILES.clear()
        PROFILES.update(saved_profiles)
        CUSTOM_RUNNERS.pop("fake_debug", None)


def test_a_clause_only_a_finished_hammer_establishes_says_why_it_is_not_checked() -> None:
    """API-020 rests on the hammer running to its end (COVER-003): when the hammer
    fails on another clause, API-020's note names the hammer and how it ended."""
    from memslice_conformance.checks import coverage
    from memslice_conformance.checks.model import StepFailure
    from memslice_conformance.reporting.results import CheckResult
    from memslice_conformance.runner import clause_statuses

    coverage.reset()
    failed = CheckResult("hammer", "core", "fail", 1.0, 1,
                         StepFailure(("API-004",), "overlap", "violation"))
    [api020] = [c for c in clause_statuses(["core"], frozenset({"core"}), [failed])
                if c.id == "API-020"]
    assert api020.status == "not-checked"
    assert api020.note is not None
    assert "hammer" in api020.note and "'fail'" in api020.note, api020.note
