"""A small slice allocator in Python, checked with ``--impl py:myalloc:MyAllocator``.

The how-to's example of the Python-object route (docs/howto/write-a-slice-library.md).
Its memory is one ``bytearray`` that only grows: address ``BASE + i`` is the
byte at index ``i``, so addresses are plain integers that never collide with
NULL (0).  Freed chunks wait in a free list per chunk size and are handed out
again, newest first, which is how a slab allocator reuses memory too::

    memory  [BASE ......................................... BASE + len)
             ├ 16 ┤├── 32 ──┤├ 16 ┤├──── 48 ────┤ ...  carved in order
    free    {16: [addr, ...], 32: [...], ...}             LIFO per chunk size

Run the suite on it from the folder that holds this file::

    PYTHONPATH=. memslice-conformance run --impl py:myalloc:MyAllocator

The suite is given the class, so every example starts from a fresh allocator.
``MyConfigurableAllocator`` adds the optional configuration API.
"""

from __future__ import annotations

import struct
import sys
import threading
from typing import Final

__all__ = ["MyAllocator", "MyConfigurableAllocator"]

#: The first address handed out: nonzero and a multiple of 16.
BASE: Final = 0x10000
#: Chunks are multiples of 16 bytes, so every block is 16-aligned (API-006, API-012).
GRAIN: Final = 16
#: The size of the link word a chain's nodes hold (a C pointer: API-008).
POINTER_SIZE: Final = struct.calcsize("P")


class MyAllocator:
    """GLib's slice API over one growing ``bytearray`` (satisfies ``SliceAllocator``)."""

    #: Shown in the suite's reports.
    name = "myalloc"
    #: The profiles claimed; ``core`` is implied.
    profiles = frozenset({"core"})

    def __init__(self) -> None:
        self._memory = bytearray()
        self._free: dict[int, list[int]] = {}
        # The suite calls from many threads at once (API-009): one lock for all.
        self._lock = threading.Lock()

    # -- the allocation API (required) ---------------------------------------

    def alloc(self, size: int, /) -> int:
        """A block of ``size`` bytes, or 0 iff ``size`` is 0 (API-001, API-004)."""
        if size == 0:
            return 0
        chunk = -(-size // GRAIN) * GRAIN
        with self._lock:
            recycled = self._free.get(chunk)
            if recycled:
                return recycled.pop()  # stale bytes are allowed (API-015)
            address = BASE + len(self._memory)
            self._memory.extend(bytes(chunk))
            return address

    def alloc0(self, size: int, /) -> int:
        """As :meth:`alloc`, and the bytes read zero even when recycled (API-002)."""
        address = self.alloc(size)
        if address:
            self.write(address, bytes(size))
        return address

    def copy(self, size: int, src: int, /) -> int:
        """A new block holding ``src``'s first ``size`` bytes (API-003)."""
        address = self.alloc(size)
        if address:
            self.write(address, self.read(src, size))
        return address

    def free1(self, size: int, addr: int, /) -> None:
        """Give the block back; 0 is a no-op whatever the size (API-007, API-013)."""
        if addr == 0:
            return
        chunk = -(-size // GRAIN) * GRAIN
        with self._lock:
            self._free.setdefault(chunk, []).append(addr)

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        """Free every node of the list at ``head``, reading each link first (API-008)."""
        node = head
        while node:
            link = self.read(node + next_offset, POINTER_SIZE)
            self.free1(size, node)
            node = int.from_bytes(link, sys.byteorder)

    # -- byte access: how the suite writes and checks the blocks' contents ----

    def read(self, addr: int, size: int, /) -> bytes:
        """The ``size`` bytes at ``addr``."""
        start = addr - BASE
        with self._lock:
            return bytes(self._memory[start : start + size])

    def write(self, addr: int, data: bytes, /) -> None:
        """Store ``data`` at ``addr``."""
        start = addr - BASE
        with self._lock:
            self._memory[start : start + len(data)] = data


class MyConfigurableAllocator(MyAllocator):
    """``MyAllocator`` with the optional configuration API: it claims ``config`` too.

    It has no tunables, so it answers as GLib 2.76 does (CONF-017).
    """

    name = "myalloc-config"

    def get_config(self, key: int, /) -> int:
        """Every key reads 0 (CONF-010)."""
        return 0

    def set_config(self, key: int, value: int, /) -> None:
        """Nothing to configure: every call is ignored (CONF-004)."""

    def get_config_state(self, key: int, address: int, /) -> list[int] | None:
        """No contention counters: NULL for every key (CONF-010, CONF-011)."""
        return None
