#!/usr/bin/env python3
"""Fast-path benchmark: a magazine-hit ``alloc`` + ``free1`` pair, side by side.

Theory of operation
-------------------
Issue 2 sets a target for the reference's fast path (API-001, API-013,
MAG-005): a magazine-hit ``alloc(n)`` followed by ``free1(n, p)`` must cost at
most half of a ctypes call pair into the real GLib's ``g_slice_alloc`` /
``g_slice_free1``, and stay within 3x of the bare cost of two Python method
calls (the floor for any pure-Python allocator).  Four loops run in one
process, interleaved round by round so that machine noise hits all of them
alike::

    round r:  [reference] [glib ctypes] [bare ctypes] [python pair]  (order rotates)
              each: INNER iterations of  p = alloc(SIZE); free1(SIZE, p)
    per loop: median over ROUNDS of (round time / INNER)  -> ns per pair
    ratios:   reference / glib,  reference / python pair   (medians of per-round ratios)

* *reference*: ``memslice.Allocator`` default mode; the first pair warms the
  thread's magazines so that every timed pair is a magazine hit.
* *glib ctypes*: ``libglib-2.0.so.0``'s ``g_slice_alloc``/``g_slice_free1``
  with ``argtypes``/``restype`` set, as a user of ctypes would.
* *bare ctypes*: the same two calls' shape into a C function that does nothing
  of interest (``g_atomic_int_get`` on a static int, twice), so that the
  C allocator's own cost can be told apart from the ctypes crossing.
* *python pair*: two calls to the methods of a trivial Python object.
* *python freelist*: the tightest pure-Python allocator pair (a dict of
  per-size lists; pop, append): what a magazine hit must at least do.

Every loop includes the same ``for`` overhead; an empty loop is timed too and
printed so a reader can subtract it.  The script needs only the standard
library and the two first-party paths (it runs unchanged on 3.10..3.13:
``PYTHONPATH=reference python benchmarks/fastpath.py``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import memslice
except ImportError:  # run from a checkout with an interpreter that lacks the install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))
    import memslice

LoopFn = Callable[[int], None]


class _PythonPair:
    """The floor: two Python method calls that do nothing but return."""

    def alloc(self, size: int) -> int:
        return size

    def free1(self, size: int, block: int) -> None:
        return None


class _FreeListPair:
    """A tight pure-Python allocator pair: per-size Python lists, no checks, no memory.

    This is what any pure-Python magazine hit must at least do (find this
    size's list, pop; find it again, append); it is the realistic floor.
    """

    def __init__(self) -> None:
        self.lists: dict[int, list[int]] = {}

    def alloc(self, size: int) -> int:
        free = self.lists.get(size)
        return free.pop() if free else size * 16

    def free1(self, size: int, block: int) -> None:
        self.lists.setdefault(size, []).append(block)


def _make_loop(alloc: Callable[[int], int], free1: Callable[[int, int], None], size: int) -> LoopFn:
    def loop(n: int) -> None:
        for _ in range(n):
            free1(size, alloc(size))

    return loop


def _empty_loop(n: int) -> None:
    for _ in range(n):
        pass


def build_loops(size: int) -> dict[str, LoopFn]:
    """The four timed loops (plus the empty one), all warmed up."""
    glib = ctypes.CDLL("libglib-2.0.so.0")
    g_alloc = glib.g_slice_alloc
    g_alloc.argtypes = [ctypes.c_size_t]
    g_alloc.restype = ctypes.c_void_p
    g_free = glib.g_slice_free1
    g_free.argtypes = [ctypes.c_size_t, ctypes.c_void_p]
    g_free.restype = None
    # A C call of the same shape that does no allocation: the cost of the crossing.
    cell = ctypes.c_int(7)
    atomic_get = glib.g_atomic_int_get
    atomic_get.argtypes = [ctypes.c_void_p]
    atomic_get.restype = ctypes.c_int
    cell_addr = ctypes.addressof(cell)

    # The bare loop calls the ctypes function directly, like the GLib loop does.
    def bare_loop(n: int) -> None:
        for _ in range(n):
            atomic_get(cell_addr)
            atomic_get(cell_addr)

    allocator = memslice.Allocator()
    pair = _PythonPair()
    freelist = _FreeListPair()
    loops: dict[str, LoopFn] = {
        "reference": _make_loop(allocator.alloc, allocator.free1, size),
        "glib_ctypes": _make_loop(g_alloc, g_free, size),
        "bare_ctypes": bare_loop,
        "python_pair": _make_loop(pair.alloc, pair.free1, size),
        "python_freelist": _make_loop(freelist.alloc, freelist.free1, size),
        "empty_loop": _empty_loop,
    }
    for loop in loops.values():
        loop(1000)  # warm magazines, caches and specialised bytecode
    # The reference's fast path really is being measured: a hit leaves the
    # thread's magazine where it was.
    before = allocator.snapshot().totals
    loops["reference"](1000)
    after = allocator.snapshot().totals
    assert before == after, "alloc/free1 pair changed the allocator's totals"
    return loops


def measure(loops: dict[str, LoopFn], rounds: int, inner: int) -> dict[str, list[float]]:
    """ns per iteration of each loop, one sample per round, in rotating order."""
    names = list(loops)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            loop = loops[name]
            start = clock()
            loop(inner)
            samples[name].append((clock() - start) / inner)
    return samples


def summarise(samples: dict[str, list[float]]) -> dict[str, float]:
    """Medians per loop and medians of the per-round ratios the targets are about."""
    out = {f"{name}_ns": statistics.median(vals) for name, vals in samples.items()}
    ref, glib, floor = samples["reference"], samples["glib_ctypes"], samples["python_pair"]
    out["ratio_reference_over_glib"] = statistics.median(
        a / b for a, b in zip(ref, glib, strict=True)
    )
    out["ratio_reference_over_python_pair"] = statistics.median(
        a / b for a, b in zip(ref, floor, strict=True)
    )
    out["ratio_reference_over_python_freelist"] = statistics.median(
        a / b for a, b in zip(ref, samples["python_freelist"], strict=True)
    )
    out["ratio_glib_over_bare_ctypes"] = statistics.median(
        a / b for a, b in zip(glib, samples["bare_ctypes"], strict=True)
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40, help="block size (default 40)")
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--inner", type=int, default=20000, help="pairs per round")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    loops = build_loops(args.size)
    result = summarise(measure(loops, args.rounds, args.inner))
    result["python"] = float(f"{sys.version_info[0]}.{sys.version_info[1]:02d}")
    if args.json:
        print(json.dumps(result))
        return 0
    v = sys.version_info
    print(f"Python {v[0]}.{v[1]}.{v[2]}: size {args.size}, {args.rounds} rounds x {args.inner}")
    for name in loops:
        print(f"  {name:<15} {result[name + '_ns']:8.1f} ns per pair (median)")
    ok1 = result["ratio_reference_over_glib"] <= 0.5
    ok2 = result["ratio_reference_over_python_pair"] <= 3.0
    print(
        f"  reference / glib ctypes  = {result['ratio_reference_over_glib']:.3f}"
        f"  (target <= 0.5: {'met' if ok1 else 'MISSED'})"
    )
    print(
        f"  reference / python pair  = {result['ratio_reference_over_python_pair']:.3f}"
        f"  (target <= 3.0: {'met' if ok2 else 'MISSED'})"
    )
    print(f"  reference / python freelist = {result['ratio_reference_over_python_freelist']:.3f}")
    print(f"  glib ctypes / bare ctypes = {result['ratio_glib_over_bare_ctypes']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
