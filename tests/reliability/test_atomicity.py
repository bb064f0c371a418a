"""Fault atomicity, point by point: the exact promises of PY-019 and PY-020.

The state machine (test_fault_machine) explores interleavings; these tests pin
each promise on one hand-built situation:

* a refused allocation, at the first page, half-way through filling a
  magazine or for a large block, leaves a *twin* allocator that never saw the
  fault indistinguishable: the same call then returns the same offset in
  the arena, and both snapshots agree (PY-020);
* a release whose depot push cannot read the clock completes, keeps the last
  stamp, and the next push reads the clock again (PY-019);
* thread-exit cleanup with the clock out loses nothing (PY-019, EXIT-001);
* an allocator whose clock fails at initialisation starts with stamp 0.
"""

from __future__ import annotations

import threading

import pytest

from memslice import GLIB_2_74, MINIMAL, Allocator, SliceMemoryError
from memslice.faults import FailingClock, FailingMalloc, FailingPageSource, fail_at
from memslice.pages import Arena, BuddyPageSource
from memslice.tunables import Tunables

from .support import comparable


def twin(profile: Tunables) -> tuple[Allocator, FailingPageSource, FailingMalloc]:
    pages = FailingPageSource(BuddyPageSource(Arena(1 << 26)))
    malloc = FailingMalloc()
    allocator = Allocator(
        profile, environ={}, page_source=pages, system_malloc=malloc, clock=FailingClock()
    )
    return allocator, pages, malloc


def offsets(allocator: Allocator, addresses: list[int]) -> list[int]:
    """Addresses relative to the allocator's arena, so twins can be compared."""
    base = allocator._arena.base + allocator._arena.aligned_offset  # where pages start
    return [address - base for address in addresses]


def snapshot_offsets(allocator: Allocator) -> list[tuple[int, ...]]:
    """Every slab's page, colour, count and free list, as arena offsets (ring order)."""
    base = allocator._arena.base + allocator._arena.aligned_offset  # where pages start
    rows = []
    snapshot = comparable(allocator.snapshot())
    for size_class in snapshot.classes:
        for slab in size_class.slabs:
            rows.append(
                (
                    size_class.index,
                    slab.page - base,
                    slab.colour,
                    slab.n_allocated,
                    *(chunk - base for chunk in slab.free_chunks),
                )
            )
    rows.append((snapshot.color_accu,))
    return rows


@pytest.mark.parametrize(
    ("profile", "size", "before", "nth_page"),
    [
        (GLIB_2_74, 40, 0, 1),  # the allocator's very first page
        (GLIB_2_74, 16, 0, 3),  # a 51-chunk magazine needs 4 slabs of 13: the 3rd is refused
        (GLIB_2_74, 100, 0, 2),  # coloured slab 1 made and filled, slab 2 refused: rewound
        # chunk 112: 14 per magazine, 8 per slab; the 3rd refill takes slab 4's last 4, then
        (GLIB_2_74, 100, 28, 1),
        # chunk 48: 4 per magazine, 9 per slab; the 3rd refill takes slab 1's last one, then
        (MINIMAL, 48, 8, 1),
    ],
    ids=[
        "first-page",
        "third-page-of-a-refill",
        "second-coloured-page",
        "mid-refill-glib",
        "mid-refill-minimal",
    ],
)
def test_a_refused_refill_leaves_no_trace(
    profile: Tunables, size: int, before: int, nth_page: int
) -> None:
    """PY-020, DEPOT-005: after the refusal the faulty allocator behaves as its twin."""
    faulty, pages, _ = twin(profile)
    clean, _, _ = twin(profile)
    history = [[a.alloc(size) for _ in range(before)] for a in (faulty, clean)]
    assert offsets(faulty, history[0]) == offsets(clean, history[1])
    geometry = faulty.geometry
    index = geometry.class_index(geometry.p2align(size))
    free_before = sum(slab.n_free for slab in faulty.snapshot().classes[index].slabs)
    assert (free_before > 0) == (before > 0)  # mid-refill: chunks are taken before the refusal
    pages.trigger = fail_at(pages.calls + nth_page)
    state = snapshot_offsets(faulty)
    with pytest.raises(SliceMemoryError):
        faulty.alloc(size)
    assert pages.failures == 1
    assert snapshot_offsets(faulty) == state
    after = [[a.alloc(size) for _ in range(60)] for a in (faulty, clean)]
    assert offsets(faulty, after[0]) == offsets(clean, after[1])  # as if it never happened
    assert snapshot_offsets(faulty) == snapshot_offsets(clean)
    faulty.check(live=[(address, size) for address in history[0] + after[0]])


