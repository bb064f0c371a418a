"""Test the checker: every kind of damage is reported, by a sentence that names it.

Each test builds a sound allocator, proves ``check`` passes, damages one thing
the way misuse or a bug would, and expects :class:`ConsistencyError` (INTRO-003).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from memslice import Allocator, ConsistencyError, SliceConfig, SliceValueError, Tunables


def damaged(allocator: Allocator, live: list[tuple[int, int]], match: str) -> None:
    with pytest.raises(ConsistencyError, match=match):
        allocator.check(live=live)


def test_double_free_without_debug_blocks_puts_a_chunk_in_two_places(allocator: Allocator) -> None:
    """PY-007: GLib cannot see it; the checker can."""
    block = allocator.alloc(40)
    allocator.free1(40, block)
    allocator.check(live=[])
    allocator.free1(40, block)
    damaged(allocator, [], "both")


def test_use_after_free_scribble_breaks_the_chunk_link(allocator: Allocator) -> None:
    """MAG-002: writing into a freed chunk corrupts its ChunkLink."""
    first, second = allocator.alloc(40), allocator.alloc(40)
    allocator.free1(40, first)
    allocator.free1(40, second)
    allocator.write(second, b"\xff" * 8)
    damaged(allocator, [], "ChunkLink.next")
    allocator.write(second, first.to_bytes(8, "little") + b"\x01" + bytes(7))
    damaged(allocator, [], "ChunkLink.data")


def test_lost_and_phantom_blocks(allocator: Allocator) -> None:
    """INTRO-003: a held block not declared is 'lost'; a declared non-chunk is refused."""
    block = allocator.alloc(40)
    damaged(allocator, [], "chunks lost")
    damaged(allocator, [(block, 40), (block, 40)], "held twice")
    damaged(allocator, [(block, 40), (block + 8, 40)], "not a chunk")
    allocator.free1(40, block)
    damaged(allocator, [(block, 40)], "also in a thread magazine")


def test_large_and_debug_tables_must_match_the_held_blocks() -> None:
    """INTRO-003: held system-malloc blocks and the debug-blocks table are compared."""
    allocator = Allocator(environ={"G_SLICE": "debug-blocks"})
    big = allocator.alloc(4000)
    small = allocator.alloc(24)
    allocator.check(live=[(big, 4000), (small, 24)])
    damaged(allocator, [(small, 24)], "system-malloc")
    allocator._memcheck.blocks[small] = 25
    damaged(allocator, [(big, 4000), (small, 24)], "debug-blocks table")


def slab_only() -> Allocator:
    allocator = Allocator(environ={})
    allocator.set_config(SliceConfig.BYPASS_MAGAZINES, 1)
    return allocator


Damage = Callable[[Allocator, list[int]], None]


def _info(allocator: Allocator, block: int) -> int:
    """Address of the SlabInfo record of the 48-byte slab (512-byte page) holding ``block``."""
    return (block & ~511) + 512 - allocator.geometry.slab_info_size


def forge_count(allocator: Allocator, blocks: list[int]) -> None:
    info = _info(allocator, blocks[0])
    allocator._slabs.write_word(info + 8, allocator._slabs.read_word(info + 8) + 1)


def forge_info(allocator: Allocator, blocks: list[int]) -> None:
    allocator._slabs.write_word(_info(allocator, blocks[0]) + 8, 99)


def forge_free_head(allocator: Allocator, blocks: list[int]) -> None:
    allocator.free1(48, blocks[1])
    allocator._slabs.write_word(_info(allocator, blocks[0]), blocks[1] + 8)
    allocator._slabs.write_word(blocks[1] + 8, 0)


def forge_ring(allocator: Allocator, blocks: list[int]) -> None:
    following = allocator._slabs.read_word(_info(allocator, blocks[0]) + 16)
    allocator._slabs.write_word(following + 24, following)  # next.prev = next


def forge_page_index(allocator: Allocator, blocks: list[int]) -> None:
    slabs = allocator._slabs
    stray = (blocks[0] & ~511) + (1 << 20)  # a chunk start recorded where no slab is
    granule = (stray - slabs.map_origin) >> 4
    slabs.chunk_map.extend(bytes(max(0, granule + 1 - len(slabs.chunk_map))))
    slabs.chunk_map[granule] = 3


def forge_page_source(allocator: Allocator, blocks: list[int]) -> None:
    pages = allocator._page_source
    offset = (blocks[0] & ~511) - allocator._arena.base - pages._origin  # type: ignore[attr-defined]
    pages.orders[offset >> 7] = 0  # type: ignore[attr-defined]


def forge_endless_free_list(allocator: Allocator, blocks: list[int]) -> None:
    allocator.free1(48, blocks[1])
    allocator._slabs.write_word(blocks[1], blocks[1])


def forge_order(allocator: Allocator, blocks: list[int]) -> None:
    allocator._slabs.heads[2] = blocks[0] & ~511  # the full first slab as head, the partial behind


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (forge_count, "allocated"),
        (forge_info, "SlabInfo"),
        (forge_free_head, "chunk boundary"),
        (forge_ring, "next.prev"),
        (forge_page_index, "page index"),
        (forge_page_source, "page source"),
        (forge_endless_free_list, "does not end"),
        (forge_order, "follows a full one"),
    ],
)
def test_slab_damage_is_reported(damage: Damage, match: str) -> None:
    """SLAB-003, SLAB-008: counts, SlabInfo words, boundaries, rings, order, pages."""
    allocator = slab_only()
    blocks = [allocator.alloc(48) for _ in range(12)]  # one full slab of 9, one partial
    allocator.check(live=[(b, 48) for b in blocks])
    damage(allocator, blocks)
    with pytest.raises(ConsistencyError, match=match):
        allocator.check()


def test_depot_damage_is_reported(allocator: Allocator) -> None:
    """DEPOT-001, DEPOT-002: short magazines, broken rings and foreign chunks in the depot."""
    blocks = [allocator.alloc(40) for _ in range(200)]
    for block in blocks:
        allocator.free1(40, block)
    allocator.check(live=[])
    head = allocator._depot.heads[2]
    assert head is not None
    stolen = head.chunks[:-4]
    del head.chunks[:-4]
    head.chunks.pop(0)
    damaged(allocator, [], "depot magazine of 3")
    head.chunks.insert(0, stolen[0] + 8)
    damaged(allocator, [], "not a chunk boundary")
    head.chunks[0] = 4096
    damaged(allocator, [], "not in a live slab")
    head.next.prev = head.next
    damaged(allocator, [], "depot ring")


def test_unreachable_slab_ring_is_reported(allocator: Allocator) -> None:
    """SLAB-004: a ring that never returns to its head."""
    allocator.alloc(40)  # a reload builds class-48 slabs
    ring = allocator._slabs.ring(2)
    # The last slab's next points into the arena where no slab is: the ring never closes.
    allocator._slabs.write_word(ring[-1].info + 16, ring[-1].info + (1 << 20))
    damaged(allocator, [], "does not close")


def test_a_ring_longer_than_the_slab_count_is_reported(allocator: Allocator) -> None:
    """SLAB-004: a ring that loops back to a slab other than its head."""
    blocks = [allocator.alloc(40) for _ in range(60)]  # several class-48 slabs
    ring = allocator._slabs.ring(2)
    assert len(ring) >= 3
    allocator._slabs.write_word(ring[-1].info + 16, ring[1].info)  # back to the second
    damaged(allocator, [(b, 40) for b in blocks], "does not close")


def test_check_before_first_use_is_trivially_sound() -> None:
    """INTRO-003: nothing to check before initialisation."""
    Allocator(environ={}).check(live=[])


@pytest.mark.parametrize(
    "fields",
    [
        {"pointer_size": 2},
        {"sys_page_size": 256},
        {"sys_page_size": 3000},
        {"working_set_msecs": -1},
        {"arena_bytes": 1000},
    ],
)
def test_impossible_tunables_are_refused(fields: dict[str, int]) -> None:
    """SIZE-002, SIZE-001: GLib asserts these at start-up; the reference refuses them."""
    with pytest.raises(SliceValueError):
        Tunables(name="bad", **fields)  # type: ignore[arg-type]
