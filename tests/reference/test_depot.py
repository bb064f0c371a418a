"""The depot: stamps, the working-set trim, eager freeing, LIFO pops, in-chunk metadata.

Time is injected: the allocator's clock is a counter the test advances, so the
15-second working set is crossed without sleeping (DEPOT-006, DEPOT-007).
"""

from __future__ import annotations

import pytest

from memslice import Allocator, SliceConfig

from .formulas import threshold


class SteppedClock:
    """A clock in milliseconds that only moves when told; counts its reads."""

    def __init__(self) -> None:
        self.now = 1_000
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.now


def fill_depot(allocator: Allocator, size: int, magazines: int) -> list[int]:
    """Allocate and free enough blocks of ``size`` to push ``magazines`` magazines."""
    limit = threshold((size + 15) // 16 * 16)
    blocks = [allocator.alloc(size) for _ in range((magazines + 2) * limit)]
    for block in blocks:
        allocator.free1(size, block)
    return blocks


def test_clock_is_read_on_every_eighth_push_only() -> None:
    """DEPOT-006: initialisation reads the clock, then every 8th push does."""
    clock = SteppedClock()
    allocator = Allocator(environ={}, clock=clock)
    allocator.alloc(8)
    assert clock.reads == 1
    blocks = [allocator.alloc(8) for _ in range(20 * threshold(16))]
    for block in blocks:
        allocator.free1(8, block)
    pushes = len(allocator.snapshot().classes[0].depot)  # a still clock trims nothing
    assert pushes >= 16
    assert clock.reads == 1 + pushes // 8


def test_stale_stamps_are_shared_until_the_eighth_push() -> None:
    """DEPOT-006: pushes between clock reads reuse the last stamp."""
    clock = SteppedClock()
    allocator = Allocator(environ={}, clock=clock)
    limit = threshold(16)
    blocks = [allocator.alloc(8) for _ in range(12 * limit)]
    for number, block in enumerate(blocks):
        clock.now = 1_000 + number  # time moves on every free...
        allocator.free1(8, block)
    stamps = [m.stamp for m in reversed(allocator.snapshot().classes[0].depot)]  # oldest first
    # ...but a stamp only changes at the 8th push after initialisation's read.
    assert stamps[:7] == [1_000] * 7
    assert len(set(stamps[7:])) == 1 and stamps[7] > 1_000


def test_working_set_trim_needs_a_later_push_to_the_same_class() -> None:
    """DEPOT-007: expired magazines stay until a later push to that class trims them."""
    clock = SteppedClock()
    allocator = Allocator(environ={}, clock=clock)
    reserve = [allocator.alloc(40) for _ in range(10 * threshold(48))]  # freed after expiry
    fill_depot(allocator, 40, 6)
    full = allocator.snapshot()
    old_magazines = {m.chunks for m in full.classes[2].depot}
    assert len(old_magazines) >= 6
    clock.now += 16_000  # the working set (15 s) has passed...
    fill_depot(allocator, 100, 8)  # ...pushes to another class trim nothing in class 48
    assert {m.chunks for m in allocator.snapshot().classes[2].depot} == old_magazines
    for block in reserve:  # eight or more pushes to class 48: a fresh stamp, then the trim
        allocator.free1(40, block)
    after = allocator.snapshot()
    assert not old_magazines & {m.chunks for m in after.classes[2].depot}
    assert all(m.stamp == after.last_stamp for m in after.classes[2].depot)
    assert sum(len(c.slabs) for c in after.classes[2:3]) < len(full.classes[2].slabs)
    allocator.check(live=[])


def test_working_set_zero_frees_eagerly() -> None:
    """DEPOT-007: working_set_msecs = 0 trims every magazine on push, even the new one."""
    allocator = Allocator(environ={})
    allocator.set_config(SliceConfig.WORKING_SET_MSECS, 0)
    fill_depot(allocator, 40, 4)
    snapshot = allocator.snapshot()
    assert not snapshot.classes[2].depot
    allocator.check(live=[])


def test_pop_takes_the_newest_magazine() -> None:
    """DEPOT-004: the depot is LIFO: a thread reloading gets the most recent push."""
    allocator = Allocator(environ={})
    fill_depot(allocator, 40, 3)
    newest = allocator.snapshot().classes[2].depot[0]
    thread_chunks = sum(
        len(m[0].chunks) + len(m[1].chunks)
        for t in allocator.snapshot().threads
        for i, m in t.magazines.items()
        if i == 2
    )
    for _ in range(thread_chunks):
        allocator.alloc(40)
    assert allocator.alloc(40) == newest.chunks[0]


def test_magazine_metadata_lives_in_its_first_four_chunks() -> None:
    """DEPOT-002: c1.data = prev, c2.data = stamp, c3.data = next, c4.data = count."""
    clock = SteppedClock()
    allocator = Allocator(environ={}, clock=clock)
    fill_depot(allocator, 40, 3)
    ring = allocator.snapshot().classes[2].depot
    for position, magazine in enumerate(ring):
        c1, c2, c3, c4 = magazine.chunks[:4]

        def data(chunk: int) -> int:
            return int.from_bytes(allocator.read(chunk + 8, 8), "little")

        assert data(c1) == ring[position - 1].chunks[0]  # prev (ring: newest's prev is tail)
        assert data(c2) == magazine.stamp
        assert data(c3) == ring[(position + 1) % len(ring)].chunks[0]
        assert data(c4) == magazine.count


def assert_ring_metadata(allocator: Allocator, index: int) -> None:
    """Every depot magazine of class ``index`` carries prev, stamp, next, count (DEPOT-002)."""
    ring = allocator.snapshot().classes[index].depot

    def data(chunk: int) -> int:
        return int.from_bytes(allocator.read(chunk + 8, 8), "little")

    for position, magazine in enumerate(ring):
        c1, c2, c3, c4 = magazine.chunks[:4]
        assert data(c1) == ring[position - 1].chunks[0]
        assert data(c2) == magazine.stamp
        assert data(c3) == ring[(position + 1) % len(ring)].chunks[0]
        assert data(c4) == magazine.count


def test_metadata_stays_right_as_magazines_come_and_go() -> None:
    """DEPOT-002: after pushes, pops and trims the neighbours' words are still right.

    A push or pop rewrites only the neighbours' prev/next words (depot.py); this
    walks rings of 1, 2 and more magazines through every kind of change.
    """
    clock = SteppedClock()
    allocator = Allocator(environ={}, clock=clock)
    limit = threshold(48)
    held: list[int] = []
    for step in range(40):
        if step % 5 < 3:  # free a magazine's worth: pushes
            held += [allocator.alloc(48) for _ in range(limit + step % 3)]
            for block in held[: len(held) // 2 + 1]:
                allocator.free1(48, block)
            held = held[len(held) // 2 + 1 :]
        else:  # allocate a magazine's worth: pops
            held += [allocator.alloc(48) for _ in range(limit * 2)]
        if step % 7 == 6:  # the working set expires: the next push trims
            clock.now += allocator.get_config(SliceConfig.WORKING_SET_MSECS) + 1
        assert_ring_metadata(allocator, 2)
    # A partial trim: magazines stamped half a working set ago survive, older ones go.
    working_set = allocator.get_config(SliceConfig.WORKING_SET_MSECS)
    batches = [[allocator.alloc(48) for _ in range(10 * limit)] for _ in range(3)]
    pushed, trimmed_to_some = 0, False
    for batch in batches:
        for block in batch:
            trips, before = allocator._depot.trips, len(allocator._depot.ring(2))
            allocator.free1(48, block)
            if allocator._depot.trips != trips:  # a push (and maybe a trim) happened
                pushed += 1
                after = len(allocator._depot.ring(2))
                trimmed_to_some |= 1 < after < before + 1
                assert_ring_metadata(allocator, 2)
        clock.now += working_set // 2 + 1
    assert trimmed_to_some and pushed > len(allocator._depot.ring(2)) > 1
    allocator.check([(block, 48) for block in held])


@pytest.mark.parametrize("value", [-1, 1 << 40])
def test_working_set_is_a_gsize(value: int) -> None:
    """CONF-005: WORKING_SET_MSECS is stored as gsize: -1 becomes 2**64 - 1."""
    allocator = Allocator(environ={})
    allocator.set_config(SliceConfig.WORKING_SET_MSECS, value)
    assert allocator.get_config(SliceConfig.WORKING_SET_MSECS) == value % (1 << 64)
