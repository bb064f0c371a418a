"""The core-profile state machine: Hypothesis drives the model of live blocks.

Rules and theory of operation
-----------------------------
``build_machine(factory)`` returns a ``RuleBasedStateMachine`` whose every
example opens a fresh session (a new allocator object, a worker reset to its
pristine state, or a new process), so a failing example replays from a clean state and shrinks to a
minimal program.  Each rule emits symbolic ops to a
:class:`~memslice_conformance.checks.model.Checker`, which checks every answer and
re-reads every live block after every step::

    rules                          ops                       clauses
    allocate / allocate_burst      alloc|alloc0, write       API-001 API-002 API-004 API-006
    copy_block                     copy (whole or prefix)    API-003
    overwrite                      write (sub-range)         API-005
    free_one / free_many           free1 (any thread)        API-005 API-009
    free_chain                     links + chain free        API-008
    recycle                        alloc,write,free,alloc0   API-002 (dirty memory)
    zero_size / null_frees         size 0, NULL frees        API-001 API-007
    exit_thread                    thread_exit               EXIT-001 EXIT-005

The configuration API is not exercised here: it is optional and has its own
profile (``config``, :mod:`memslice_conformance.profiles.config`).

Sizes cover every slab class edge on 64-bit (16k and 16k+1 up to 1008/1009),
tiny sizes, the exact sizes of small structs (multiples of 8 up to 64, each
the whole of a size class, or half of one, in an allocator with classes
every 8 or 16 bytes), the system-malloc path up to a few KiB, and everything between.
Two in seven of the allocating rules' sizes repeat one of the four latest
sizes of the example: a bug in one class's free list (a pop that does not
advance its head) needs a free and two more allocations of that one class,
which sizes drawn afresh each time rarely give.  The recycling rule is capped
at MAX_LIVE live blocks like the other allocating rules, so that repeats do
not pile up blocks that every step re-reads: an example costs what it did.
Ops run on four named OS threads (``main``, ``t1``..``t3``); a thread can
exit and a later op on the same name runs on a fresh OS thread, so
cross-thread frees, blocks outliving their thread and reuse after exit are
all real.  Bursts and recycling give the "dozens of frees before the bug
shows" depth within a few dozen steps.

Nothing here asserts what the spec leaves open: addresses, reuse order,
strides, or what ``alloc`` memory holds before it is written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from memslice_conformance.checks.model import Block, Checker, Op, pattern
from memslice_conformance.failures import HangAbort, ImplHang
from memslice_conformance.impl.jsonl import JSONValue
from memslice_conformance.impl.session import SessionFactory

__all__ = ["EDGE_SIZES", "STRUCT_SIZES", "THREADS", "Recorder", "build_machine", "sizes",
           "sizes_or_again"]

THREADS: Final = ("main", "t1", "t2", "t3")
#: How many of the latest sizes an allocation may repeat (see sizes_or_again).
RECENT_SIZES: Final = 4
MAX_LIVE: Final = 160

#: Every slab-class edge on 64-bit (16k, 16k+1), the 1008/1009 routing edge,
#: tiny sizes and a few malloc-path sizes.
EDGE_SIZES: Final = tuple(
    sorted(
        {1, 2, 3, 7, 8, 9, 15, 17, 1008, 1009, 1018, 1019, 1024, 1025, 2048, 4095, 4096, 4097}
        | {16 * k for k in range(1, 64)}
        | {16 * k + 1 for k in range(1, 63)}
    )
)


#: The sizes of small structs (8 .. 64 bytes, multiples of 8; a GList node is
#: 24): each is a size class of its own, or shares one with its neighbour, in
#: most allocators.  Kept short, so that each is drawn often.
STRUCT_SIZES: Final = tuple(range(8, 65, 8))


def _size_kinds() -> list[st.SearchStrategy[int]]:
    """Class edges, anything in the slab range, struct sizes, the malloc path."""
    return [
        st.sampled_from(EDGE_SIZES),
        st.integers(1, 1100),
        st.integers(1, 64),
        st.sampled_from(STRUCT_SIZES),
        st.integers(1009, 4200),
    ]


def sizes() -> st.SearchStrategy[int]:
    """Nonzero block sizes of every kind (see :func:`_size_kinds`)."""
    return st.one_of(*_size_kinds())


def sizes_or_again() -> st.SearchStrategy[int]:
    """The kinds of :func:`sizes`, or (two in seven) a repeat: ``-k`` for
    1 <= k <= :data:`RECENT_SIZES` stands for the k-th latest size the example
    allocated (see ``CoreMachine._size``), so that one class is freed and
    allocated again.  The state machine's allocating rules draw from it; the
    thread programs draw from :func:`sizes`."""
    return st.one_of(
        *_size_kinds(),
        # Twice (in two spellings: one_of drops a strategy it already has), so
        # that two in seven sizes repeat one.
        st.integers(-RECENT_SIZES, -1),
        st.sampled_from(range(-RECENT_SIZES, 0)),
    )


def threads() -> st.SearchStrategy[str]:
    return st.sampled_from(THREADS)


class Recorder:
    """Remembers the checker of the latest example (the minimal one on failure)."""

    def __init__(self) -> None:
        self.last: Checker | None = None
        self.examples = 0


def _fill_op(block_handle: str, size: int, serial: int, thread: str) -> Op:
    return {
        "op": "write",
        "block": block_handle,
        "offset": 0,
        "data": pattern(serial, size).hex(),
        "thread": thread,
    }


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _stop_on_hang(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """A hang ends the run at once instead of being shrunk (see HangAbort)."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except ImplHang as exc:
            raise HangAbort(exc) from exc

    return wrapper


