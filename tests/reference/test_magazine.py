"""The magazine layer: per-thread loaded/freeing magazines, swap, reload, unload, LIFO.

Each test uses a fresh allocator and runs in a fresh thread where the order of
magazine events matters, reproducing the experiments GLib 2.74.6 was measured
with (size 40: chunk 48, threshold 34).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from memslice import Allocator, SliceConfig

from .formulas import chunk_of, threshold

R = TypeVar("R")


def in_thread(function: Callable[[], R]) -> R:
    """Run ``function`` in a new thread and return its result (re-raising its error)."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["result"] = function()
        except BaseException as error:  # pragma: no cover - re-raised below
            box["error"] = error

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def test_just_freed_block_is_not_handed_out_while_loaded_has_chunks(allocator: Allocator) -> None:
    """MAG-005, MAG-007: a = alloc; free(a); b = alloc gives the next chunk, +48."""

    def experiment() -> tuple[int, int, list[int]]:
        a = allocator.alloc(40)
        allocator.free1(40, a)
        b = allocator.alloc(40)
        rest = [allocator.alloc(40) for _ in range(threshold(48) - 2)]
        return a, b, [*rest, allocator.alloc(40)]

    a, b, later = in_thread(experiment)
    assert b - a == 48
    assert later[-1] == a  # loaded ran dry, swap brought the freeing magazine in


def test_reuse_is_lifo(allocator: Allocator) -> None:
    """MAG-007: drain the magazine, free ps0, ps1, ps2, allocate three: ps2, ps1, ps0."""

    def experiment() -> tuple[list[int], list[int]]:
        drained = [allocator.alloc(40) for _ in range(threshold(48))]
        freed = drained[:3]
        for block in freed:
            allocator.free1(40, block)
        return freed, [allocator.alloc(40) for _ in range(3)]

    freed, again = in_thread(experiment)
    assert again == freed[::-1]


@pytest.mark.parametrize("size", [1, 17, 40, 100, 250, 500, 1008])
def test_reload_takes_exactly_threshold_chunks(allocator: Allocator, size: int) -> None:
    """DEPOT-005, MAG-004: a first allocation pulls one magazine of ``threshold`` chunks."""

    def experiment() -> int:
        allocator.alloc(size)
        snapshot = allocator.snapshot()
        return sum(slab.n_allocated for slab in snapshot.classes[chunk_of(size) // 16 - 1].slabs)

    assert in_thread(experiment) == threshold(chunk_of(size))


def test_fresh_magazine_pops_in_allocation_order(allocator: Allocator) -> None:
    """DEPOT-005: chunks of a fresh magazine come out address-ascending within a slab."""
    blocks = in_thread(lambda: [allocator.alloc(8) for _ in range(13)])
    assert [b - blocks[0] for b in blocks] == [16 * k for k in range(13)]


def test_free_writes_glibs_chunk_link_into_the_block(allocator: Allocator) -> None:
    """MAG-002: after free1 bytes 0..15 hold {next, NULL}; the rest is untouched."""

    def experiment() -> tuple[bytes, bytes, int]:
        p, q = allocator.alloc(64), allocator.alloc(64)
        allocator.write(p, bytes(range(1, 65)))
        allocator.write(q, bytes(range(1, 65)))
        allocator.free1(64, p)
        allocator.free1(64, q)
        return allocator.read(p, 64), allocator.read(q, 64), p

    p_bytes, q_bytes, p = in_thread(experiment)
    assert p_bytes[:16] == bytes(16)  # first in an empty magazine: next = NULL, data = NULL
    assert p_bytes[16:] == bytes(range(17, 65))
    assert int.from_bytes(q_bytes[:8], "little") == p and q_bytes[8:16] == bytes(8)
    assert q_bytes[16:] == bytes(range(17, 65))


def test_gc_friendly_zeroes_the_whole_chunk_on_free() -> None:
    """GC-001: with G_DEBUG=gc-friendly bytes 16..63 are zero after free too."""
    allocator = Allocator(environ={"G_DEBUG": "gc-friendly"})
    p = allocator.alloc(64)
    allocator.write(p, b"\xcd" * 64)
    allocator.free1(64, p)
    assert allocator.read(p, 64) == bytes(64)
    big = allocator.alloc(3000)
    allocator.free1(3000, big)  # malloc path zeroes mem_size bytes before free (GC-002)
    allocator.check(live=[])


def test_full_freeing_magazine_is_swapped_then_unloaded(allocator: Allocator) -> None:
    """MAG-006: frees beyond two magazines' worth send one magazine to the depot."""
    limit = threshold(48)

    def experiment() -> tuple[int, ...]:
        blocks = [allocator.alloc(40) for _ in range(3 * limit)]
        for block in blocks:
            allocator.free1(40, block)
        return tuple(m.count for m in allocator.snapshot().classes[2].depot)

    depot = in_thread(experiment)
    assert depot and all(count == limit for count in depot)


def test_alloc_free_ping_pong_never_visits_the_depot(allocator: Allocator) -> None:
    """MAG-007: alternating alloc/free in one thread touches no lock."""
    allocator.free1(40, allocator.alloc(40))
    trips = allocator._depot.trips
    for _ in range(1000):
        allocator.free1(40, allocator.alloc(40))
    assert allocator._depot.trips == trips


def test_bypass_magazines_serves_from_slabs_directly() -> None:
    """SIZE-009: with BYPASS_MAGAZINES no thread caches anything."""
    allocator = Allocator(environ={})
    allocator.set_config(SliceConfig.BYPASS_MAGAZINES, 1)
    block = allocator.alloc(40)
    allocator.free1(40, block)
    snapshot = allocator.snapshot()
    assert all(not t.magazines for t in snapshot.threads)
    assert snapshot.totals.mapped == 0  # the slab emptied and was released at once
