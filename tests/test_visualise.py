"""Pictures and narration: memslice.visualise and ``python -m memslice``.

The pictures are checked as data: each SVG is parsed with xml.etree, and the
elements that carry meaning (one ``chunk`` rect per chunk, the colour offset,
the SlabInfo record, magazine cells) are counted and measured.  Expected
geometry comes from the spec's formulas and GLib's published table
(SIZE-007, SLAB-003, COLOR-002), never from the drawing code.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
import threading
import xml.etree.ElementTree as ET
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memslice import Allocator
from memslice.__main__ import WORKLOADS, main, run_workload
from memslice.config import Settings
from memslice.sizeclass import geometry_for
from memslice.snapshot import (
    AllocatorSnapshot,
    MagazineSnapshot,
    SizeClassSnapshot,
    SlabSnapshot,
    ThreadSnapshot,
    Totals,
)
from memslice.tunables import GLIB_2_74, PROFILES
from memslice.visualise import (
    ChunkNames,
    ChunkState,
    cache_sets,
    cache_sets_svg,
    chunk_labels,
    chunk_states,
    colour_zoom_svg,
    explain,
    magazines_svg,
    ring_svg,
    size_class_table_svg,
    slab_svg,
    snapshot_html,
    totals_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
SLAB_INFO_SIZE = 48  # x86_64: P2ALIGN(32 + 16), SLAB-003


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    return root


def with_class(root: ET.Element, word: str, tag: str = "rect") -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if word in (e.get("class") or "").split()]


def chunks_in(root: ET.Element, state: str) -> list[ET.Element]:
    """Chunk rects (not legend swatches) drawn in ``state``."""
    return [e for e in with_class(root, "chunk") if state in (e.get("class") or "").split()]


def make_slab(
    page: int, page_size: int, chunk: int, colour: int, free: tuple[int, ...]
) -> SlabSnapshot:
    n_chunks = (page_size - SLAB_INFO_SIZE) // chunk
    chunks = [page + colour + k * chunk for k in range(n_chunks)]
    return SlabSnapshot(
        page=page,
        page_size=page_size,
        chunk_size=chunk,
        colour=colour,
        n_chunks=n_chunks,
        n_allocated=n_chunks - len(free),
        free_chunks=tuple(chunks[k] for k in free),
        slab_info=page + page_size - SLAB_INFO_SIZE,
    )


# A hand-built allocator: class 6 (112-byte chunks, 1024-byte pages, 8 chunks,
# padding 80: GLib's appendix row 6) with two slabs, one thread and the depot.
PAGE_A, PAGE_B = 0x7F0000010000, 0x7F0000010400
SLAB_A = make_slab(PAGE_A, 1024, 112, 32, free=(5, 6, 7))
SLAB_B = make_slab(PAGE_B, 1024, 112, 48, free=())
LOADED = MagazineSnapshot((PAGE_B + 48, PAGE_B + 48 + 112))
FREEING = MagazineSnapshot((PAGE_B + 48 + 224,))
DEPOT = (MagazineSnapshot(tuple(PAGE_B + 48 + k * 112 for k in range(3, 7)), stamp=1234),)


def hand_snapshot() -> AllocatorSnapshot:
    geometry = geometry_for(GLIB_2_74)
    classes = []
    for sc in geometry.classes:
        mine = sc.index == 6
        classes.append(
            SizeClassSnapshot(
                index=sc.index,
                chunk_size=sc.chunk_size,
                page_size=sc.page_size,
                chunks_per_slab=sc.chunks_per_slab,
                padding=sc.padding,
                threshold=sc.base_threshold,
                contention_counter=0,
                slabs=(SLAB_A, SLAB_B) if mine else (),
                depot=DEPOT if mine else (),
            )
        )
    return AllocatorSnapshot(
        profile="glib-2.74",
        settings=Settings(),
        initialised=True,
        color_accu=5,
        stamp_counter=0,
        last_stamp=1234,
        mutex_counter=0,
        classes=tuple(classes),
        threads=(ThreadSnapshot(1, "MainThread", {6: (LOADED, FREEING)}),),
        totals=Totals(2048, 2048, 112 * 6, 112 * 3, 112 * 4, 112 * 3, 2 * (1024 - 896), 0, 0),
    )


def test_every_chunk_gets_exactly_one_state() -> None:
    """Free-list chunks are FREE, magazine chunks MAGAZINE, depot chunks DEPOT, others IN_USE."""
    states = chunk_states(hand_snapshot())
    assert len(states) == 16  # two slabs of 8 chunks
    by_state = {s: sorted(a for a, v in states.items() if v is s) for s in ChunkState}
    assert by_state[ChunkState.FREE] == sorted(SLAB_A.free_chunks)
    assert by_state[ChunkState.MAGAZINE] == sorted((*LOADED.chunks, *FREEING.chunks))
    assert by_state[ChunkState.DEPOT] == sorted(DEPOT[0].chunks)
    assert len(by_state[ChunkState.IN_USE]) == 16 - 3 - 3 - 4


def test_chunk_names_follow_carving_not_addresses() -> None:
    """Names are given when a slab is first seen and never change (ChunkNames).

    In one snapshot, a head that still has free chunks is the newest slab
    (SLAB-009), so the hand ring (A head with free chunks, then B) names page B
    ``A`` and page A ``B``.  Seen in order, a slab keeps its letter whatever
    the ring does, and a page released and carved again gets a new letter.
    """
    cls = hand_snapshot().classes[6]
    labels = chunk_labels(cls)
    assert labels[PAGE_B + 48] == "A0" and labels[PAGE_B + 48 + 7 * 112] == "A7"
    assert labels[PAGE_A + 32 + 112] == "B1"

    def ring(*slabs: SlabSnapshot) -> SizeClassSnapshot:
        return dataclasses.replace(cls, slabs=slabs)

    names = ChunkNames()
    names.see_class(ring(SLAB_A))  # page A carved first
    names.see_class(ring(SLAB_B, SLAB_A))
    names.see_class(ring(SLAB_A, SLAB_B))  # the ring turned: nobody is renamed
    assert names.slabs(ring(SLAB_A, SLAB_B)) == {PAGE_A: "A", PAGE_B: "B"}
    names.see_class(ring(SLAB_B))  # page A released ...
    names.see_class(ring(SLAB_A, SLAB_B))  # ... and carved again: a new slab, C
    assert names.chunks(ring(SLAB_A, SLAB_B))[PAGE_A + 32] == "C0"
    assert names.chunks(ring(SLAB_A, SLAB_B))[PAGE_B + 48] == "B0"


def test_slab_picture_is_to_scale() -> None:
    """One rect per chunk, x proportional to the byte offset (SLAB-003, COLOR-002)."""
    root = parse(slab_svg(SLAB_A, chunk_states(hand_snapshot())))
    outline = with_class(root, "page-outline")[0]
    x0, width = float(outline.get("x", "")), float(outline.get("width", ""))
    scale = width / 1024
    chunks = with_class(root, "chunk")
    assert len(chunks) == 8
    for k, rect in enumerate(chunks):
        assert float(rect.get("x", "")) == pytest.approx(x0 + (32 + 112 * k) * scale, abs=0.01)
        assert float(rect.get("width", "")) == pytest.approx(112 * scale, abs=0.01)
    colour = with_class(root, "colour-offset")[0]
    assert float(colour.get("width", "")) == pytest.approx(32 * scale, abs=0.01)
    info = with_class(root, "slab-info")[0]
    assert float(info.get("x", "")) == pytest.approx(x0 + (1024 - 48) * scale, abs=0.01)
    tail = with_class(root, "tail")[0]
    # 1024 - 48 - 32 - 8 * 112 = 48 bytes unused between the last chunk and SlabInfo.
    assert float(tail.get("width", "")) == pytest.approx(48 * scale, abs=0.01)
    assert len(chunks_in(root, "free")) == 3
    assert len(chunks_in(root, "in-use")) == 5  # A0..A4: none of slab A is cached


def test_slab_picture_without_states_marks_only_the_free_list() -> None:
    root = parse(slab_svg(SLAB_A))
    assert len(chunks_in(root, "free")) == 3
    assert len(chunks_in(root, "in-use")) == 5


@given(
    st.sampled_from(geometry_for(GLIB_2_74).classes),
    st.data(),
)
def test_any_slab_geometry_draws_well_formed_and_proportional(
    sc: object, data: st.DataObject
) -> None:
    """For every size class and colour, the drawing keeps offsets proportional."""
    from memslice.sizeclass import SizeClass

    assert isinstance(sc, SizeClass)
    colour = data.draw(st.sampled_from(range(0, max(sc.padding, 1), 16)))
    n_free = data.draw(st.integers(0, sc.chunks_per_slab))
    slab = make_slab(1 << 40, sc.page_size, sc.chunk_size, colour, tuple(range(n_free)))
    root = parse(slab_svg(slab))
    chunks = with_class(root, "chunk")
    assert len(chunks) == sc.chunks_per_slab
    xs = [float(c.get("x", "")) for c in chunks]
    offsets = [int(c.get("data-offset", "")) for c in chunks]
    assert offsets == [colour + k * sc.chunk_size for k in range(sc.chunks_per_slab)]
    outline = with_class(root, "page-outline")[0]
    left = float(outline.get("x", ""))
    scale = float(outline.get("width", "")) / sc.page_size
    for offset, x in zip(offsets, xs, strict=True):
        assert x == pytest.approx(left + offset * scale, abs=0.01)
    assert len(chunks_in(root, "free")) == n_free


def test_ring_picture_follows_ring_order_and_closes_the_ring() -> None:
    """Slabs are drawn head first; a back arrow closes the ring (SLAB-005)."""
    snap = hand_snapshot()
    root = parse(ring_svg(snap.classes[6], chunk_states(snap)))
    groups = with_class(root, "slab", tag="g")
    assert [int(g.get("data-page", ""), 16) for g in groups] == [PAGE_A, PAGE_B]
    assert len(with_class(root, "ring-back", tag="path")) == 1
    assert len(with_class(root, "chunk")) == 16


def test_long_rings_are_elided_not_dropped() -> None:
    slabs = tuple(make_slab((1 << 40) + i * 1024, 1024, 112, 0, ()) for i in range(30))
    cls = SizeClassSnapshot(6, 112, 1024, 8, 80, 14, 0, slabs, ())
    root = parse(ring_svg(cls, max_slabs=6))
    assert len(with_class(root, "slab", tag="g")) == 5
    elided = with_class(root, "elided", tag="text")
    assert elided and "25 more" in (elided[0].text or "")


def test_magazine_picture_shows_both_magazines_and_the_depot() -> None:
    """Loaded and freeing magazines per thread (MAG-001), depot with stamps (DEPOT-001)."""
    root = parse(magazines_svg(hand_snapshot(), 6))
    mags = with_class(root, "magazine", tag="g")
    counts = [int(g.get("data-count", "")) for g in mags]
    assert counts == [LOADED.count, FREEING.count, DEPOT[0].count]
    cells = with_class(root, "cell")
    assert [int(c.get("data-address", ""), 16) for c in cells] == [
        *LOADED.chunks,
        *FREEING.chunks,
        *DEPOT[0].chunks,
    ]
    stamps = [t.text for t in with_class(root, "stamp", tag="text")]
    assert stamps == ["1234"]


def test_size_class_table_matches_glib_appendix() -> None:
    """Rows and page bars agree with GLib 2.74's published x86_64 table (SIZE-007)."""
    root = parse(size_class_table_svg(geometry_for(GLIB_2_74)))
    rows = with_class(root, "size-class", tag="g")
    assert len(rows) == 63
    # (chunk, page, chunks per slab, padding, threshold) for GLib rows 0, 6, 31, 62.
    glib_rows = {
        0: (16, 256, 13, 0, 51),
        6: (112, 1024, 8, 80, 14),
        31: (512, 8192, 15, 464, 4),
        62: (1008, 8192, 8, 80, 4),
    }
    for ix, expected in glib_rows.items():
        texts = [t.text for t in rows[ix].iter(f"{SVG}text")]
        assert tuple(int(t or "") for t in texts[1:]) == expected
        bars = {
            (r.get("class") or ""): int(r.get("data-bytes", ""))
            for r in rows[ix]
            if r.tag == f"{SVG}rect"
        }
        chunk, page, n, pad, _ = expected
        assert bars == {"chunks": n * chunk, "padding": pad, "slab-info": 48}
        assert n * chunk + pad + 48 == page


