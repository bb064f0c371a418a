"""A faithful model of GLib 2.8's GMemChunk, and a peer built from it.

Rules and theory of operation
-----------------------------
GLib 2.10 replaced GMemChunk with slices.  This model rebuilds the 2.8 design
from its documented behaviour (the project's GMemChunk facts, §1.3 to §1.8),
with real memory: every *area* is a libc ``malloc`` of a power of two ``P``
bytes, and atoms are real addresses inside it::

    area (malloc P bytes)                                 chunk
    ┌ header H=52 (48 used, 4 slack) ┬ atom ┬ atom ┬ … ┬ tail ┐   mem_areas: head first
    └────────────────────────────────┴─────────── area_size = P - H ───┘   mem_area: bump target
                          index ─▶ bump pointer                      free_mem_area: ≤ 1 spare
    free_atoms: LIFO list of freed atoms (ALLOC_AND_FREE only)       tree: areas by address

* ``new``: area rounded to whole *unrounded* atoms, atom rounded to 8
  (``G_MEM_ALIGN``), ``P = compute_size(R1 + H, A + H)``: the nearer power of
  two, ties and too-small lower powers rounding up.
* ``alloc``: drain the free list first; an atom whose area is *marked* (all
  its atoms freed) is discarded, not reused, and when an area's last atom is
  drained the area is released (or kept as the one spare).  Only then bump;
  a new current area comes from the spare or from malloc.
* ``free``: push on the free list, look the area up in the tree, and mark the
  area when its last atom comes back.  Freeing never releases memory.
* ``clean`` drains marked atoms eagerly; ``reset`` frees every area.

Deliberate deviations, each flagged in the code: ``reset`` clears the spare
(2.8 left it dangling: a use-after-free); a NULL chunk cannot be passed at
all.  The tree is a sorted list searched with ``bisect``; ``comparisons``
counts the ⌈log2(areas + 1)⌉ comparisons a balanced tree would make, so the
P1 cost of the design is visible even though bisect itself is fast.

The peer (``GMemChunkPeer``) does what GLib 2.8's users did (§1.9): one
ALLOC_AND_FREE chunk per distinct size (size 0 becomes 1, area 4096, as
slice-test's "O" mode), shared by all threads behind one lock ("mode L"),
because a 2.8 chunk has no lock of its own.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Final

from memslice.pages import MallocSource, SystemMalloc

from . import Space, walk_chain

__all__ = [
    "G_ALLOC_AND_FREE",
    "G_ALLOC_ONLY",
    "G_MEM_ALIGN",
    "HEADER",
    "GMemChunkPeer",
    "MemArea",
    "MemChunk",
    "MemChunkError",
    "compute_size",
]

G_ALLOC_ONLY: Final = 1
G_ALLOC_AND_FREE: Final = 2
G_MEM_ALIGN: Final = 8  # max(sizeof(void*), sizeof(long)) on LP64
MEM_OFFSET: Final = 48  # offsetof(GMemArea, mem) on LP64
HEADER: Final = 52  # sizeof(GMemArea) - MEM_AREA_SIZE: 48 used + 4 slack
CHUNK_STRUCT: Final = 88  # sizeof(GMemChunk) on LP64
GTREE_STRUCT: Final = 40  # the per-chunk GTree
GTREE_NODE: Final = 40  # one per area, from GTree's never-freed node chunk


class MemChunkError(ValueError):
    """What 2.8 reported as a CRITICAL (and then returned NULL or did nothing)."""


def compute_size(size: int, minimum: int) -> int:
    """2.8's ``compute_size``: the nearer power of two, at least 16 and at least ``minimum``."""
    power = 16
    while power < size:
        power <<= 1
    lower = power >> 1
    if size - lower < power - size and lower >= minimum:
        return lower
    return power


