"""Every layout experiment of the GLib 2.74.6 measurements, on GLib and on the reference.

Each test builds the experiment as a trace, runs it on the real GLib (fresh
process) and on the reference (fresh allocator in GLib's load-time state),
checks GLib's normalised layout against values computed from the spec's
formulas, and requires the reference's layout to be identical.
"""

from __future__ import annotations

import pytest
from fidelity_support import (
    GEOMETRY,
    GLIB_START_ACCU,
    assert_same_layout,
    colour,
    predict_fresh_class_run,
)

from memslice_conformance.checks import layout
from memslice_conformance.checks.layout import (
    MAIN,
    Alloc,
    Free,
    FreeChain,
    Op,
    ThreadExit,
    ThreadStart,
)

pytestmark = pytest.mark.glib


def _runs(sizes: list[int], n: int) -> list[Op]:
    return [Alloc(MAIN, size) for size in sizes for _ in range(n)]


@pytest.mark.parametrize(
    "sizes",
    [[8, 24, 50, 100, 1000, 2000, 5000], [40, 144, 250, 500, 700]],
    ids=["first-run", "second-run"],
)
def test_address_deltas_colours_and_chunks_per_slab(sizes: list[int]) -> None:
    """SLAB-003, COLOR-002, COLOR-003, SIZE-009: runs of consecutive allocations of
    one size: stride = chunk size inside a slab, slabs hold (page - 48) // chunk
    chunks, colours follow one global accumulator starting at 2, and requests
    over 1008 bytes go to malloc."""
    n = 120 if sizes[0] == 8 else 200
    trace = _runs(sizes, n)
    glib = assert_same_layout(trace)
    figures = layout.class_figures(glib)
    accu = GLIB_START_ACCU
    for index, size in enumerate(sizes):
        blocks = glib[index * n : (index + 1) * n]
        chunk = GEOMETRY.chunk_size(size)
        if chunk is None:
            assert {b.route for b in blocks} == {"malloc"}
            continue
        placements, accu = predict_fresh_class_run(chunk, n, accu)
        assert [(b.slab, b.offset) for b in blocks] == placements, f"size {size}"
        fig = figures[chunk]
        assert set(fig.strides) == {chunk}
        full = fig.chunks_seen[:-1]
        assert set(full) == {GEOMETRY.chunks_per_slab(chunk)}
        assert not fig.reuses


def test_first_run_matches_the_recorded_colour_cycles() -> None:
    """COLOR-002: the colours GLib showed for sizes 100 and 1000 (after 8, 24, 50)."""
    trace = _runs([8, 24, 50, 100, 1000], 120)
    figures = layout.class_figures(assert_same_layout(trace))
    assert figures[112].colours[:5] == (32, 48, 64, 0, 16)
    assert figures[1008].colours[:5] == (48, 64, 0, 16, 32)
    assert figures[16].colours == (0,) * len(figures[16].colours)


def test_size_16_after_size_8_reuses_in_lifo_order() -> None:
    """MAG-005, MAG-006, MAG-007: 120 blocks of 8 freed in allocation order, then
    120 blocks of 16 (same class).  Worked through the magazine rules (threshold
    51): the 120 allocations reloaded 153 chunks, leaving 33 never handed out in
    magazine1; free 52 swaps, free 70 swaps and unloads frees 0..50 to the depot.
    So the 16-byte run gets blocks 68..51, the 33 untouched chunks, 119..69
    (after a swap), then 50..33 (a reload from the depot): 87 reused addresses,
    GLib's dominant delta of -16."""
    trace: list[Op] = _runs([8], 120)
    trace += [Free(MAIN, b) for b in range(120)]
    trace += _runs([16], 120)
    glib = assert_same_layout(trace)
    places = [(b.slab, b.offset) for b in glib]
    first, again = places[:120], places[120:]
    assert again[:18] == [first[b] for b in range(68, 50, -1)]
    assert not set(again[18:51]) & set(first)
    assert again[51:102] == [first[b] for b in range(119, 68, -1)]
    assert again[102:] == [first[b] for b in range(50, 32, -1)]


def _fresh_thread(*ops: Op) -> list[Op]:
    return [ThreadStart("t"), *ops, ThreadExit("t")]


def test_a_just_freed_block_waits_while_magazine1_has_chunks() -> None:
    """MAG-005/MAG-006: alloc a, free a, alloc b gives a's neighbour (+48); after the
    other 32 chunks of the 34-chunk magazine, the next alloc returns a (swap)."""
    ops: list[Op] = [Alloc("t", 40), Free("t", 0), Alloc("t", 40)]
    ops += [Alloc("t", 40) for _ in range(32)] + [Alloc("t", 40)]
    glib = assert_same_layout(_fresh_thread(*ops))
    a, b, last = glib[0], glib[1], glib[-1]
    assert (b.slab, b.offset) == (a.slab, a.offset + 48)
    assert (last.slab, last.offset) == (a.slab, a.offset)
    assert GEOMETRY.threshold(48) == 34


