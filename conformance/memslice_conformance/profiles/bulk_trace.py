"""A failing bulk program as a trace of single calls (RUN-012).

Rules and theory of operation
-----------------------------
The ``scale`` check reaches its blocks through bulk programs
(:mod:`memslice_conformance.impl.bulk`), which are fast but cannot be
replayed, printed or emitted as C.  When one fails, this module turns the
failure into what every other check yields: a
:class:`~memslice_conformance.checks.model.Checker` whose recorded steps
show it, for the runner to shrink and save (RUN-007)::

    failing phase (bulk program) + what it found (overlap, NULL, crash, ...)
      │ 1 reduce, on fresh sessions, within REDUCE_SECONDS; a candidate is
      │   kept iff it fails the same way (same violation kind, same signal)
      │     the phase alone, else with the phases before it
      │     cut after the step that failed
      │     multi-size alloc steps narrowed to the failing block's size
      │     steps dropped (halves, quarters, ... single steps)
      │     each alloc count bisected down
      ▼ 2 translate (one trace step per program step)
      │     alloc  -> alloc / alloc0 per block, handle b<n>; a full stamp
      │               -> a write of the same bytes over the block (next step)
      │     free   -> free1 per chosen block, in the program's order
      │     chain  -> one free_chain of the pool's blocks at the offset
      │     verify, reset -> nothing (the checker re-reads after every step;
      │               blocks a reset forgets stay live in the model)
      ▼ 3 confirm through a Checker on a fresh session: the same first
            clause (or signal)?  yes: split the failing step so that its
            failing call ends the trace, confirm that too, hand the Checker
            over; no: None (the caller reports the bulk finding and how to
            rerun it, RUN-014)

Bisecting a count assumes that more blocks fail at least as surely as
fewer; where that is false the count found is larger than needed, never
wrong, since every candidate kept was seen to fail.  Hangs are not reduced
(each candidate would cost a full deadline).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, cast

from memslice_conformance.checks.model import Checker, Op, failure_of
from memslice_conformance.failures import ImplCrash, ImplFailure, ImplHang, Violation
from memslice_conformance.impl.bulk import stamp_bytes
from memslice_conformance.impl.jsonl import JSONValue
from memslice_conformance.impl.session import Session

__all__ = [
    "KIND_CLAUSES",
    "MAX_TRACE_OPS",
    "REDUCE_SECONDS",
    "BulkOutcome",
    "BulkStep",
    "NotTranslatable",
    "Reproduced",
    "reduce_program",
    "reproduce",
    "run_program",
    "translate",
]

BulkStep = dict[str, JSONValue]

#: Wall seconds spent reducing one failing bulk program (stated in RUN-012).
REDUCE_SECONDS: Final = 10.0
#: A translation longer than this (calls) is not attempted: its trace would
#: near the 16 MiB a trace file may hold (RUN-002).
MAX_TRACE_OPS: Final = 100_000

#: The first clause each kind of bulk violation breaks.
KIND_CLAUSES: Final[dict[str, str]] = {
    "null": "API-001",
    "not-zero": "API-002",
    "overlap": "API-004",
    "changed": "API-005",
    "misaligned": "API-006",
}


class _Opener(Protocol):
    """Anything that opens fresh sessions (a ``SessionFactory``)."""

    def open(self) -> Session:
        """A fresh instance of the implementation."""
        ...


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What one bulk program did: passed, found a violation, crashed, hung, errored."""

    kind: str  # "pass" | "violation" | "crash" | "hang" | "error"
    #: The violation's kind ("overlap", ...) or the crash's signal / exit status.
    what: str = ""
    #: The failing step's index in the program (a violation only; -1 otherwise).
    step: int = -1
    #: The failing block's size (a violation only).
    size: int = 0
    message: str = ""

    def same(self, other: BulkOutcome) -> bool:
        return self.kind == other.kind and self.what == other.what


def _crash_what(exc: ImplCrash) -> str:
    if exc.signal_name:
        return exc.signal_name
    return f"exit status {exc.returncode}"


