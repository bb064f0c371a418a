"""Size classes: how a requested size becomes a chunk size, a slab page and a route.

Rules and theory of operation
-----------------------------
A request of ``n`` bytes is rounded up to a multiple of ``P2ALIGNMENT`` (two
pointers, 16 on 64-bit) -- the *chunk size* (SIZE-003).  Chunk size ``c`` has
class index ``ix = c / P2ALIGNMENT - 1`` (SIZE-005).  Each class owns slabs of
one *slab page* size: the smallest power of two that holds 8 chunks plus the
``SlabInfo`` record, but at least ``min_page_size`` (SIZE-007)::

    request n ──P2ALIGN──▶ chunk c ──/16 - 1──▶ class ix
                              │
                              └─▶ page = max(2^ceil(log2(8c + 48)), min_page)
                                  chunks/slab = (page - 48) // c
                                  padding     = (page - 48) %  c   (colour range)

Chunks bigger than ``max_slab_chunk_size = (max_page - 48) // 8`` (1018 on
x86_64) have no class: such requests and size 0 go to the system malloc
(SIZE-009, LARGE-001).  The magazine threshold of a class is
``max(4, max_page // max(5c, 160))``, raised by contention to
``cc * 64 // c`` (MAG-004, CONT-004).

Everything here is a pure function of :class:`~memslice.tunables.Tunables`;
:class:`Geometry` caches the per-class table that the spec lists (SIZE-010).
"""

from __future__ import annotations

from functools import cache

from .records import record  # not dataclasses: start-up cost (PY-026)
from .tunables import MIN_MAGAZINE_SIZE, Tunables

__all__ = ["Geometry", "SizeClass", "bit_storage", "geometry_for"]


def bit_storage(number: int) -> int:
    """Bits needed to store ``number``; ``bit_storage(0) == 1`` as in GLib (SIZE-007)."""
    return max(number.bit_length(), 1)


@record
class SizeClass:
    """One row of the size-class table (SIZE-010)."""

    index: int
    chunk_size: int
    page_size: int
    chunks_per_slab: int
    padding: int
    base_threshold: int


@record
class Geometry:
    """Everything GLib derives at initialisation from the platform (SIZE-001..010)."""

    tunables: Tunables
    p2alignment: int
    sizeof_slab_info: int
    slab_info_size: int
    native_malloc_padding: int
    min_page_size: int
    max_page_size: int
    max_slab_chunk_size: int
    classes: tuple[SizeClass, ...]

    @property
    def n_classes(self) -> int:
        """``MAX_SLAB_INDEX``: the number of size classes (63 on x86_64)."""
        return len(self.classes)

    @property
    def largest_slab_request(self) -> int:
        """The largest request that is served from slabs (1008 on x86_64)."""
        return self.classes[-1].chunk_size if self.classes else 0

    def p2align(self, size: int) -> int:
        """Round ``size`` up to a multiple of ``P2ALIGNMENT`` (SIZE-003)."""
        mask = self.p2alignment - 1
        return (size + mask) & ~mask

    def class_index(self, chunk_size: int) -> int:
        """``SLAB_INDEX``: class index of an already aligned chunk size (SIZE-005)."""
        return chunk_size // self.p2alignment - 1

    def aligned_page_size(self, n_bytes: int) -> int:
        """``allocator_aligned_page_size``: power-of-two page for ``n_bytes`` (SIZE-007)."""
        return max(1 << bit_storage(n_bytes - 1), self.min_page_size)

    def threshold(self, index: int, contention_counter: int) -> int:
        """Magazine threshold of a class given its contention counter (MAG-004, CONT-004)."""
        chunk = self.classes[index].chunk_size
        limit = self.classes[index].base_threshold
        if contention_counter:
            limit = max(limit, contention_counter * 64 // chunk)
        return limit


def _build(tunables: Tunables) -> Geometry:
    p2 = 2 * tunables.pointer_size
    # SlabInfo is {ChunkLink *chunks; guint n_allocated; SlabInfo *next, *prev;}:
    # three pointers and a 4-byte count padded to pointer alignment.
    sizeof_slab_info = 4 * tunables.pointer_size
    native_malloc_padding = p2
    slab_info_size = _align(sizeof_slab_info + native_malloc_padding, p2)
    if tunables.have_memalign:
        min_page = max(tunables.sys_page_size, 4096)
        max_page = max(min_page, 8192)
        min_page = min(min_page, 128)  # GLib allows tiny "pages" on purpose (SIZE-004)
    else:
        min_page = max_page = tunables.sys_page_size
    max_chunk = (max_page - slab_info_size) // 8
    n_classes = max_chunk // p2 - 1 + 1
    classes = []
    for index in range(n_classes):
        chunk = (index + 1) * p2
        page = max(1 << bit_storage(8 * chunk + slab_info_size - 1), min_page)
        area = page - slab_info_size
        base_threshold = max(MIN_MAGAZINE_SIZE, max_page // max(5 * chunk, 5 * 32))
        classes.append(
            SizeClass(
                index=index,
                chunk_size=chunk,
                page_size=page,
                chunks_per_slab=area // chunk,
                padding=area % chunk,
                base_threshold=base_threshold,
            )
        )
    return Geometry(
        tunables=tunables,
        p2alignment=p2,
        sizeof_slab_info=sizeof_slab_info,
        slab_info_size=slab_info_size,
        native_malloc_padding=native_malloc_padding,
        min_page_size=min_page,
        max_page_size=max_page,
        max_slab_chunk_size=max_chunk,
        classes=tuple(classes),
    )


def _align(size: int, base: int) -> int:
    return base * ((size + base - 1) // base)


@cache
def geometry_for(tunables: Tunables) -> Geometry:
    """The (cached) geometry derived from ``tunables``."""
    return _build(tunables)
