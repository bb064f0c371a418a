"""Verdicts on evidence: the rules that turn the checks' evidence into clause statuses.

Rules and theory of operation
-----------------------------
The checks record what ran in :mod:`memslice_conformance.checks.coverage`;
the runner first gives each clause the status its checks' results imply
(``clause_statuses``), then :func:`settle` holds every ``pass`` to the
evidence (COVER-001..COVER-005 in ``spec/19-suite-coverage.md``)::

    status from results     evidence for every path of the clause     verdict
    pass                    yes (in a check of the clause's profile)  pass
    pass                    no                                        not-checked, with what
                                                                      did not run and why
    not-checked             -                                         not-checked, with why
    fail / not-claimed      -                                         unchanged

A check that records no evidence at all but passes vouches for the single
path of the clauses it cites ("by completion", COVER-004); a clause that only
a whole workload establishes (:data:`BY_COMPLETION`) is evidenced by that
check running to its end.  Evidence only ever withholds a pass: a ``fail``
is never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from memslice_conformance.checks import coverage
from memslice_conformance.profiles.registry import CHECKS
from memslice_conformance.reporting.results import CheckResult, ClauseResult

__all__ = ["BY_COMPLETION", "settle"]

#: check -> clauses that only a whole run of it establishes.
BY_COMPLETION: Final[dict[str, tuple[str, ...]]] = {
    "hammer": ("API-020",),
}


def _profile_of(who: str) -> str | None:
    info = CHECKS.get(who.removesuffix(" (by completion)"))
    return None if info is None else info.profile


def _ran(clause: str, path: str, profile: str) -> set[str]:
    """The checks of ``profile`` that exercised ``clause``'s ``path``."""
    ran = coverage.evidence().get((clause, path), frozenset())
    return {who for who in ran if _profile_of(who) == profile}


def _missing(clause: str, profile: str) -> list[str]:
    paths = coverage.PATHS.get(
        clause, {coverage.RUN: "no check that cites it recorded running its path"})
    return [text for path, text in paths.items() if not _ran(clause, path, profile)]


def _exercisers(clause: str, profile: str) -> set[str]:
    paths = coverage.PATHS.get(clause, {coverage.RUN: ""})
    return {who for path in paths for who in _ran(clause, path, profile)}


def settle(
    clauses: Sequence[ClauseResult], results: Sequence[CheckResult]
) -> list[ClauseResult]:
    """Verdicts on evidence: a ``pass`` without evidence of every path becomes
    ``not-checked`` with the reason; ``checks`` lists the checks that exercised it."""
    for result in results:
        if result.status != "pass":
            continue
        for cid in BY_COMPLETION.get(result.name, ()):
            coverage.exercised(cid, check=result.name)
        if result.name not in coverage.recorders() and CHECKS[result.name].kind == "custom":
            for cid in CHECKS[result.name].clauses:
                if cid not in coverage.PATHS:
                    coverage.exercised(cid, check=f"{result.name} (by completion)")
    settled: list[ClauseResult] = []
    for clause in clauses:
        if clause.status in ("not-claimed", "fail"):
            settled.append(clause)
            continue
        ran = sorted(_exercisers(clause.id, clause.profile))
        cited = [
            r for r in results
            if r.profile == clause.profile and clause.id in CHECKS[r.name].clauses
        ]
        if clause.status == "pass":
            missing = _missing(clause.id, clause.profile)
            if not missing:
                settled.append(replace(clause, checks=tuple(ran)))
                continue
            completing = [name for name, cids in BY_COMPLETION.items() if clause.id in cids]
            if completing:
                how = ", ".join(
                    f"{r.name} ended '{r.status}'" for r in results if r.name in completing)
                note = (f"established only by {' or '.join(completing)} running to its end, "
                        f"which did not happen in this run ({how or 'not run'})")
            else:
                note = f"not exercised in this run: {'; '.join(missing)}"
            skipped = [r for r in cited if r.status == "not-checked"]
            if skipped:
                note += "; " + "; ".join(f"{r.name} could not run: {r.note}" for r in skipped)
            settled.append(replace(clause, status="not-checked", checks=tuple(ran), note=note))
            continue
        # not-checked already: say why.
        skipped = [r for r in cited if r.status == "not-checked"]
        if skipped:
            note = "; ".join(f"{r.name} could not run: {r.note}" for r in skipped)
        else:
            note = "no check of this run reaches it"
        settled.append(replace(clause, checks=tuple(ran), note=note))
    return settled