def run_program(factory: _Opener, program: Sequence[BulkStep]) -> BulkOutcome:
    """Run ``program`` on a fresh session (from no pools); what it did."""
    session = factory.open()
    steps: list[JSONValue] = [{"do": "reset"}, *program]
    try:
        [answer] = session.run([{"op": "bulk", "steps": steps}])
    except ImplCrash as exc:
        return BulkOutcome("crash", _crash_what(exc), message=str(exc))
    except ImplHang as exc:
        return BulkOutcome("hang", message=str(exc))
    except ImplFailure as exc:
        return BulkOutcome("error", message=str(exc))
    finally:
        session.close()
    if not answer.get("ok"):
        return BulkOutcome("error", message=str(answer.get("error")))
    result = answer.get("result")
    found = result.get("violation") if isinstance(result, dict) else None
    if not isinstance(found, dict):
        return BulkOutcome("pass")
    return BulkOutcome(
        "violation",
        str(found.get("kind")),
        cast(int, found.get("step", 0)) - 1,  # the reset in front is not the program's
        cast(int, found.get("size", 0)),
        str(found.get("detail")),
    )


def _count_of_size(step: BulkStep, size: int) -> int:
    sizes = cast(list[int], step["sizes"])
    count = cast(int, step["count"])
    return sum(1 for index in range(count) if sizes[index % len(sizes)] == size)


