"""``memslice.faults``: wrappers fail exactly when told, count, and pass the rest through."""

from __future__ import annotations

import pytest

from memslice import MINIMAL, Allocator, SliceMemoryError
from memslice.faults import (
    ClockError,
    FailingClock,
    FailingMalloc,
    FailingPageSource,
    Fault,
    fail_at,
    fail_from,
    never,
)
from memslice.pages import Arena, BuddyPageSource


def test_triggers_pick_the_calls_they_name() -> None:
    """PY-021: fail_at, fail_from and never, asked with 1-based call numbers."""
    assert [fail_at(2, 5)(n) for n in range(1, 7)] == [False, True, False, False, True, False]
    assert [fail_from(3)(n) for n in range(1, 6)] == [False, False, True, True, True]
    assert not any(never(n) for n in range(1, 100))


def test_page_source_refuses_on_cue_and_touches_nothing_underneath() -> None:
    """PY-021, PY-005: a refused call never reaches the inner source; others do."""
    inner = BuddyPageSource(Arena(1 << 20))
    pages = FailingPageSource(inner, fail_at(2))
    first = pages.allocate(512)
    live_before = dict(inner.live)
    with pytest.raises(SliceMemoryError, match="512-byte page"):
        pages.allocate(512)
    assert inner.live == live_before  # the refusal did not reach the buddy allocator
    second = pages.allocate(1024)
    assert second % 1024 == 0 and second != first
    pages.release(first)
    assert (pages.calls, pages.failures, pages.releases) == (3, 1, 1)
    assert pages.log == [Fault(call=2, operation="allocate", argument=512)]
    assert pages.live == inner.live and pages.arena is inner.arena
    assert pages.is_live_block(second) and not pages.is_live_block(first)
    assert pages.mapped_bytes == inner.mapped_bytes > 0


def test_arming_overrides_the_trigger_for_the_next_calls() -> None:
    """PY-021: arm(k) fails the next k calls; disarm cancels what is left."""
    malloc = FailingMalloc()
    malloc.arm(2)
    for _ in range(2):
        with pytest.raises(SliceMemoryError):
            malloc.malloc(100)
    block = malloc.malloc(100)  # the arming is used up
    malloc.free(block)
    malloc.arm(3)
    malloc.disarm()
    malloc.free(malloc.malloc(10))
    assert (malloc.calls, malloc.failures, malloc.frees) == (4, 2, 2)


def test_clock_raises_an_oserror_and_otherwise_tells_the_time() -> None:
    """PY-021: ClockError is an OSError; the built-in clock moves only when advanced."""
    clock = FailingClock(start=500, trigger=fail_at(2))
    assert clock() == 500
    with pytest.raises(OSError, match="clock"):
        clock()
    clock.advance(250)
    assert clock() == 750
    assert issubclass(ClockError, OSError)
    assert FailingClock(inner=lambda: 42)() == 42


def test_an_allocator_runs_on_the_wrappers() -> None:
    """PY-014, PY-021: the wrappers satisfy the allocator's Protocols."""
    pages = FailingPageSource(BuddyPageSource(Arena(MINIMAL.arena_bytes)))
    malloc = FailingMalloc()
    clock = FailingClock(start=1_000)
    allocator = Allocator(MINIMAL, environ={}, page_source=pages, system_malloc=malloc, clock=clock)
    small, large = allocator.alloc(16), allocator.alloc(500)
    assert pages.calls >= 1 and malloc.calls == 1 and clock.calls == 1
    allocator.free1(16, small)
    allocator.free1(500, large)
    allocator.check(live=[])
    allocator.close()
