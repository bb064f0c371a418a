"""Honest coverage: a clause passes only on evidence that a check ran its path.

Rules and theory of operation
-----------------------------
Citing a clause is a promise; running its path is evidence.  Checks record
evidence here while they run, and the runner settles every clause's verdict
with it at the end (COVER-001..COVER-005 in ``spec/19-suite-coverage.md``)::

    runner.run_check(name) ─► begin(name)
    Checker.step(ops) ──────► note_step(checker, ops, clauses)   ops that were answered
    custom checks ──────────► exercised(clause, path)            what they really did
    run_conformance ────────► verdicts.settle(clauses, results)  pass -> not-checked
                                                                 unless every path ran

This module only records; the verdict rules that read the evidence live one
layer up, in :mod:`memslice_conformance.reporting.verdicts`.

A clause has one implicit path (``"run"``) unless :data:`PATHS` lists
several: API-001 is "nonzero sizes get an address", "size 0 gets NULL" and
"a failed allocation never hands back NULL"; a clause with several paths
passes only when each of them ran in this run.  Evidence comes from:

* answered ops of a :class:`~memslice_conformance.checks.model.Checker` step (the
  clauses the op cites, plus the paths it reaches: :func:`note_step`);
* custom checks calling :func:`exercised` for what they actually did (the
  scale, failure-path, contention-triple and stress checks);
* ``verdicts.BY_COMPLETION``: a clause that only a whole workload establishes
  (API-020: the hammer) is evidenced by that check running to its end;
* a custom check that records nothing at all vouches for the implicit path
  of the clauses it cites when it passes (older profile checks); the report
  marks such checks "(by completion)".

A verdict of ``fail`` is never changed: evidence only ever withholds a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    from memslice_conformance.checks.model import Checker

__all__ = [
    "PATHS",
    "begin",
    "evidence",
    "exercised",
    "note_step",
    "recorders",
    "reset",
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


def recorders() -> frozenset[str]:
    """The checks that recorded any evidence in this run."""
    return frozenset(_recorders)


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
