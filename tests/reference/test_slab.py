"""The slab layer: page layout, colour, free lists, ring order and eager release.

Slab behaviour is observed through the slab-only route (``BYPASS_MAGAZINES``
set before first use), where every allocation and free goes straight to the
slab layer (SIZE-009).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memslice import GLIB_2_74, MINIMAL, Allocator, SliceAssertionError, SliceConfig
from memslice.colour import ColourAccumulator
from memslice.pages import Arena, BuddyPageSource
from memslice.sizeclass import geometry_for
from memslice.slab import SlabLayer
from memslice.snapshot import SlabSnapshot
from memslice.tunables import Tunables

from .formulas import chunks_per_slab, padding, page_for

CHUNKS = [16 * k for k in range(1, 64)]


def slab_only() -> Allocator:
    allocator = Allocator(environ={})
    allocator.set_config(SliceConfig.BYPASS_MAGAZINES, 1)
    return allocator


def slabs_of(allocator: Allocator, chunk: int) -> list[SlabSnapshot]:
    return list(allocator.snapshot().classes[chunk // 16 - 1].slabs)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_first_slab_layout_matches_glib_formulas(chunk: int) -> None:
    """SLAB-003, SIZE-007, SIZE-008: stride, chunks per slab, alignment, SlabInfo place."""
    allocator = slab_only()
    n = chunks_per_slab(chunk)
    blocks = [allocator.alloc(chunk) for _ in range(n)]
    page = blocks[0] & ~(page_for(chunk) - 1)
    assert page % page_for(chunk) == 0
    assert [b - blocks[0] for b in blocks] == [k * chunk for k in range(n)]
    assert all((b & ~(page_for(chunk) - 1)) == page for b in blocks)
    (slab,) = slabs_of(allocator, chunk)
    assert slab.n_chunks == n and slab.n_allocated == n and not slab.free_chunks
    assert slab.slab_info == page + page_for(chunk) - 48
    assert slab.colour == blocks[0] - page
    assert 0 <= slab.colour < max(padding(chunk), 1) and slab.colour % 16 == 0
    extra = allocator.alloc(chunk)  # the ninth.. chunk needs a second slab
    assert extra & ~(page_for(chunk) - 1) != page
    allocator.close()


def test_colour_sequence_for_chunk_112() -> None:
    """COLOR-002: first-chunk offsets 0, 16, 32, 48, 64, 0, 16 for successive slabs."""
    allocator = slab_only()
    firsts = []
    for _ in range(7):
        blocks = [allocator.alloc(100) for _ in range(8)]
        firsts.append(blocks[0] % 1024)
    assert firsts == [0, 16, 32, 48, 64, 0, 16]


def test_colour_accumulator_is_global_across_classes() -> None:
    """COLOR-003, COLOR-004: one accumulator; padding-0 classes neither colour nor advance."""
    allocator = slab_only()
    for _ in range(3 * 13):  # three slabs of chunk 16: padding 0, accumulator untouched
        allocator.alloc(16)
    assert allocator.snapshot().color_accu == 0
    for _ in range(3 * 9):  # three slabs of chunk 48 (padding 32): colours 0, 16, 0
        allocator.alloc(48)
    assert sorted(s.colour for s in slabs_of(allocator, 48)) == [0, 0, 16]
    assert allocator.snapshot().color_accu == 3
    first_112 = allocator.alloc(112)
    assert first_112 % 1024 == (3 * 16) % 80  # continues from the shared accumulator


def test_colour_increment_config_changes_the_step() -> None:
    """COLOR-005, CONF-003: COLOR_INCREMENT set before first use scales the step."""
    allocator = slab_only()
    allocator.set_config(SliceConfig.COLOR_INCREMENT, 2)
    firsts = []
    for _ in range(4):
        slab = [allocator.alloc(100) for _ in range(8)]
        firsts.append(slab[0] % 1024)
    assert firsts == [0, 32, 64, 16]


def test_free_list_is_threaded_through_chunk_memory_in_address_order() -> None:
    """SLAB-003: a new slab's free list links chunk k to chunk k+1 in the first word."""
    allocator = slab_only()
    first = allocator.alloc(64)
    (slab,) = slabs_of(allocator, 64)
    expected = [first + 64 * k for k in range(1, chunks_per_slab(64))]
    assert list(slab.free_chunks) == expected
    for here, following in zip(expected, [*expected[1:], 0], strict=True):
        assert int.from_bytes(allocator.read(here, 8), "little") == following


