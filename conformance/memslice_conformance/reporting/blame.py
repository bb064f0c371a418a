"""Blame by cause: the earlier step whose effect a failing call met.

Rules and theory of operation
-----------------------------
A late ``set_config`` that silently reroutes frees, or a thread exit that
leaves its cache behind, does no visible harm itself: a later, innocent
call crashes or hands out a live block, and the failure cites that call's
clauses (API-005, API-004).  So, once a failure has reproduced, its trace is
replayed *without* each earlier step of a kind that changes the allocator's
state for others (COVER-005)::

    causes            ops                  clause it then also cites
    configuration     set_config_late      CONF-004
    thread exit       thread_exit          EXIT-001

First the trace without every candidate op: if it still fails, no such
step is to blame and the failure is left as it was.  Otherwise the
candidates are halved (later half first) while the trace without one half
runs clean, within :data:`MAX_ATTEMPTS` replays and :data:`BUDGET_SECONDS`
of wall time, each replay in a fresh session;
the op left is named in the failure ("cause: the set_config in step 4,
set_config(1, 7): replayed without it, the run is clean") and its clause is
added.  Blame is advice to a reader: it never turns a
failure into a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from memslice_conformance.checks.model import Op, StepFailure
from memslice_conformance.impl.session import SessionFactory
from memslice_conformance.reporting.trace import Trace, replay

__all__ = ["BUDGET_SECONDS", "CAUSES", "MAX_ATTEMPTS", "blame"]

#: op -> (what it is, the clause its effect belongs to)
CAUSES: Final[dict[str, tuple[str, str]]] = {
    "set_config_late": ("set_config", "CONF-004"),
    "thread_exit": ("thread exit", "EXIT-001"),
}
MAX_ATTEMPTS: Final = 8
#: Wall seconds blame may spend replaying one failure (stated in the docs).
BUDGET_SECONDS: Final = 8.0


def _describe(op: Mapping[str, object]) -> str:
    kind = str(op.get("op"))
    if kind == "set_config_late":
        return f"set_config({op.get('key')}, {op.get('value')})"
    return f"thread_exit of {op.get('thread', 'main')}"


def _without(trace: Trace, removed: set[tuple[int, int]]) -> Trace:
    steps: list[tuple[Op, ...]] = []
    for index, step in enumerate(trace.steps):
        kept = tuple(op for position, op in enumerate(step) if (index, position) not in removed)
        if kept:
            steps.append(kept)
    return Trace(trace.check, trace.impl, trace.seed, None, tuple(steps))


def blame(trace: Trace, factory: Callable[[], SessionFactory]) -> StepFailure | None:
    """The trace's failure with its cause named, or None when no cause is found."""
    failure = trace.failure
    if failure is None or failure.kind == "hang":
        return None
    last = len(trace.steps) - 1
    candidates = [
        (index, position)
        for index, step in enumerate(trace.steps[:last])
        for position, op in enumerate(step)
        if op.get("op") in CAUSES
    ]
    attempts = [0]
    stop = time.monotonic() + BUDGET_SECONDS

    def clean_without(removed: list[tuple[int, int]]) -> bool:
        attempts[0] += 1
        sessions = factory()
        try:
            return replay(_without(trace, set(removed)), sessions) is None
        finally:
            sessions.close()

    if not candidates or not clean_without(candidates):
        return None
    # Halve the suspects while one half alone carries the cause.
    suspects = candidates
    while len(suspects) > 1 and attempts[0] < MAX_ATTEMPTS and time.monotonic() < stop:
        earlier, later = suspects[: len(suspects) // 2], suspects[len(suspects) // 2 :]
        if clean_without(later):
            suspects = later
        elif clean_without(earlier):
            suspects = earlier
        else:
            break
    index, position = suspects[-1] if len(suspects) == 1 else suspects[0]
    op = dict(trace.steps[index][position])
    what, clause = CAUSES[str(op["op"])]
    clauses = tuple(dict.fromkeys((*failure.clauses, clause)))
    named = f"the {what} in step {index + 1}, {_describe(op)}"
    if len(suspects) > 1:
        named = f"{len(suspects)} {what} calls from step {index + 1} on, first {_describe(op)}"
    return StepFailure(
        clauses,
        f"{failure.message} [cause: {named}: replayed without it, the run is clean]",
        failure.kind,
    )
