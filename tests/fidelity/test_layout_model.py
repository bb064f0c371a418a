"""The layout tools themselves: trace validation, normalisation, comparison, probing.

"Test the tester": the differential tests are only worth something if the
comparison rejects allocators that place blocks differently, so the last tests
run GLib against deliberately unfaithful reference configurations and require
a reported difference.
"""

from __future__ import annotations

import ctypes

import pytest
from fidelity_support import GlibRunError, run_glib, run_reference, single_thread_traces
from hypothesis import given, settings

import memslice
from memslice.config import SliceConfig
from memslice.tunables import GLIB_2_74
from memslice_conformance.checks import layout
from memslice_conformance.checks.layout import (
    MAIN,
    Alloc,
    Free,
    FreeChain,
    NormBlock,
    Observation,
    Op,
    ThreadExit,
    ThreadStart,
    TraceError,
)


@pytest.mark.parametrize(
    "trace",
    [
        [Free(MAIN, 0)],
        [Alloc(MAIN, 8), Free(MAIN, 0), Free(MAIN, 0)],
        [Alloc("t", 8)],
        [ThreadStart("t"), ThreadStart("t")],
        [ThreadExit(MAIN)],
        [ThreadStart(MAIN)],
        [Alloc(MAIN, 16), Alloc(MAIN, 24), FreeChain(MAIN, (0, 1), 0)],
        [Alloc(MAIN, 16), FreeChain(MAIN, (0,), 9)],
        [Alloc(MAIN, 16), FreeChain(MAIN, (0, 0), 0)],
        [Alloc(MAIN, -1)],
    ],
)
def test_check_trace_rejects_unrunnable_traces(trace: list[Op]) -> None:
    with pytest.raises(TraceError):
        layout.check_trace(trace)


def test_check_trace_returns_block_sizes() -> None:
    trace = [Alloc(MAIN, 5), ThreadStart("t"), Alloc("t", 7), Free(MAIN, 1), ThreadExit("t")]
    assert layout.check_trace(trace) == (5, 7)


@settings(max_examples=30)
@given(single_thread_traces())
def test_traces_survive_json(trace: tuple[Op, ...]) -> None:
    assert layout.trace_from_json(layout.trace_to_json(trace)) == trace
    layout.check_trace(trace)  # the strategy only draws runnable traces


def test_slab_geometry_matches_the_spec_table_rows() -> None:
    """SIZE-007 rows checked against GLib (spec appendix): page, chunks, padding."""
    g = layout.X86_64
    assert g.max_chunk == 1008
    rows = {16: (256, 13, 0), 48: (512, 9, 32), 112: (1024, 8, 80), 1008: (8192, 8, 80)}
    for chunk, row in rows.items():
        assert (g.page_size(chunk), g.chunks_per_slab(chunk), g.padding(chunk)) == row
    assert [g.threshold(c) for c in (16, 32, 48, 64, 128, 256, 512)] == [51, 51, 34, 25, 12, 6, 4]
    assert g.chunk_size(0) is None and g.chunk_size(1009) is None and g.chunk_size(1) == 16


def test_normalise_ignores_page_placement_but_keeps_offsets() -> None:
    trace = [Alloc(MAIN, 100), Alloc(MAIN, 100), Alloc(MAIN, 100), Alloc(MAIN, 5000)]
    routes: tuple[layout.Route, ...] = ("slab", "slab", "slab", "malloc")
    one = Observation((0x10000 + 32, 0x10000 + 144, 0x50400 + 48, 77), routes)
    two = Observation((0x90400 + 32, 0x90400 + 144, 0x20000 + 48, 99), routes)
    assert (
        layout.normalise(trace, one)
        == layout.normalise(trace, two)
        == (
            NormBlock(100, "slab", 112, 0, 32),
            NormBlock(100, "slab", 112, 0, 144),
            NormBlock(100, "slab", 112, 1, 48),
            NormBlock(5000, "malloc"),
        )
    )
    three = Observation((0x10000 + 32, 0x10000 + 256, 0x50400 + 48, 77), routes)
    problems = layout.compare(layout.normalise(trace, one), layout.normalise(trace, three))
    assert problems[0].startswith("first difference at block 1")
    assert any("strides" in p for p in problems)


