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

**Data layout: memory is the record.**  As in GLib, a slab's bookkeeping
lives only in its page: the free-list links in chunk memory (``ChunkLink.next``,
first word) and the four ``SlabInfo`` words at ``page + page_size - 48``, in
GLib's order (SLAB-003)::

    word 0  chunks       first free chunk, 0 when the slab is full
    word 1  n_allocated  chunks handed out (a guint; the padding half stays 0)
    word 2  next         SlabInfo address of the next slab on the ring
    word 3  prev         SlabInfo address of the previous slab

The layer keeps no Python object per slab: a class's ring is entered by the
head slab's page address (``heads``), a slab's page is found by masking a
chunk address with the class's page size, and its colour is where its first
chunk starts in the chunk map.  So allocating a chunk is a few word reads and
writes, a slab costs no Python memory, and a hex dump of a slab reads like
GLib's.  :class:`Slab` is a read-only *view* built on demand for the
introspection and the consistency checker.  All calls must hold the
allocator's slab lock.

**One chunk at a time, and in runs.**  :meth:`SlabLayer.alloc_chunk` and
:meth:`SlabLayer.free_chunk` state the rules for one chunk.  The depot moves
chunks a magazine at a time (a refill, DEPOT-005; a trim, DEPOT-008), so the
layer also has batched forms that leave memory exactly as the one-chunk rules
applied in turn (``tests/reference/test_slab.py`` runs both on twin arenas
and compares every word)::

    alloc_chain(ix, n)   pops n chunks and links them as the refill's chain;
                         one slab's run: SlabInfo written once, and the free
                         list's links are already the chain's links
                         a slab added on the way: its run is a range (no walk)
    free_chunks(ix, cs)  consecutive chunks of one slab: SlabInfo read and
                         written once per run; a full slab moves to the head
                         at its run's end, not at all if the run empties it
                         (then it is unlinked in place); releases at the same
                         points as one at a time
    add_slab             the n links of a fresh free list as one integer
                         (see SlabLayer._offsets_of_links)

These are the hot paths of allocating into fresh slabs and of a trim; each
carries a comment saying why it is equal to the rule.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable

from .colour import ColourAccumulator
from .errors import ForeignPointerError, SliceAssertionError
from .pages import Arena, PageSource
from .sizeclass import Geometry

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:
    from typing import Literal

__all__ = ["Slab", "SlabLayer"]


