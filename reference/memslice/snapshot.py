"""Read-only snapshots of an allocator's state, for teaching, pictures and tests.

Rules and theory of operation
-----------------------------
A snapshot is a tree of frozen records copied out of a live allocator while it
holds every lock, so it is internally consistent (INTRO-001)::

    AllocatorSnapshot
     ├── settings, colour accumulator, stamp counter, last stamp, mutex counter
     ├── classes[ix] : SizeClassSnapshot   (one per size class)
     │     ├── slabs  : SlabSnapshot...     ring order, head first
     │     └── depot  : MagazineSnapshot... newest (head) first, with stamps
     ├── threads    : ThreadSnapshot...     each live thread's two magazines
     └── totals     : Totals                bytes by where they are

Every address is a real process address; ``free_chunks`` of a slab lists its
free list in pop order; a magazine lists its chunks in pop order (head first).
Nothing in this module touches allocator internals: the allocator builds the
records (``Allocator.snapshot()``), this module only defines them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings

__all__ = [
    "AllocatorSnapshot",
    "MagazineSnapshot",
    "SizeClassSnapshot",
    "SlabSnapshot",
    "ThreadSnapshot",
    "Totals",
]


@dataclass(frozen=True, slots=True)
class SlabSnapshot:
    """One slab page: where its chunks are, and which are free (SLAB-003)."""

    page: int
    page_size: int
    chunk_size: int
    colour: int
    n_chunks: int
    n_allocated: int
    free_chunks: tuple[int, ...]
    slab_info: int

    @property
    def n_free(self) -> int:
        """Chunks on this slab's free list."""
        return len(self.free_chunks)

    @property
    def tail_bytes(self) -> int:
        """Unused bytes after the last chunk, before the SlabInfo record."""
        return self.slab_info - (self.page + self.colour + self.n_chunks * self.chunk_size)


@dataclass(frozen=True, slots=True)
class MagazineSnapshot:
    """A magazine: its chunks in pop order, and its depot stamp if it is in the depot."""

    chunks: tuple[int, ...]
    stamp: int | None = None

    @property
    def count(self) -> int:
        """Chunks held."""
        return len(self.chunks)


@dataclass(frozen=True, slots=True)
class SizeClassSnapshot:
    """One size class: geometry, contention, the slab ring and the depot ring."""

    index: int
    chunk_size: int
    page_size: int
    chunks_per_slab: int
    padding: int
    threshold: int
    contention_counter: int
    slabs: tuple[SlabSnapshot, ...]
    depot: tuple[MagazineSnapshot, ...]


@dataclass(frozen=True, slots=True)
class ThreadSnapshot:
    """A live thread's magazines: ``{class index: (loaded, freeing)}``, non-empty only.

    ``loaded`` is GLib's magazine1 (allocations pop from it); ``freeing`` is
    magazine2 (frees push onto it) (MAG-001).
    """

    thread_id: int
    name: str
    magazines: dict[int, tuple[MagazineSnapshot, MagazineSnapshot]]


@dataclass(frozen=True, slots=True)
class Totals:
    """Where the bytes are (INTRO-002).

    ``mapped`` is resident-capable memory taken from the OS for slab pages;
    ``in_slabs`` the slab pages themselves; ``handed_out`` the chunk bytes of
    slab chunks the program holds; ``in_magazines``/``in_depot`` chunk bytes
    cached per thread and in the depot; ``free_in_slabs`` chunk bytes on slab
    free lists; ``large_live`` bytes of live system-malloc blocks (requested
    sizes); ``slab_overhead`` colour, tail and SlabInfo bytes of all slabs.
    """

    mapped: int
    in_slabs: int
    handed_out: int
    in_magazines: int
    in_depot: int
    free_in_slabs: int
    slab_overhead: int
    large_live: int
    large_blocks: int


@dataclass(frozen=True, slots=True)
class AllocatorSnapshot:
    """The whole allocator at one instant."""

    profile: str
    settings: Settings
    initialised: bool
    color_accu: int
    stamp_counter: int
    last_stamp: int
    mutex_counter: int
    classes: tuple[SizeClassSnapshot, ...]
    threads: tuple[ThreadSnapshot, ...]
    totals: Totals
