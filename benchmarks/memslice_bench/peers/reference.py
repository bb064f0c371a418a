"""The reference allocator as a peer, in its default and ``always-malloc`` modes.

Rules and theory of operation
-----------------------------
Each peer owns a fresh :class:`memslice.Allocator` (its own arena, so its
``snapshot().totals`` count only this benchmark's bytes, INTRO-002)::

    ReferencePeer ── Allocator(GLIB_2_74, environ={"G_SLICE": mode}, clock=SkewClock)
                 ── space():  totals.mapped + totals.large_live, broken down into
                              magazines, depot, free chunks, slab overhead, large
                 ── expire(): SkewClock jumps past the working set (DEPOT-007), so the
                              next depot push trims as if that time had passed

The clock is the real wall clock in milliseconds plus a skew that only
``expire`` increases: timings stay honest and W6 need not sleep 15 s.
``Space.trips`` is the depot's count of pushes plus pops (the allocator
keeps it for exactly this kind of question; read through its private
``_depot`` because trips are not part of the public snapshot).
"""

from __future__ import annotations

import time

from memslice import Allocator, SliceConfig
from memslice.tunables import GLIB_2_74

from . import Space

__all__ = ["LARGE_BLOCK_OVERHEAD", "ReferencePeer", "SkewClock"]

LARGE_BLOCK_OVERHEAD = 16


class SkewClock:
    """Wall-clock milliseconds plus a skew that ``advance`` adds to."""

    def __init__(self) -> None:
        self.skew = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.skew

    def advance(self, msecs: int) -> None:
        self.skew += msecs


class ReferencePeer:
    """``memslice.Allocator`` behind the peer Protocol."""

    allocates = True
    threadsafe = True

    def __init__(
        self,
        *,
        always_malloc: bool = False,
        colour: bool = True,
        working_set_msecs: int | None = None,
    ) -> None:
        self.name = "reference-malloc" if always_malloc else "reference"
        self.clock = SkewClock()
        environ = {"G_SLICE": "always-malloc"} if always_malloc else {}
        self.allocator = Allocator(GLIB_2_74, environ=environ, clock=self.clock)
        if not colour:
            self.name += "-nocolour"
            self.allocator.set_config(SliceConfig.COLOR_INCREMENT, 0)
        if working_set_msecs is not None:
            self.name += "-eager" if working_set_msecs == 0 else f"-ws{working_set_msecs}"
            self.allocator.set_config(SliceConfig.WORKING_SET_MSECS, working_set_msecs)
        self.alloc = self.allocator.alloc
        self.free = self.allocator.free1

    def free_chain(self, size: int, head: int, next_offset: int) -> None:
        self.allocator.free_chain_with_offset(size, head, next_offset)

    def space(self) -> Space:
        totals = self.allocator.snapshot().totals
        depot = getattr(self.allocator, "_depot", None)
        trips = depot.trips if depot is not None else 0
        # Large blocks live in libc's heap: estimate their footprint as glibc's
        # (one 8-byte header word, 16-byte granules: about 16 bytes per block).
        large = totals.large_live + LARGE_BLOCK_OVERHEAD * totals.large_blocks
        return Space(
            mapped=totals.mapped + large,
            source="Allocator.snapshot().totals; large blocks at size + 16 (glibc estimate)",
            handed_out=totals.handed_out + totals.large_live,
            breakdown={
                "magazines": totals.in_magazines,
                "depot": totals.in_depot,
                "free_chunks": totals.free_in_slabs,
                "slab_overhead": totals.slab_overhead,
                "os_page_slack": max(0, totals.mapped - totals.in_slabs),
                "malloc_headers": LARGE_BLOCK_OVERHEAD * totals.large_blocks,
            },
            trips=trips,
        )

    def expire(self) -> None:
        # Jump past the working set; the next push re-reads the clock within 8 pushes
        # (DEPOT-006), so callers push at least that often afterwards.
        self.clock.advance(self.allocator.get_config(SliceConfig.WORKING_SET_MSECS) + 1)

    def close(self) -> None:
        self.allocator.close()