def build_machine(
    factory: SessionFactory, recorder: Recorder
) -> Callable[[], RuleBasedStateMachine]:
    """A state machine class bound to one implementation."""

    class CoreMachine(RuleBasedStateMachine):
        """Core profile: live-block model under random programs."""

        def __init__(self) -> None:
            super().__init__()
            self.session = factory.open()
            self.checker = Checker(self.session)
            recorder.last = self.checker
            recorder.examples += 1
            #: The sizes allocated so far, each once, the latest last.
            self.seen: list[int] = []

        def teardown(self) -> None:
            self.session.close()

        # -- helpers

        def _live(self) -> list[Block]:
            return sorted(self.checker.blocks.values(), key=lambda b: int(b.handle[1:]))

        def _size(self, drawn: int) -> int:
            """A size from :func:`sizes_or_again`: ``-k`` is the k-th latest size
            allocated, or while there are fewer, the struct size 8k."""
            if drawn > 0:
                return drawn
            return self.seen[drawn] if -drawn <= len(self.seen) else STRUCT_SIZES[-drawn - 1]

        def _alloc(self, kind: str, sizes_: list[int], thread: str, fill: bool) -> list[str]:
            for size in dict.fromkeys(sizes_):
                if size in self.seen:
                    self.seen.remove(size)
                self.seen.append(size)
            handles = [self.checker.new_handle() for _ in sizes_]
            self.checker.step(
                [
                    {"op": kind, "size": size, "as": h, "thread": thread}
                    for size, h in zip(sizes_, handles, strict=True)
                ]
            )
            if fill:
                self.checker.step(
                    [
                        _fill_op(h, size, self.checker.next_serial(), thread)
                        for size, h in zip(sizes_, handles, strict=True)
                    ]
                )
            return handles

        # -- rules

        @precondition(lambda self: len(self.checker.blocks) < MAX_LIVE)
        @rule(
            kind=st.sampled_from(["alloc", "alloc0"]),
            size=sizes_or_again(),
            thread=threads(),
            fill=st.booleans(),
        )
        @_stop_on_hang
        def allocate(self, kind: str, size: int, thread: str, fill: bool) -> None:
            """alloc/alloc0 one block, usually stamped (API-001, API-002, API-004, API-006)."""
            self._alloc(kind, [self._size(size)], thread, fill)

        @precondition(lambda self: len(self.checker.blocks) < MAX_LIVE)
        @rule(
            kind=st.sampled_from(["alloc", "alloc0"]),
            size=sizes_or_again(),
            count=st.integers(2, 40),
            thread=threads(),
        )
        @_stop_on_hang
        def allocate_burst(self, kind: str, size: int, count: int, thread: str) -> None:
            """Many blocks of one size: fills magazines and slabs (API-004, API-005)."""
            self._alloc(kind, [self._size(size)] * count, thread, True)

        @precondition(lambda self: bool(self.checker.blocks))
        @rule(data=st.data(), thread=threads())
        @_stop_on_hang
        def copy_block(self, data: st.DataObject, thread: str) -> None:
            """copy of a whole block or a prefix: equal and distinct (API-003)."""
            src = data.draw(st.sampled_from(self._live()))
            size = data.draw(st.one_of(st.just(src.size), st.integers(1, src.size)))
            self.checker.step(
                [
                    {
                        "op": "copy",
                        "size": size,
                        "src": src.handle,
                        "as": self.checker.new_handle(),
                        "thread": thread,
                    }
                ]
            )

        @precondition(lambda self: bool(self.checker.blocks))
        @rule(data=st.data(), thread=threads())
        @_stop_on_hang
        def overwrite(self, data: st.DataObject, thread: str) -> None:
            """Rewrite part of a live block; the new bytes must stay (API-005)."""
            block = data.draw(st.sampled_from(self._live()))
            start = data.draw(st.integers(0, block.size - 1))
            length = data.draw(st.integers(1, block.size - start))
            self.checker.step(
                [
                    {
                        "op": "write",
                        "block": block.handle,
                        "offset": start,
                        "data": pattern(self.checker.next_serial(), length).hex(),
                        "thread": thread,
                    }
                ]
            )

        @precondition(lambda self: bool(self.checker.blocks))
        @rule(data=st.data(), thread=threads())
        @_stop_on_hang
        def free_one(self, data: st.DataObject, thread: str) -> None:
            """free1 a live block from any thread (API-005, API-009)."""
            block = data.draw(st.sampled_from(self._live()))
            self.checker.step([{"op": "free1", "block": block.handle, "thread": thread}])

        @precondition(lambda self: len(self.checker.blocks) >= 2)
        @rule(data=st.data(), thread=threads())
        @_stop_on_hang
        def free_many(self, data: st.DataObject, thread: str) -> None:
            """Free a random subset in a random order, one batch (API-005)."""
            live = self._live()
            chosen = data.draw(st.lists(st.sampled_from(live), min_size=2, unique_by=id))
            order = data.draw(st.permutations(chosen))
            self.checker.step(
                [{"op": "free1", "block": b.handle, "thread": thread} for b in order]
            )

        @precondition(lambda self: any(b.size >= 8 for b in self.checker.blocks.values()))
        @rule(data=st.data(), thread=threads())
        @_stop_on_hang
        def free_chain(self, data: st.DataObject, thread: str) -> None:
            """Free a chain linked at offset 0, 8 or another field offset (API-008)."""
            by_size: dict[int, list[Block]] = {}
            for block in self._live():
                if block.size >= 8:
                    by_size.setdefault(block.size, []).append(block)
            size = data.draw(st.sampled_from(sorted(by_size)))
            nodes = data.draw(
                st.lists(st.sampled_from(by_size[size]), min_size=1, unique_by=id)
            )
            slots = (size - 8) // 8
            offset = data.draw(
                st.one_of(
                    st.sampled_from([0, 8, 16, 24]).filter(lambda o: o + 8 <= size),
                    st.integers(0, slots).map(lambda k: 8 * k),
                )
            )
            self.checker.step(
                [
                    {
                        "op": "free_chain",
                        "blocks": [n.handle for n in nodes],
                        "next_offset": offset,
                        "thread": thread,
                    }
                ]
            )

        # Capped like the other allocating rules: its alloc0 blocks stay live, and
        # a run of recycles would otherwise pile up hundreds of live blocks, each
        # re-read after every step (the cost of an example grows with them).
        @precondition(lambda self: len(self.checker.blocks) < MAX_LIVE)
        @rule(
            size=sizes_or_again(),
            count=st.integers(1, 40),
            thread=threads(),
            free_thread=threads(),
            chain=st.booleans(),
        )
        def recycle(
            self, size: int, count: int, thread: str, free_thread: str, chain: bool
        ) -> None:
            """Dirty blocks freed then re-allocated with alloc0 (API-002, API-005)."""
            size = self._size(size)
            handles = self._alloc("alloc", [size] * count, thread, True)
            if chain and size >= 8:
                self.checker.step(
                    [
                        {
                            "op": "free_chain",
                            "blocks": list[JSONValue](handles),
                            "next_offset": 8 * ((size - 8) // 16),
                            "thread": free_thread,
                        }
                    ]
                )
            else:
                self.checker.step(
                    [{"op": "free1", "block": h, "thread": free_thread} for h in handles]
                )
            self._alloc("alloc0", [size] * count, thread, False)

        @rule(thread=threads())
        @_stop_on_hang
        def zero_size(self, thread: str) -> None:
            """alloc(0), alloc0(0), copy(0, NULL) are NULL (API-001)."""
            self.checker.step([{"op": "alloc_zero", "thread": thread}])

        @rule(size=st.one_of(st.just(0), sizes()), offset=st.sampled_from([0, 8, 16]),
              thread=threads())
        @_stop_on_hang
        def null_frees(self, size: int, offset: int, thread: str) -> None:
            """free1(size, NULL) and a NULL chain do nothing (API-007)."""
            self.checker.step(
                [
                    {"op": "free_null", "size": size, "thread": thread},
                    {"op": "chain_null", "size": size, "next_offset": offset, "thread": thread},
                ]
            )

        @rule(thread=st.sampled_from(THREADS[1:]))
        @_stop_on_hang
        def exit_thread(self, thread: str) -> None:
            """A thread exits; its blocks stay live, its name is reused later (EXIT-001)."""
            self.checker.step([{"op": "thread_exit", "thread": thread}])

    return CoreMachine
