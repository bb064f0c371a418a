"""Shrinking a failing trace to a local minimum by delta debugging.

Rules and theory of operation
-----------------------------
Hypothesis shrinks the state machine's examples by its own lights, and the
sweeps and the hammer are not shrunk by anything: their traces run to
thousands of ops.  Every failing trace therefore goes through this module
after the check (RUN-007)::

    trace (steps of ops) ─► replay once: the failure to keep, and its call
      │                     (does not reproduce: kept as it is, said so)
      ├── cut after the failing step
      ├── drop every op of one kind at once (all writes, all config
      │     queries, ...): a replay per kind, often most of the trace
      │     (once ddmin has brought the trace under 400 ops)
      ├── ddmin over ops: drop chunks of n/2, n/4, ... then single ops
      │     (candidates replayed with one read of the live blocks after the
      │      last step, not after each: half the round trips)
      │     a candidate drops its ops *and* every later op on a block they
      │     created (a chain free loses just those nodes), so it stays a
      │     valid trace; check_steps() rejects the
      │     rest without running anything; a survivor is replayed on a
      │     fresh session and kept iff it shows the same failure
      ├── replay the result as the check ran it (every step verified) to
      │     find the failing call; if it no longer fails, the last confirmed
      │     trace is kept
      └── serialise: one op per step, kept iff it still fails the same way
          (a race needs its batch; most bugs do not, and C reads better);
          tried when the failing step still holds several calls, with the
          last fifth of the budget kept for it

Inside a run of at least LIKE_RUN like ops (one kind, size, thread and
step: a scale trace's thousands of allocations) a chunk size is replayed
once, and its answer stands for the run's other chunks of that size; the
result is then marked not proven minimal.

"The same failure" is the same kind (violation, error, crash, hang) and,
for a violation or error, the same first clause; for a crash the same
signal or exit status.  The result is 1-minimal when the loop ends on
single ops: dropping any one op (with its dependants) loses the failure.
Every candidate costs one replay, so the whole shrink runs within a time
budget (``budget`` seconds); when the budget runs out the smallest failing
trace found so far is returned, marked ``complete: false``.  What was done
is recorded in the trace's ``shrink`` field and stated in the report.
Hangs are not shrunk (each candidate would cost a full deadline).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from memslice_conformance.checks.model import Op, StepFailure
from memslice_conformance.impl.jsonl import JSONValue
from memslice_conformance.impl.session import Session, SessionFactory
from memslice_conformance.reporting.trace import (
    ReplayOutcome,
    Trace,
    TraceError,
    check_steps,
    replay_outcome,
)

__all__ = ["LIKE_RUN", "ShrinkResult", "Shrinker", "WarmSessions", "same_failure"]

#: One op and the index of the step it belongs to in the original trace.
_Unit = tuple[int, Op]

_SIGNAL = re.compile(r"\((signal \w+|exit status -?\d+)\)")


def same_failure(original: StepFailure, candidate: StepFailure | None) -> bool:
    """Whether ``candidate`` shows the failure ``original`` showed (see module doc)."""
    if candidate is None or candidate.kind != original.kind:
        return False
    if original.kind == "crash":
        want = _SIGNAL.search(original.message)
        got = _SIGNAL.search(candidate.message)
        return want is None or (got is not None and got.group(1) == want.group(1))
    if not original.clauses:
        return True
    return original.clauses[0] in candidate.clauses


@dataclass(frozen=True, slots=True)
class ShrinkResult:
    """The smallest failing trace found, and how it was found."""

    trace: Trace
    #: Whether the original trace failed again when replayed.
    reproduced: bool
    #: True when shrinking reached a local minimum within its budget.
    complete: bool
    replays: int
    seconds: float


#: Kinds of op that create no block, tried first as whole groups (see _drop_kinds).
_DROPPABLE_KINDS: Final = (
    "write", "check", "alloc_zero", "free_null", "chain_null", "get_config",
    "get_config_known", "get_config_state", "set_config_late", "thread_exit",
)


#: Traces longer than this (ops) are halved by ddmin before kinds are dropped.
_KIND_DROP_LIMIT: Final = 400


def _handles_created(op: Op) -> list[str]:
    created = op.get("as")
    return [str(created)] if created is not None else []


def _handles_used(op: Op) -> list[str]:
    used: list[str] = []
    for key in ("block", "src"):
        if op.get(key) is not None:
            used.append(str(op[key]))
    blocks = op.get("blocks")
    if isinstance(blocks, list):
        used.extend(str(h) for h in blocks)
    return used


def _drop(units: Sequence[_Unit], start: int, stop: int) -> list[_Unit]:
    """``units`` without ``[start, stop)`` and without every later op on a block those created."""
    gone: set[str] = set()
    kept: list[_Unit] = []
    for index, (step, op) in enumerate(units):
        if start <= index < stop:
            gone.update(_handles_created(op))
            continue
        if gone and any(h in gone for h in _handles_used(op)):
            nodes = op.get("blocks")
            if isinstance(nodes, list):
                # A chain loses only the nodes that are gone: a shorter chain.
                left: list[JSONValue] = [h for h in nodes if str(h) not in gone]
                if left:
                    kept.append((step, {**op, "blocks": left}))
                continue
            gone.update(_handles_created(op))
            continue
        kept.append((step, op))
    return kept


def _regroup(units: Sequence[_Unit]) -> tuple[tuple[Op, ...], ...]:
    steps: list[list[Op]] = []
    last = None
    for step, op in units:
        if step != last:
            steps.append([])
            last = step
        steps[-1].append(op)
    return tuple(tuple(s) for s in steps)


#: A run of at least this many like ops is judged by one replay per chunk size.
LIKE_RUN: Final = 64


def _like_runs(units: Sequence[_Unit]) -> list[tuple[int, int] | None]:
    """Per op, ``(first index, length)`` of the long run of like ops it is in, else None.

    Ops are alike when they have one kind, size, thread and step, and a later
    op names the blocks of all of them or of none (a scale trace's thousands
    of ``alloc(96)``).  Dropping one chunk of such a run or another of the
    same length is taken to have the same effect (see :meth:`Shrinker._ddmin`).
    """
    named = {h for _, op in units for h in _handles_used(op)}

    def key(unit: _Unit) -> tuple[object, ...]:
        step, op = unit
        made = _handles_created(op)
        return (op.get("op"), op.get("size"), op.get("thread", "main"), step,
                bool(made) and made[0] in named)

    runs: list[tuple[int, int] | None] = [None] * len(units)
    start = 0
    while start < len(units):
        stop = start + 1
        first = key(units[start])
        while stop < len(units) and key(units[stop]) == first:
            stop += 1
        if stop - start >= LIKE_RUN:
            runs[start:stop] = [(start, stop - start)] * (stop - start)
        start = stop
    return runs


class WarmSessions:
    """Fresh sessions from several factories in turn, so several processes warm at once.

    Every candidate needs a fresh instance; for a worker that is a new
    process, whose start-up (about half a second of wall time on a busy
    machine) dwarfs a short replay.  Each :class:`SessionFactory` keeps one
    spare process starting in the background; taking sessions from ``k``
    factories in turn gives each spare ``k`` replays' time to be ready.
    """

    def __init__(self, factories: Sequence[SessionFactory]) -> None:
        self.factories = list(factories)
        self._next = 0

    def open(self) -> Session:
        factory = self.factories[self._next % len(self.factories)]
        self._next += 1
        return factory.open()

    def close(self) -> None:
        for factory in self.factories:
            factory.close()


class Shrinker:
    """Delta debugging of one trace against one implementation (see module doc).

    ``best`` always holds the smallest trace known to fail the same way, so
    a caller that stops the shrinker from outside (a deadline) keeps it.
    """

    def __init__(
        self,
        trace: Trace,
        factory: SessionFactory | WarmSessions,
        budget: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.original = trace
        self.factory = factory
        self.clock = clock
        self.started = clock()
        self.stop_at = self.started + budget
        self.ddmin_stop = self.stop_at
        self.verify_each_step = True
        self.replays = 0
        #: Chunks not replayed because a like chunk of the same run failed to (see _ddmin).
        self.assumed = 0
        self.reproduced = False
        self.complete = False
        self.best = trace
        self._target: StepFailure | None = trace.failure

    def _time_left(self) -> bool:
        return self.clock() < self.ddmin_stop

    def _try(self, steps: tuple[tuple[Op, ...], ...]) -> ReplayOutcome | None:
        """Replay a candidate; its outcome if it fails the same way, else None."""
        try:
            check_steps(steps)
        except TraceError:
            return None
        self.replays += 1
        outcome = replay_outcome(replace(self.original, steps=steps), self.factory,
                                 verify_each_step=self.verify_each_step)
        if self._target is None or not same_failure(self._target, outcome.failure):
            return None
        return outcome

    def _accept(self, units: Sequence[_Unit], outcome: ReplayOutcome) -> list[_Unit]:
        """Keep a failing candidate, cut after the call that failed (when known)."""
        kept = list(units) if outcome.at_end else list(units[: outcome.call])
        self.best = replace(
            self.original, steps=_regroup(kept), failure=outcome.failure, call=outcome.call,
            call_first=outcome.first,
        )
        return kept

    def run(self) -> ShrinkResult:
        """Shrink within the budget; never raises for a misbehaving implementation."""
        units: list[_Unit] = [
            (index, op) for index, step in enumerate(self.original.steps) for op in step
        ]
        first = replay_outcome(self.original, self.factory)
        self.replays += 1
        if self.original.failure is None or not same_failure(self.original.failure, first.failure):
            # Flaky or not reproducible here: nothing to shrink against.
            return self.result()
        self.reproduced = True
        self._target = first.failure
        units = self._accept(units, first)
        if self.original.failure.kind == "hang":
            return self.result()
        # The last fifth of the budget is kept for serialising, which names
        # the one failing call of a batch.
        self.ddmin_stop = self.started + 0.8 * (self.stop_at - self.started)
        confirmed, confirmed_units = self.best, units
        self.verify_each_step = False
        units = self._ddmin(units)
        self.verify_each_step = True
        # Candidates were tested with one read of the live blocks at the end;
        # the result is replayed as the check ran it, to find its call.
        outcome = self._try(self.best.steps)
        if outcome is None:
            self.best, units, self.complete = confirmed, confirmed_units, False
        else:
            units = self._accept(units, outcome)
        if self.best.call_first != self.best.call and self.clock() < self.stop_at:
            serial = [(index, op) for index, (_, op) in enumerate(units)]
            outcome = self._try(_regroup(serial))
            if outcome is not None:
                units = self._accept(serial, outcome)
            else:
                self.complete = False
        return self.result()

    def _drop_kinds(self, units: list[_Unit]) -> list[_Unit]:
        """Try dropping every op of one kind at once (all writes, say): one replay each."""
        for kind in _DROPPABLE_KINDS:
            if not self._time_left():
                break
            candidate = [(step, op) for step, op in units[:-1] if op["op"] != kind]
            if len(candidate) == len(units) - 1:
                continue
            candidate.append(units[-1])
            outcome = self._try(_regroup(candidate))
            if outcome is not None:
                units = self._accept(candidate, outcome)
        return units

    def _ddmin(self, units: list[_Unit]) -> list[_Unit]:
        """Drop chunks, then single ops; chunks inside a long run of like ops are judged once.

        Inside a run of :data:`LIKE_RUN` or more like ops (see :func:`_like_runs`),
        once dropping one chunk of a given length failed to reproduce, the
        other chunks of that length in that run are taken to fail too: a
        trace of thousands of like allocations that a bug needs all of costs
        a few replays per chunk size instead of one per op.  The result is
        then not proven 1-minimal (``complete`` stays false).
        """
        chunk = max(1, len(units) // 2)
        kinds_tried = False
        while units and self._time_left():
            if not kinds_tried and len(units) <= _KIND_DROP_LIMIT:
                # Cheap on a short trace; on a long one each replay is dear
                # and halving the trace pays first.
                kinds_tried = True
                units = self._drop_kinds(units)
                chunk = max(1, min(chunk, len(units) // 2))
            start = 0
            progressed = False
            assumed = 0
            runs = _like_runs(units)
            judged: set[tuple[int, int, int]] = set()
            while start < len(units) and self._time_left():
                run = runs[start]
                alike = run is not None and runs[min(start + chunk, len(units)) - 1] == run
                signature = (run[0], run[1], chunk) if run is not None and alike else None
                if signature is not None and signature in judged:
                    assumed += 1
                    start += chunk
                    continue
                candidate = _drop(units, start, start + chunk)
                if len(candidate) < len(units):
                    outcome = self._try(_regroup(candidate))
                    if outcome is not None:
                        units = self._accept(candidate, outcome)
                        progressed = True
                        runs, judged = _like_runs(units), set()
                        continue  # the same start now names the next chunk
                    if signature is not None:
                        judged.add(signature)
                start += chunk
            self.assumed += assumed
            if chunk == 1 and not progressed:
                self.complete = self._time_left() and assumed == 0
                break
            # No progress: finer chunks.  Progress: the same size again, at most half.
            chunk = max(1, min(chunk, len(units) // 2) if progressed else chunk // 2)
        return units

    def result(self) -> ShrinkResult:
        """The outcome so far (also after the shrinker was stopped from outside)."""
        seconds = self.clock() - self.started
        info: dict[str, JSONValue] = {
            "from_ops": self.original.op_count,
            "to_ops": self.best.op_count,
            "replays": self.replays,
            "seconds": round(seconds, 2),
            "budget_seconds": round(self.stop_at - self.started, 2),
            "complete": self.complete,
            "reproduced": self.reproduced,
            "assumed": self.assumed,
        }
        return ShrinkResult(
            replace(self.best, shrink=info), self.reproduced, self.complete, self.replays, seconds
        )