def test_class_figures() -> None:
    blocks = [
        NormBlock(100, "slab", 112, 0, 32),
        NormBlock(100, "slab", 112, 0, 144),
        NormBlock(100, "slab", 112, 1, 48),
        NormBlock(100, "slab", 112, 0, 144),
    ]
    fig = layout.class_figures(blocks)[112]
    assert fig.colours == (32, 48)
    assert fig.chunks_seen == (2, 1)
    assert fig.strides == (112,)
    assert fig.reuses == (3,)
    assert fig.new_slabs == (0, 2)


def test_probe_route_recognises_a_slab_info_record() -> None:
    """SLAB-003: a fake 1024-byte slab page with a well-formed SlabInfo is "slab";
    the same page with a broken record, and any size without a class, are not."""
    raw = ctypes.create_string_buffer(3 * 1024)
    page = (ctypes.addressof(raw) + 1023) & ~1023
    info = page + 1024 - 48
    words = (ctypes.c_uint64 * 4).from_address(info)
    words[0], words[1], words[2], words[3] = page + 32 + 112, 1, info, info
    assert layout.probe_route(page + 32, 100) == "slab"
    assert layout.probe_route(page + 32, 5000) == "malloc"
    assert layout.probe_route(0, 0) == "null"
    words[1] = 9  # more chunks allocated than a slab of 112 holds
    assert layout.probe_route(page + 32, 100) == "malloc"
    words[1], words[2] = 1, info + 8
    assert layout.probe_route(page + 32, 100) == "malloc"


def test_execute_trace_runs_operations_on_their_named_threads() -> None:
    """Operations run on the thread they name; a ThreadExit runs the exit hook there."""
    seen: list[tuple[str, str]] = []

    class Recorder:
        def alloc(self, size: int) -> int:
            import threading

            seen.append(("alloc", threading.current_thread().name))
            return 0

        def free1(self, size: int, address: int) -> None: ...

        def free_chain_with_offset(self, size: int, head: int, next_offset: int) -> None: ...

        def write_pointer(self, address: int, value: int) -> None: ...

        def thread_exiting(self) -> None:
            import threading

            seen.append(("exit", threading.current_thread().name))

    trace = [Alloc(MAIN, 0), ThreadStart("t"), Alloc("t", 0), ThreadExit("t"), Alloc(MAIN, 0)]
    layout.execute_trace(trace, Recorder())
    main = __import__("threading").current_thread().name
    assert seen == [("alloc", main), ("alloc", "trace-t"), ("exit", "trace-t"), ("alloc", main)]


# --------------------------------------------------------------------------- test the tester

TRACE: list[Op] = [Alloc(MAIN, s) for s in (100,) * 30 + (40,) * 20] + [
    Free(MAIN, 3),
    Free(MAIN, 4),
    Alloc(MAIN, 100),
]


@pytest.mark.glib
def test_comparison_rejects_a_reference_without_glibs_load_state() -> None:
    """Without reproduce_glib_load_state the colours are off by two slabs."""
    glib = layout.normalise(TRACE, run_glib(TRACE)[0])
    bare = layout.normalise(TRACE, run_reference(TRACE, load_state=False)[0])
    problems = layout.compare(glib, bare)
    assert any("colours" in p for p in problems), problems


@pytest.mark.glib
@pytest.mark.parametrize(
    ("key", "value", "symptom"),
    [
        (SliceConfig.COLOR_INCREMENT, 0, "colours"),
        (SliceConfig.BYPASS_MAGAZINES, 1, "first difference"),
    ],
)
def test_comparison_rejects_unfaithful_configurations(
    key: SliceConfig, value: int, symptom: str
) -> None:
    """An allocator that colours differently, or skips the magazines (so freed
    chunks come back from the slab free list, not LIFO through magazines), is
    caught."""
    glib = layout.normalise(TRACE, run_glib(TRACE)[0])
    allocator = memslice.Allocator(GLIB_2_74, environ={})
    try:
        allocator.set_config(key, value)  # before first use: takes effect
        layout.reproduce_glib_load_state(allocator)
        observation = layout.execute_trace(TRACE, layout.ReferenceBackend(allocator))
    finally:
        allocator.close()
    problems = layout.compare(glib, layout.normalise(TRACE, observation))
    assert any(symptom in p for p in problems), problems


def test_a_missing_glib_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fidelity tests never skip: without libglib the runner fails with the
    loader's error, and run_glib raises it."""
    monkeypatch.setenv("MEMSLICE_GLIB_LIBRARY", "libglib-does-not-exist.so.0")
    with pytest.raises(GlibRunError, match="libglib-does-not-exist"):
        run_glib([Alloc(MAIN, 8)])
