"""Where W6's time goes: the reference with and without its trim, against GLib, in one run.

Rules and theory of operation
-----------------------------
``w6_glib`` (``memslice_bench.speed.w6``) times W6's core on both sides:
allocate and free 50,000 mixed blocks (*first*), then free a reserve set
aside per class (*last*).  On the reference the clock is jumped past the
working set before *last*, so its first push per class trims every older
magazine and the slabs are released (DEPOT-007, SLAB-007).  GLib's working
set runs on the real clock: in the same window its depot is never trimmed,
so its *last* only fills magazines.  This module splits the figure::

    full     the reference as w6_glib times it (trim included)
    no-trim  the same, but the clock is not jumped: the reserve's frees only
             fill magazines and the depot, as GLib's do
    glib     GLib 2.74 through ctypes

and prints, per side, the thread CPU ns per operation of *first* and *last*,
and the ratios full / glib and no-trim / glib (min, median, max over rounds,
sides rotating each round).  The difference between the two ratios is the
part of ``w6_glib`` that is the reference's trim: work the figure asks of
the reference and not of GLib.  Run: ``python -m memslice_bench.w6_ablation
[rounds]``.  Clauses: DEPOT-006, DEPOT-007, SLAB-007.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable

from memslice import Allocator, SliceConfig

from .speed import _glib, w6_phases, w6_workload

__all__ = ["ablate"]

Phases = tuple[int, int]  # thread CPU ns of (first, last)


def _first_last(
    alloc: Callable[[int], int],
    free1: Callable[[int, int], None],
    expire: Callable[[], None],
    sizes: list[int],
    reserve: list[int],
) -> Phases:
    (first_ns, _), (last_ns, _) = w6_phases(alloc, free1, expire, sizes, reserve)
    return first_ns, last_ns


def ablate(rounds: int = 5, n: int = 50_000) -> dict[str, list[Phases]]:
    """``{"full" | "no-trim" | "glib": [(first ns, last ns) per round]}``."""
    sizes, reserve = w6_workload(n)

    def reference(trim: bool) -> Phases:
        now = [0]
        allocator = Allocator(environ={}, clock=lambda: now[0])

        def expire() -> None:
            if trim:
                now[0] += allocator.get_config(SliceConfig.WORKING_SET_MSECS) + 1

        try:
            return _first_last(allocator.alloc, allocator.free1, expire, sizes, reserve)
        finally:
            allocator.close()

    g_alloc, g_free = _glib()
    sides: list[tuple[str, Callable[[], Phases]]] = [
        ("full", lambda: reference(True)),
        ("no-trim", lambda: reference(False)),
        ("glib", lambda: _first_last(g_alloc, g_free, lambda: None, sizes, reserve)),
    ]
    samples: dict[str, list[Phases]] = {name: [] for name, _ in sides}
    for r in range(rounds):
        for name, side in sides[r % 3 :] + sides[: r % 3]:
            samples[name].append(side())
    return samples


def main(argv: list[str]) -> None:
    rounds = int(argv[0]) if argv else 5
    n = 50_000
    samples = ablate(rounds, n)
    total = {name: [a + b for a, b in rows] for name, rows in samples.items()}
    for name, rows in samples.items():
        first = statistics.median(a for a, _ in rows) / (2 * n)
        last = statistics.median(b for _, b in rows) / (2 * n)
        print(f"{name:8s} ns/op: first {first:7.0f}  last {last:7.0f}  total {first + last:7.0f}")
    for name in ("full", "no-trim"):
        ratios = sorted(x / y for x, y in zip(total[name], total["glib"], strict=True))
        print(
            f"{name} / glib: median {statistics.median(ratios):.2f} "
            f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f}, {rounds} rounds)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
