"""The OS-facing layer: an mmap arena, a page source carving aligned slab pages, libc malloc.

Rules and theory of operation
-----------------------------
GLib asks ``posix_memalign`` for each slab page: ``page_size - 16`` bytes
aligned to ``page_size`` (128..8192 bytes, PAGE-001).  The reference stands in
for the process heap with one anonymous ``mmap`` *arena* per allocator, reserved
with ``MAP_NORESERVE`` so that untouched address space costs nothing::

    arena (one mmap, e.g. 64 GiB reserved, resident only where touched)
    ┌──────────── 64 KiB block ────────────┬──────────── 64 KiB block ───────── ...
    │ 8192 │ 8192 │ 4096 │ 4096 │ 512 │... │  (binary buddies, naturally aligned)
    └──────┴──────┴──────┴──────┴─────┴────┴──────────────────────────────────── ...
       ▲ OS page (4096 B): madvise(DONTNEED) as soon as no live block overlaps it

* **Buddy allocation.**  A request is rounded up to a power of two between
  ``MIN_BLOCK`` (128) and ``MAX_BLOCK`` (64 KiB); a block of order ``k`` sits
  at an offset that is a multiple of ``2**k``, so every slab page is aligned to
  its own size, as ``posix_memalign`` guarantees.  Freeing a block merges it
  with its buddy while the buddy is free too.  Free blocks of each order are
  kept sorted so the lowest address is always reused first (deterministic
  layouts, tidy pictures).
* **Returning memory.**  Each OS page (the host's real page size) counts the
  live blocks overlapping it; when the count drops to zero the page is
  returned with ``madvise(MADV_DONTNEED)``, so the process's resident set falls
  measurably (PAGE-003).  ``mapped_bytes`` is the number of OS pages with a
  live block, times the page size.  Why not return only whole 64 KiB runs,
  with one ``madvise`` each (a trim would make about sixteen times fewer
  calls): a run stays resident while any slab page in it lives, and after a
  long mixed workload nearly every run keeps one, so the resident set would
  not fall at all (the long soaks in ``tests/reliability/test_soak.py``).
* **Refusal.**  When the arena is exhausted the page source raises
  :class:`~memslice.errors.SliceMemoryError` and changes nothing (PY-005).

``SystemMalloc`` is the libc ``malloc``/``free`` pair through ctypes, used for
large blocks (LARGE-001).  ``require_readable`` asks the kernel, with
``process_vm_readv`` on this process, whether a range may be read: unlike a
dereference it cannot crash, and unlike ``/proc/self/mem`` it honours page
protections (``PROT_NONE`` and write-only pages fail), as ``copy`` needs
(PY-023).  libc is the process's own (``dlopen(NULL)``): no ``ldconfig`` run.
Both classes are small injectable objects: tests substitute failing or
counting versions (see :class:`PageSource` and :class:`MallocSource`, the
Protocols the allocator depends on).

Data layout: no Python object per block.  ``orders`` holds one byte per
``MIN_BLOCK`` (128 bytes) of carved area: ``order + 1`` at the offset where a
live block starts, 0 elsewhere; ``page_users`` one byte per OS page (at most
32 blocks of 128 bytes share a 4 KiB page).  Both grow with the carved area,
64 KiB at a time, so the books cost about 1/128 of the slab memory.

Invariant: a byte offset is in at most one live block; ``orders`` records the
order of each live block at its offset; a free block's offset is in exactly
one free list.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import mmap
import os
from collections.abc import Callable
from functools import cache

from .errors import ForeignPointerError, SliceMemoryError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:
    from typing import Final, Protocol
else:  # the two Protocols below are for type checkers; at run time, plain classes
    Protocol = object

__all__ = [
    "Arena",
    "BuddyPageSource",
    "MallocSource",
    "PageSource",
    "SystemMalloc",
    "require_readable",
]

MIN_BLOCK_ORDER: Final = 7  # 128 bytes: GLib's smallest slab page (SIZE-004)
MAX_BLOCK_ORDER: Final = 16  # 64 KiB: blocks are carved from runs of this size
_MAP_NORESERVE: Final = getattr(mmap, "MAP_NORESERVE", 0x4000)
_MADV_DONTNEED: Final = getattr(mmap, "MADV_DONTNEED", 4)


class Arena:
    """One anonymous mmap reservation, with byte and pointer-word views.

    ``base`` is the real address of byte 0; ``bytes`` and ``words`` are
    memoryviews over the whole mapping (``words`` in native pointer-size units),
    so any layer can read or write a chunk's link words at ``(addr - base) // 8``.
    """

    def __init__(self, size: int) -> None:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
        # One extra run of slack, so that ``size`` bytes starting at a
        # MAX_BLOCK-aligned address always fit: mmap only promises OS-page alignment.
        self.capacity: Final = size
        """Bytes of slab pages the arena can hold, whatever the mapping's alignment."""
        size += 1 << MAX_BLOCK_ORDER
        try:
            self._map = mmap.mmap(-1, size, flags=flags)
        except OSError as error:  # the OS refused the reservation itself
            raise SliceMemoryError(f"cannot reserve an arena of {size} bytes: {error}") from error
        self.size: Final = size
        self.bytes: memoryview = memoryview(self._map)
        # "L" (unsigned long) where it is pointer-sized, as on every LP64 and ILP32
        # platform: memoryview stores an address into "L" items about a third
        # faster than into "Q" ones, and every link-word write pays that (MAG-002).
        self.words: memoryview = self.bytes.cast(
            "L" if ctypes.sizeof(ctypes.c_ulong) == ctypes.sizeof(ctypes.c_void_p) else "Q"
        )
        self._anchor = ctypes.c_char.from_buffer(self._map)
        self.base: Final = ctypes.addressof(self._anchor)
        self.os_page_size: Final = mmap.PAGESIZE
        self.aligned_offset: Final = -self.base % (1 << MAX_BLOCK_ORDER)
        """Offset of the first MAX_BLOCK-aligned address: where page carving starts."""
        self.carved_words: memoryview = self.words[self.aligned_offset // self.words.itemsize :]
        """``words`` from the first aligned address: word k is at ``base + aligned_offset + 8k``."""

    def contains(self, address: int, length: int = 1) -> bool:
        """Whether ``[address, address + length)`` lies inside the arena."""
        offset = address - self.base
        return offset >= 0 and offset + length <= self.size

    def release_pages(self, offset: int, length: int) -> None:
        """Give whole OS pages back to the kernel; they read as zeros afterwards."""
        self._map.madvise(_MADV_DONTNEED, offset, length)

    def close(self) -> None:
        """Unmap the arena if nobody still holds a view into it."""
        self.carved_words.release()
        self.words.release()
        self.bytes.release()
        del self._anchor
        with contextlib.suppress(BufferError):  # a caller still holds a view: leave it mapped
            self._map.close()


class PageSource(Protocol):
    """Where slab pages come from: GLib's ``allocator_memalign``/``allocator_memfree``.

    ``arena`` is the mapping every page lies in; the upper layers write chunk
    link words through its views.
    """

    arena: Arena

    def allocate(self, page_size: int) -> int:
        """A ``page_size``-aligned block of at least ``page_size - 16`` bytes (PAGE-001).

        Raises :class:`SliceMemoryError` and changes nothing when memory is refused.
        """
        ...

    def release(self, address: int) -> None:
        """Return a block obtained from :meth:`allocate` (PAGE-002)."""
        ...

    @property
    def mapped_bytes(self) -> int:
        """Bytes of OS pages currently backing live blocks (INTRO-002)."""
        ...


class BuddyPageSource:
    """Binary-buddy page source over an :class:`Arena` (PAGE-001..PAGE-004)."""

    def __init__(self, arena: Arena) -> None:
        self.arena = arena
        self._free: list[list[int]] = [[] for _ in range(MAX_BLOCK_ORDER + 1)]
        self._next_run = arena.aligned_offset  # offset of the first never-used 64 KiB run
        self._origin = arena.aligned_offset
        self.orders = bytearray()  # per MIN_BLOCK from the origin: order + 1 of a live block
        self.page_users = bytearray()  # per OS page from offset 0: live blocks on it
        self._mapped_pages = 0
        self._base = arena.base
        # A block of at most one OS page lies inside one: it is aligned to its
        # size, the arena's base to the OS page (a power of two).
        self._os_page_order = arena.os_page_size.bit_length() - 1

    @property
    def mapped_bytes(self) -> int:
        """Bytes of OS pages that back at least one live block."""
        return self._mapped_pages * self.arena.os_page_size

    @property
    def live(self) -> dict[int, int]:
        """``{offset: order}`` of every live block (a fresh dict, for checks and tests)."""
        origin = self._origin
        return {
            origin + (slot << MIN_BLOCK_ORDER): order - 1
            for slot, order in enumerate(self.orders)
            if order
        }

    def is_live_block(self, address: int) -> bool:
        """Whether a live block starts at ``address``."""
        offset = address - self.arena.base - self._origin
        slot = offset >> MIN_BLOCK_ORDER
        aligned = not offset & ((1 << MIN_BLOCK_ORDER) - 1)
        return aligned and 0 <= slot < len(self.orders) and bool(self.orders[slot])

    def allocate(self, page_size: int) -> int:
        """Carve a naturally aligned block of ``page_size`` bytes (PAGE-001)."""
        order = (page_size - 1).bit_length()
        if order < MIN_BLOCK_ORDER:
            order = MIN_BLOCK_ORDER
        elif order > MAX_BLOCK_ORDER:
            raise SliceMemoryError(f"page source cannot supply {page_size}-byte pages")
        free = self._free
        for found in range(order, MAX_BLOCK_ORDER + 1):  # the smallest free block that fits
            if free[found]:
                break
        else:
            if (
                self._next_run + (1 << MAX_BLOCK_ORDER)
                > self.arena.aligned_offset + self.arena.capacity
            ):
                raise SliceMemoryError(
                    f"arena of {self.arena.capacity} bytes exhausted (PAGE-004, PY-005): "
                    f"cannot supply a {page_size}-byte page"
                )
            free[MAX_BLOCK_ORDER].append(self._next_run)
            self._next_run += 1 << MAX_BLOCK_ORDER
            self._grow_books()
            found = MAX_BLOCK_ORDER
        offset = free[found].pop(0)
        while found > order:  # split, keeping the upper half free
            found -= 1
            bisect.insort(free[found], offset + (1 << found))
        # Offsets of order-k blocks are multiples of 2**k counted from an aligned
        # origin, so the address itself is aligned to the page size (PAGE-001).
        self.orders[(offset - self._origin) >> MIN_BLOCK_ORDER] = order + 1
        if order <= self._os_page_order:  # in one OS page: _count_pages(+1), inline
            users, index = self.page_users, offset >> self._os_page_order
            users[index] += 1
            if users[index] == 1:
                self._mapped_pages += 1
        else:
            self._count_pages(offset, 1 << order, +1)
        return self._base + offset

    def _grow_books(self) -> None:
        """Extend both tables to cover the carved area (a new 64 KiB run)."""
        slots = (self._next_run - self._origin) >> MIN_BLOCK_ORDER
        self.orders.extend(bytes(slots - len(self.orders)))
        pages = -(-self._next_run // self.arena.os_page_size)
        self.page_users.extend(bytes(pages - len(self.page_users)))

    def release(self, address: int) -> None:
        """Free a block and merge it with free buddies (PAGE-002)."""
        offset = address - self._base
        origin, orders = self._origin, self.orders
        slot = (offset - origin) >> MIN_BLOCK_ORDER
        if (
            (offset - origin) & ((1 << MIN_BLOCK_ORDER) - 1)
            or not 0 <= slot < len(orders)
            or not orders[slot]
        ):  # is_live_block, inline: this runs once per released slab
            raise ForeignPointerError(f"page source: {address:#x} is not a live slab page")
        order = orders[slot] - 1
        orders[slot] = 0
        if order <= self._os_page_order:  # in one OS page: _count_pages(-1), inline
            page_order = self._os_page_order
            users, index = self.page_users, offset >> page_order
            users[index] -= 1
            if not users[index]:
                self._mapped_pages -= 1
                self.arena.release_pages(index << page_order, 1 << page_order)  # PAGE-003
        else:
            self._count_pages(offset, 1 << order, -1)
        free = self._free
        while order < MAX_BLOCK_ORDER:
            buddy = ((offset - origin) ^ (1 << order)) + origin
            free_list = free[order]
            at = bisect.bisect_left(free_list, buddy)
            if at == len(free_list) or free_list[at] != buddy:
                break
            del free_list[at]
            if buddy < offset:
                offset = buddy
            order += 1
        bisect.insort(free[order], offset)

    def _count_pages(self, offset: int, length: int, delta: int) -> None:
        """Count a block in (``delta`` +1) or out (-1) of the OS pages it overlaps (PAGE-003)."""
        page = self.arena.os_page_size
        users = self.page_users
        index = offset // page
        last = (offset + length - 1) // page
        while True:  # usually one page: a slab page is at most two OS pages
            count = users[index] + delta
            users[index] = count
            if count == 0:
                self._mapped_pages -= 1
                self.arena.release_pages(index * page, page)  # PAGE-003
            elif count == 1 and delta > 0:
                self._mapped_pages += 1
            if index == last:
                return
            index += 1


class MallocSource(Protocol):
    """The system ``malloc``/``free`` pair used for large blocks (LARGE-001)."""

    def malloc(self, size: int) -> int:
        """A block of ``size`` bytes; raises :class:`SliceMemoryError` on refusal."""
        ...

    def free(self, address: int) -> None:
        """Release a block obtained from :meth:`malloc`."""
        ...


@cache
def _libc() -> ctypes.CDLL:
    """The C library already loaded in this process (its global symbols)."""
    return ctypes.CDLL(None, use_errno=True)


class SystemMalloc:
    """libc's ``malloc``/``free`` through ctypes."""

    def __init__(self) -> None:
        libc = _libc()
        self._malloc = libc.malloc
        self._malloc.restype = ctypes.c_void_p
        self._malloc.argtypes = [ctypes.c_size_t]
        self._free = libc.free
        self._free.restype = None
        self._free.argtypes = [ctypes.c_void_p]

    def malloc(self, size: int) -> int:
        """``malloc(size)``; NULL becomes :class:`SliceMemoryError` (PY-005)."""
        address = self._malloc(size)
        if not address:
            raise SliceMemoryError(f"system malloc refused {size} bytes")
        return int(address)

    def free(self, address: int) -> None:
        """``free(address)``."""
        self._free(address)


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("length", ctypes.c_size_t))


_PROBE_BYTES: Final = 1 << 16  # scratch buffer of a readability probe


@cache
def _process_vm_readv() -> Callable[..., int]:
    function = _libc().process_vm_readv
    function.restype = ctypes.c_ssize_t
    function.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    return function


def require_readable(address: int, size: int) -> None:
    """Raise :class:`ForeignPointerError` unless all of ``[address, +size)`` is readable (PY-023).

    The kernel reads the range into a small scratch buffer, piece by piece,
    so an absurd ``size`` fails at the first unreadable page instead of
    asking for that much memory.
    """
    if address + size > 1 << 64:
        raise ForeignPointerError(f"copy source [{address:#x}, +{size}) wraps the address space")
    read = _process_vm_readv()
    scratch = ctypes.create_string_buffer(min(size, _PROBE_BYTES))
    local = _IoVec(ctypes.addressof(scratch), 0)
    remote = _IoVec(0, 0)
    pid = os.getpid()
    done = 0
    while done < size:
        length = min(size - done, _PROBE_BYTES)
        local.length = remote.length = length
        remote.base = address + done
        got = read(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got != length:
            error = os.strerror(ctypes.get_errno()) if got < 0 else "short read"
            raise ForeignPointerError(
                f"copy source [{address:#x}, +{size}) is not readable memory at "
                f"{address + done + max(got, 0):#x} (PY-023): {error}"
            )
        done += length
