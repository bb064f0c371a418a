"""Large blocks: requests the slab layer does not serve go to the system malloc.

Rules and theory of operation
-----------------------------
Size 0 and every request whose chunk size exceeds ``max_slab_chunk_size``
(1009 bytes and up on x86_64), and every request in always-malloc mode, are
served by the C library's ``malloc`` with the *unrounded* size (LARGE-001)::

    alloc(5000) ──▶ malloc(5000) ──▶ p          free1(5000, p) ──▶ free(p)
    alloc(0)    ──▶ NULL (GLib's g_malloc(0))    free1(n, NULL)  ──▶ nothing

The reference also records each live block's requested size.  GLib does not,
but a Python process must not hand a pointer it never allocated to libc's
``free`` (that would crash the interpreter), so a release of an unknown
address raises :class:`~memslice.errors.ForeignPointerError` instead
(PY-004).  The table also gives the introspection totals.  Beside it, the
block starts are kept sorted, so finding the block that holds an address
(every ``read``/``write``/``view`` of a large block asks) is a binary
search, not a walk over every live block: a program holding tens of
thousands of large blocks (always-malloc mode) stays linear.

gc-friendly mode zeroes ``mem_size`` bytes before ``free`` (GC-002).
"""

from __future__ import annotations

import bisect
import ctypes
import threading

from .errors import ForeignPointerError
from .pages import MallocSource

__all__ = ["LargeBlocks"]


class LargeBlocks:
    """Live system-malloc blocks of one allocator (LARGE-001..LARGE-003)."""

    def __init__(self, source: MallocSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self.sizes: dict[int, int] = {}
        #: The keys of ``sizes``, sorted (for :meth:`owning_block`).
        self._starts: list[int] = []

    def alloc(self, mem_size: int) -> int:
        """``g_malloc(mem_size)``: 0 for size 0, else a fresh block (LARGE-002)."""
        if mem_size == 0:
            return 0
        address = self.source.malloc(mem_size)  # SliceMemoryError leaves the table unchanged
        with self._lock:
            self.sizes[address] = mem_size
            bisect.insort(self._starts, address)
        return address

    def size_of(self, address: int) -> int:
        """The requested size of a live block; ForeignPointerError if unknown (PY-004)."""
        with self._lock:
            size = self.sizes.get(address)
        if size is None:
            raise ForeignPointerError(
                f"{address:#x} is not a live block of the system-malloc path (PY-004)"
            )
        return size

    def free(self, address: int, gc_friendly: bool) -> None:
        """``g_free``: zero first in gc-friendly mode (GC-002)."""
        size = self.size_of(address)
        if gc_friendly:
            ctypes.memset(address, 0, size)
        with self._lock:
            del self.sizes[address]
            del self._starts[bisect.bisect_left(self._starts, address)]
        self.source.free(address)

    def owning_block(self, address: int, length: int) -> int | None:
        """The live block containing ``[address, address + length)``, if any."""
        with self._lock:
            i = bisect.bisect_right(self._starts, address) - 1
            if i < 0:
                return None
            start = self._starts[i]
            size = self.sizes[start]
        # Live blocks never overlap, so only the last block starting at or
        # before ``address`` can hold it.
        return start if address + length <= start + size else None