def test_slab_info_is_mirrored_in_the_page() -> None:
    """SLAB-003: {chunks, n_allocated, next, prev} at page + page_size - 48."""
    allocator = slab_only()
    blocks = [allocator.alloc(200) for _ in range(12)]  # two slabs of 10
    for slab in slabs_of(allocator, 208):
        words = [
            int.from_bytes(allocator.read(slab.slab_info + 8 * k, 8), "little") for k in range(4)
        ]
        assert words[0] == (slab.free_chunks[0] if slab.free_chunks else 0)
        assert words[1] == slab.n_allocated
    ring = slabs_of(allocator, 208)
    infos = {s.slab_info for s in ring}
    for slab in ring:
        next_info = int.from_bytes(allocator.read(slab.slab_info + 16, 8), "little")
        prev_info = int.from_bytes(allocator.read(slab.slab_info + 24, 8), "little")
        assert next_info in infos and prev_info in infos
    del blocks


def test_full_head_rotates_and_freed_slab_moves_to_head() -> None:
    """SLAB-005, SLAB-006, SLAB-008: full slabs go behind the head; a free brings one back."""
    allocator = slab_only()
    n = chunks_per_slab(48)
    first_slab = [allocator.alloc(48) for _ in range(n)]
    second = allocator.alloc(48)
    ring = slabs_of(allocator, 48)
    assert ring[0].page == second & ~511  # the new slab is the head
    allocator.free1(48, first_slab[3])
    ring = slabs_of(allocator, 48)
    assert ring[0].page == first_slab[0] & ~511  # it regained a chunk: back at the head
    assert allocator.alloc(48) == first_slab[3]  # LIFO within the slab
    allocator.check(live=[(b, 48) for b in first_slab] + [(second, 48)])


def test_empty_slab_is_released_at_once() -> None:
    """SLAB-007, PAGE-003: freeing a slab's last chunk returns its page."""
    allocator = slab_only()
    blocks = [allocator.alloc(500) for _ in range(chunks_per_slab(512) + 1)]
    before = allocator.snapshot().totals.mapped
    for block in blocks[:-1]:
        allocator.free1(500, block)
    after = allocator.snapshot()
    assert len(after.classes[31].slabs) == 1
    assert after.totals.mapped == before - 8192
    allocator.free1(500, blocks[-1])
    assert allocator.snapshot().totals.mapped == 0
    allocator.check(live=[])


def test_freeing_into_an_empty_slab_is_glibs_assertion() -> None:
    """SLAB-012: n_allocated > 0 is asserted; the reference raises GLib's text."""
    from memslice import SliceAssertionError

    allocator = slab_only()
    keep = allocator.alloc(32)
    block = allocator.alloc(32)
    allocator.free1(32, block)
    # Forge the slab's count to zero to reach the assertion without releasing the page.
    info = (keep & ~511) + 512 - allocator.geometry.slab_info_size
    allocator._slabs.write_word(info + 8, 0)  # n_allocated, in the page's SlabInfo
    with pytest.raises(SliceAssertionError, match=r"sinfo->n_allocated > 0"):
        allocator.free1(32, keep)


