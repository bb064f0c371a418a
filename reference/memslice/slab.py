"""The slab layer: per-class rings of slab pages, each with an in-memory free list.

Rules and theory of operation
-----------------------------
A *slab* is one page from the page source, cut into equal chunks of one size
class, with its bookkeeping record (``SlabInfo``) stored inside the page
itself, ``SLAB_INFO_SIZE`` (48) bytes before the end (SLAB-003)::

    page (e.g. 1024 B, chunk 112, colour 32)                    page + 1024
    ├─32─┼──c0──┼──c1──┼ ... ┼──c7──┼─ tail 48 ─┼── SlabInfo 32 ──┼─ 16 ─┤
          ▲ free list: c0 → c1 → ... → c7 → NULL (ascending, linked through
            each free chunk's first word)         {chunks, n_allocated, next, prev}

Each class keeps its slabs on a circular doubly linked *ring*; the class's
``head`` is where allocation looks first (SLAB-004).  Events and states::

    slab states:  partial ──alloc of last free chunk──▶ full (rotated behind head)
                  full ──free──▶ partial (moved to the head)
                  partial ──free of last allocated chunk──▶ released to the page source

* **Allocate** (SLAB-005): if the head is missing or has no free chunk, add a
  new slab at the head; pop the head's free list; if that empties it, rotate
  the head to the next slab.
* **Free** (SLAB-006): find the owning slab by masking the address with the
  class's page size; push the chunk on its free list; a slab that was full
  moves to the head; a slab with nothing allocated is unlinked and released
  at once -- the slab layer never caches empty slabs (SLAB-007).

Ring invariant (SLAB-008): slabs with free chunks form one contiguous run
starting at the head, and full slabs follow; so checking the head alone is
enough and both operations are O(1).

**Chunk map** (PY-004).  Every address handed to a free is checked before
any memory is touched: one byte per ``p2alignment`` (16-byte) granule of
the arena's carved area holds ``class index + 1`` iff a chunk of that class
starts at the granule's first byte and its slab is live, else 0.  So "is this the start of a chunk
of class *ix* in a live slab?" is one bytearray lookup (the allocator's fast
path does it inline), and it costs one byte per 16 bytes of slab memory
(2 bytes per 32-byte chunk).  ``add_slab`` tags a new slab's chunk starts;
releasing a slab zeroes its span.  The map grows with the carved area.

The free-list links live in chunk memory (``ChunkLink.next``, first word); the
``SlabInfo`` fields are mirrored into the page at ``page + page_size - 48`` in
GLib's order, so a hex dump of a slab reads like GLib's (SLAB-003).  The
:class:`Slab` object is the reference's handle on that memory.  All calls must
hold the allocator's slab lock.
"""

from __future__ import annotations

from .colour import ColourAccumulator
from .errors import ForeignPointerError, SliceAssertionError
from .pages import Arena, PageSource
from .rings import walk
from .sizeclass import Geometry

__all__ = ["Slab", "SlabLayer"]


class Slab:
    """One slab page and its SlabInfo record."""

    __slots__ = (
        "chunk_size",
        "colour",
        "free_head",
        "info",
        "n_allocated",
        "n_chunks",
        "next",
        "page",
        "page_size",
        "prev",
    )

    def __init__(self, page: int, page_size: int, chunk_size: int, colour: int, n_chunks: int):
        self.page = page
        self.page_size = page_size
        self.chunk_size = chunk_size
        self.colour = colour
        self.n_chunks = n_chunks
        self.n_allocated = 0
        self.free_head = 0  # address of the first free chunk, 0 when full
        self.info = 0  # address of the SlabInfo record inside the page
        self.next: Slab = self
        self.prev: Slab = self

    def chunk_addresses(self) -> range:
        """Addresses of every chunk of this slab, in address order."""
        first = self.page + self.colour
        return range(first, first + self.n_chunks * self.chunk_size, self.chunk_size)