def test_snapshot_html_holds_every_busy_class() -> None:
    text = snapshot_html(hand_snapshot(), geometry_for(GLIB_2_74))
    assert text.startswith("<!DOCTYPE html>")
    assert 'id="class-6"' in text
    svgs = re.findall(r"<svg .*?</svg>", text, flags=re.S)
    assert len(svgs) == 1 + 1 + 2 + 1 + 1  # totals, ring, two slabs, magazines, table
    for svg in svgs:
        parse(svg)
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "element ids repeat across the inlined pictures"


# ---------------------------------------------------------------- live allocator
def test_live_first_allocation_is_narrated_layer_by_layer(allocator: Allocator) -> None:
    """alloc(50): a reload of threshold(64) = 25 chunks needs ceil(25 / 15) = 2 slabs."""
    before = allocator.snapshot()
    allocator.alloc(50)
    lines = explain(before, allocator.snapshot())
    new_slabs = [line for line in lines if line.startswith("slab:") and "new slab page" in line]
    assert len(new_slabs) == 2
    assert any("loaded 0 -> 24" in line for line in lines)
    assert explain(allocator.snapshot(), allocator.snapshot()) == []


def test_live_pictures_count_what_the_program_holds(allocator: Allocator) -> None:
    held = [allocator.alloc(100) for _ in range(20)]
    snap = allocator.snapshot()
    states = chunk_states(snap)
    assert all(states[a] is ChunkState.IN_USE for a in held)
    cls = snap.classes[6]
    root = parse(ring_svg(cls, states))
    assert len(chunks_in(root, "in-use")) == 20
    # The loaded magazine holds the rest of the 14-chunk reloads: 2 * 14 - 20 = 8.
    assert len(chunks_in(root, "in-magazine")) == 8


