"""Concurrent thread programs, generated up front and checked from their history.

Rules and theory of operation
-----------------------------
Hypothesis is not thread-safe, so it only *generates*: a program is a list
of rounds, and each round gives every thread a list of allocations, a share
of its own blocks to free, whether to hand its remaining blocks to the next
thread, and whether to exit afterwards::

    round r:  batch A   t1: free 40%, alloc 40,40,1009   ┐ one pipelined batch;
                        t2: free 0%,  alloc 8 x 12       │ threads run at once
              batch B   every thread stamps its new blocks┘ (and reads old ones)
              batch C   exiting threads exit; hand-offs change owners

Each batch runs with all threads at once (real OS threads in this process for
Python implementations, worker threads for native ones; ctypes releases the
GIL during the call, so native code really overlaps).  The history is checked
by the :class:`~memslice_conformance.checks.model.Checker` after every batch: no
block handed out while another overlapping block was live (API-004), no live
block's bytes changed (API-005), frees from other threads and from threads
that outlived their allocator thread (API-009, EXIT-001), fresh threads
under reused names (EXIT-005).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from hypothesis import strategies as st

from memslice_conformance.checks.machine import sizes
from memslice_conformance.checks.model import Checker, Op

__all__ = ["CLAUSES", "Program", "Round", "ThreadTurn", "programs", "run_program"]

CLAUSES: Final = ("API-004", "API-005", "API-009", "EXIT-001", "EXIT-005")
_NAMES: Final = ("p1", "p2", "p3", "p4")


@dataclass(frozen=True, slots=True)
class ThreadTurn:
    """What one thread does in one round."""

    allocs: tuple[tuple[str, int], ...]
    free_share: float
    hand_off: bool
    exit: bool


@dataclass(frozen=True, slots=True)
class Round:
    turns: tuple[ThreadTurn, ...]


@dataclass(frozen=True, slots=True)
class Program:
    rounds: tuple[Round, ...]


def _turns() -> st.SearchStrategy[ThreadTurn]:
    return st.builds(
        ThreadTurn,
        allocs=st.lists(
            st.tuples(st.sampled_from(["alloc", "alloc0"]), sizes()), max_size=24
        ).map(tuple),
        free_share=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
        hand_off=st.booleans(),
        exit=st.booleans(),
    )


def programs() -> st.SearchStrategy[Program]:
    """Programs of 2..4 threads and 1..6 rounds."""
    return st.integers(2, 4).flatmap(
        lambda n: st.lists(
            st.lists(_turns(), min_size=n, max_size=n).map(lambda ts: Round(tuple(ts))),
            min_size=1,
            max_size=6,
        ).map(lambda rs: Program(tuple(rs)))
    )


def run_program(checker: Checker, program: Program) -> None:
    """Execute ``program``; the checker raises on the first wrong observation."""
    owned: dict[str, list[str]] = {name: [] for name in _NAMES}
    for round_ in program.rounds:
        names = _NAMES[: len(round_.turns)]
        batch_a: list[Op] = []
        fresh: dict[str, list[str]] = {}
        for name, turn in zip(names, round_.turns, strict=True):
            mine = owned[name]
            count = round(turn.free_share * len(mine))
            victims, owned[name] = mine[:count], mine[count:]
            batch_a.extend({"op": "free1", "block": h, "thread": name} for h in victims)
            fresh[name] = []
            for kind, size in turn.allocs:
                handle = checker.new_handle()
                fresh[name].append(handle)
                batch_a.append({"op": kind, "size": size, "as": handle, "thread": name})
        checker.step(batch_a)
        batch_b: list[Op] = []
        for name in names:
            batch_b.extend(checker.fill_op(handle, name) for handle in fresh[name])
            batch_b.extend({"op": "check", "block": h, "thread": name} for h in owned[name][:4])
            owned[name].extend(fresh[name])
        checker.step(batch_b)
        exits: list[Op] = [
            {"op": "thread_exit", "thread": name}
            for name, turn in zip(names, round_.turns, strict=True)
            if turn.exit
        ]
        if exits:
            checker.step(exits)
        for index, (name, turn) in enumerate(zip(names, round_.turns, strict=True)):
            if turn.hand_off:
                heir = names[(index + 1) % len(names)]
                owned[heir].extend(owned[name])
                owned[name] = []
    # Everything left is freed by threads other than its allocator where possible.
    final: list[Op] = []
    for index, name in enumerate(_NAMES):
        heir = _NAMES[(index + 1) % len(_NAMES)]
        final.extend({"op": "free1", "block": h, "thread": heir} for h in owned[name])
    if final:
        checker.step(final)
