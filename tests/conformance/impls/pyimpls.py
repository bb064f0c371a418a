"""Python slice allocators for testing the tester: correct-but-odd and broken.

Rules and theory of operation
-----------------------------
``ArenaAllocator`` is a small, correct slice allocator: one anonymous mmap
arena, per-chunk-size free lists, a bump pointer for fresh memory.  Bytes are
read and written through the arena's buffer with bounds checks, so a broken
variant that follows a wild pointer raises instead of crashing the test
process.  Its knobs produce the *unusual but correct* implementations the
suite must accept (FIFO reuse, garbage-filled fresh memory, blocks far
apart, blocks only 8-aligned).  Each ``Broken*`` subclass plants exactly one
bug and names the clause it breaks in ``BREAKS``::

    arena [base ............................................ base+size)
           ├ chunk ┤├ chunk ┤ gap ├ chunk ┤ ...   ← bump pointer "top"
    free lists: {chunk size: deque of addresses}   (LIFO, or FIFO)
"""

from __future__ import annotations

import ctypes
import mmap
import random
import threading
import time
from collections import deque
from typing import ClassVar

__all__ = ["BROKEN", "CORRECT", "ArenaAllocator"]

_WORD = 8


class ArenaAllocator:
    """A correct slice allocator over one mmap arena."""

    name = "arena"
    profiles = frozenset({"core"})
    BREAKS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        arena_size: int = 48 << 20,
        gap: int = 0,
        align_offset: int = 0,
        fifo: bool = False,
        garbage: bool = False,
    ) -> None:
        self._mm = mmap.mmap(-1, arena_size)
        anchor = ctypes.c_char.from_buffer(self._mm)
        self._base = ctypes.addressof(anchor)
        del anchor
        self._size = arena_size
        self._top = 0
        self._gap = gap
        self._align_offset = align_offset
        self._fifo = fifo
        self._garbage = random.Random(7) if garbage else None
        self._free: dict[int, deque[int]] = {}
        self._live: dict[int, int] = {}
        self._lock = threading.RLock()
        self.frees = 0

    # -- helpers

    @staticmethod
    def chunk_of(size: int) -> int:
        return (size + 15) & ~15

    def _carve(self, chunk: int) -> int:
        start = self._top + self._align_offset
        self._top += chunk + self._align_offset + self._gap
        self._top = (self._top + 15) & ~15
        if self._top > self._size:
            raise MemoryError("arena exhausted")
        return self._base + start

    def _offset(self, addr: int, size: int) -> int:
        offset = addr - self._base
        if offset < 0 or offset + size > self._size:
            raise ValueError(f"address {addr:#x} (+{size}) outside the arena")
        return offset

    def _take(self, chunk: int) -> int:
        free = self._free.get(chunk)
        if free:
            return free.popleft() if self._fifo else free.pop()
        return self._carve(chunk)

    def _give(self, chunk: int, addr: int) -> None:
        self._free.setdefault(chunk, deque()).append(addr)

    # -- the slice API

    def alloc(self, size: int, /) -> int:
        if size == 0:
            return 0
        chunk = self.chunk_of(size)
        with self._lock:
            addr = self._take(chunk)
            self._live[addr] = chunk
        if self._garbage is not None:
            self.write(addr, self._garbage.randbytes(size))
        return addr

    def alloc0(self, size: int, /) -> int:
        addr = self.alloc(size)
        if addr:
            self.write(addr, bytes(size))
        return addr

    def copy(self, size: int, src: int, /) -> int:
        addr = self.alloc(size)
        if addr:
            self.write(addr, self.read(src, size))
        return addr

    def free1(self, size: int, addr: int, /) -> None:
        if not addr:
            return
        chunk = self.chunk_of(size)
        with self._lock:
            if self._live.pop(addr, None) is None:
                raise ValueError(f"free of a block that is not live: {addr:#x}")
            self.frees += 1
            self._give(chunk, addr)

    def read_word(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, _WORD), "little")

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        node = head
        while node:
            following = self.read_word(node + next_offset)
            self.free1(size, node)
            node = following

    def read(self, addr: int, size: int, /) -> bytes:
        offset = self._offset(addr, size)
        return bytes(self._mm[offset : offset + size])

    def write(self, addr: int, data: bytes, /) -> None:
        offset = self._offset(addr, len(data))
        self._mm[offset : offset + len(data)] = data

    def get_config(self, key: int, /) -> int:
        return 0

    def set_config(self, key: int, value: int, /) -> None:
        return None

    def get_config_state(self, key: int, address: int, /) -> list[int] | None:
        return None

    def close(self) -> None:
        self._mm.close()


# ----------------------------------------------------------- correct but odd


class FifoReuse(ArenaAllocator):
    """Freed blocks come back oldest first."""

    def __init__(self) -> None:
        super().__init__(fifo=True)


class GarbageFresh(ArenaAllocator):
    """Fresh blocks are full of random bytes (alloc0 still zeroes)."""

    def __init__(self) -> None:
        super().__init__(garbage=True)