# -- the batched forms equal the one-chunk rules ------------------------------
#
# alloc_chain and free_chunks are fast paths over the rules that alloc_chunk
# and free_chunk state one chunk at a time.  Two slab layers over twin arenas
# run the same script, one batched, one chunk by chunk (linking the chain by
# hand, as GLib's refill does); memory, rings, counts, chunk map and colour
# must agree after every step.


def twin_layers(profile: Tunables) -> tuple[SlabLayer, SlabLayer]:
    """Two slab layers over arenas full of the same garbage (as reused memory is)."""
    geometry = geometry_for(profile)
    arenas = (Arena(1 << 22), Arena(1 << 22))
    for arena in arenas:
        start = arena.aligned_offset
        arena.bytes[start : start + (1 << 20)] = b"\xa5" * (1 << 20)
    return tuple(  # type: ignore[return-value]
        SlabLayer(geometry, arena, BuddyPageSource(arena), ColourAccumulator(16, 1))
        for arena in arenas
    )


def relative_state(layer: SlabLayer) -> tuple[object, ...]:
    """Everything the slab layer keeps, with addresses relative to the map origin."""
    origin = layer.map_origin
    carved = layer.pages._next_run - layer.pages._origin  # type: ignore[attr-defined]
    words = layer.words[: carved // layer.words.itemsize].tolist()
    return (
        [w - origin + (1 << 62) if origin <= w < origin + carved else w for w in words],
        [head - origin if head else 0 for head in layer.heads],
        list(layer.slab_counts),
        bytes(layer.chunk_map),
        layer.colour.value,
        layer.pages.mapped_bytes,
    )


Step = tuple[str, int, int]  # (what, class index, count or pick)


@st.composite
def slab_scripts(draw: st.DrawFn) -> list[Step]:
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["alloc", "chain", "free"]),
                st.integers(0, 2),
                # Short steps too: a chain then often starts inside a partly
                # used slab that single pops and frees have touched.
                st.one_of(st.integers(1, 4), st.integers(1, 40)),
            ),
            max_size=40,
        )
    )


@pytest.mark.parametrize("profile", [MINIMAL, GLIB_2_74], ids=lambda p: p.name)
@settings(max_examples=60, deadline=None)
@given(script=slab_scripts(), seed=st.integers(0, 2**16))
def test_batched_slab_operations_equal_one_chunk_at_a_time(
    profile: Tunables, script: list[Step], seed: int
) -> None:
    """SLAB-005, SLAB-006, SLAB-007, DEPOT-005, MAG-002: the fast paths change nothing."""
    rng = random.Random(seed)
    batched, single = twin_layers(profile)
    held: list[list[int]] = [[] for _ in range(3)]  # per class, as offsets from the origin
    for what, index, count in script:
        if what in ("alloc", "chain"):
            got: list[int] = []
            if what == "alloc":  # single pops on both sides leave partly used slabs
                got = [batched.alloc_chunk(index) for _ in range(count)]
            else:
                batched.alloc_chain(index, count, got)
            one = [single.alloc_chunk(index) for _ in range(count)]
            if what == "chain":  # GLib's refill: chunk->next = the next one, data = NULL
                for chunk, following in zip(one, [*one[1:], 0], strict=True):
                    single.write_word(chunk, following)
                    single.write_word(chunk + single.words.itemsize, 0)
            assert [c - batched.map_origin for c in got] == [c - single.map_origin for c in one]
            held[index] += [c - single.map_origin for c in one]
        elif held[index]:
            # A mix of runs (same slab, address order or not) and scattered chunks.
            start = rng.randrange(len(held[index]))
            picked = held[index][start : start + count]
            del held[index][start : start + count]
            if rng.random() < 0.5:
                rng.shuffle(picked)
            batched.free_chunks(index, [batched.map_origin + c for c in picked])
            for offset in picked:
                single.free_chunk(index, single.map_origin + offset)
        assert relative_state(batched) == relative_state(single)


