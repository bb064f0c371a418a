"""The reference's speed figures (issue 14): CPU-time ratios against GLib and floors, in one run.

Rules and theory of operation
-----------------------------
The machine these run on is shared and noisy, so every figure is a *ratio of
CPU times measured in the same round*, and each figure is summarised over
rounds by its minimum, median and spread (max - min)::

    for r in 0..rounds-1:                     the order of the two sides rotates
        side A: thread CPU ns (and wall ns) of the timed stretch
        side B: the same
        ratio[r] = A / B
    figure = {min, median, max, spread} of ratio[], plus each side's ns

CPU time is ``time.thread_time_ns`` of the thread doing the work (the
machine's other load does not count against a loop, as it does in wall
time); wall time is reported beside it.  The figures and their goals::

    w1_glib        W1 magazine-hit alloc+free pair, reference / GLib via ctypes   <= 0.5
    w1_floor       the same pair / two bare Python method calls                   <= 4
    w4_glib        W4 memory hammer core (no space probes), reference / GLib      <= 1.2
                   (both warm: one allocator per side, hammered once untimed)
    fresh_glib     allocating 24-byte blocks into fresh slabs, per alloc          <= 2
    w6_glib        W6 release core (alloc, free, expire, trim), reference / GLib  <= 2
                   (both fresh and both trimming: GLib in a child process per
                   round, waiting out its 15 s working set on the real clock)
    memory_per_block   Python bytes the allocator holds per live 24-byte block    <= 4
                       (tracemalloc; the caller's list and ints subtracted)
    import_cpu     ``python -c "import memslice"`` / ``python -c pass``, CPU       <= 1.5
                   (bytecode caches warm, as installed; the cold ratio beside it)

``compare`` is the regression guard: a ratio whose median got more than
``tolerance`` (25 %) worse than in a baseline document fails.  Clauses:
API-001, API-013, MAG-002, MAG-005, DEPOT-007.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from typing import Final

from memslice import Allocator, SliceConfig

from .peers.native import libglib
from .workloads import lcg

__all__ = ["GOALS", "compare", "measure_all"]

JSONDict = dict[str, object]
Side = Callable[[], tuple[int, int]]  # runs one timed stretch: (cpu ns, wall ns)

GOALS: Final[Mapping[str, float]] = {
    "w1_glib": 0.5,
    "w1_floor": 4.0,
    "w4_glib": 1.2,
    "fresh_glib": 2.0,
    "w6_glib": 2.0,
    "memory_per_block": 4.0,
    "import_cpu": 1.5,
}


def _timed(body: Callable[[], None]) -> tuple[int, int]:
    """(thread CPU ns, wall ns) of one call of ``body``, with the collector off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        body()
        return time.thread_time_ns() - cpu, time.perf_counter_ns() - wall
    finally:
        if enabled:
            gc.enable()


