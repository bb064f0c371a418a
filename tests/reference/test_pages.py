"""The page source: aligned pages from a real mmap arena, merged and returned to the OS."""

from __future__ import annotations

import ctypes
import itertools

import pytest

from memslice import MINIMAL, Allocator, ForeignPointerError, SliceMemoryError
from memslice.pages import Arena, BuddyPageSource


def arena_rss(arena: Arena) -> int:
    """Resident bytes of the arena's first 64 MiB, from /proc/self/pagemap's present bits.

    (smaps cannot be used: the kernel may merge adjacent anonymous mappings,
    such as another allocator's arena, into one entry.)
    """
    page = arena.os_page_size
    span = min(arena.size, 64 << 20) // page
    with open("/proc/self/pagemap", "rb") as pagemap:
        pagemap.seek(arena.base // page * 8)
        entries = pagemap.read(span * 8)
    present = sum(
        1 for k in range(span) if int.from_bytes(entries[8 * k : 8 * k + 8], "little") >> 63
    )
    return present * page


@pytest.mark.parametrize("page_size", [128, 256, 512, 1024, 2048, 4096, 8192])
def test_pages_are_aligned_to_their_size(page_size: int) -> None:
    """PAGE-001: every page is aligned to its own size and inside the arena."""
    source = BuddyPageSource(Arena(1 << 20))
    pages = [source.allocate(page_size) for _ in range(20)]
    assert all(page % page_size == 0 for page in pages)
    assert len(set(pages)) == 20
    spans = sorted((page, page + page_size) for page in pages)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))


def test_buddies_merge_and_the_arena_refuses_when_full() -> None:
    """PAGE-002, PAGE-004: freed buddies merge back; exhaustion is SliceMemoryError."""
    source = BuddyPageSource(Arena(1 << 17))  # two 64 KiB runs
    pages = [source.allocate(8192) for _ in range(16)]
    with pytest.raises(SliceMemoryError, match="exhausted"):
        source.allocate(128)
    for page in pages:
        source.release(page)
    assert source.mapped_bytes == 0
    whole = [source.allocate(65536), source.allocate(65536)]  # merged all the way up
    assert sorted(whole) == sorted({p & ~65535 for p in pages})
    with pytest.raises(ForeignPointerError):
        source.release(whole[0] + 128)
    with pytest.raises(SliceMemoryError):
        source.allocate(1 << 17)


def test_release_refuses_anything_but_a_live_block_and_changes_nothing() -> None:
    """PAGE-002, PY-006: an interior, unaligned, foreign or freed address is refused."""
    source = BuddyPageSource(Arena(1 << 17))
    page = source.allocate(512)
    other = source.allocate(512)
    source.release(other)
    before = (source.live, bytes(source.page_users), source.mapped_bytes)
    origin = source.arena.base + source.arena.aligned_offset
    for address in (page + 8, page + 128, other, origin - 128, origin + (1 << 20), 0):
        with pytest.raises(ForeignPointerError, match="not a live slab page"):
            source.release(address)
    assert (source.live, bytes(source.page_users), source.mapped_bytes) == before
    source.release(page)
    assert source.mapped_bytes == 0


def test_a_block_spanning_os_pages_counts_on_each() -> None:
    """PAGE-003: a 8 KiB slab page holds two OS pages; both are counted and returned."""
    source = BuddyPageSource(Arena(1 << 17))
    os_page = source.arena.os_page_size
    small = source.allocate(128)
    big = source.allocate(8192)
    assert source.mapped_bytes == os_page + max(8192, os_page)
    source.release(big)
    assert source.mapped_bytes == os_page
    source.release(small)
    assert source.mapped_bytes == 0


def test_an_os_page_goes_back_when_its_last_block_does() -> None:
    """PAGE-003: OS pages holding small slab pages leave the resident set one by one.

    Four 1 KiB blocks share each 4 KiB OS page: the page stays resident while
    any of them is live, and is returned when the last one is released.
    """
    arena = Arena(1 << 20)
    source = BuddyPageSource(arena)
    os_page = arena.os_page_size
    blocks = [source.allocate(1024) for _ in range(2 * os_page // 1024)]  # two OS pages
    for block in blocks:
        ctypes.memset(block, 0xAB, 1024)  # touched: resident
    assert arena_rss(arena) == 2 * os_page
    first, second = blocks[: len(blocks) // 2], blocks[len(blocks) // 2 :]
    for block in first[:-1] + second[:-1]:
        source.release(block)
    assert arena_rss(arena) == 2 * os_page  # each page still holds one live block
    assert source.mapped_bytes == 2 * os_page
    source.release(first[-1])
    assert arena_rss(arena) == os_page  # the first page went back at once
    assert source.mapped_bytes == os_page
    source.release(second[-1])
    assert arena_rss(arena) == 0
    assert source.mapped_bytes == 0
    arena.close()


def test_released_pages_leave_the_resident_set() -> None:
    """PAGE-003: RSS of the arena falls when slabs are released (madvise DONTNEED)."""
    allocator = Allocator(environ={})
    blocks = [allocator.alloc(1000) for _ in range(4000)]
    for block in blocks:
        allocator.write(block, b"\xab" * 1000)
    busy = arena_rss(allocator._arena)
    assert busy >= 4000 * 1000
    for block in blocks:
        allocator.free1(1000, block)
    allocator.thread_exit()  # magazines to the depot; the depot still holds them
    still = arena_rss(allocator._arena)
    assert still >= busy // 2  # the depot retains freed memory (DEPOT-009)
    allocator.close()


def test_eager_mode_returns_memory_to_the_os() -> None:
    """PAGE-003, DEPOT-007: with working_set 0 freed slabs go straight back to the OS."""
    from memslice import SliceConfig

    allocator = Allocator(environ={})
    allocator.set_config(SliceConfig.WORKING_SET_MSECS, 0)
    blocks = [allocator.alloc(1000) for _ in range(4000)]
    for block in blocks:
        allocator.write(block, b"\xab" * 1000)
    busy = arena_rss(allocator._arena)
    for block in blocks:
        allocator.free1(1000, block)
    allocator.thread_exit()
    after = arena_rss(allocator._arena)
    assert after <= busy // 20
    assert allocator.snapshot().totals.mapped == 0


def test_minimal_arena_exhaustion_loses_nothing() -> None:
    """PY-005: when the arena is full, alloc raises MemoryError and the state is intact."""
    allocator = Allocator(MINIMAL, environ={})
    live = []
    with pytest.raises(MemoryError):
        while True:
            live.append((allocator.alloc(48), 48))
    allocator.check(live=live)
    for block, size in live[:100]:
        allocator.free1(size, block)
    allocator.check(live=live[100:])
    assert allocator.alloc(48)