def test_thread_exit_moves_magazines_to_the_depot_picture(allocator: Allocator) -> None:
    """A thread's magazines of >= 4 chunks go to the depot at exit (EXIT-002)."""

    def worker() -> None:
        blocks = [allocator.alloc(40) for _ in range(100)]
        for b in blocks:
            allocator.free1(40, b)
        allocator.thread_exit()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    root = parse(magazines_svg(allocator.snapshot(), 2))
    depot = [g for g in with_class(root, "magazine", tag="g") if "in-depot" in g.get("class", "")]
    assert depot and sum(int(g.get("data-count", "")) for g in depot) >= 100


# ---------------------------------------------------------------- the CLI
def test_demo_prints_each_layer() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["demo"]) == 0
    text = out.getvalue()
    for layer in ("slab:", "magazine:", "depot:", "colour:"):
        assert f"- {layer}" in text


@pytest.mark.parametrize(
    ("name", "profile"),
    [(name, "glib-2.74") for name in sorted(WORKLOADS)]
    # seed-blocks has no slab class in the minimal profile (50 > 48 bytes): 10 000
    # malloc blocks would only slow the run down without reaching another layer.
    + [(name, "minimal") for name in sorted(WORKLOADS) if name != "seed-blocks"],
)
def test_every_workload_runs_and_leaves_a_consistent_allocator(name: str, profile: str) -> None:
    """Every workload runs on both profiles and passes the consistency checker (INTRO-003)."""
    ctx, results = run_workload(name, PROFILES[profile])
    assert len(results) == len(WORKLOADS[name].steps)
    assert any(r.narration for r in results)
    ctx.allocator.check()


