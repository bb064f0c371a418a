"""Peers: every allocator the benchmarks compare, behind one small Protocol.

Rules and theory of operation
-----------------------------
A peer hands out real process addresses (so workloads can write list links
into blocks and C code can scan them) and reports where its bytes are::

    Peer ── alloc(size) -> address          0 only for size 0
         ── free(size, address)             size as allocated
         ── free_chain(size, head, offset)  a linked list, link at ``offset``
         ── space() -> Space                mapped bytes and their breakdown
         ── expire()                        let cached memory age out, if it can
         ── close()

    name                 what                                        space from
    reference            memslice.Allocator, default mode            snapshot totals
    reference-malloc     memslice.Allocator, G_SLICE=always-malloc    snapshot totals
    reference-nocolour   memslice.Allocator, COLOR_INCREMENT 0 (W7)   snapshot totals
    reference-eager      memslice.Allocator, WORKING_SET_MSECS 0 (W4) snapshot totals
    glib                 libglib-2.0 g_slice_* through ctypes         mallinfo2 delta
    bare-ctypes          two ctypes calls that allocate nothing       (time floor only)
    python-pair          two Python method calls that do nothing      (time floor only)
    malloc               libc malloc/free through ctypes              mallinfo2 delta
    naive                one lock, one free list per size, mmap pages own accounting
    gmemchunk-2.8        model of GLib 2.8's GMemChunk (one lock)     model accounting

Invariants: ``Space.mapped`` counts bytes taken from the OS (or from malloc,
for peers that sit on it) for this peer only; ``Space.source`` says how it was
obtained, because ``mallinfo2`` deltas also see the interpreter's own heap.
``allocates`` is False only for the two time floors, which workloads that
need real memory skip.  Clauses: API-001, API-008, API-013, INTRO-002.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "EXTRA_PEERS",
    "PEER_NAMES",
    "Peer",
    "PythonPairPeer",
    "Space",
    "make_peer",
    "walk_chain",
]


@dataclass(frozen=True, slots=True)
class Space:
    """Where a peer's bytes are at one instant.

    ``mapped`` is what the peer holds from the system; ``handed_out`` the
    chunk (rounded) bytes of live blocks where the peer knows it; the
    breakdown names every other part (free chunks, magazines, depot, slab
    overhead, headers, ...).  ``trips`` counts depot trips (reference only).
    """

    mapped: int
    source: str
    handed_out: int | None = None
    breakdown: Mapping[str, int] = field(default_factory=dict)
    trips: int | None = None


class Peer(Protocol):
    """The common small interface every workload drives."""

    name: str
    allocates: bool
    threadsafe: bool

    def alloc(self, size: int) -> int:
        """A block of at least ``size`` bytes; 0 for size 0."""
        ...

    def free(self, size: int, address: int) -> None:
        """Release a block allocated with ``size``."""
        ...

    def free_chain(self, size: int, head: int, next_offset: int) -> None:
        """Release a linked list of ``size``-byte blocks (API-008)."""
        ...

    def space(self) -> Space:
        """Current space figures."""
        ...

    def expire(self) -> None:
        """Let time-based caches age out (the working set), if the peer has any."""
        ...

    def close(self) -> None:
        """Give everything back; the peer is unusable afterwards."""
        ...


class PythonPairPeer:
    """The floor of any pure-Python allocator: two method calls that do nothing."""

    name = "python-pair"
    allocates = False
    threadsafe = True

    def alloc(self, size: int) -> int:
        return 0x1000

    def free(self, size: int, address: int) -> None:
        return None

    def free_chain(self, size: int, head: int, next_offset: int) -> None:
        return None

    def space(self) -> Space:
        return Space(mapped=0, source="none: this peer allocates nothing")

    def expire(self) -> None:
        return None

    def close(self) -> None:
        return None


def walk_chain(free: Callable[[int, int], None], size: int, head: int, next_offset: int) -> None:
    """Free a chain one node at a time, reading each link before the node goes."""
    while head:
        nxt = ctypes.c_void_p.from_address(head + next_offset).value or 0
        free(size, head)
        head = nxt


def make_peer(name: str) -> Peer:
    """A fresh peer by name (see :data:`PEER_NAMES`)."""
    # Imported lazily: the native peers load libglib, the model ones do not.
    if name == "reference":
        from .reference import ReferencePeer

        return ReferencePeer(always_malloc=False)
    if name == "reference-malloc":
        from .reference import ReferencePeer

        return ReferencePeer(always_malloc=True)
    if name == "reference-eager":
        from .reference import ReferencePeer

        return ReferencePeer(working_set_msecs=0)
    if name == "reference-nocolour":
        from .reference import ReferencePeer

        return ReferencePeer(colour=False)
    if name == "glib":
        from .native import GLibPeer

        return GLibPeer()
    if name == "bare-ctypes":
        from .native import BareCtypesPeer

        return BareCtypesPeer()
    if name == "python-pair":
        return PythonPairPeer()
    if name == "malloc":
        from .native import MallocPeer

        return MallocPeer()
    if name == "naive":
        from .naive import NaivePeer

        return NaivePeer()
    if name == "gmemchunk-2.8":
        from .gmemchunk import GMemChunkPeer

        return GMemChunkPeer()
    raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEER_NAMES + EXTRA_PEERS)}")


PEER_NAMES: tuple[str, ...] = (
    "reference",
    "reference-malloc",
    "glib",
    "bare-ctypes",
    "python-pair",
    "malloc",
    "naive",
    "gmemchunk-2.8",
)
EXTRA_PEERS: tuple[str, ...] = ("reference-nocolour", "reference-eager")
"""Variants of the reference that only the workloads naming them (``extra_peers``) run."""