def _duel(a: Side, b: Side, rounds: int, per: int) -> JSONDict:
    """Ratios A / B of CPU time per operation, round by round, order rotating."""
    samples: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    for r in range(rounds):
        order = (("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a))
        for name, side in order:
            samples[name].append(side())
    ratios = [x[0] / y[0] for x, y in zip(samples["a"], samples["b"], strict=True)]
    wall_ratios = [x[1] / y[1] for x, y in zip(samples["a"], samples["b"], strict=True)]
    return {
        **_summary(ratios),
        "wall_median": statistics.median(wall_ratios),
        "a_cpu_ns_per_op": statistics.median(s[0] for s in samples["a"]) / per,
        "b_cpu_ns_per_op": statistics.median(s[0] for s in samples["b"]) / per,
        "rounds": rounds,
    }


def _summary(values: list[float]) -> JSONDict:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "spread": max(values) - min(values),
        "values": values,
    }


def _glib() -> tuple[Callable[[int], int], Callable[[int, int], None]]:
    lib = libglib()
    return lib.g_slice_alloc, lib.g_slice_free1


class _PythonPair:
    """The floor: two Python method calls that do nothing but return."""

    def alloc(self, size: int) -> int:
        return size

    def free1(self, size: int, block: int) -> None:
        return None


def _pair_side(alloc: Callable[[int], int], free1: Callable[[int, int], None], n: int) -> Side:
    size = 40

    def body() -> None:
        for _ in range(n):
            free1(size, alloc(size))

    free1(size, alloc(size))  # warm: magazines filled, bytecode specialised
    body()
    return lambda: _timed(body)


def w1(rounds: int, n: int) -> tuple[JSONDict, JSONDict]:
    """W1 pair: reference / GLib and reference / two Python method calls."""
    allocator = Allocator(environ={})
    reference = _pair_side(allocator.alloc, allocator.free1, n)
    g_alloc, g_free = _glib()
    glib = _pair_side(g_alloc, g_free, n)
    pair = _PythonPair()
    floor = _pair_side(pair.alloc, pair.free1, n)
    return _duel(reference, glib, rounds, n), _duel(reference, floor, rounds, n)


def _hammer_side(
    alloc: Callable[[int], int], free1: Callable[[int, int], None], blocks: int, repeats: int
) -> Side:
    """GLib's memory hammer (API-020) without W4's space probes: the timed loops only."""

    def run() -> None:
        rand = lcg(12346)
        sizes = [next(rand) % 1021 for _ in range(blocks)]
        live = [alloc(s) for s in sizes]
        for _ in range(repeats):
            for i in range(0, blocks, 2):
                free1(sizes[i], live[i])
                sizes[i] = next(rand) % 1021
                live[i] = alloc(sizes[i])
        for size, block in zip(sizes, live, strict=True):
            free1(size, block)

    return lambda: _timed(run)


def w4(rounds: int, blocks: int, repeats: int) -> JSONDict:
    """W4 hammer core: reference / GLib, both warm.

    GLib's slice state lives as long as this process, so after its first
    hammer its magazines and depot hold every block the hammer frees (the
    working set, 15 s of real time, never expires inside a run).  The reference
    is given the same start: one allocator for all rounds, hammered once before
    the first timed round, as GLib is.  (Until this was so, each round used a
    fresh reference against a warm GLib, and the reference also paid for
    carving every slab again: about a fifth of its time.)
    """
    allocator = Allocator(environ={})
    reference = _hammer_side(allocator.alloc, allocator.free1, blocks, repeats)
    g_alloc, g_free = _glib()
    glib = _hammer_side(g_alloc, g_free, blocks, repeats)
    reference()  # warm-up, untimed in effect: both sides start each round warm
    glib()
    try:
        return _duel(reference, glib, rounds, blocks * (2 + repeats))
    finally:
        allocator.close()


def fresh(rounds: int, n: int) -> JSONDict:
    """Per allocation of ``n`` live 24-byte blocks into fresh slabs: reference / GLib.

    The reference gets a fresh allocator each round; GLib's blocks of a round are
    kept until the end, so every round's allocations need new slabs there too.
    """
    kept: list[int] = []
    g_alloc, g_free = _glib()

    def reference() -> tuple[int, int]:
        allocator = Allocator(environ={})
        alloc = allocator.alloc
        try:
            return _timed(lambda: kept.extend([alloc(24) for _ in range(n)]))
        finally:
            kept.clear()
            allocator.close()

    glib_blocks: list[int] = []

    def glib() -> tuple[int, int]:
        return _timed(lambda: glib_blocks.extend([g_alloc(24) for _ in range(n)]))

    try:
        return _duel(reference, glib, rounds, n)
    finally:
        for block in glib_blocks:
            g_free(24, block)


def w6_workload(n: int) -> tuple[list[int], list[int]]:
    """W6's ``n`` mixed sizes and the reserve set aside per class (its last frees)."""
    rand = lcg(6)
    sizes = [16 + next(rand) % 497 for _ in range(n)]
    geometry = Allocator(environ={}).geometry
    classes = sorted({geometry.p2align(s) for s in sizes})
    reserve_sizes = [
        chunk
        for k, chunk in enumerate(classes)
        for _ in range(
            (12 if k == 0 else 3) * geometry.classes[geometry.class_index(chunk)].base_threshold
            + 1
        )
    ]
    return sizes, reserve_sizes


def w6_phases(
    alloc: Callable[[int], int],
    free1: Callable[[int, int], None],
    expire: Callable[[], None],
    sizes: list[int],
    reserve_sizes: list[int],
) -> tuple[tuple[int, int], tuple[int, int]]:
    """W6's two timed phases, each (thread CPU ns, wall ns): allocate and free
    ``sizes`` (*first*), then, after ``expire()``, free the reserve (*last*)."""
    reserve = [(s, alloc(s)) for s in reserve_sizes]

    def first() -> None:
        blocks = [alloc(s) for s in sizes]
        for s, b in zip(sizes, blocks, strict=True):
            free1(s, b)

    def last() -> None:
        for s, b in reserve:
            free1(s, b)

    first_times = _timed(first)
    expire()
    return first_times, _timed(last)


# GLib's working set (DEPOT-007): the default, 15,000 ms of real time, plus a
# margin so that the first push after the wait finds every older magazine expired.
_GLIB_EXPIRY_SECONDS: Final = 15.0 + 0.5


def _w6_glib_round(n: int) -> tuple[int, int]:
    """W6 on a fresh GLib, whose working set expires for real between the phases.

    Prints ``expiring`` (and flushes) when the first phase is over, so the
    parent can wait for it before it measures anything else.
    """
    sizes, reserve_sizes = w6_workload(n)
    g_alloc, g_free = _glib()

    def expire() -> None:
        print("expiring", flush=True)
        time.sleep(_GLIB_EXPIRY_SECONDS)

    (cpu, wall), (cpu2, wall2) = w6_phases(g_alloc, g_free, expire, sizes, reserve_sizes)
    return cpu + cpu2, wall + wall2


def _w6_reference_round(sizes: list[int], reserve_sizes: list[int]) -> tuple[int, int]:
    """W6 on a fresh reference allocator whose clock is moved past the working set."""
    now = [0]
    allocator = Allocator(environ={}, clock=lambda: now[0])

    def expire() -> None:
        now[0] += allocator.get_config(SliceConfig.WORKING_SET_MSECS) + 1

    try:
        (cpu, wall), (cpu2, wall2) = w6_phases(
            allocator.alloc, allocator.free1, expire, sizes, reserve_sizes
        )
        return cpu + cpu2, wall + wall2
    finally:
        allocator.close()


class _W6Rounds:
    """W6's rounds: each a reference round and a GLib round next to it in time.

    A GLib round needs a fresh GLib (slice state is per process) and 15 s of
    real time between its phases, so it runs in a child process
    (``python -m memslice_bench.speed w6-glib N``) that prints ``expiring``
    when its first phase is over.  Round k: the child is started and the
    parent waits, idle, for that line; then the reference round runs (in odd
    rounds the reference goes first).  So the two sides of a round run within
    a second of each other, on a machine whose speed drifts, and no timed
    phase shares the machine with other timed work but the children's short
    second phases 15 s later, while the parent measures other figures.
    """

    def __init__(self, rounds: int, n: int) -> None:
        self.n = n
        sizes, reserve_sizes = w6_workload(n)
        self.children: list[subprocess.Popen[str]] = []
        self.ours: list[tuple[int, int]] = []
        try:
            for k in range(rounds):
                if k % 2:
                    self.ours.append(_w6_reference_round(sizes, reserve_sizes))
                self._start_glib_round()
                if not k % 2:
                    self.ours.append(_w6_reference_round(sizes, reserve_sizes))
        except BaseException:
            self.stop()
            raise

    def _start_glib_round(self) -> None:
        argv = [sys.executable, "-m", "memslice_bench.speed", "w6-glib", str(self.n)]
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.children.append(child)
        assert child.stdout is not None
        if child.stdout.readline().strip() != "expiring":
            raise RuntimeError(f"W6's GLib round failed: {' '.join(argv)}")

    def stop(self) -> None:
        """Kill the children (a failed or interrupted run leaves none behind)."""
        for child in self.children:
            child.kill()
            child.communicate()

    def summary(self) -> JSONDict:
        """Wait for the GLib rounds; the ratios of round k, reference / GLib."""
        theirs = []
        for child in self.children:
            out, _ = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"W6's GLib round exited with status {child.returncode}")
            cpu, wall = (int(x) for x in out.split())
            theirs.append((cpu, wall))
        ours, per = self.ours, 2 * self.n
        return {
            **_summary([a[0] / b[0] for a, b in zip(ours, theirs, strict=True)]),
            "wall_median": statistics.median(
                a[1] / b[1] for a, b in zip(ours, theirs, strict=True)
            ),
            "a_cpu_ns_per_op": statistics.median(a[0] for a in ours) / per,
            "b_cpu_ns_per_op": statistics.median(b[0] for b in theirs) / per,
            "rounds": len(ours),
        }


