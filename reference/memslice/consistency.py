"""The consistency checker: every chunk is in exactly one place, and the books agree.

Rules and theory of operation
-----------------------------
A slab chunk is always in exactly one of four places (INTRO-003)::

    on its slab's free list ─▶ in a thread magazine ─▶ held by the program
            ▲                        │    ▲                    │
            └──── depot trim ◀── in the depot ◀────────────────┘ (via free)

The checker walks all of them and proves, for the allocator at rest:

1. Rings: every slab ring and depot ring closes, ``next``/``prev`` agree, and
   slabs with free chunks form one run starting at the head (SLAB-008).
2. Slabs: free list length + ``n_allocated`` = chunks per slab (read from the
   SlabInfo words in the page, SLAB-003); each free chunk is a chunk boundary
   of its slab; the rings hold as many slabs as the layer counts and as the
   chunk map records; the page is live in the page source.
3. Caches: every chunk in a magazine or the depot is a chunk boundary of a
   live slab of the magazine's class, appears once, is not on a free list, and
   its in-memory ``ChunkLink`` matches its place in the magazine (MAG-002,
   DEPOT-002); depot magazines hold at least ``MIN_MAGAZINE_SIZE`` chunks.
4. Accounting: for each slab, cached chunks <= ``n_allocated``; and when the
   caller passes the blocks it holds, ``n_allocated`` = cached + held exactly,
   held slab blocks are allocated chunks of the right class, held large blocks
   are exactly the live system-malloc blocks, and (debug-blocks) the checker's
   table lists exactly the held blocks.

It reports every problem it finds as a sentence; the allocator raises them as
one :class:`~memslice.errors.ConsistencyError`.  Other threads must be quiet
while it runs: their magazines are read without locks, as GLib's are.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .config import Route
from .depot import Depot
from .errors import SliceAssertionError
from .large import LargeBlocks
from .memcheck import MemChecker
from .pages import Arena, PageSource
from .sizeclass import Geometry
from .slab import Slab, SlabLayer
from .tunables import MIN_MAGAZINE_SIZE

__all__ = ["Layers", "verify"]


@dataclass(frozen=True, slots=True)
class Layers:
    """The parts of an allocator the checker walks (the allocator builds this)."""

    geometry: Geometry
    arena: Arena
    page_source: PageSource
    slabs: SlabLayer
    slab_lock: threading.Lock
    depot: Depot
    thread_magazines: Callable[[], Iterable[tuple[int, list[int]]]]
    large: LargeBlocks
    memcheck: MemChecker | None
    route: Callable[[int], Route]


def verify(allocator: Layers, live: Iterable[tuple[int, int]] | None) -> list[str]:
    """Every inconsistency found in the allocator's layers, as sentences (empty when sound)."""
    problems: list[str] = []
    slabs_layer = allocator.slabs
    depot = allocator.depot
    geometry = allocator.geometry
    place: dict[int, str] = {}
    cached: Counter[int] = Counter()  # slab page -> chunks of it in magazines or the depot

    def claim(chunk: int, where: str) -> None:
        if chunk in place:
            problems.append(f"chunk {chunk:#x} is both {place[chunk]} and {where}")
        else:
            place[chunk] = where

    with depot.lock.lock, allocator.slab_lock:
        ring_slabs: dict[int, Slab] = {}
        for size_class in geometry.classes:
            index = size_class.index
            try:
                ring = slabs_layer.ring(index)
            except SliceAssertionError as error:
                problems.append(str(error))
                continue
            seen_full = False
            for position, slab in enumerate(ring):
                ring_slabs[slab.page] = slab
                following = ring[(position + 1) % len(ring)]
                if following.prev_info != slab.info or slab.next_info != following.info:
                    problems.append(f"slab {slab.page:#x}: next.prev is not itself")
                if slab.free_head and seen_full:
                    problems.append(f"class {index}: a slab with free chunks follows a full one")
                seen_full = seen_full or not slab.free_head
                _check_slab(allocator, slab, claim, problems)
            if len(ring) != slabs_layer.slab_counts[index]:
                problems.append(
                    f"class {index}: {len(ring)} slabs on the ring, "
                    f"{slabs_layer.slab_counts[index]} counted"
                )
            for magazine in _depot_ring(allocator, index, problems):
                if len(magazine) < MIN_MAGAZINE_SIZE:
                    problems.append(f"class {index}: depot magazine of {len(magazine)} chunks")
                _check_chain(
                    allocator,
                    index,
                    magazine,
                    f"in the depot of class {index}",
                    claim,
                    problems,
                    cached,
                    metadata=True,
                )
        if slabs_layer.tagged_granules() != sum(s.n_chunks for s in ring_slabs.values()):
            problems.append("the chunk map (page index) and the slab rings list different slabs")
        page_source = allocator.page_source
        is_live = getattr(page_source, "is_live_block", None)
        if is_live is not None:
            for page in ring_slabs:
                if not is_live(page):
                    problems.append(f"slab {page:#x} is not a live page of the page source")
        for index, magazine in allocator.thread_magazines():
            _check_chain(
                allocator,
                index,
                magazine,
                f"in a thread magazine of class {index}",
                claim,
                problems,
                cached,
                metadata=False,
            )

        for slab in ring_slabs.values():
            if cached[slab.page] > slab.n_allocated:
                problems.append(
                    f"slab {slab.page:#x}: {cached[slab.page]} chunks cached but only "
                    f"{slab.n_allocated} allocated"
                )
        if live is not None:
            _check_live(allocator, ring_slabs, list(live), place, cached, problems)
    return problems