def test_a_chain_follows_the_free_list_after_a_free_and_a_pop() -> None:
    """SLAB-005, DEPOT-005: alloc_chain takes the list as it is, not as add_slab wrote it.

    After chain(2), alloc c2, alloc c3, free c2 the head is c2 again -- where
    add_slab's ascending list would have it -- but the list is c2 -> c4,
    skipping the live c3: a chain must follow it (a shortcut that takes a
    partly used slab's run as a range must know the list was touched).
    """
    batched, single = twin_layers(MINIMAL)
    origin = batched.map_origin  # offsets from it name the same chunk on both sides

    def chain_both(count: int) -> list[int]:
        chain: list[int] = []
        batched.alloc_chain(0, count, chain)
        one = [single.alloc_chunk(0) for _ in range(count)]
        for chunk, following in zip(one, [*one[1:], 0], strict=True):  # linked as GLib does
            single.write_word(chunk, following)
            single.write_word(chunk + single.words.itemsize, 0)
        assert [c - origin for c in chain] == [c - single.map_origin for c in one]
        assert relative_state(batched) == relative_state(single)
        return [c - origin for c in chain]

    def alloc_both() -> int:
        chunk = batched.alloc_chunk(0) - origin
        assert single.alloc_chunk(0) - single.map_origin == chunk
        return chunk

    def free_both(chunk: int) -> None:
        batched.free_chunk(0, origin + chunk)
        single.free_chunk(0, single.map_origin + chunk)
        assert relative_state(batched) == relative_state(single)

    c0, c1 = chain_both(2)
    stride = c1 - c0
    c2, c3 = alloc_both(), alloc_both()
    assert (c2, c3) == (c1 + stride, c1 + 2 * stride)
    free_both(c2)  # the list: c2 -> c4 -> c5 ..., the head c2 as add_slab's list would be
    assert chain_both(3) == [c2, c3 + stride, c3 + 2 * stride]  # c3 (live) skipped


def test_free_chunks_raises_glibs_assertion_where_one_at_a_time_would() -> None:
    """SLAB-012: a double free within one batch stops at the same chunk, state as one-by-one."""
    from memslice import SliceAssertionError

    batched, single = twin_layers(MINIMAL)
    for layer in (batched, single):
        chunks = [layer.alloc_chunk(0) for _ in range(3)]
        with pytest.raises(SliceAssertionError, match=r"sinfo->n_allocated > 0"):
            if layer is batched:
                layer.free_chunks(0, [chunks[0], chunks[1], chunks[2], chunks[2]])
            else:
                for chunk in (chunks[0], chunks[1], chunks[2], chunks[2]):
                    layer.free_chunk(0, chunk)
    assert relative_state(batched) == relative_state(single)


def test_a_batch_that_raises_makes_every_ring_move_first() -> None:
    """SLAB-006, SLAB-012: free_chunks' deferred ring moves are made before a later run raises.

    Slabs A, B, C are full (the ring, from its head: A, B, C).  B gets four
    chunks back, then C all of its chunks and one of them again, which raises
    before B's other chunks come: one chunk at a time, B is at the head by
    then, so the batched form must have moved it too (and C, emptied by its
    run, is gone from the ring).
    """
    batched, single = twin_layers(MINIMAL)
    index = 2
    per_slab = geometry_for(MINIMAL).classes[index].chunks_per_slab
    for layer in (batched, single):
        chunks = [layer.alloc_chunk(index) for _ in range(3 * per_slab)]  # slabs A, B, C: full
        b, c = chunks[per_slab : 2 * per_slab], chunks[2 * per_slab :]
        batch = b[:4] + c + [c[0]] + b[4:]
        with pytest.raises(SliceAssertionError, match=r"sinfo->n_allocated > 0"):
            if layer is batched:
                layer.free_chunks(index, batch)
            else:
                for chunk in batch:
                    layer.free_chunk(index, chunk)
    assert relative_state(batched) == relative_state(single)