def w6(rounds: int, n: int) -> JSONDict:
    """W6 release core: alloc ``n`` mixed blocks, free them, expire, one push per class.

    As W6 without its space probes and in one thread: the reserve set aside per
    class is freed after the working set expired, which trims the depot and
    releases the slabs (DEPOT-007).  Both sides start fresh and both trim
    (see :class:`_W6Rounds`); :func:`measure_all` starts the rounds first and
    collects them last, so GLib's 15 s waits overlap the other figures.
    """
    return _W6Rounds(rounds, n).summary()


def memory_per_block(counts: tuple[int, ...] = (10_000, 100_000)) -> JSONDict:
    """Python bytes held by the allocator per live 24-byte block (tracemalloc)."""
    per: dict[str, float] = {}
    for n in counts:
        allocator = Allocator(environ={})
        allocator.free1(24, allocator.alloc(24))  # initialised: settings, tables, magazines
        blocks = [0] * n  # the caller's list, at its final size
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for k in range(n):
            blocks[k] = allocator.alloc(24)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        callers_ints = sum(sys.getsizeof(b) for b in blocks)  # the addresses the caller holds
        per[str(n)] = (after - before - callers_ints) / n
        blocks.clear()
        allocator.close()
    values = list(per.values())
    return {**_summary(values), "by_count": per}