def glibc_footprint(request: int) -> int:
    """Bytes a glibc malloc of ``request`` bytes occupies: header word, 16-byte granules."""
    return max(32, (request + 8 + 15) // 16 * 16)


class MemArea:
    """One malloc'd area: ``GMemArea``'s fields; ``mem`` is the payload's address."""

    __slots__ = ("allocated", "base", "free", "index", "mark", "mem")

    def __init__(self, base: int) -> None:
        self.base = base
        self.mem = base + MEM_OFFSET
        self.index = 0
        self.free = 0
        self.allocated = 0
        self.mark = 0


@dataclass(frozen=True, slots=True)
class ChunkStats:
    """Counters a comparison wants (the facts' §4 list)."""

    num_mem_areas: int
    num_marked_areas: int
    free_atoms: int
    area_mallocs: int
    area_frees: int
    comparisons: int
    drained: int


class MemChunk:
    """One 2.8 ``GMemChunk``.  Not thread-safe, exactly like the original."""

    def __init__(
        self,
        name: str,
        atom_size: int,
        area_size: int,
        type_: int = G_ALLOC_AND_FREE,
        *,
        malloc: MallocSource | None = None,
    ) -> None:
        if atom_size <= 0:
            raise MemChunkError("assertion 'atom_size > 0' failed")
        if area_size < atom_size:
            raise MemChunkError("assertion 'area_size >= atom_size' failed")
        rounded_area = -(-area_size // atom_size) * atom_size  # uses the unrounded atom
        self.name = name
        self.type = type_
        self.and_free = type_ == G_ALLOC_AND_FREE  # any other value acts as ALLOC_ONLY
        self.atom_size = -(-atom_size // G_MEM_ALIGN) * G_MEM_ALIGN
        self.block_size = compute_size(rounded_area + HEADER, atom_size + HEADER)
        self.area_size = self.block_size - HEADER
        self._malloc = malloc or SystemMalloc()
        self.num_mem_areas = 0
        self.num_marked_areas = 0
        self.mem_area: MemArea | None = None
        self.free_mem_area: MemArea | None = None
        # Area list, head first = most recently added.  A dict keeps insertion
        # order and unlinks in O(1); iterate reversed() for head-first order.
        self.mem_areas: dict[int, MemArea] = {}
        self.free_atoms: list[int] = []  # LIFO: the head is the last element
        self._tree_keys: list[int] = []  # area payload addresses, sorted
        self._tree: dict[int, MemArea] = {}
        self.area_mallocs = 0
        self.area_frees = 0
        self.comparisons = 0
        self.drained = 0
        self.destroyed = False

    # -- the tree (ALLOC_AND_FREE only) ------------------------------------
    def _search(self, address: int) -> MemArea:
        keys = self._tree_keys
        self.comparisons += len(keys).bit_length()  # a balanced tree's depth
        i = bisect.bisect_right(keys, address) - 1
        if i >= 0:
            area = self._tree[keys[i]]
            if area.mem <= address < area.mem + area.index:
                return area
        # 2.8 would dereference NULL here: the pointer is in no area.
        raise MemChunkError(f"{address:#x} is not an atom of chunk {self.name!r}")

    def _tree_insert(self, area: MemArea) -> None:
        bisect.insort(self._tree_keys, area.mem)
        self._tree[area.mem] = area

    def _tree_remove(self, area: MemArea) -> None:
        del self._tree_keys[bisect.bisect_left(self._tree_keys, area.mem)]
        del self._tree[area.mem]

    def _release(self, area: MemArea) -> None:
        del self.mem_areas[area.base]
        self.num_mem_areas -= 1
        if self.and_free:
            self._tree_remove(area)
        self._malloc.free(area.base)
        self.area_frees += 1

    # -- the API -------------------------------------------------------------
    def alloc(self) -> int:
        """``g_mem_chunk_alloc``: drain the free list, then bump (§1.5)."""
        atom = self.atom_size
        free_atoms = self.free_atoms
        while free_atoms:
            mem = free_atoms.pop()
            area = self._search(mem)
            if not area.mark:
                area.allocated += 1
                return mem
            # The area is marked: throw the atom away instead of reusing it.
            self.drained += 1
            area.free += atom
            if area.free == self.area_size:
                if area is self.mem_area:
                    self.mem_area = None
                if self.free_mem_area is not None:
                    self._release(area)
                else:
                    self.free_mem_area = area  # stays listed and in the tree
                self.num_marked_areas -= 1
        area_or_none = self.mem_area
        if area_or_none is None or area_or_none.index + atom > self.area_size:
            spare = self.free_mem_area
            if spare is not None:
                area = spare
                self.free_mem_area = None
            else:
                area = MemArea(self._malloc.malloc(HEADER + self.area_size))
                self.area_mallocs += 1
                self.num_mem_areas += 1
                self.mem_areas[area.base] = area
                if self.and_free:
                    self._tree_insert(area)
            area.index = 0
            area.free = self.area_size
            area.allocated = 0
            area.mark = 0
            self.mem_area = area
        else:
            area = area_or_none
        mem = area.mem + area.index
        area.index += atom
        area.free -= atom
        area.allocated += 1
        return mem

    def free(self, mem: int) -> None:
        """``g_mem_chunk_free``: mark, never release (§1.6); a no-op for ALLOC_ONLY."""
        if not mem:
            raise MemChunkError("assertion 'mem != NULL' failed")
        if not self.and_free:
            return
        self.free_atoms.append(mem)
        area = self._search(mem)
        area.allocated -= 1
        if area.allocated == 0:
            area.mark = 1
            self.num_marked_areas += 1

    def clean(self) -> None:
        """``g_mem_chunk_clean``: drain marked atoms now; release emptied areas (§1.8)."""
        if not self.and_free:
            return
        kept_head_first: list[int] = []
        for mem in reversed(self.free_atoms):  # walk from the head
            area = self._search(mem)
            if not area.mark:
                kept_head_first.append(mem)
                continue
            self.drained += 1
            area.free += self.atom_size
            if area.free == self.area_size and area is not self.free_mem_area:
                self.num_marked_areas -= 1
                if area is self.mem_area:
                    self.mem_area = None
                self._release(area)
        kept_head_first.reverse()
        self.free_atoms = kept_head_first

    def reset(self) -> None:
        """``g_mem_chunk_reset``: free every area; every atom becomes invalid (§1.8)."""
        for area in list(self.mem_areas.values()):
            self._malloc.free(area.base)
            self.area_frees += 1
        self.mem_areas.clear()
        self.num_mem_areas = 0
        self.mem_area = None
        self.free_atoms = []
        self._tree_keys = []
        self._tree = {}
        # Deviation: 2.8 left free_mem_area pointing at the freed spare (use-after-free).
        self.free_mem_area = None

    def destroy(self) -> None:
        """``g_mem_chunk_destroy``: free every area and the chunk."""
        self.reset()
        self.destroyed = True

    def print(self) -> str:
        """``g_mem_chunk_print``'s INFO line: bumped-and-undrained bytes, area count."""
        used = sum(self.area_size - area.free for area in self.mem_areas.values())
        return f"{self.name}: {used} bytes using {self.num_mem_areas} mem areas"

    def stats(self) -> ChunkStats:
        return ChunkStats(
            self.num_mem_areas,
            self.num_marked_areas,
            len(self.free_atoms),
            self.area_mallocs,
            self.area_frees,
            self.comparisons,
            self.drained,
        )

    def areas_head_first(self) -> list[MemArea]:
        return list(reversed(self.mem_areas.values()))


class GMemChunkPeer:
    """GLib 2.8 style: one ALLOC_AND_FREE chunk per size, area 4096, one shared lock."""

    name = "gmemchunk-2.8"
    allocates = True
    threadsafe = True
    AREA: Final = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: dict[int, MemChunk] = {}
        self._malloc = SystemMalloc()
        self._live = 0  # atom bytes handed out

    def _chunk(self, size: int) -> MemChunk:
        chunk = self._chunks.get(size)
        if chunk is None:
            chunk = MemChunk(
                f"chunk {size}",
                size,
                max(self.AREA, size),
                G_ALLOC_AND_FREE,
                malloc=self._malloc,
            )
            self._chunks[size] = chunk
        return chunk

    def alloc(self, size: int) -> int:
        size = size or 1  # slice-test's "O" mode: size 0 becomes 1
        with self._lock:
            chunk = self._chunk(size)
            self._live += chunk.atom_size
            return chunk.alloc()

    def free(self, size: int, address: int) -> None:
        size = size or 1
        with self._lock:
            chunk = self._chunks[size]
            self._live -= chunk.atom_size
            chunk.free(address)

    def free_chain(self, size: int, head: int, next_offset: int) -> None:
        walk_chain(self.free, size, head, next_offset)

    def space(self) -> Space:
        with self._lock:
            chunks = list(self._chunks.values())
            areas = sum(c.num_mem_areas for c in chunks)
            mapped = sum(c.num_mem_areas * glibc_footprint(c.block_size) for c in chunks)
            mapped += len(chunks) * (CHUNK_STRUCT + GTREE_STRUCT)
            mapped += sum(c.area_mallocs for c in chunks) * GTREE_NODE  # tree nodes never freed
            free_atoms = sum(len(c.free_atoms) * c.atom_size for c in chunks)
            unbumped = sum(
                c.area_size - a.index
                for c in chunks
                for a in c.mem_areas.values()
                if a is not c.free_mem_area
            )
            spares = sum(c.area_size for c in chunks if c.free_mem_area is not None)
            drained = sum(
                a.free - (c.area_size - a.index)
                for c in chunks
                for a in c.mem_areas.values()
                if a is not c.free_mem_area
            )
            comparisons = sum(c.comparisons for c in chunks)
            return Space(
                mapped=mapped,
                source="model accounting (areas at glibc's footprint, chunk and tree structs)",
                handed_out=self._live,
                breakdown={
                    "free_atoms": free_atoms,
                    "drained_atoms": drained,
                    "unbumped": unbumped,
                    "spare_areas": spares,
                    "headers_and_structs": mapped
                    - sum(c.num_mem_areas * c.area_size for c in chunks),
                    "areas": areas,
                    "tree_comparisons": comparisons,
                },
            )

    def expire(self) -> None:
        return None  # nothing in 2.8 is time-driven (W2 of the facts' §1.12)

    def clean_all(self) -> None:
        """``g_blow_chunks``: clean every chunk."""
        with self._lock:
            for chunk in self._chunks.values():
                chunk.clean()

    def close(self) -> None:
        with self._lock:
            for chunk in self._chunks.values():
                chunk.destroy()
            self._chunks.clear()
