"""GLib 2.74's formulas written out independently of the reference, for expectations.

Tests derive what they expect from these (which transcribe the spec's formulas
directly) rather than from ``memslice.sizeclass``, so a wrong formula in the
reference cannot make its own test pass.
"""

from __future__ import annotations

SLAB_INFO = 48  # SLAB_INFO_SIZE on x86_64 (SIZE-006)


def page_for(chunk: int) -> int:
    """Smallest power of two >= 8 * chunk + 48, at least 128 (SIZE-007)."""
    page = 128
    while page < 8 * chunk + SLAB_INFO:
        page *= 2
    return page


def chunks_per_slab(chunk: int) -> int:
    """(page - 48) // chunk (SIZE-008)."""
    return (page_for(chunk) - SLAB_INFO) // chunk


def padding(chunk: int) -> int:
    """(page - 48) % chunk: the colour range (SIZE-008)."""
    return (page_for(chunk) - SLAB_INFO) % chunk


def threshold(chunk: int, contention: int = 0) -> int:
    """max(4, 8192 // max(5c, 160)), raised to cc * 64 // c (MAG-004, CONT-004)."""
    base = max(4, 8192 // max(5 * chunk, 160))
    return max(base, contention * 64 // chunk) if contention else base


def chunk_of(size: int) -> int:
    """Round a request up to a multiple of 16 (SIZE-003)."""
    return (size + 15) // 16 * 16
