"""Every core MUST clause has a check, and every cited clause exists."""

from __future__ import annotations

from memslice_conformance.model import CLAUSES as OP_CLAUSES
from memslice_conformance.profiles import CHECKS, PROFILES
from memslice_conformance.runner import _profile_clauses, _spec_clauses
from memslice_conformance.spec import load_spec
from memslice_conformance.threads import CLAUSES as THREAD_CLAUSES


def test_every_core_must_clause_is_checked() -> None:
    spec = load_spec()
    core = {c.id for c in spec.core_must_clauses() if c.prefix != "DEBUG"}
    cited = {c for name in PROFILES["core"].checks for c in CHECKS[name].clauses}
    assert core - cited == set(), f"core MUST clauses without a check: {sorted(core - cited)}"


def test_every_clause_the_suite_cites_exists() -> None:
    spec = load_spec()
    cited = {c for check in CHECKS.values() for c in check.clauses}
    cited |= {c for clauses in OP_CLAUSES.values() for c in clauses}
    cited |= set(THREAD_CLAUSES)
    assert cited - set(spec.clauses) == set()


def test_core_profile_lists_exactly_the_spec_core_clauses() -> None:
    spec = load_spec()
    listed = set(_profile_clauses("core", _spec_clauses()))
    core = {c.id for c in spec.core_must_clauses() if c.prefix != "DEBUG"}
    assert core <= listed
    # Anything beyond the MUST clauses is a clause the checks cite.
    cited = {c for name in PROFILES["core"].checks for c in CHECKS[name].clauses}
    assert listed - core <= cited
