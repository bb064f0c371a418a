"""GLib 2.74.6's state when a program starts, measured, and reproduced by the reference.

GLib's library constructors allocate two 96-byte slices on the loading thread
(CONF-015), so class 96 starts with two slabs and a 17-chunk magazine of which
two chunks are taken, and the global colour accumulator starts at 2 (CONF-016).
Each test measures that on the real GLib (a fresh process per trace) and holds
the reference, brought to the same state by ``reproduce_glib_load_state``, to
the same normalised layout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fidelity_support import (
    GEOMETRY,
    GLIB_START_ACCU,
    assert_same_layout,
    colour,
    predict_fresh_class_run,
    run_glib,
)

from memslice_conformance.checks import layout
from memslice_conformance.checks.layout import MAIN, Alloc, ThreadExit, ThreadStart

pytestmark = pytest.mark.glib


def test_main_thread_continues_the_constructors_class_96_magazine() -> None:
    """CONF-016: the first 96-byte alloc is chunk 2 of the first slab; 15 chunks
    (slab 0 chunks 2..9, slab 1 chunks 0..6) come from the load-time magazine,
    then a reload takes slab 1's last three chunks before opening slab 2."""
    trace = [Alloc(MAIN, 96)] * 19
    observed = layout.normalise(trace, run_glib(trace)[0])
    expected = [(0, 96 * k) for k in range(2, 10)] + [(1, 96 * k) for k in range(10)]
    expected.append((2, colour(GLIB_START_ACCU, 96)))
    assert [(b.slab, b.offset) for b in observed] == expected
    assert all(b.route == "slab" for b in observed)
    assert_same_layout(trace)


def test_new_thread_reloads_from_the_second_load_time_slab() -> None:
    """CONF-019: a new thread's first 96-byte reload starts at chunk 7 of the
    load-time slab 1 (offset 672): the main thread's magazine holds chunks 0..6."""
    trace = [ThreadStart("t1"), Alloc("t1", 96), Alloc("t1", 96), ThreadExit("t1"), Alloc(MAIN, 96)]
    observed = layout.normalise(trace, run_glib(trace)[0])
    assert [(b.slab, b.offset) for b in observed] == [(0, 672), (0, 768), (1, 192)]
    assert_same_layout(trace)


def test_only_class_96_was_touched_at_load() -> None:
    """CONF-018: one block of every class, in class order, on the main
    thread: each class other than 96 opens a fresh slab whose colour follows
    one global accumulator that started at 2 and grew by one per coloured slab."""
    chunks = [GEOMETRY.p2alignment * (ix + 1) for ix in range(63)]
    trace = [Alloc(MAIN, chunk) for chunk in chunks]
    observed = layout.normalise(trace, run_glib(trace)[0])
    accu = GLIB_START_ACCU
    for chunk, block in zip(chunks, observed, strict=True):
        assert block.route == "slab" and block.slab == 0, block
        if chunk == 96:
            assert block.offset == 2 * 96  # two chunks live since load
            continue
        placements, accu = predict_fresh_class_run(chunk, 1, accu)
        assert block.offset == placements[0][1], f"class {chunk}: colour of slab 0"
    assert_same_layout(trace)


def test_a_new_thread_sees_the_same_fresh_classes() -> None:
    """CONF-018: a thread other than the loading one also finds every class but 96 untouched."""
    trace = [ThreadStart("t1"), Alloc("t1", 112), Alloc("t1", 48), ThreadExit("t1")]
    observed = layout.normalise(trace, run_glib(trace)[0])
    first, accu = predict_fresh_class_run(112, 1, GLIB_START_ACCU)
    second, _ = predict_fresh_class_run(48, 1, accu)
    assert [b.offset for b in observed] == [first[0][1], second[0][1]] == [32, 0]
    assert_same_layout(trace)


C_PROGRAM = r"""
#include <stdio.h>
void *g_slice_alloc(unsigned long);
int main(void) {
    for (int i = 0; i < 19; i++) printf("%lu\n", (unsigned long) g_slice_alloc(96));
    printf("%lu\n", (unsigned long) g_slice_alloc(112));
    return 0;
}
"""


def test_a_c_program_starts_in_the_same_state_as_python(tmp_path: Path) -> None:
    """Loading GLib through ctypes changes nothing: a C program linked against it
    places its first 96- and 112-byte slices exactly like the Python runner (CONF-018)."""
    source = tmp_path / "first.c"
    source.write_text(C_PROGRAM)
    binary = tmp_path / "first"
    subprocess.run(
        ["gcc", "-O1", "-o", str(binary), str(source), "-l:libglib-2.0.so.0"], check=True
    )
    addresses = [
        int(line)
        for line in subprocess.run(
            [str(binary)],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        ).stdout.split()
    ]
    trace = [Alloc(MAIN, 96)] * 19 + [Alloc(MAIN, 112)]
    # The C program's memory cannot be probed from here; its blocks are all
    # slab blocks by routing (SIZE-009), which the Python run confirms by probing.
    from_c = layout.normalise(trace, layout.Observation(tuple(addresses), ("slab",) * 20))
    from_python = layout.normalise(trace, run_glib(trace)[0])
    assert from_c == from_python
    assert from_c[-1].offset == colour(
        GLIB_START_ACCU + 2, 112
    )  # the reload at block 15 opened 2 slabs


LOAD_ON_A_THREAD = r"""
import ctypes, os, threading, time
box = {}
loader = threading.Thread(target=lambda: box.setdefault("g", ctypes.CDLL("libglib-2.0.so.0")))
loader.start()
loader.join()
while os.path.exists(f"/proc/self/task/{loader.native_id}"):
    time.sleep(0.001)  # until the pthread's key destructors have run
g = box["g"]
g.g_slice_alloc.restype = ctypes.c_void_p
g.g_slice_alloc.argtypes = [ctypes.c_size_t]
print(*[g.g_slice_alloc(96) for _ in range(17)])
"""


def test_loading_on_a_thread_that_exits_leaves_the_magazine_in_the_depot() -> None:
    """CONF-019, EXIT-002: the load-time magazine belongs to the loading thread;
    if that thread ends, its 15 chunks go to the depot and the next thread's
    first reload of class 96 gets them, in order, before slab 1's chunks 7..8."""
    import threading

    from fidelity_support import glib_env

    import memslice
    from memslice.tunables import GLIB_2_74

    done = subprocess.run(
        [sys.executable, "-c", LOAD_ON_A_THREAD],
        env=glib_env(None),
        capture_output=True,
        text=True,
        check=True,
    )
    addresses = tuple(int(a) for a in done.stdout.split())
    trace = [Alloc(MAIN, 96)] * 17
    glib = layout.normalise(trace, layout.Observation(addresses, ("slab",) * 17))
    expected = [(0, 96 * k) for k in range(2, 10)] + [(1, 96 * k) for k in range(9)]
    assert [(b.slab, b.offset) for b in glib] == expected

    allocator = memslice.Allocator(GLIB_2_74, environ={})
    try:

        def load() -> None:
            layout.reproduce_glib_load_state(allocator)
            allocator.thread_exit()

        loader = threading.Thread(target=load)
        loader.start()
        loader.join()
        observed = layout.execute_trace(trace, layout.ReferenceBackend(allocator))
    finally:
        allocator.close()
    assert layout.normalise(trace, observed) == glib
