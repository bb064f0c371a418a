"""Deterministic core checks: exhaustive sweeps and a seeded hammer.

Rules and theory of operation
-----------------------------
Hypothesis finds deep bugs by search; these checks cover, every run and in
the same order, the places where bugs hide by construction::

    sizes_sweep    every size 1..1200 and malloc-path sizes: alloc, alloc0,
                   stamp, copy, free, recycle dirty memory with alloc0
    edges          size 0, NULL frees and chains
    chain_sweep    chains at every 8-byte field offset up to 120 (and the
                   last word) for sizes on both sides of every route edge
    hammer         GLib's memory-hammer: seeded sizes 0..1020 plus large,
                   thousands of live blocks, half replaced per round; then
                   600 live blocks of one size, a 300-node chain, recycling
    thread_churn   threads that allocate, hand blocks to others, exit; new
                   threads (and reused names) carry on

All of them are pipelined batches through one
:class:`~memslice_conformance.checks.model.Checker`, so a failure carries the exact
op history as a replayable trace.  Seeds derive from the run's seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from memslice_conformance.checks.model import Checker, Op
from memslice_conformance.impl.jsonl import JSONValue
from memslice_conformance.impl.session import SessionFactory

__all__ = ["SWEEPS", "chain_sweep", "edges", "hammer", "sizes_sweep", "thread_churn"]

_MALLOC_SIZES: Final = (
    1500, 2000, 3000, 4095, 4096, 4097, 5000, 8192, 10000, 65536, 131073, 1 << 20,
)


def _alloc_all(checker: Checker, kinds_sizes: list[tuple[str, int]], thread: str) -> list[str]:
    handles = [checker.new_handle() for _ in kinds_sizes]
    checker.step(
        [
            {"op": kind, "size": size, "as": h, "thread": thread}
            for (kind, size), h in zip(kinds_sizes, handles, strict=True)
        ]
    )
    return handles


def _fill(checker: Checker, handles: list[str], thread: str = "main") -> None:
    checker.step([checker.fill_op(h, thread) for h in handles])


def sizes_sweep(checker: Checker, seed: int) -> None:
    """Every size 1..1200 and the malloc path (API-001..API-006, API-013)."""
    sizes = [*range(1, 1201), *_MALLOC_SIZES]
    plan = [("alloc" if i % 2 else "alloc0", s) for i, s in enumerate(sizes)]
    first = _alloc_all(checker, plan, "main")
    second = _alloc_all(checker, [("alloc", s) for s in sizes], "t1")
    _fill(checker, first + second)
    copies: list[Op] = [
        {"op": "copy", "size": checker.blocks[h].size, "src": h, "as": checker.new_handle()}
        for h in first[::7]
    ]
    checker.step(copies)
    rng = random.Random(seed)
    victims = [*first, *(str(c["as"]) for c in copies)]
    rng.shuffle(victims)
    checker.step([{"op": "free1", "block": h, "thread": "t2"} for h in victims])
    # Freed memory is dirty now: alloc0 must still read zero.
    again = _alloc_all(checker, [("alloc0", s) for s in sizes], "main")
    _fill(checker, again)
    checker.step([{"op": "free1", "block": h} for h in [*second, *again]])


def edges(checker: Checker, seed: int) -> None:
    """Size 0, NULL frees and chains (API-001, API-007).

    The configuration API is optional: its checks are the ``config``
    profile's (LOAD-003), never a core verdict.
    """
    for thread in ("main", "t1"):
        checker.step([{"op": "alloc_zero", "thread": thread}])
    nulls: list[Op] = [{"op": "free_null", "size": s} for s in (0, 1, 16, 1008, 1009, 5000)]
    checker.step(
        nulls
        + [
            {"op": "chain_null", "size": s, "next_offset": o}
            for s in (0, 8, 24, 1008, 5000)
            for o in (0, 8, 16)
        ]
    )
    handles = _alloc_all(checker, [("alloc", 24)], "main")
    _fill(checker, handles)
    checker.step([{"op": "free1", "block": handles[0]}])


_CHAIN_SIZES: Final = (
    8, 9, 16, 24, 32, 40, 64, 100, 128, 255, 256, 500, 1000, 1008, 1009, 2000, 5000,
)


def chain_sweep(checker: Checker, seed: int) -> None:
    """Chains at every field offset, on both sides of each route edge (API-008)."""
    rng = random.Random(seed)
    for size in _CHAIN_SIZES:
        last = (size - 8) // 8 * 8
        offsets = sorted({*range(0, min(last, 120) + 1, 8), last})
        groups: list[tuple[int, list[str]]] = []
        plan: list[tuple[str, int]] = []
        lengths = [1 + (i * 3 + size) % 6 for i in range(len(offsets))]
        for length in lengths:
            plan.extend([("alloc", size)] * length)
        handles = _alloc_all(checker, plan, "main")
        _fill(checker, handles)
        position = 0
        for offset, length in zip(offsets, lengths, strict=True):
            nodes = handles[position : position + length]
            rng.shuffle(nodes)
            groups.append((offset, nodes))
            position += length
        checker.step(
            [
                {
                    "op": "free_chain",
                    "blocks": list(nodes),
                    "next_offset": offset,
                    "thread": "main" if i % 2 else "t1",
                }
                for i, (offset, nodes) in enumerate(groups)
            ]
        )
        # The freed nodes must be reusable, and reuse must not hurt others.
        again = _alloc_all(checker, [("alloc0", size)] * len(handles), "t1")
        _fill(checker, again, "t1")
        checker.step([{"op": "free1", "block": h, "thread": "t1"} for h in again])


def hammer(checker: Checker, seed: int, rounds: int = 6, live: int = 4000) -> None:
    """GLib's memory hammer, scaled: sizes 0..1020 plus large (API-020).

    Thousands of live blocks and several MB of fresh memory reach bugs that
    only show once an arena, a slab list or a table grows.  Every live block
    is re-read after each round rather than after each step.
    """
    checker.verify_all = False
    rng = random.Random(seed)

    def size() -> int:
        return rng.randrange(1, 1021) if rng.random() < 0.95 else rng.randrange(1021, 9000)

    handles = _alloc_all(checker, [("alloc", size()) for _ in range(live)], "main")
    _fill(checker, handles)
    for round_ in range(rounds):
        rng.shuffle(handles)
        half, keep = handles[: live // 2], handles[live // 2 :]
        thread = ("main", "t1", "t2")[round_ % 3]
        checker.step([{"op": "free1", "block": h, "thread": thread} for h in half])
        kinds = [("alloc0" if rng.random() < 0.3 else "alloc", size()) for _ in half]
        fresh = _alloc_all(checker, kinds, thread)
        _fill(checker, fresh, thread)
        checker.verify()
        handles = keep + fresh
    checker.step([{"op": "free1", "block": h} for h in handles])
    # Phase two, as GLib's hammer: many blocks of one size at once, so a
    # class holds hundreds of live chunks (several magazines' worth), then
    # a long chain and a shuffled cross-thread free bring them back dirty.
    for width in (16, 48, 1008, 1009, 2000):
        many = _alloc_all(checker, [("alloc", width)] * 600, "main")
        _fill(checker, many)
        rng.shuffle(many)
        offset = 8 * rng.randrange(0, (width - 8) // 8 + 1) if width < 64 else 8
        checker.step(
            [{"op": "free_chain", "blocks": list[JSONValue](many[:300]), "next_offset": offset,
              "thread": "t1"}]
        )
        checker.step([{"op": "free1", "block": h, "thread": "t2"} for h in many[300:]])
        again = _alloc_all(checker, [("alloc0", width)] * 600, "t3")
        checker.verify()
        checker.step([{"op": "free1", "block": h} for h in again])
    checker.verify_all = True


def thread_churn(checker: Checker, seed: int, generations: int = 10) -> None:
    """Threads allocate, hand blocks over, exit; others carry on (API-009, EXIT-*)."""
    rng = random.Random(seed)
    inherited: list[str] = []
    for generation in range(generations):
        # Reuse a few names so a fresh OS thread runs under an exited name.
        thread = f"g{generation % 4}"
        sizes = [rng.choice((8, 24, 40, 100, 500, 1000, 1008, 1009, 3000)) for _ in range(30)]
        mine = _alloc_all(checker, [("alloc", s) for s in sizes], thread)
        _fill(checker, mine, thread)
        rng.shuffle(mine)
        own_free, hand_over = mine[:10], mine[10:]
        checker.step([{"op": "free1", "block": h, "thread": thread} for h in own_free])
        checker.step([{"op": "thread_exit", "thread": thread}])
        # Another thread frees some of the exited thread's blocks and older ones.
        rng.shuffle(inherited)
        to_free = hand_over[:10] + inherited[:10]
        inherited = inherited[10:] + hand_over[10:]
        checker.step([{"op": "free1", "block": h, "thread": "main"} for h in to_free])
        # Reuse after exit: a new thread takes memory the old ones released.
        reuse = _alloc_all(checker, [("alloc0", s) for s in sizes[:10]], f"r{generation % 2}")
        _fill(checker, reuse, f"r{generation % 2}")
        inherited.extend(reuse)
        checker.step([{"op": "thread_exit", "thread": f"r{generation % 2}"}])
    checker.step([{"op": "free1", "block": h, "thread": "t3"} for h in inherited])
    # A wave of many simultaneous threads: each allocates, a neighbour frees
    # half of it, all exit, and the survivors are freed by main.
    wave = [f"w{i}" for i in range(16)]
    plan: list[Op] = []
    owners: dict[str, list[str]] = {}
    for name in wave:
        owners[name] = [checker.new_handle() for _ in range(12)]
        plan.extend(
            {"op": "alloc", "size": rng.choice((16, 48, 200, 1008, 2000)), "as": h, "thread": name}
            for h in owners[name]
        )
    checker.step(plan)
    checker.step([checker.fill_op(h, name) for name in wave for h in owners[name]])
    frees: list[Op] = []
    for index, name in enumerate(wave):
        neighbour = wave[(index + 1) % len(wave)]
        frees.extend({"op": "free1", "block": h, "thread": neighbour} for h in owners[name][:6])
    checker.step(frees)
    checker.step([{"op": "thread_exit", "thread": name} for name in wave])
    checker.step([{"op": "free1", "block": h} for name in wave for h in owners[name][6:]])


SweepFn = Callable[[Checker, int], None]

#: name -> (function, clauses it is the check for, verify every block each step)
SWEEPS: Final[dict[str, tuple[SweepFn, tuple[str, ...], bool]]] = {
    "edges": (edges, ("API-001", "API-007"), True),
    "sizes_sweep": (
        sizes_sweep,
        ("API-001", "API-002", "API-003", "API-004", "API-005", "API-006", "API-013"),
        True,
    ),
    "chain_sweep": (chain_sweep, ("API-008", "API-005", "API-009"), True),
    "hammer": (hammer, ("API-020", "API-004", "API-005"), True),
    "thread_churn": (thread_churn, ("API-009", "EXIT-001", "EXIT-005", "API-005"), True),
}


def run_sweep(name: str, factory: SessionFactory, seed: int) -> Checker:
    """Run one sweep on a fresh session; the checker (with its trace) is returned
    through the exception's ``checker`` attribute on failure."""
    fn, _, verify_all = SWEEPS[name]
    session = factory.open()
    checker = Checker(session, verify_all=verify_all)
    try:
        fn(checker, seed)
    except BaseException as exc:
        exc.checker = checker  # type: ignore[attr-defined]
        raise
    finally:
        session.close()
    return checker