def test_lifo_after_draining_exactly_one_magazine() -> None:
    """MAG-006: drain 34 chunks of 48, free ps0, ps1, ps2, alloc 3: ps2, ps1, ps0."""
    ops: list[Op] = [Alloc("t", 40) for _ in range(34)]
    ops += [Free("t", 0), Free("t", 1), Free("t", 2)]
    ops += [Alloc("t", 40) for _ in range(3)]
    glib = assert_same_layout(_fresh_thread(*ops))
    places = [(b.slab, b.offset) for b in glib]
    assert places[34:] == [places[2], places[1], places[0]]


def test_free_chain_comes_back_in_reverse_chain_order() -> None:
    """API-008, MAG-006: a 5-node chain of 24-byte blocks linked at offset 8, freed
    after draining the 51-chunk magazine, is re-allocated as 4, 3, 2, 1, 0."""
    ops: list[Op] = [Alloc("t", 24) for _ in range(51)]
    ops += [FreeChain("t", (0, 1, 2, 3, 4), 8)]
    ops += [Alloc("t", 24) for _ in range(5)]
    glib = assert_same_layout(_fresh_thread(*ops))
    places = [(b.slab, b.offset) for b in glib]
    assert places[51:] == [places[4], places[3], places[2], places[1], places[0]]


def test_a_new_thread_reuses_what_an_exited_thread_freed() -> None:
    """EXIT-002, DEPOT-004: T1 allocates and frees 100 blocks of 40 and
    exits; T2's 100 allocations reuse 98 of T1's addresses, the other 2 being
    chunks T1 reloaded but never handed out."""
    trace: list[Op] = [ThreadStart("t1")]
    trace += [Alloc("t1", 40) for _ in range(100)]
    trace += [Free("t1", b) for b in range(100)]
    trace += [ThreadExit("t1"), ThreadStart("t2")]
    trace += [Alloc("t2", 40) for _ in range(100)]
    trace += [ThreadExit("t2")]
    glib = assert_same_layout(trace)
    old = {(b.slab, b.offset) for b in glib[:100]}
    reused = sum((b.slab, b.offset) in old for b in glib[100:])
    assert reused == 98


def test_reload_sizes_equal_the_thresholds() -> None:
    """MAG-004, MAG-009, DEPOT-005: from an untouched class, slab k is first touched after
    k * chunks-per-slab allocations, and the colour accumulator shows how many
    slabs each reload of `threshold` chunks opened."""
    trace = _runs([100, 200], 60)
    glib = assert_same_layout(trace)
    figures = layout.class_figures(glib)
    per112 = GEOMETRY.chunks_per_slab(112)
    assert figures[112].new_slabs == tuple(range(0, 60, per112))
    # 60 blocks of 112 need 5 reloads of 14 = 70 chunks = 9 slabs: accu 2 -> 11.
    assert figures[208].colours[0] == colour(GLIB_START_ACCU + 9, 208)


def test_every_row_of_the_size_class_table() -> None:
    """SIZE-008, SIZE-010, SLAB-003, COLOR-002: for all 63 classes, three slabs' worth
    of allocations in one thread.  Every class's stride, chunks per slab and
    colours (one global accumulator, starting at 2) match the formulas on
    GLib, and the reference places every block alike.  Class 96 is the one
    class GLib touched at load (CONF-018), so only the equality covers it."""
    chunks = [GEOMETRY.p2alignment * (ix + 1) for ix in range(63)]
    counts = {chunk: 3 * GEOMETRY.chunks_per_slab(chunk) for chunk in chunks}
    trace = [Alloc("t", chunk) for chunk in chunks for _ in range(counts[chunk])]
    glib = assert_same_layout([ThreadStart("t"), *trace, ThreadExit("t")])
    accu, start = GLIB_START_ACCU, 0
    for chunk in chunks:
        blocks = glib[start : start + counts[chunk]]
        start += counts[chunk]
        if chunk == 96:
            # Slab 1 of class 96 has 3 free chunks, then new slabs: 2 + reloads.
            accu += -(-(-(-counts[96] // 17) * 17 - 3) // GEOMETRY.chunks_per_slab(96))
            continue
        placements, accu = predict_fresh_class_run(chunk, counts[chunk], accu)
        assert [(b.slab, b.offset) for b in blocks] == placements, f"class {chunk}"