def test_a_refused_large_block_leaves_no_trace() -> None:
    """PY-005, PY-020, LARGE-002: nothing recorded, the same request then works."""
    allocator, _, malloc = twin(GLIB_2_74)
    small = allocator.alloc(24)
    before = comparable(allocator.snapshot())
    malloc.arm(1)
    with pytest.raises(SliceMemoryError):
        allocator.alloc0(5000)
    assert comparable(allocator.snapshot()) == before
    large = allocator.alloc0(5000)
    assert allocator.read(large, 5000) == bytes(5000)
    allocator.check(live=[(small, 24), (large, 5000)])


def test_a_release_completes_when_the_clock_cannot_be_read() -> None:
    """PY-019, DEPOT-006: the push keeps the last stamp; the next push reads the clock."""
    clock = FailingClock(start=5_000)
    allocator = Allocator(GLIB_2_74, environ={}, clock=clock)
    threshold = allocator.snapshot().classes[2].threshold  # 40 bytes: chunk 48
    blocks = [allocator.alloc(40) for _ in range(20 * threshold)]
    clock.advance(100)
    clock.trigger = lambda call: True  # the clock is out from now on
    freed = 0
    for block in blocks:
        allocator.free1(40, block)  # never raises, whatever the clock does
        freed += 1
        allocator_depot = allocator._depot
        if allocator_depot.clock_failures:
            break
    assert allocator.snapshot().last_stamp == 5_000  # stale, as between two reads
    allocator.check(live=[(block, 40) for block in blocks[freed:]])
    clock.trigger = lambda call: False
    reads = clock.calls
    for block in blocks[freed:]:
        allocator.free1(40, block)
        if clock.calls > reads:
            break
    assert allocator.snapshot().last_stamp == 5_100  # the very next push read the time


@pytest.mark.parametrize("explicit", [True, False], ids=["thread_exit()", "thread-end"])
def test_thread_exit_with_the_clock_out_loses_nothing(explicit: bool) -> None:
    """PY-015, PY-019, EXIT-001, EXIT-002: every magazine reaches the depot or the slabs.

    When the thread simply ends, the cleanup runs in a finaliser where no
    caller could see an error (pytest's unraisable-exception hook would).
    """
    clock = FailingClock(start=1_000)
    allocator = Allocator(GLIB_2_74, environ={}, clock=clock)
    kept: list[tuple[int, int]] = []

    def body() -> None:
        blocks = [(allocator.alloc(size), size) for size in (16, 40, 100, 500) for _ in range(60)]
        for number, (block, size) in enumerate(blocks):
            if number % 3:
                allocator.free1(size, block)
            else:
                kept.append((block, size))
        clock.trigger = lambda call: True  # out for the whole cleanup
        if explicit:
            allocator.thread_exit()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert clock.failures >= 1  # the cleanup's pushes did try the clock
    assert not allocator.snapshot().threads
    allocator.check(live=kept)


def test_a_clock_that_fails_at_initialisation_gives_stamp_zero() -> None:
    """PY-019: initialisation survives; the first push after it reads the clock again."""
    clock = FailingClock(start=7_000, trigger=fail_at(1))
    allocator = Allocator(MINIMAL, environ={}, clock=clock)
    assert allocator.snapshot().last_stamp == 0
    blocks = [allocator.alloc(16) for _ in range(16)]
    for block in blocks:
        allocator.free1(16, block)  # the first unload is the first push
    assert allocator.snapshot().last_stamp == 7_000
    allocator.check(live=[])


def test_a_clock_answering_with_a_non_integer_counts_as_failed() -> None:
    """PY-019: a float (or any non-int) from the clock keeps the last stamp."""
    answers = iter([3_000, 4_500.5])
    allocator = Allocator(MINIMAL, environ={}, clock=lambda: next(answers, 9_000))
    blocks = [allocator.alloc(16) for _ in range(4 * 8 * 2)]
    for block in blocks[: 4 * 8 + 8]:  # enough unloads for the 8th push to read the clock
        allocator.free1(16, block)
    depot = allocator._depot
    assert depot.clock_failures == 1
    assert depot.last_clock_error is None  # no exception was raised: a wrong answer
    assert allocator.snapshot().last_stamp == 3_000
    allocator.check(live=[(block, 16) for block in blocks[4 * 8 + 8 :]])