class SlabLayer:
    """All slab rings of one allocator (SLAB-001..SLAB-012)."""

    def __init__(
        self, geometry: Geometry, arena: Arena, pages: PageSource, colour: ColourAccumulator
    ) -> None:
        self.geometry = geometry
        self.arena = arena
        self.pages = pages
        self.colour = colour
        self.heads: list[Slab | None] = [None] * geometry.n_classes
        self.by_page: dict[int, Slab] = {}
        self._word = arena.words  # link words: index (address - base) // pointer size
        self._base = arena.base
        self._shift = geometry.tunables.pointer_size.bit_length() - 1
        if geometry.n_classes > 254:
            raise SliceAssertionError("the chunk map holds class index + 1 in one byte")
        # Chunk map (PY-004): one byte per granule from the first aligned address.
        self.granule_shift = geometry.p2alignment.bit_length() - 1
        self.granule_mask = geometry.p2alignment - 1
        self.map_origin = arena.base + arena.aligned_offset
        self.chunk_map = bytearray()
        # Per class: the tag bytes of one slab's chunk starts, written in one slice store.
        self._tags = [bytes([c.index + 1]) * c.chunks_per_slab for c in geometry.classes]

    # -- memory helpers -------------------------------------------------------
    def read_word(self, address: int) -> int:
        """The pointer-size word at ``address`` (inside the arena)."""
        return int(self._word[(address - self._base) >> self._shift])

    def write_word(self, address: int, value: int) -> None:
        """Store a pointer-size word at ``address`` (inside the arena)."""
        self._word[(address - self._base) >> self._shift] = value

    def _mirror_info(self, slab: Slab) -> None:
        """Write the SlabInfo fields into the page, in GLib's field order (SLAB-003)."""
        pointer = self.geometry.tunables.pointer_size
        info = slab.info
        self.write_word(info, slab.free_head)
        self.write_word(info + pointer, slab.n_allocated)  # guint plus padding word
        self.write_word(info + 2 * pointer, slab.next.info)
        self.write_word(info + 3 * pointer, slab.prev.info)

    # -- ring -----------------------------------------------------------------
    def _push_head(self, index: int, slab: Slab) -> None:
        head = self.heads[index]
        if head is None:
            slab.next = slab.prev = slab
        else:
            slab.next = head
            slab.prev = head.prev
            head.prev.next = slab
            head.prev = slab
            self._mirror_info(slab.prev)
            self._mirror_info(head)
        self.heads[index] = slab
        self._mirror_info(slab)

    def _unlink(self, index: int, slab: Slab) -> None:
        if slab.next is slab:
            self.heads[index] = None
        else:
            if self.heads[index] is slab:
                self.heads[index] = slab.next
            slab.prev.next = slab.next
            slab.next.prev = slab.prev
            self._mirror_info(slab.prev)
            self._mirror_info(slab.next)
        slab.next = slab.prev = slab

    # -- operations -----------------------------------------------------------
    def add_slab(self, index: int) -> Slab:
        """Take a page, colour it, thread its free list, push it at the head (SLAB-009)."""
        size_class = self.geometry.classes[index]
        page_size = size_class.page_size
        page = self.pages.allocate(page_size)  # may raise SliceMemoryError: nothing changed yet
        colour = self.colour.next_colour(size_class.padding)
        slab = Slab(page, page_size, size_class.chunk_size, colour, size_class.chunks_per_slab)
        slab.info = page + page_size - self.geometry.slab_info_size
        chunks = slab.chunk_addresses()
        for this, following in zip(chunks, [*chunks[1:], 0], strict=True):
            self.write_word(this, following)
        slab.free_head = chunks[0]
        self._tag_chunks(slab, index)
        self.by_page[page] = slab
        self._push_head(index, slab)
        return slab

    def alloc_chunk(self, index: int) -> int:
        """Pop one chunk of class ``index`` (SLAB-005)."""
        slab = self.heads[index]
        if slab is None or not slab.free_head:
            slab = self.add_slab(index)
        chunk = slab.free_head
        slab.free_head = self.read_word(chunk)
        slab.n_allocated += 1
        if not slab.free_head:
            self.heads[index] = slab.next  # rotate the full slab behind the head
        self._mirror_info(slab)
        return chunk

    def _tag_chunks(self, slab: Slab, index: int) -> None:
        """Mark a new slab's chunk starts in the chunk map (PY-004)."""
        shift = self.granule_shift
        end = (slab.page + slab.page_size - self.map_origin) >> shift
        if end > len(self.chunk_map):  # the carved area grew: grow the map with it
            self.chunk_map.extend(bytes(end - len(self.chunk_map) + (1 << 12)))
        first = (slab.page + slab.colour - self.map_origin) >> shift
        step = slab.chunk_size >> shift
        self.chunk_map[first : first + step * slab.n_chunks : step] = self._tags[index]

    def _untag_chunks(self, slab: Slab) -> None:
        """Forget a released slab's chunks in the chunk map (PY-004)."""
        start = (slab.page - self.map_origin) >> self.granule_shift
        self.chunk_map[start : start + (slab.page_size >> self.granule_shift)] = bytes(
            slab.page_size >> self.granule_shift
        )

    def is_chunk(self, index: int, address: int) -> bool:
        """Whether ``address`` starts a chunk of class ``index`` in a live slab (PY-004)."""
        offset = address - self.map_origin
        granule = offset >> self.granule_shift
        return (
            0 <= granule < len(self.chunk_map)
            and self.chunk_map[granule] == index + 1
            and not offset & self.granule_mask  # a granule's first byte only
        )

    def require_chunk(self, index: int, address: int) -> None:
        """Raise :class:`ForeignPointerError` unless :meth:`is_chunk` (PY-004)."""
        if not self.is_chunk(index, address):
            chunk_size = self.geometry.classes[index].chunk_size
            raise ForeignPointerError(
                f"{address:#x} is not the start of a {chunk_size}-byte chunk in a live slab "
                "of this allocator (PY-004)"
            )

    def owner(self, index: int, chunk: int) -> Slab:
        """The slab a chunk of class ``index`` belongs to, found by address masking."""
        size_class = self.geometry.classes[index]
        slab = self.by_page.get(chunk & ~(size_class.page_size - 1))
        if slab is None or slab.chunk_size != size_class.chunk_size:
            raise ForeignPointerError(
                f"{chunk:#x} is not inside a slab of {size_class.chunk_size}-byte chunks (PY-004)"
            )
        return slab

    def free_chunk(self, index: int, chunk: int) -> None:
        """Return one chunk to its slab, releasing the slab if it empties (SLAB-006/007)."""
        slab = self.owner(index, chunk)
        if slab.n_allocated <= 0:
            raise SliceAssertionError("GSlice: assertion failed: sinfo->n_allocated > 0 (SLAB-012)")
        was_full = not slab.free_head
        self.write_word(chunk, slab.free_head)
        slab.free_head = chunk
        slab.n_allocated -= 1
        if was_full:  # SLAB-006: a slab that regains a free chunk moves to the head
            self._unlink(index, slab)
            self._push_head(index, slab)
        if slab.n_allocated == 0:  # SLAB-007: eager release
            self._unlink(index, slab)
            del self.by_page[slab.page]
            self._untag_chunks(slab)
            self.pages.release(slab.page)
        else:
            self._mirror_info(slab)

    def ring(self, index: int) -> list[Slab]:
        """The slabs of class ``index`` in ring order, head first."""
        return walk(self.heads[index], _next_slab, len(self.by_page), f"slab ring of class {index}")

    def free_list(self, slab: Slab) -> list[int]:
        """The chunks on a slab's free list, in pop order, read from memory."""
        chunks: list[int] = []
        chunk = slab.free_head
        while chunk:
            chunks.append(chunk)
            if len(chunks) > slab.n_chunks:
                raise SliceAssertionError(f"free list of slab {slab.page:#x} does not end")
            chunk = self.read_word(chunk)
        return chunks


def _next_slab(slab: Slab) -> Slab:
    return slab.next
