"""Honest coverage: a clause passes only on evidence that a check ran its path.

Rules and theory of operation
-----------------------------
Citing a clause is a promise; running its path is evidence.  Checks record
evidence here while they run, and the runner settles every clause's verdict
with it at the end (COVER-001..COVER-005 in ``spec/19-suite-coverage.md``)::

    runner.run_check(name) ─► begin(name)
    Checker.step(ops) ──────► note_step(checker, ops, clauses)   ops that were answered
    custom checks ──────────► exercised(clause, path)            what they really did
    run_conformance ────────► settle(clause_results, results)    pass -> not-checked
                                                                 unless every path ran

A clause has one implicit path (``"run"``) unless :data:`PATHS` lists
several: API-001 is "nonzero sizes get an address", "size 0 gets NULL" and
"a failed allocation never hands back NULL"; a clause with several paths
passes only when each of them ran in this run.  Evidence comes from:

* answered ops of a :class:`~memslice_conformance.model.Checker` step (the
  clauses the op cites, plus the paths it reaches: :func:`note_step`);
* custom checks calling :func:`exercised` for what they actually did (the
  scale, failure-path, contention-triple and stress checks);
* :data:`BY_COMPLETION`: a clause that only a whole workload establishes
  (API-020: the hammer) is evidenced by that check running to its end;
* a custom check that records nothing at all vouches for the implicit path
  of the clauses it cites when it passes (older profile checks); the report
  marks such checks "(by completion)".

A verdict of ``fail`` is never changed: evidence only ever withholds a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    from .model import Checker
    from .runner import CheckResult, ClauseResult

__all__ = [
    "BY_COMPLETION",
    "PATHS",
    "begin",
    "evidence",
    "exercised",
    "note_step",
    "reset",
    "settle",
]

#: The implicit path of a clause that lists none.
RUN: Final = "run"

#: clause -> path -> what running that path means (shown when it is missing).
PATHS: Final[dict[str, dict[str, str]]] = {
    "API-001": {
        "nonzero": "a nonzero request answered with an address",
        "zero": "a request of size 0 answered with NULL",
        "failure": "an allocation that could not be satisfied (check failure_paths)",
    },
    "CONF-010": {
        "unknown-keys": "get_config of keys outside 1..6",
        "triple": "get_config_state(CONTENTION_COUNTER, ix) compared with the chunk sizes "
        "the allocator carves (check contention_triple)",
    },
}

#: check -> clauses that only a whole run of it establishes.
BY_COMPLETION: Final[dict[str, tuple[str, ...]]] = {
    "hammer": ("API-020",),
}

_UNKNOWN_CONFIG_KEY: Final = range(1, 7)

#: (clause, path) -> the checks that ran it, in this run.
_evidence: dict[tuple[str, str], set[str]] = {}
_current: list[str] = ["(outside a check)"]
_recorders: set[str] = set()


def reset() -> None:
    """Forget every piece of evidence (a new run starts)."""
    _evidence.clear()
    _recorders.clear()
    _current[0] = "(outside a check)"


def begin(check: str) -> None:
    """Evidence recorded from now on belongs to ``check``."""
    _current[0] = check


def exercised(clause: str, path: str = RUN, check: str | None = None) -> None:
    """Record that ``clause``'s ``path`` ran, in the current check."""
    who = check or _current[0]
    _evidence.setdefault((clause, path), set()).add(who)
    _recorders.add(who)


def evidence() -> dict[tuple[str, str], frozenset[str]]:
    """A snapshot: (clause, path) -> checks."""
    return {key: frozenset(who) for key, who in _evidence.items()}


def note_step(
    checker: Checker, ops: Sequence[Mapping[str, object]], clauses: Iterable[str]
) -> None:
    """A Checker step was answered and checked: its clauses' paths ran."""
    for clause in clauses:
        if clause not in PATHS:
            exercised(clause)
    for op in ops:
        kind = op.get("op")
        if kind in ("alloc", "alloc0", "copy") and cast(int, op.get("size", 0)) > 0:
            exercised("API-001", "nonzero")
        elif kind == "alloc_zero":
            exercised("API-001", "zero")
        elif kind == "get_config" and op.get("key") not in _UNKNOWN_CONFIG_KEY:
            exercised("CONF-010", "unknown-keys")
        elif kind in ("free1", "free_chain"):
            # Frees through the model always pass the allocated size.
            exercised("API-013")
        if kind in ("alloc", "alloc0", "copy") and getattr(checker, "_exited", None):
            # Threads have come and gone and allocation goes on (EXIT-005).
            exercised("EXIT-005")


def _profile_of(who: str) -> str | None:
    from .profiles import CHECKS

    info = CHECKS.get(who.removesuffix(" (by completion)"))
    return None if info is None else info.profile


def _ran(clause: str, path: str, profile: str) -> set[str]:
    """The checks of ``profile`` that exercised ``clause``'s ``path``."""
    return {who for who in _evidence.get((clause, path), set()) if _profile_of(who) == profile}


def _missing(clause: str, profile: str) -> list[str]:
    paths = PATHS.get(clause, {RUN: "the clause's path"})
    return [text for path, text in paths.items() if not _ran(clause, path, profile)]


def _exercisers(clause: str, profile: str) -> set[str]:
    paths = PATHS.get(clause, {RUN: ""})
    return {who for path in paths for who in _ran(clause, path, profile)}


def settle(
    clauses: Sequence[ClauseResult], results: Sequence[CheckResult]
) -> list[ClauseResult]:
    """Verdicts on evidence: a ``pass`` without evidence of every path becomes
    ``not-checked`` with the reason; ``checks`` lists the checks that exercised it."""
    from .profiles import CHECKS

    for result in results:
        if result.status != "pass":
            continue
        for cid in BY_COMPLETION.get(result.name, ()):
            exercised(cid, check=result.name)
        if result.name not in _recorders and CHECKS[result.name].kind == "custom":
            for cid in CHECKS[result.name].clauses:
                if cid not in PATHS:
                    exercised(cid, check=f"{result.name} (by completion)")
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