def reduce_program(
    run: Callable[[Sequence[BulkStep]], BulkOutcome],
    program: Sequence[BulkStep],
    target: BulkOutcome,
    stop_at: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[BulkStep]:
    """A shorter program that fails as ``target`` did (see the module doc).

    ``run`` runs a candidate on a fresh session; only candidates seen to fail
    the same way are kept, so the result fails whenever ``program`` did.
    """
    best = [dict(step) for step in program]

    def fails(candidate: list[BulkStep]) -> bool:
        if clock() >= stop_at:
            return False
        outcome = run(candidate)
        return outcome.same(target)

    if target.kind == "violation" and 0 <= target.step < len(best) - 1:
        # The program stopped at the violation: the steps after it never ran.
        best = best[: target.step + 1]
    # Narrow each multi-size allocation step to the failing block's size.
    for index, step in enumerate(best):
        sizes = step.get("sizes")
        if step.get("do") == "alloc" and isinstance(sizes, list) and len(sizes) > 1 and (
            target.size in sizes
        ):
            candidate = list(best)
            candidate[index] = {**step, "sizes": [target.size],
                                "count": _count_of_size(step, target.size)}
            if fails(candidate):
                best = candidate
    # Drop steps (never the last, where the failure shows): halves first.
    chunk = max(1, (len(best) - 1) // 2)
    while len(best) > 1 and clock() < stop_at:
        start = 0
        dropped = False
        while start < len(best) - 1 and clock() < stop_at:
            stop = min(start + chunk, len(best) - 1)
            candidate = best[:start] + best[stop:]
            if fails(candidate):
                best, dropped = candidate, True
                continue
            start += chunk
        if chunk == 1 and not dropped:
            break
        chunk = max(1, chunk if dropped else chunk // 2)
        chunk = min(chunk, max(1, (len(best) - 1) // 2))
    # Bisect each allocation count down: the fewest blocks that still fail.
    for index in range(len(best)):
        step = best[index]
        if step.get("do") != "alloc":
            continue
        low, high = 0, cast(int, step["count"])
        while low + 1 < high and clock() < stop_at:
            middle = (low + high) // 2
            candidate = list(best)
            candidate[index] = {**step, "count": middle}
            if fails(candidate):
                high = middle
            else:
                low = middle
        best[index] = {**step, "count": high}
    return best


def _chosen(count: int, step: BulkStep) -> list[int]:
    every = cast(int, step.get("every", 1))
    start = cast(int, step.get("start", 0))
    return sorted(range(start, count, every), reverse=bool(step.get("reverse", False)))


class NotTranslatable(ValueError):
    """A bulk step with no counterpart among a trace's calls (``cap_memory``, ``exhaust``)."""


def translate(program: Sequence[BulkStep], new_handle: Callable[[], str]) -> list[list[Op]]:
    """The trace steps that make the calls ``program`` makes (see the module doc)."""
    pools: dict[str, list[tuple[str, int]]] = {}
    steps: list[list[Op]] = []
    serial = 0
    for step in program:
        kind = step.get("do")
        name = str(step.get("pool", "main"))
        pool = pools.setdefault(name, [])
        if kind == "alloc":
            sizes = cast(list[int], step["sizes"])
            zero = bool(step.get("zero", False))
            full_stamp = bool(step.get("stamp", True)) and not step.get("tag_only", False)
            made: list[Op] = []
            writes: list[Op] = []
            for index in range(cast(int, step["count"])):
                size = sizes[index % len(sizes)]
                handle = new_handle()
                made.append({"op": "alloc0" if zero else "alloc", "size": size, "as": handle})
                pool.append((handle, size))
                if step.get("stamp", True):
                    serial += 1  # the bulk runner's tag sequence, stamped or not
                if full_stamp:
                    data = stamp_bytes(serial, size, tag_only=False).hex()
                    writes.append({"op": "write", "block": handle, "offset": 0, "data": data})
            steps += [s for s in (made, writes) if s]
        elif kind == "free":
            chosen = _chosen(len(pool), step)
            if chosen:
                steps.append([{"op": "free1", "block": pool[i][0]} for i in chosen])
            gone = set(chosen)
            pools[name] = [entry for i, entry in enumerate(pool) if i not in gone]
        elif kind == "chain":
            if pool:
                steps.append([{"op": "free_chain", "blocks": [h for h, _ in pool],
                               "next_offset": step["offset"]}])
            pools[name] = []
        elif kind == "reset":
            pools.clear()
        elif kind != "verify":
            raise NotTranslatable(f"bulk step {kind!r} has no counterpart in a trace")
    return steps


@dataclass(frozen=True, slots=True)
class Reproduced:
    """A Checker whose trace shows the failure, and the exception it raised."""

    checker: Checker
    error: BaseException


def _same(target: BulkOutcome, exc: BaseException) -> bool:
    failure = failure_of(exc)
    if target.kind == "crash":
        return isinstance(exc, ImplCrash) and _crash_what(exc) == target.what
    if target.kind != "violation" or not isinstance(exc, Violation):
        return False
    return bool(failure.clauses) and failure.clauses[0] == KIND_CLAUSES.get(target.what)


def _play(factory: _Opener, steps: Sequence[Sequence[Op]]) -> Reproduced | None:
    """Run ``steps`` through a fresh Checker; the failure, or None if it passed."""
    session = factory.open()
    checker = Checker(session)
    try:
        for step in steps:
            checker.step(step)
    except (Violation, ImplFailure) as exc:
        return Reproduced(checker, exc)
    finally:
        session.close()
    return None


def _split_failing_step(played: Reproduced, steps: list[list[Op]]) -> list[list[Op]] | None:
    """The steps cut so that the failing call ends them, in a step of its own.

    A step of allocations fails at its first bad answer, after the blocks
    before it entered the model: so the number of the step's blocks the
    model holds is the failing call's place in the step (a guess the caller
    confirms by replaying).
    """
    index = len(played.checker.trace) - 1
    failing = steps[index]
    if len(failing) < 2 or not all(op["op"] in ("alloc", "alloc0") for op in failing):
        return None
    made = sum(1 for op in failing if str(op["as"]) in played.checker.blocks)
    if made >= len(failing):
        return None
    before = [list(failing[:made])] if made else []
    return [*steps[:index], *before, [failing[made]]]


def reproduce(factory: _Opener, program: Sequence[BulkStep],
              target: BulkOutcome) -> Reproduced | None:
    """Translate ``program`` and confirm it through a Checker (see the module doc)."""
    handles = iter(range(1, 1 << 62))
    try:
        steps = translate(program, lambda: f"b{next(handles)}")
    except NotTranslatable:
        return None
    if sum(len(step) for step in steps) > MAX_TRACE_OPS:
        return None
    played = _play(factory, steps)
    if played is None or not _same(target, played.error):
        return None
    split = _split_failing_step(played, steps)
    if split is not None:
        again = _play(factory, split)
        if again is not None and _same(target, again.error) and (
            len(again.checker.trace) == len(split)
        ):
            return again
    return played