@pytest.mark.parametrize("suffix", [".svg", ".html"])
def test_show_writes_a_picture(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"snap{suffix}"
    with redirect_stdout(io.StringIO()):
        assert main(["show", "--workload", "mixed", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    if suffix == ".svg":
        assert len(with_class(parse(text), "chunk")) > 0
    else:
        assert text.count("<svg ") >= 3


def test_show_rejects_other_formats(tmp_path: Path) -> None:
    assert main(["show", "--workload", "mixed", "--out", str(tmp_path / "x.png")]) == 2


def test_show_draws_the_table_or_the_class_of_a_size(tmp_path: Path) -> None:
    """--table gives the size-class table; --size N the class serving N bytes (SIZE-005)."""
    table, one = tmp_path / "t.svg", tmp_path / "c.svg"
    with redirect_stdout(io.StringIO()):
        assert main(["show", "--workload", "mixed", "--table", "--out", str(table)]) == 0
        assert main(["show", "--workload", "mixed", "--size", "500", "--out", str(one)]) == 0
    assert len(with_class(parse(table.read_text()), "size-class", tag="g")) == 63
    # 500 bytes round up to the 512-byte class, whose slab pages are 8192 bytes (GLib row 31).
    chunk_sizes = {e.get("data-page-size") for e in with_class(parse(one.read_text()), "slab", "g")}
    assert chunk_sizes == {"8192"}


def test_show_refuses_a_size_without_a_class(tmp_path: Path) -> None:
    """Sizes over 1008 bytes go to malloc and have no class to draw (SIZE-009)."""
    with redirect_stdout(io.StringIO()):
        code = main(
            ["show", "--workload", "mixed", "--size", "2000", "--out", str(tmp_path / "x.svg")]
        )
    assert code == 2


def test_contention_workload_grows_and_shrinks_the_threshold() -> None:
    """cc contended reloads give threshold max(51, cc * 64 / 16); 12 quiet ones take one off.

    (CONT-002, CONT-004; the base threshold 51 of 16-byte chunks is GLib's appendix row 0.)
    """
    _, (grow, shrink) = run_workload("contention")
    assert grow.after.classes[0].contention_counter == 20
    assert grow.after.classes[0].threshold == max(51, 20 * 64 // 16)
    loaded, _ = grow.after.threads[0].magazines[0]
    assert loaded.count == grow.after.classes[0].threshold - 1  # one reload, one pop
    assert shrink.after.classes[0].contention_counter == 18
    assert any(line.startswith("contention: class 0") for line in grow.narration)
    root = parse(magazines_svg(grow.after, 0))
    assert "threshold 80" in "".join(root.itertext())


def test_totals_bar_is_to_scale_and_adds_up() -> None:
    """Slab segments add up to the bytes in slab pages (INTRO-002), widths proportional."""
    snap = hand_snapshot()
    root = parse(totals_svg(snap))
    segments = {(e.get("class") or "").split()[1]: e for e in with_class(root, "segment")}
    sizes = {name: int(e.get("data-bytes", "")) for name, e in segments.items()}
    slab_parts = ("in-use", "in-magazines", "in-depot", "free-in-slabs", "overhead")
    assert sum(sizes[n] for n in slab_parts) == snap.totals.in_slabs == 2048
    width_per_byte = {
        n: float(segments[n].get("width", "")) / sizes[n] for n in slab_parts if sizes[n]
    }
    assert max(width_per_byte.values()) == pytest.approx(min(width_per_byte.values()), rel=0.01)


# ---------------------------------------------------------------- pictures that teach
def test_free_list_is_drawn_as_arrows_through_the_free_chunks() -> None:
    """One arrow from the head label, then one per link, chunk centre to chunk centre,
    in pop order (SLAB-010)."""
    slab = make_slab(PAGE_A, 1024, 112, 32, free=(6, 2, 7))
    root = parse(slab_svg(slab))
    outline = with_class(root, "page-outline")[0]
    left, scale = float(outline.get("x", "")), float(outline.get("width", "")) / 1024
    links = with_class(root, "free-link", tag="path")
    assert len(links) == 1 + 2
    assert int(links[0].get("data-to", ""), 16) == slab.free_chunks[0]
    pairs = [(int(p.get("data-from", ""), 16), int(p.get("data-to", ""), 16)) for p in links[1:]]
    assert pairs == list(itertools.pairwise(slab.free_chunks))
    for path, (here, there) in zip(links[1:], pairs, strict=True):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
        start_x, end_x = numbers[0], numbers[-2]
        assert start_x == pytest.approx(left + (here - PAGE_A + 56) * scale, abs=0.01)
        assert end_x == pytest.approx(left + (there - PAGE_A + 56) * scale, abs=0.01)
    assert not with_class(
        parse(slab_svg(make_slab(PAGE_A, 1024, 112, 32, ()))), "free-link", tag="path"
    )


def test_ring_labels_say_where_the_chunks_are() -> None:
    """Not "8/8 alloc" for a slab whose chunks sit in magazines and the depot."""
    snap = hand_snapshot()
    root = parse(ring_svg(snap.classes[6], chunk_states(snap)))
    places = [t.text for t in with_class(root, "places", tag="text")]
    # Slab A: A0..A4 held, 3 free.  Slab B: 2 + 1 in the thread's magazines, 4 in
    # the depot, 1 held by the program.
    assert places == ["5 used, 3 free, c=32", "1 used, 3 mag, 4 depot, c=48"]
    assert "alloc" not in ET.tostring(root, encoding="unicode")


def _colour_run() -> tuple[list[AllocatorSnapshot], int, int]:
    ctx, results = run_workload("colour")
    geometry = ctx.allocator.geometry
    snapshots = [results[0].before, *(r.after for r in results)]
    return (
        snapshots,
        geometry.class_index(geometry.p2align(1000)),
        geometry.class_index(geometry.p2align(464)),
    )


def test_colour_zoom_draws_offsets_to_scale_and_the_wrap() -> None:
    """Offsets climb by 16 and wrap inside the padding (COLOR-002, COLOR-005), to scale."""
    snapshots, ix1008, _ = _colour_run()
    names = ChunkNames()
    for snap in snapshots[:2]:
        names.see(snap)
    cls = snapshots[1].classes[ix1008]
    root = parse(colour_zoom_svg(cls, names))
    zoom = with_class(root, "zoom", tag="g")[0]
    scale = float(zoom.get("data-scale", ""))
    rows = with_class(root, "zoom-row", tag="g")
    colours = [int(g.get("data-colour", "")) for g in rows]
    padding = geometry_for(GLIB_2_74).classes[ix1008].padding
    assert padding == 80
    assert colours == [(k * 16) % padding for k in range(8)]  # a fresh accumulator
    assert [g.get("data-slab") for g in rows] == list("ABCDEFGH")
    left = float(with_class(root, "first-chunk")[0].get("x", ""))  # slab A: colour 0
    for row, colour in zip(rows, colours, strict=True):
        first = with_class(row, "first-chunk")[0]
        assert float(first.get("x", "")) == pytest.approx(left + colour * scale, abs=0.01)
        pink = with_class(row, "colour-offset")
        assert (float(pink[0].get("width", "")) if pink else 0) == pytest.approx(
            colour * scale, abs=0.01
        )
    assert colour * scale > 40 if (colour := max(colours)) else False  # not a sliver
    wraps = with_class(root, "wrap", tag="text")
    assert len(wraps) == 1 and len(with_class(root, "wrap-arrow", tag="path")) == 1
    lines = [int(e.get("data-offset", "")) for e in with_class(root, "cache-line", tag="line")]
    assert lines == [0, 64, 128]


def test_cache_set_strips_count_what_w7_measures() -> None:
    """Sets hit by chunk starts: (address // 64) % 64, counted here from the spec's
    layout (SLAB-003, COLOR-002) and compared with the picture."""
    snapshots, _, ix464 = _colour_run()
    cls = snapshots[-1].classes[ix464]
    assert len(cls.slabs) == 40  # 320 objects, 8 per 4096-byte page
    sc = geometry_for(GLIB_2_74).classes[ix464]

    def sets(coloured: bool) -> list[int]:
        counts = [0] * 64
        for slab in cls.slabs:
            base = slab.page + (slab.colour if coloured else 0)
            for k in range(sc.chunks_per_slab):
                counts[(base + k * sc.chunk_size) // 64 % 64] += 1
        return counts

    plain, coloured = sets(False), sets(True)
    assert cache_sets(cls, coloured=False) == plain and cache_sets(cls) == coloured
    # The numbers the colour page's caption gives.
    assert (sum(map(bool, plain)), max(plain)) == (8, 40)
    assert (sum(map(bool, coloured)), max(coloured)) == (48, 8)
    root = parse(cache_sets_svg(cls))
    strips = with_class(root, "cache-strip", tag="g")
    for strip, expected in zip(strips, (plain, coloured), strict=True):
        cells = with_class(strip, "cache-set")
        assert [int(c.get("data-count", "")) for c in cells] == expected
        assert int(strip.get("data-sets-hit", "")) == sum(map(bool, expected))


def test_thread_exit_before_and_after_keep_chunk_names() -> None:
    """The worker's freeing magazine before its exit is the depot's head after (EXIT-002),
    drawn with the same chunk names."""
    ctx, results = run_workload("thread-exit-steps")
    geometry = ctx.allocator.geometry
    ix = geometry.class_index(geometry.p2align(40))
    names = ChunkNames().see(results[0].before)
    pictures = []
    for result in results:
        names.see(result.after)
        pictures.append(parse(magazines_svg(result.after, ix, names=names)))
    before, after, _ = pictures

    def cells(root: ET.Element) -> list[list[str]]:
        return [
            [c.get("data-label", "") for c in with_class(g, "cell")]
            for g in with_class(root, "magazine", tag="g")
        ]

    loaded, freeing, *depot_before = cells(before)
    depot_after = cells(after)
    assert len(depot_after) == len(depot_before) + 2
    assert depot_after[0] == freeing and depot_after[1] == loaded
    assert "worker" not in {t.name for t in results[1].after.threads}
    assert all("?" not in label for mag in depot_after for label in mag)


def test_released_slab_pages_stay_mapped_while_their_os_page_is_shared() -> None:
    """What the depot page says about "mapped, not in a slab" after the trim (PAGE-003)."""
    _, results = run_workload("depot-trim")
    before, after = results[2].after.totals, results[3].after.totals
    assert before.in_slabs - after.in_slabs == 12 * 1024  # twelve 1 KiB slab pages released
    assert before.mapped - after.mapped == 4096  # one OS page returned
    assert after.mapped - after.in_slabs == 9216
    root = parse(totals_svg(results[3].after))
    segment = with_class(root, "not-in-slabs")[0]
    assert int(segment.get("data-bytes", "")) == 9216
    assert "mapped, not in a slab: 9216 B" in ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_live_picture_parses_and_chunks_sit_at_their_offsets(name: str) -> None:
    """Every ring and magazine picture of every workload's last state parses, and each
    chunk rect sits at colour + k * chunk_size on its page's scale (SLAB-003)."""
    _, results = run_workload(name)
    snap = results[-1].after
    states = chunk_states(snap)
    names = ChunkNames().see(snap)
    for cls in snap.classes:
        if not cls.slabs:
            continue
        root = parse(ring_svg(cls, states, names=names, max_slabs=3))
        for group in with_class(root, "slab", tag="g"):
            outline = with_class(group, "page-outline")[0]
            left = float(outline.get("x", ""))
            scale = float(outline.get("width", "")) / cls.page_size
            slab = next(s for s in cls.slabs if s.page == int(group.get("data-page", ""), 16))
            chunks = with_class(group, "chunk")
            assert len(chunks) == slab.n_chunks == cls.chunks_per_slab
            for k, rect in enumerate(chunks):
                offset = slab.colour + k * cls.chunk_size
                assert float(rect.get("x", "")) == pytest.approx(left + offset * scale, abs=0.01)
        parse(magazines_svg(snap, cls.index, names=names))