class FarApart(ArenaAllocator):
    """Every block is followed by an 8 KiB gap."""

    def __init__(self) -> None:
        super().__init__(gap=8192, arena_size=256 << 20)


class EightAligned(ArenaAllocator):
    """Blocks are 8-aligned but never 16-aligned (the documented minimum)."""

    def __init__(self) -> None:
        super().__init__(align_offset=8)


class SlowAt1111(ArenaAllocator):
    """Correct, but an allocation of 1111 bytes (only sizes_sweep asks for it)
    takes a second: sizes_sweep finishes after checks that come after it."""

    def alloc(self, size: int, /) -> int:
        if size == 1111:
            time.sleep(1.0)
        return super().alloc(size)


# ------------------------------------------------------------------- broken


class Overlapping(ArenaAllocator):
    """Strides half a chunk for sizes above 64: neighbours overlap."""

    BREAKS = ("API-004",)

    def _carve(self, chunk: int) -> int:
        if chunk > 64:
            return super()._carve(chunk // 2)
        return super()._carve(chunk)


class ReusedWhileLive(ArenaAllocator):
    """Every 9th allocation hands out the previous block again."""

    BREAKS = ("API-004",)

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._last = 0

    def alloc(self, size: int, /) -> int:
        self._count += 1
        if size and self._last and self._count % 9 == 0:
            return self._last
        addr = super().alloc(size)
        self._last = addr or self._last
        return addr


class Alloc0KeepsDirt(ArenaAllocator):
    """alloc0 zeroes only fresh memory, not recycled blocks."""

    BREAKS = ("API-002",)

    def alloc0(self, size: int, /) -> int:
        if size == 0:
            return 0
        chunk = self.chunk_of(size)
        recycled = bool(self._free.get(chunk))
        addr = self.alloc(size)
        if not recycled:
            self.write(addr, bytes(size))
        return addr


class CopyShort(ArenaAllocator):
    """copy leaves out the last byte."""

    BREAKS = ("API-003",)

    def copy(self, size: int, src: int, /) -> int:
        addr = self.alloc(size)
        if addr and size > 1:
            self.write(addr, self.read(src, size - 1))
        return addr


class FourAligned(ArenaAllocator):
    """Blocks are only 4-aligned."""

    BREAKS = ("API-006",)

    def __init__(self) -> None:
        super().__init__(align_offset=4)


class SizeZeroNotNull(ArenaAllocator):
    """alloc(0) returns a real block."""

    BREAKS = ("API-001",)

    def alloc(self, size: int, /) -> int:
        return super().alloc(size) if size else super().alloc(1)


class ChainIgnoresOffset(ArenaAllocator):
    """free_chain reads the link at offset 0 whatever next_offset says."""

    BREAKS = ("API-008",)

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        super().free_chain_with_offset(size, head, 0)


class ChainUseAfterFree(ArenaAllocator):
    """free_chain frees (and scribbles a free-list link into) a node before reading its link."""

    BREAKS = ("API-008",)

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        node = head
        while node:
            self.free1(size, node)
            # A free-list push writes its link word first: that clobbers
            # the caller's link when next_offset is 0.
            free = self._free[self.chunk_of(size)]
            older = free[-2] if len(free) > 1 else 0
            self.write(node, older.to_bytes(_WORD, "little"))
            node = self.read_word(node + next_offset)


class FreeCorruptsNeighbour(ArenaAllocator):
    """free1 writes its free-list link into the *next* chunk, a live block."""

    BREAKS = ("API-005",)

    def free1(self, size: int, addr: int, /) -> None:
        super().free1(size, addr)
        if addr:
            neighbour = addr + self.chunk_of(size)
            if neighbour + _WORD <= self._base + self._top:
                self.write(neighbour, (addr ^ 0x5A5A).to_bytes(_WORD, "little"))


class DoubleAfterDozens(ArenaAllocator):
    """From the 40th free on, every 5th freed block is put on the free list twice."""

    BREAKS = ("API-004",)

    def _give(self, chunk: int, addr: int) -> None:
        super()._give(chunk, addr)
        if self.frees >= 40 and self.frees % 5 == 0:
            super()._give(chunk, addr)


class ExitReleasesLive(ArenaAllocator):
    """At thread exit, every block the thread allocated goes back on the free lists."""

    BREAKS = ("API-004", "EXIT-001")

    def __init__(self) -> None:
        super().__init__()
        self._mine = threading.local()

    def alloc(self, size: int, /) -> int:
        addr = super().alloc(size)
        if addr:
            if not hasattr(self._mine, "blocks"):
                self._mine.blocks = []
            self._mine.blocks.append((self.chunk_of(size), addr))
        return addr

    def thread_exit(self) -> None:
        with self._lock:
            for chunk, addr in getattr(self._mine, "blocks", []):
                if addr in self._live:
                    self._give(chunk, addr)
        self._mine.blocks = []


class ChainOffset24Bug(ArenaAllocator):
    """free_chain reads the link at 16 when next_offset is 24."""

    BREAKS = ("API-008",)

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        super().free_chain_with_offset(size, head, 16 if next_offset == 24 else next_offset)


class NoConfigAPI:
    """Correct, with only the allocation API: claims core, not config (LOAD-003)."""

    name = "no-config-api"
    profiles = frozenset({"core"})

    def __init__(self) -> None:
        self._arena = ArenaAllocator()
        self.alloc = self._arena.alloc
        self.alloc0 = self._arena.alloc0
        self.copy = self._arena.copy
        self.free1 = self._arena.free1
        self.free_chain_with_offset = self._arena.free_chain_with_offset
        self.read = self._arena.read
        self.write = self._arena.write

    def close(self) -> None:
        self._arena.close()


class MutableConfig(ArenaAllocator):
    """Correct allocations, but set_config keeps working after first use:
    conforms on core, fails only the config profile (CONF-004)."""

    BREAKS = ("CONF-004",)

    def __init__(self) -> None:
        super().__init__()
        self._config: dict[int, int] = {}

    def get_config(self, key: int, /) -> int:
        return self._config.get(key, 0) if 1 <= key <= 4 else 0

    def set_config(self, key: int, value: int, /) -> None:
        self._config[key] = value


class PopStuckAt24(ArenaAllocator):
    """A free list of its own for 24-byte blocks (a GList node's size), whose pop
    returns the head without advancing it: after a free of a 24-byte block, the
    next two allocations of exactly 24 bytes get the same block.  Only a check
    that frees and allocates one exact size again and again meets it."""

    BREAKS = ("API-004",)
    STUCK = 24

    def __init__(self) -> None:
        super().__init__()
        self._nodes24: list[int] = []

    def alloc(self, size: int, /) -> int:
        with self._lock:
            if size == self.STUCK and self._nodes24:
                addr = self._nodes24[-1]  # the bug: the head is not advanced
                self._live[addr] = self.chunk_of(size)
                return addr
        return super().alloc(size)

    def free1(self, size: int, addr: int, /) -> None:
        if size != self.STUCK or not addr:
            super().free1(size, addr)
            return
        with self._lock:
            if self._live.pop(addr, None) is None:
                raise ValueError(f"free of a block that is not live: {addr:#x}")
            self.frees += 1
            if addr not in self._nodes24:
                self._nodes24.append(addr)


CORRECT: tuple[type[ArenaAllocator], ...] = (
    ArenaAllocator, FifoReuse, GarbageFresh, FarApart, EightAligned,
)
BROKEN: tuple[type[ArenaAllocator], ...] = (
    Overlapping,
    ReusedWhileLive,
    Alloc0KeepsDirt,
    CopyShort,
    FourAligned,
    SizeZeroNotNull,
    ChainIgnoresOffset,
    ChainUseAfterFree,
    FreeCorruptsNeighbour,
    DoubleAfterDozens,
    ExitReleasesLive,
    ChainOffset24Bug,
    PopStuckAt24,
)


class HangsOnChains(ArenaAllocator):
    """free_chain never returns (it waits on an event nobody sets)."""

    BREAKS = ("API-008",)

    def __init__(self) -> None:
        super().__init__()
        self._never = threading.Event()

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        if head:
            self._never.wait()


# ------------------------------------------- broken only at scale (RUN-012)


class CarveWrapsAtScale(ArenaAllocator):
    """Each chunk size counts its carved chunks modulo 300: the 301st carve of a
    size hands out that size's first chunk again, live or not (a wrapped counter)."""

    BREAKS = ("API-004",)
    WRAP = 300

    def __init__(self) -> None:
        super().__init__()
        self._carved: dict[int, list[int]] = {}

    def _carve(self, chunk: int) -> int:
        made = self._carved.setdefault(chunk, [])
        if len(made) >= self.WRAP:
            return made[len(made) % self.WRAP]
        made.append(super()._carve(chunk))
        return made[-1]


class ChainFreesTwiceAtScale(ArenaAllocator):
    """A chain walk puts its 500th node on the free list twice: after a chain of
    at least 500 nodes, two later allocations get the same block."""

    BREAKS = ("API-008",)
    NODE = 500

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        node, walked = head, 0
        while node:
            following = self.read_word(node + next_offset)
            self.free1(size, node)
            walked += 1
            if walked == self.NODE:
                self._give(self.chunk_of(size), node)  # the bug: pushed again
            node = following


class NullForHuge(ArenaAllocator):
    """Returns NULL for a request it cannot meet (2**62 bytes) instead of failing loudly."""

    BREAKS = ("API-001",)

    def alloc(self, size: int, /) -> int:
        return 0 if size > 1 << 40 else super().alloc(size)

    def alloc0(self, size: int, /) -> int:
        return 0 if size > 1 << 40 else super().alloc0(size)