def _child_cpu_ns(argv: list[str], env: Mapping[str, str]) -> int:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, env=dict(env))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(
        (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1_000_000_000
    )


def _start_up_ratios(rounds: int, env: Mapping[str, str]) -> list[float]:
    python = sys.executable
    load = [python, "-c", "import memslice; memslice.Allocator()"]
    empty = [python, "-c", "pass"]
    _child_cpu_ns(load, env)  # warm the page cache and (if allowed) the bytecode cache
    _child_cpu_ns(empty, env)
    ratios = []
    for r in range(rounds):
        if r % 2:
            b, a = _child_cpu_ns(empty, env), _child_cpu_ns(load, env)
        else:
            a, b = _child_cpu_ns(load, env), _child_cpu_ns(empty, env)
        ratios.append(a / max(b, 1))
    return ratios


def import_cpu(rounds: int) -> JSONDict:
    """CPU of ``python -c "import memslice; memslice.Allocator()"`` / ``python -c pass``.

    Measured as a user runs it: with bytecode caches (pip compiles them at
    install; a source tree writes them on first import).  The caches go to a
    private ``PYTHONPYCACHEPREFIX`` so the source tree stays clean, and the
    warm-up run writes them even where ``PYTHONDONTWRITEBYTECODE`` is set in
    the caller's environment (without it every round would also time the
    compilation of every module, which no installed copy pays).  The figure
    without caches is kept beside it as ``cold_median``.
    """
    import tempfile

    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="memslice-pycache-") as cache:
        warm = _start_up_ratios(rounds, {**base, "PYTHONPYCACHEPREFIX": cache})
    cold = _start_up_ratios(rounds, {**base, "PYTHONDONTWRITEBYTECODE": "1"})
    return {**_summary(warm), "cold_median": statistics.median(cold), "rounds": rounds}


def measure_all(rounds: int = 5, quick: bool = False) -> JSONDict:
    """Every figure of issue 14 in one run: ``{name: summary}`` plus the goals."""
    scale = 10 if quick else 1
    w6_rounds = _W6Rounds(rounds, 50_000 // scale)  # GLib's 15 s waits overlap what follows
    try:
        w1_glib, w1_floor = w1(rounds, 20_000 // scale)
        figures: JSONDict = {
            "w1_glib": w1_glib,
            "w1_floor": w1_floor,
            "w4_glib": w4(rounds, 4_000 // scale, 10 // scale or 1),
            "fresh_glib": fresh(rounds, 100_000 // scale),
            "w6_glib": w6_rounds.summary(),
            "memory_per_block": memory_per_block((1_000, 10_000) if quick else (10_000, 100_000)),
            "import_cpu": import_cpu(max(3, rounds)),
        }
    except BaseException:
        w6_rounds.stop()  # no child outlives a failed or interrupted run
        raise
    for name, figure in figures.items():
        assert isinstance(figure, dict)
        figure["goal"] = GOALS[name]
        figure["met"] = figure["median"] <= GOALS[name]
    return figures


def compare(
    current: Mapping[str, object], baseline: Mapping[str, object], tolerance: float = 0.25
) -> list[str]:
    """Every figure whose median is more than ``tolerance`` worse than the baseline's."""
    worse = []
    for name, figure in current.items():
        old = baseline.get(name)
        if not isinstance(figure, dict) or not isinstance(old, dict):
            continue
        now, then = float(figure["median"]), float(old["median"])
        if now > then * (1 + tolerance):
            worse.append(
                f"{name}: median {now:.3f} is {now / then - 1:+.0%} against the baseline "
                f"{then:.3f} (more than {tolerance:.0%} worse)"
            )
    return worse


if __name__ == "__main__":  # a GLib round of W6, in its own process (_W6Rounds)
    if sys.argv[1:2] != ["w6-glib"] or len(sys.argv) != 3:
        sys.exit("usage: python -m memslice_bench.speed w6-glib N")
    print(*_w6_glib_round(int(sys.argv[2])))
