"""Generated single-thread traces: GLib 2.74.6 and the reference place every block alike.

Hypothesis draws traces (runs of allocations of one size, frees of random live
blocks, chains at random offsets; see ``single_thread_traces``); each example
runs once on the real GLib in a fresh process and once on a fresh reference
allocator in GLib's load-time state, and the normalised layouts must be equal
(SLAB-005, COLOR-002, MAG-005, MAG-006, DEPOT-004, API-008).  The example count is modest
because every example costs a subprocess; the ``slow`` variant explores more.
"""

from __future__ import annotations

import pytest
from fidelity_support import GEOMETRY, both, single_thread_traces
from hypothesis import given, settings

from memslice_conformance.checks import layout
from memslice_conformance.checks.layout import Op

pytestmark = pytest.mark.glib


def _check(trace: tuple[Op, ...], g_slice: str | None) -> None:
    glib, ref = both(trace, g_slice)
    problems = layout.compare(glib, ref, ("glib", "reference"))
    assert not problems, "\n".join(problems)
    always_malloc = g_slice == "always-malloc"
    for block in glib:
        # SIZE-009 routing, as observed by probing GLib's memory.
        if block.size == 0:
            assert block.route == "null"
        elif always_malloc or GEOMETRY.chunk_size(block.size) is None:
            assert block.route == "malloc", block
        else:
            assert block.route == "slab", block


@settings(max_examples=12)
@given(single_thread_traces())
def test_default_mode(trace: tuple[Op, ...]) -> None:
    """Default mode: slab and magazine placement identical."""
    _check(trace, None)


@settings(max_examples=6)
@given(single_thread_traces(max_ops=60))
def test_debug_blocks_has_the_default_layout(trace: tuple[Op, ...]) -> None:
    """DEBUG-012: debug-blocks adds the checker and changes no placement."""
    _check(trace, "debug-blocks")
    assert both(trace, "debug-blocks")[0] == both(trace, None)[0]


@settings(max_examples=6)
@given(single_thread_traces(max_ops=60))
def test_always_malloc_routes_everything_to_malloc(trace: tuple[Op, ...]) -> None:
    """SIZE-009: under always-malloc every non-zero request is a malloc block."""
    _check(trace, "always-malloc")


@pytest.mark.slow
@settings(max_examples=200)
@given(single_thread_traces(max_ops=400))
def test_default_mode_long(trace: tuple[Op, ...]) -> None:
    """The same as test_default_mode, with longer traces and many more examples."""
    _check(trace, None)