class Slab:
    """A read-only view of one slab: its page, geometry and SlabInfo words, as read."""

    __slots__ = (
        "chunk_size",
        "colour",
        "free_head",
        "index",
        "info",
        "n_allocated",
        "n_chunks",
        "next_info",
        "page",
        "page_size",
        "prev_info",
    )

    def __init__(self, layer: SlabLayer, index: int, page: int) -> None:
        size_class = layer.geometry.classes[index]
        self.index = index
        self.page = page
        self.page_size = size_class.page_size
        self.chunk_size = size_class.chunk_size
        self.n_chunks = size_class.chunks_per_slab
        self.colour = layer.colour_of(index, page)
        self.info = page + size_class.page_size - layer.geometry.slab_info_size
        word = layer.word_index(self.info)
        words = layer.words
        self.free_head = int(words[word])  # address of the first free chunk, 0 when full
        self.n_allocated = int(words[word + 1])
        self.next_info = int(words[word + 2])
        self.prev_info = int(words[word + 3])

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
        self.heads: list[int] = [0] * geometry.n_classes  # head slab's page, 0: no slab
        self.slab_counts: list[int] = [0] * geometry.n_classes
        if geometry.n_classes > 254:
            raise SliceAssertionError("the chunk map holds class index + 1 in one byte")
        # Chunk map (PY-004): one byte per granule from the first aligned address.
        self.granule_shift = geometry.p2alignment.bit_length() - 1
        self.granule_mask = geometry.p2alignment - 1
        self.map_origin = arena.base + arena.aligned_offset
        self.chunk_map = bytearray()
        # Words from the same origin: the word at address a is words[(a - origin) >> shift].
        self.words = arena.carved_words
        self._shift = geometry.tunables.pointer_size.bit_length() - 1
        # The arena's own item format ("L" or "Q" for 8-byte words, "I" for 4):
        # strided stores need the very same format on both sides.
        self._format: Literal["L", "Q", "I"] = (
            "L" if self.words.format == "L" else "Q" if self.words.itemsize == 8 else "I"
        )
        # Per class: SlabInfo's offset in the page and the tags of one slab's chunk starts.
        self._info_offset = [c.page_size - geometry.slab_info_size for c in geometry.classes]
        # ... and from a page address to its SlabInfo's word index: (page + delta) >> shift.
        self._info_delta = [offset - self.map_origin for offset in self._info_offset]
        self._page_mask = [~(c.page_size - 1) for c in geometry.classes]
        self._tags = [bytes([c.index + 1]) * c.chunks_per_slab for c in geometry.classes]
        self._untagged = [bytes(c.page_size >> self.granule_shift) for c in geometry.classes]
        # For add_slab's free list (see _offsets_of_links): per class, ONES; per
        # (class, colour), OFFSETS.
        self._link_ones = [
            self._words_as_int([1] * (c.chunks_per_slab - 1) + [0]) for c in geometry.classes
        ]
        self._link_offsets: dict[tuple[int, int], int] = {}
        # What add_slab needs per class, unpacked in one step.
        self._slab_shapes = [
            (
                c.page_size,
                c.padding,
                c.chunks_per_slab,
                c.chunk_size >> self._shift,  # stride in words
                c.chunk_size >> self.granule_shift,  # stride in chunk-map granules
            )
            for c in geometry.classes
        ]
        # What alloc_chain needs per class, unpacked in one step.
        self._chain_shapes = [
            (
                c.page_size - geometry.slab_info_size - self.map_origin,  # page -> SlabInfo word
                c.page_size - geometry.slab_info_size,  # page -> SlabInfo address
                c.chunk_size,
                c.chunks_per_slab,
                c.chunk_size >> self._shift,  # stride in words
            )
            for c in geometry.classes
        ]
        # A fresh run's data words are zeroed from these (alloc_chain).
        self._zero_words = [
            array(self._format, bytes(c.chunks_per_slab * self.words.itemsize))
            for c in geometry.classes
        ]

    # -- memory helpers -------------------------------------------------------
    def word_index(self, address: int) -> int:
        """Index in :attr:`words` of the word at ``address`` (inside the carved area)."""
        return (address - self.map_origin) >> self._shift

    def read_word(self, address: int) -> int:
        """The pointer-size word at ``address`` (inside the arena)."""
        return int(self.words[(address - self.map_origin) >> self._shift])

    def write_word(self, address: int, value: int) -> None:
        """Store a pointer-size word at ``address`` (inside the arena)."""
        self.words[(address - self.map_origin) >> self._shift] = value

    def colour_of(self, index: int, page: int) -> int:
        """A live slab's colour: the offset of its first chunk, from the chunk map."""
        start = (page - self.map_origin) >> self.granule_shift
        span = self.geometry.classes[index].page_size >> self.granule_shift
        first = self.chunk_map.find(index + 1, start, start + span)
        if first < 0:
            raise SliceAssertionError(f"slab {page:#x} has no chunk in the chunk map")
        return (first - start) << self.granule_shift

    # -- ring -----------------------------------------------------------------
    def _push_head(self, index: int, page: int) -> None:
        words, shift, origin = self.words, self._shift, self.map_origin
        info_offset = self._info_offset[index]
        info = page + info_offset
        word = (info - origin) >> shift
        head = self.heads[index]
        if not head:
            words[word + 2] = words[word + 3] = info
        else:
            head_word = (head + info_offset - origin) >> shift
            tail_info = words[head_word + 3]
            words[word + 2] = head + info_offset
            words[word + 3] = tail_info
            words[((tail_info - origin) >> shift) + 2] = info
            words[head_word + 3] = info
        self.heads[index] = page

    def _unlink(self, index: int, page: int) -> None:
        words, shift, origin = self.words, self._shift, self.map_origin
        info_offset = self._info_offset[index]
        info = page + info_offset
        word = (info - origin) >> shift
        following, previous = words[word + 2], words[word + 3]
        if following == info:
            self.heads[index] = 0
        else:
            if self.heads[index] == page:
                self.heads[index] = following - info_offset
            words[((previous - origin) >> shift) + 2] = following
            words[((following - origin) >> shift) + 3] = previous
        words[word + 2] = words[word + 3] = info

    # -- operations -----------------------------------------------------------
    def add_slab(self, index: int) -> int:
        """Take a page, colour it, thread its free list, push it at the head (SLAB-009).

        Returns the new slab's page address.
        """
        page_size, padding, n, stride, granules = self._slab_shapes[index]
        page = self.pages.allocate(page_size)  # may raise SliceMemoryError: nothing changed yet
        colour = self.colour.next_colour(padding)
        first = page + colour
        shift, words, origin = self._shift, self.words, self.map_origin
        # The free list in ascending order: chunk k's first word holds chunk k+1's
        # address, the last one's 0.  The n words are made as one integer,
        # page * ONES + OFFSETS (see _offsets_of_links), stored with one strided store.
        offsets = self._link_offsets.get((index, colour))
        if offsets is None:
            offsets = self._offsets_of_links(index, colour)
        links = (page * self._link_ones[index] + offsets).to_bytes(
            n * words.itemsize, sys.byteorder
        )
        start = (first - origin) >> shift
        words[start : start + n * stride : stride] = memoryview(links).cast(self._format)
        word = (page + self._info_delta[index]) >> shift
        words[word] = first
        words[word + 1] = 0
        # Chunk map (PY-004): tag the chunk starts, growing the map with the carved area.
        chunk_map = self.chunk_map
        end = (page + page_size - origin) >> self.granule_shift
        if end > len(chunk_map):
            chunk_map.extend(bytes(end - len(chunk_map) + (1 << 12)))
        start = (first - origin) >> self.granule_shift
        chunk_map[start : start + n * granules : granules] = self._tags[index]
        self.slab_counts[index] += 1
        self._push_head(index, page)
        return page

    def _offsets_of_links(self, index: int, colour: int) -> int:
        """OFFSETS for :meth:`add_slab`: a new slab's link words less the page address.

        A slab's page is aligned to its size and every chunk offset is smaller,
        so chunk k's address is ``page + offset_k`` with no carry between the
        two, and the n link words ``[c1, ..., c(n-1), 0]``, read as one integer
        in memory order, are ``page * ONES + OFFSETS``: ``ONES`` has a 1 in
        each link word but the last, ``OFFSETS`` the offsets of chunks 1..n-1
        (made once per class and colour).  Why: building the n addresses as
        Python ints, and converting each, was most of the part of a new slab's
        cost that grows with its chunk count; a multiplication, an addition and
        one ``to_bytes`` are not.
        """
        size_class = self.geometry.classes[index]
        chunk_size, n = size_class.chunk_size, size_class.chunks_per_slab
        offsets = self._words_as_int([colour + k * chunk_size for k in range(1, n)] + [0])
        self._link_offsets[(index, colour)] = offsets
        return offsets

    def _words_as_int(self, values: list[int]) -> int:
        """Pointer-size words, as laid out in memory, read as one integer."""
        return int.from_bytes(array(self._format, values).tobytes(), sys.byteorder)

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

    def alloc_chunk(self, index: int) -> int:
        """Pop one chunk of class ``index`` (SLAB-005).

        This is the rule itself, one chunk at a time; :meth:`alloc_chain` is its
        batched form, and the tests prove that it leaves memory exactly as
        repeated calls of this method (then the links) do.
        """
        page = self.heads[index]
        word = (page + self._info_delta[index]) >> self._shift
        if not page or not self.words[word]:  # no slab, or every slab is full
            page = self.add_slab(index)
            word = (page + self._info_delta[index]) >> self._shift
        chunk = int(self.words[word])
        self.words[word] = self.read_word(chunk)  # SlabInfo.chunks = chunk->next
        self.words[word + 1] += 1
        if not self.words[word]:  # full: rotate it behind the head
            self.heads[index] = self.words[word + 2] - self._info_offset[index]
        return chunk

    def alloc_chain(self, index: int, count: int, into: list[int]) -> None:
        """Pop ``count`` chunks of class ``index`` into ``into`` and link them into one chain.

        Exactly ``count`` times :meth:`alloc_chunk` (SLAB-005), and afterwards
        each chunk's ``ChunkLink`` is ``{next: the chunk popped after it (0 for
        the last), data: 0}``: the chain GLib builds when the depot makes a fresh
        magazine from the slabs (DEPOT-005, MAG-002).  If the page source refuses
        a new slab, the exception propagates with the chunks taken so far in
        ``into``, their slabs as after those pops (their data words may already
        be 0); the caller gives them back (PY-020).

        Fast paths, each leaving memory as the one-at-a-time rule does:

        * Within the run popped from one slab, each chunk's ``next`` word
          already holds the chunk popped after it (that is what a free list
          is), so only the run's last chunk gets a new ``next``: the next run's
          first chunk, or 0.  The slab's SlabInfo is written once per run.
        * A slab added here has the free list :meth:`add_slab` just wrote (its
          chunks in address order), so its run is taken as a ``range`` and its
          ``data`` words are zeroed with one strided store, with no walk.

        Not done: remembering, across calls, a slab whose free list is still
        the one :meth:`add_slab` wrote, to take a refill's first run from a
        partly used slab as a range too (exact if any free of its chunks
        forgets it).  Measured on W6 and on fresh-slab allocation it changed
        nothing (-0.6 % machine instructions per fresh allocation, +0.1 % on
        W6's refills, callgrind): a refill walks at most one partly used
        slab, for a few chunks, which costs about what a range's setup does.
        """
        words, shift, origin, heads = self.words, self._shift, self.map_origin, self.heads
        info_delta, info_offset, chunk_size, n_chunks, stride = self._chain_shapes[index]
        zeros = self._zero_words[index]
        append = into.append
        last = -1  # word index of the chain's last chunk so far, -1: none yet
        while count:
            page = heads[index]
            word = (page + info_delta) >> shift
            if not page or not words[word]:  # no slab, or all full: a fresh one
                page = self.add_slab(index)
                word = (page + info_delta) >> shift
                chunk = words[word]
                taken = count if count < n_chunks else n_chunks
                into.extend(range(chunk, chunk + taken * chunk_size, chunk_size))
                start = (chunk - origin) >> shift
                words[start + 1 : start + 1 + taken * stride : stride] = zeros[:taken]
                if last >= 0:  # the previous run's last chunk links to this run
                    words[last] = chunk
                last = start + (taken - 1) * stride
                count -= taken
                words[word + 1] = taken
                chunk = chunk + taken * chunk_size if taken < n_chunks else 0  # new free head
            else:  # walk the head slab's free list
                chunk, n_allocated = words[word], words[word + 1]
                if last >= 0:
                    words[last] = chunk
                while chunk and count:
                    append(chunk)
                    last = (chunk - origin) >> shift
                    words[last + 1] = 0
                    chunk = words[last]
                    n_allocated += 1
                    count -= 1
                words[word + 1] = n_allocated
            words[word] = chunk
            if not chunk:  # full: rotate it behind the head
                heads[index] = words[word + 2] - info_offset
        if last >= 0:
            words[last] = 0

    def owner(self, index: int, chunk: int) -> Slab:
        """A view of the slab a chunk of class ``index`` belongs to (PY-004 first)."""
        self.require_chunk(index, chunk)
        return Slab(self, index, chunk & ~(self.geometry.classes[index].page_size - 1))

    def free_chunk(self, index: int, chunk: int) -> None:
        """Return one chunk to its slab, releasing the slab if it empties (SLAB-006/007).

        The caller has checked the chunk against the chunk map (PY-004).  This
        is the rule one chunk at a time; :meth:`free_chunks` is its batched form.
        """
        page = chunk & self._page_mask[index]
        word = (page + self._info_delta[index]) >> self._shift
        words = self.words
        n_allocated = int(words[word + 1])
        if n_allocated <= 0:
            raise SliceAssertionError("GSlice: assertion failed: sinfo->n_allocated > 0 (SLAB-012)")
        free_head = int(words[word])
        self.write_word(chunk, free_head)  # chunk->next = SlabInfo.chunks
        words[word] = chunk
        words[word + 1] = n_allocated - 1
        if not free_head:  # SLAB-006: a slab that regains a free chunk moves to the head
            self._unlink(index, page)
            self._push_head(index, page)
        if n_allocated == 1:  # SLAB-007: eager release
            self._release_slab(index, page)

    def free_chunks(self, index: int, chunks: Iterable[int]) -> None:
        """:meth:`free_chunk` for each chunk in turn (depot trims, thread exit).

        Fast paths, each leaving memory as one chunk at a time does:

        * Consecutive chunks of one slab (a magazine of blocks that were
          allocated together usually holds such runs) are pushed on its free
          list with one link write each, and its SlabInfo is read once and
          written once per run.
        * A full slab regains a free chunk and moves to the head (SLAB-006) at
          the *end* of its run, not its start: nothing else moves on the ring
          in between, so the ring ends the same.  And a run that empties its
          slab does not move it at all: it is unlinked where it is (SLAB-007).
          Moving a slab to the head and unlinking it at once leaves the other
          slabs in the same order (so their next/prev words and the class's
          head are the same) and the slab's own next/prev words pointing at
          itself, as unlinking it in place does.

        Not done: counting the whole batch per slab first, so that a slab
        emptied over several runs is never moved either.  It saved bytecodes
        but cost more than it saved (a Counter over every chunk: about 8 %
        more machine instructions in W6's trim, callgrind).
        """
        words, shift, origin = self.words, self._shift, self.map_origin
        delta, page_mask = self._info_delta[index], self._page_mask[index]
        run_page = word = free_head = left = 0  # the slab of the current run, 0: none
        was_full = False  # whether the run's slab was full at its start
        for chunk in chunks:
            page = chunk & page_mask
            if page != run_page:
                if run_page:  # the previous run ends: its SlabInfo, as one free at a time leaves it
                    words[word] = free_head
                    words[word + 1] = left
                    if was_full:  # SLAB-006: a slab that regained a free chunk moves to the head
                        self._unlink(index, run_page)
                        self._push_head(index, run_page)
                word = (page + delta) >> shift
                left = words[word + 1]
                if left <= 0:
                    raise SliceAssertionError(
                        "GSlice: assertion failed: sinfo->n_allocated > 0 (SLAB-012)"
                    )
                free_head = words[word]
                was_full = not free_head
                run_page = page
            words[(chunk - origin) >> shift] = free_head
            free_head = chunk
            left -= 1
            if not left:  # SLAB-007: eager release (unlinked where it is; see above)
                words[word] = free_head
                words[word + 1] = 0
                self._release_slab(index, page)
                run_page = 0
        if run_page:
            words[word] = free_head
            words[word + 1] = left
            if was_full:
                self._unlink(index, run_page)
                self._push_head(index, run_page)

    def _release_slab(self, index: int, page: int) -> None:
        """Unlink an empty slab, forget its chunks (PY-004) and give its page back (SLAB-007)."""
        self._unlink(index, page)
        untagged = self._untagged[index]  # zeroes for the slab's span of the chunk map
        start = (page - self.map_origin) >> self.granule_shift
        self.chunk_map[start : start + len(untagged)] = untagged
        self.slab_counts[index] -= 1
        self.pages.release(page)

    # -- introspection --------------------------------------------------------
    def ring(self, index: int) -> list[Slab]:
        """Views of the slabs of class ``index`` in ring order, head first.

        A ring that does not come back to its head within the class's slab
        count (only damage can cause that) raises :class:`SliceAssertionError`.
        """
        head = self.heads[index]
        if not head:
            return []
        slabs = [Slab(self, index, head)]
        while True:
            following = slabs[-1].next_info - self._info_offset[index]
            if following == head:
                return slabs
            if len(slabs) >= self.slab_counts[index] or not self._is_slab(index, following):
                raise SliceAssertionError(f"slab ring of class {index} does not close")
            slabs.append(Slab(self, index, following))

    def _is_slab(self, index: int, page: int) -> bool:
        """Whether a live slab of class ``index`` has this (page-aligned) address."""
        if page & (self.geometry.classes[index].page_size - 1):
            return False
        start = (page - self.map_origin) >> self.granule_shift
        span = self.geometry.classes[index].page_size >> self.granule_shift
        return start >= 0 and index + 1 in self.chunk_map[start : start + span]

    @property
    def by_page(self) -> dict[int, Slab]:
        """Every slab on the rings, by page address (a fresh dict of views)."""
        return {
            slab.page: slab for index in range(self.geometry.n_classes) for slab in self.ring(index)
        }

    def total_chunks(self) -> int:
        """Chunks in all live slabs."""
        return sum(
            count * c.chunks_per_slab
            for count, c in zip(self.slab_counts, self.geometry.classes, strict=True)
        )

    def tagged_granules(self) -> int:
        """Chunk starts recorded in the chunk map (equals :meth:`total_chunks` when sound)."""
        return len(self.chunk_map) - self.chunk_map.count(0)

    def free_list(self, slab: Slab) -> list[int]:
        """The chunks on a slab's free list, in pop order, read from memory."""
        chunks: list[int] = []
        chunk = slab.free_head
        while chunk:
            chunks.append(chunk)
            if len(chunks) > slab.n_chunks or not self.map_origin <= chunk < self.arena.base + (
                self.arena.size - 8
            ):
                raise SliceAssertionError(f"free list of slab {slab.page:#x} does not end")
            chunk = self.read_word(chunk)
        return chunks