def _check_slab(allocator: Layers, slab: Slab, claim: object, problems: list[str]) -> None:
    layer = allocator.slabs
    try:
        free = layer.free_list(slab)
    except SliceAssertionError as error:
        problems.append(str(error))
        return
    boundaries = set(slab.chunk_addresses())
    for chunk in free:
        if chunk not in boundaries:
            problems.append(f"slab {slab.page:#x}: free chunk {chunk:#x} is not a chunk boundary")
        claim(chunk, f"free in slab {slab.page:#x}")  # type: ignore[operator]
    if len(free) + slab.n_allocated != slab.n_chunks:
        problems.append(
            f"slab {slab.page:#x}: {len(free)} free + {slab.n_allocated} allocated "
            f"!= {slab.n_chunks} chunks"
        )
    if slab.n_allocated > slab.n_chunks:
        problems.append(f"slab {slab.page:#x}: SlabInfo says {slab.n_allocated} allocated")


def _depot_ring(allocator: Layers, index: int, problems: list[str]) -> list[list[int]]:
    try:
        ring = allocator.depot.ring(index)
    except SliceAssertionError as error:
        problems.append(str(error))
        return []
    for magazine in ring:
        if magazine.next.prev is not magazine:
            problems.append(f"class {index}: depot ring next.prev mismatch")
    return [magazine.chunks for magazine in ring]


def _check_chain(
    allocator: Layers,
    index: int,
    magazine: list[int],
    where: str,
    claim: object,
    problems: list[str],
    cached: Counter[int],
    *,
    metadata: bool,
) -> None:
    layer = allocator.slabs
    geometry = allocator.geometry
    pointer = geometry.tunables.pointer_size
    page_size = geometry.classes[index].page_size
    for position, chunk in enumerate(magazine):
        if not layer.is_chunk(index, chunk):
            if layer.is_chunk(index, chunk & ~(geometry.p2alignment - 1)):
                problems.append(f"chunk {chunk:#x} {where} is not a chunk boundary")
            else:
                problems.append(f"chunk {chunk:#x} {where} is not in a live slab of its class")
        else:
            cached[chunk & ~(page_size - 1)] += 1
        claim(chunk, where)  # type: ignore[operator]
        if not allocator.arena.contains(chunk, 2 * pointer):
            continue
        expected_next = magazine[position - 1] if position else 0
        if layer.read_word(chunk) != expected_next:
            problems.append(f"chunk {chunk:#x} {where}: ChunkLink.next is not the chunk below it")
        in_metadata = metadata and position >= len(magazine) - 4
        if not in_metadata and layer.read_word(chunk + pointer) != 0:
            problems.append(f"chunk {chunk:#x} {where}: ChunkLink.data is not NULL")


def _check_live(
    allocator: Layers,
    slabs: dict[int, Slab],
    live: list[tuple[int, int]],
    place: dict[int, str],
    cached: Counter[int],
    problems: list[str],
) -> None:
    geometry = allocator.geometry
    held: Counter[int] = Counter()
    large_held: dict[int, int] = {}
    addresses: Counter[int] = Counter(address for address, _ in live)
    for address, count in addresses.items():
        if count > 1 and address:
            problems.append(f"block {address:#x} is held twice")
    for address, size in live:
        if not address:
            continue
        if allocator.route(geometry.p2align(size)) is Route.SYSTEM_MALLOC:
            large_held[address] = size
            continue
        index = geometry.class_index(geometry.p2align(size))
        if not allocator.slabs.is_chunk(index, address):
            problems.append(f"held block {address:#x} ({size} B) is not a chunk of a live slab")
            continue
        if address in place:
            problems.append(f"held block {address:#x} is also {place[address]}")
        held[address & ~(geometry.classes[index].page_size - 1)] += 1
    for slab in slabs.values():
        if slab.n_allocated != cached[slab.page] + held[slab.page]:
            problems.append(
                f"slab {slab.page:#x}: {slab.n_allocated} allocated != {cached[slab.page]} cached "
                f"+ {held[slab.page]} held: chunks lost"
            )
    if set(large_held) != set(allocator.large.sizes):
        problems.append("the held system-malloc blocks differ from the live ones")
    if allocator.memcheck is not None:
        recorded = allocator.memcheck.blocks
        expected = {address: size for address, size in live if address}
        if recorded != expected:
            problems.append("the debug-blocks table differs from the held blocks")
