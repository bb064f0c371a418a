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
added.

A chain free that frees a node twice (a walk that reads a link after the
node went back) also harms only later calls; it is not removed but
*replaced* (RUN-013): a trace whose calls all run on one thread (where
a clean replay is evidence, not luck) is replayed with each earlier
``free_chain`` done as ``free1`` of the same nodes in the same order::

    chain free        free_chain           API-008

and when that runs clean the chain free is named and API-008 added.  Blame
is advice to a reader: it never turns a failure into a pass.
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


def _chains_as_frees(trace: Trace, replaced: set[tuple[int, int]]) -> Trace:
    """``trace`` with each named chain free replaced by ``free1`` of its nodes, in order."""
    steps: list[tuple[Op, ...]] = []
    for index, step in enumerate(trace.steps):
        ops: list[Op] = []
        for position, op in enumerate(step):
            if (index, position) not in replaced:
                ops.append(op)
                continue
            thread = op.get("thread", "main")
            nodes = op.get("blocks")
            assert isinstance(nodes, list)
            ops += [{"op": "free1", "block": node, "thread": thread} for node in nodes]
        steps.append(tuple(ops))
    return Trace(trace.check, trace.impl, trace.seed, None, tuple(steps))


def _narrow(
    candidates: list[tuple[int, int]], clean: Callable[[list[tuple[int, int]]], bool],
    attempts: list[int], stop: float,
) -> list[tuple[int, int]]:
    """Halve the suspects while one half alone carries the cause (later half first)."""
    suspects = candidates
    while len(suspects) > 1 and attempts[0] < MAX_ATTEMPTS and time.monotonic() < stop:
        earlier, later = suspects[: len(suspects) // 2], suspects[len(suspects) // 2 :]
        if clean(later):
            suspects = later
        elif clean(earlier):
            suspects = earlier
        else:
            break
    return suspects


def blame(trace: Trace, factory: Callable[[], SessionFactory]) -> StepFailure | None:
    """The trace's failure with its cause named, or None when no cause is found.

    First the earlier steps of :data:`CAUSES` (COVER-005), then the earlier
    chain frees (RUN-013), each within :data:`MAX_ATTEMPTS` replays; both
    share :data:`BUDGET_SECONDS`.
    """
    failure = trace.failure
    if failure is None or failure.kind == "hang":
        return None
    stop = time.monotonic() + BUDGET_SECONDS
    found = _blame_steps(trace, factory, stop)
    chained = _blame_chains(trace, failure if found is None else found, factory, stop)
    return chained if chained is not None else found


def _replays_clean(trace: Trace, factory: Callable[[], SessionFactory]) -> bool:
    sessions = factory()
    try:
        return replay(trace, sessions) is None
    finally:
        sessions.close()


def _blame_chains(
    trace: Trace, failure: StepFailure, factory: Callable[[], SessionFactory], stop: float
) -> StepFailure | None:
    """RUN-013: an earlier chain free that, done as single frees, leaves the run clean."""
    last = len(trace.steps) - 1
    candidates = [
        (index, position)
        for index, step in enumerate(trace.steps[:last])
        for position, op in enumerate(step)
        if op.get("op") == "free_chain"
    ]
    threads = {str(op.get("thread", "main")) for step in trace.steps for op in step}
    if not candidates or "API-008" in failure.clauses or time.monotonic() >= stop:
        return None
    if len(threads) > 1:
        # A race may simply not recur in the replay: "clean" would prove nothing.
        return None
    attempts = [0]

    def clean_as_frees(replaced: list[tuple[int, int]]) -> bool:
        attempts[0] += 1
        return _replays_clean(_chains_as_frees(trace, set(replaced)), factory)

    if not clean_as_frees(candidates):
        return None
    suspects = _narrow(candidates, clean_as_frees, attempts, stop)
    index, position = suspects[-1] if len(suspects) == 1 else suspects[0]
    op = trace.steps[index][position]
    nodes = op.get("blocks")
    count = len(nodes) if isinstance(nodes, list) else 0
    named = (f"the chain free in step {index + 1}, g_slice_free_chain_with_offset of "
             f"{count} blocks at offset {op.get('next_offset')}")
    if len(suspects) > 1:
        named = f"{len(suspects)} chain frees from step {index + 1} on"
    return StepFailure(
        tuple(dict.fromkeys((*failure.clauses, "API-008"))),
        f"{failure.message} [cause: {named}: replayed with g_slice_free1 of the same blocks "
        "instead, the run is clean]",
        failure.kind,
    )


def _blame_steps(
    trace: Trace, factory: Callable[[], SessionFactory], stop: float
) -> StepFailure | None:
    """COVER-005: an earlier step of :data:`CAUSES` without which the run is clean."""
    failure = trace.failure
    assert failure is not None
    last = len(trace.steps) - 1
    candidates = [
        (index, position)
        for index, step in enumerate(trace.steps[:last])
        for position, op in enumerate(step)
        if op.get("op") in CAUSES
    ]
    attempts = [0]

    def clean_without(removed: list[tuple[int, int]]) -> bool:
        attempts[0] += 1
        return _replays_clean(_without(trace, set(removed)), factory)

    if not candidates or not clean_without(candidates):
        return None
    suspects = _narrow(candidates, clean_without, attempts, stop)
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
