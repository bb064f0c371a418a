"""The naive allocator: the simplest thing a Python user might write instead of slices.

Rules and theory of operation
-----------------------------
One global lock; one LIFO free list per 16-byte size class; fresh chunks are
bump-allocated from 4 KiB pages (or a power-of-two page for chunks above
1 KiB) taken from the same kind of mmap arena and buddy page source the
reference uses, so both peers pay the same OS costs::

    alloc(n):  with LOCK: c = round16(n); pop free[c] or bump current page of c
    free(n,p): with LOCK: push p on free[round16(n)]

    page:  ┌ chunk ┬ chunk ┬ chunk ┬ ... ┬ unused tail ┐   (no header, no colour)

It never gives memory back (no magazines, no depot, no trimming): its space
figures show what caching per size without a release policy costs.  Blocks
of more than 64 KiB come from libc malloc.  Invariants: a chunk is either
live, on its class's free list, or not yet bumped; pages are never released.
"""

from __future__ import annotations

import threading

from memslice.pages import Arena, BuddyPageSource, SystemMalloc

from . import Space, walk_chain

__all__ = ["NaivePeer"]

_ALIGN = 16
_PAGE = 4096
_MAX_PAGE = 1 << 16


class NaivePeer:
    """One lock, one free list per size class, over mmap pages."""

    name = "naive"
    allocates = True
    threadsafe = True

    def __init__(self, arena_bytes: int = 1 << 32) -> None:
        self._pages = BuddyPageSource(Arena(arena_bytes))
        self._malloc = SystemMalloc()
        self._lock = threading.Lock()
        self._free: dict[int, list[int]] = {}
        self._bump: dict[int, tuple[int, int]] = {}  # class -> (next address, end)
        self._live_chunks = 0  # chunk bytes handed out
        self._large: dict[int, int] = {}
        self._tails = 0  # bytes at page ends too small for one more chunk

    def alloc(self, size: int) -> int:
        if size <= 0:
            return 0
        chunk = -(-size // _ALIGN) * _ALIGN
        if chunk > _MAX_PAGE:
            address = self._malloc.malloc(size)
            with self._lock:
                self._large[address] = size
            return address
        with self._lock:
            free = self._free.get(chunk)
            if free:
                self._live_chunks += chunk
                return free.pop()
            address, end = self._bump.get(chunk, (0, 0))
            if address + chunk > end:
                self._tails += end - address
                page = max(_PAGE, 1 << (chunk - 1).bit_length())
                address = self._pages.allocate(page)
                end = address + page
            self._bump[chunk] = (address + chunk, end)
            self._live_chunks += chunk
            return address

    def free(self, size: int, address: int) -> None:
        if not address:
            return
        chunk = -(-size // _ALIGN) * _ALIGN
        if chunk > _MAX_PAGE:
            with self._lock:
                del self._large[address]
            self._malloc.free(address)
            return
        with self._lock:
            self._free.setdefault(chunk, []).append(address)
            self._live_chunks -= chunk

    def free_chain(self, size: int, head: int, next_offset: int) -> None:
        walk_chain(self.free, size, head, next_offset)

    def space(self) -> Space:
        with self._lock:
            free_chunks = sum(c * len(lst) for c, lst in self._free.items())
            unbumped = sum(end - addr for addr, end in self._bump.values())
            large = sum(self._large.values())
            return Space(
                mapped=self._pages.mapped_bytes + large,
                source="own accounting (pages from a buddy page source over mmap)",
                handed_out=self._live_chunks + large,
                breakdown={
                    "free_chunks": free_chunks,
                    "unbumped": unbumped,
                    "page_tails": self._tails,
                },
            )

    def expire(self) -> None:
        return None  # no release policy: that is the point of this peer

    def close(self) -> None:
        self._pages.arena.close()
