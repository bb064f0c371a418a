"""Workloads W1..W8: deterministic allocation programs that run on any peer.

Rules and theory of operation
-----------------------------
Each workload is a function ``(peer, params) -> Outcome``.  It times only its
core loop (``time.perf_counter_ns`` around the operations, nothing else) and
samples space figures between timed stretches, so measuring space never
inflates time::

    W1 fast path        one size, p = alloc(s); free(s, p)            (API-001, MAG-005)
    W2 build/tear down  N list nodes of 16 and 24 bytes, linked through
                        their next word, freed one by one or as a chain (API-008)
    W3 boundary         bursts of threshold + 2 blocks: every burst reloads
                        and unloads magazines (MAG-005, MAG-006, DEPOT-003, DEPOT-004)
    W4 memory hammer    GLib's hammer: LCG sizes rand % 1021, n live blocks,
                        the even half replaced per round, then bursts (API-020)
    W5 producer/consumer  P producer threads allocate, P consumers free (API-009)
    W6 release          a worker thread allocates and frees a lot, the working
                        set expires, one more push per class: bytes returned (DEPOT-007)
    W7 colour           touch the first word of many same-size objects, in C (COLOR-005)
    W8 replay           recorded g_slice traces of real GLib programs

Space metrics (INTRO-002): ``U = live requested / mapped`` at the sample with
the most live bytes; its breakdown (rounding = handed-out chunk bytes minus
requested bytes, then what the peer reports: magazines, depot, free chunks,
slab overhead, ...); ``peak_ratio = peak mapped / peak live``; for W4 and W8
also ``U_layout``, the best utilisation GLib 2.74's slab layout allows for
the same live blocks (every slab full: ``live / Σ ceil(n_c / per_slab_c) ·
page_c``, large blocks at their size).  Invariant: every workload frees what
it allocated before returning, except W6's deliberate leftovers (none).
"""

from __future__ import annotations

import collections
import ctypes
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Final

from memslice.sizeclass import Geometry, geometry_for
from memslice.tunables import GLIB_2_74

from .peers import Peer, Space

__all__ = [
    "WORKLOADS",
    "Outcome",
    "SpaceProbe",
    "Workload",
    "layout_limit_mapped",
    "lcg",
    "load_traces",
]

GEOMETRY: Final[Geometry] = geometry_for(GLIB_2_74)
Params = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One run of one workload on one peer."""

    elapsed_ns: int
    ops: int
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def ns_per_op(self) -> float:
        return self.elapsed_ns / max(1, self.ops)


@dataclass(frozen=True, slots=True)
class Workload:
    """A workload: its function, parameters for full and quick runs, and where it applies."""

    key: str
    title: str
    run: Callable[[Peer, Params], Outcome]
    full: Params
    quick: Params
    needs_memory: bool = True
    only_peers: tuple[str, ...] | None = None
    extra_peers: tuple[str, ...] = ()
    space: bool = False
    """Measures space: process-global peers (GLib, libc) then run in a fresh process."""

    def applies_to(self, peer_name: str, allocates: bool) -> bool:
        if self.only_peers is not None:
            return peer_name in self.only_peers
        return allocates or not self.needs_memory


def lcg(seed: int) -> Iterator[int]:
    """GLib's hammer generator: ``x = 1664525 x + 1013904223`` modulo 2**32 (API-020)."""
    x = seed & 0xFFFFFFFF
    while True:
        x = (1664525 * x + 1013904223) & 0xFFFFFFFF
        yield x


def layout_limit_mapped(live_sizes: Mapping[int, int], geometry: Geometry = GEOMETRY) -> int:
    """Bytes GLib 2.74's layout needs at best for these live blocks ``{size: count}``.

    Slab-route sizes are packed into completely full slabs of their class;
    larger ones count at their requested size; size 0 is NULL and costs nothing.
    """
    per_class: collections.Counter[int] = collections.Counter()
    large = 0
    for size, count in live_sizes.items():
        if size <= 0 or count <= 0:
            continue
        chunk = geometry.p2align(size)
        if chunk <= geometry.max_slab_chunk_size:
            per_class[geometry.class_index(chunk)] += count
        else:
            large += size * count
    slabs = 0
    for index, count in per_class.items():
        cls = geometry.classes[index]
        slabs += -(-count // cls.chunks_per_slab) * cls.page_size
    return slabs + large


class SpaceProbe:
    """Samples a peer's space; keeps the peak-live sample and the peak mapped."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.peak_live = 0
        self.peak_mapped = 0
        self.at_peak: Space | None = None
        self.live_at_peak = 0
        self.layout_at_peak = 0

    def sample(self, live: int, live_sizes: Mapping[int, int] | None = None) -> Space:
        space = self.peer.space()
        self.peak_mapped = max(self.peak_mapped, space.mapped)
        if live >= self.peak_live and live > 0:
            self.peak_live = live
            self.at_peak = space
            self.live_at_peak = live
            if live_sizes is not None:
                self.layout_at_peak = layout_limit_mapped(live_sizes)
        return space

    def metrics(self) -> dict[str, float]:
        space = self.at_peak
        if space is None or space.mapped <= 0:
            return {}
        out: dict[str, float] = {
            "U": self.live_at_peak / space.mapped,
            "peak_live": float(self.peak_live),
            "peak_mapped": float(self.peak_mapped),
            "peak_ratio": self.peak_mapped / max(1, self.peak_live),
            "mapped_at_peak": float(space.mapped),
        }
        if space.handed_out is not None:
            out["waste.rounding"] = float(space.handed_out - self.live_at_peak)
        for key, value in space.breakdown.items():
            out[f"waste.{key}"] = float(value)
        if self.layout_at_peak:
            out["U_layout"] = self.live_at_peak / self.layout_at_peak
        return out


def _trips(peer: Peer) -> int | None:
    return peer.space().trips if peer.name.startswith("reference") else None


# --------------------------------------------------------------------------- W1
def w1_fast_path(peer: Peer, params: Params) -> Outcome:
    """One size, alloc then free, in a loop: the magazine-hit fast path."""
    size, n = params["size"], params["pairs"]
    alloc, free = peer.alloc, peer.free
    free(size, alloc(size))  # warm: the first pair fills the thread's magazines
    start = time.perf_counter_ns()
    for _ in range(n):
        free(size, alloc(size))
    elapsed = time.perf_counter_ns() - start
    return Outcome(elapsed, 2 * n)


# --------------------------------------------------------------------------- W2
_WORD: Final = ctypes.sizeof(ctypes.c_void_p)


def _build_list(peer: Peer, size: int, n: int) -> int:
    """Allocate ``n`` nodes linked through their second word (GSList/GList ``next``)."""
    alloc = peer.alloc
    head = 0
    for _ in range(n):
        node = alloc(size)
        ctypes.c_void_p.from_address(node + _WORD).value = head or None
        head = node
    return head


def w2_build_tear_down(peer: Peer, params: Params) -> Outcome:
    """N list nodes of 16 and 24 bytes, freed one by one, then as a chain."""
    n, reps = params["nodes"], params["repeats"]
    elapsed = ops = 0
    metrics: dict[str, float] = {}
    probe = SpaceProbe(peer)
    for size in (16, 24):
        for chained in (False, True):
            part = 0
            for _ in range(reps):
                start = time.perf_counter_ns()
                head = _build_list(peer, size, n)
                part += time.perf_counter_ns() - start
                probe.sample(size * n, {size: n})
                start = time.perf_counter_ns()
                if chained:
                    peer.free_chain(size, head, _WORD)
                else:
                    free = peer.free
                    while head:
                        nxt = ctypes.c_void_p.from_address(head + _WORD).value or 0
                        free(size, head)
                        head = nxt
                part += time.perf_counter_ns() - start
            elapsed += part
            ops += 2 * n * reps
            metrics[f"ns_per_op.{size}.{'chain' if chained else 'each'}"] = part / (2 * n * reps)
    metrics.update(probe.metrics())
    return Outcome(elapsed, ops, metrics)


# --------------------------------------------------------------------------- W3
def w3_boundary(peer: Peer, params: Params) -> Outcome:
    """Bursts one block longer than two magazines: reload and unload every few operations."""
    size, bursts = params["size"], params["bursts"]
    threshold = GEOMETRY.classes[GEOMETRY.class_index(GEOMETRY.p2align(size))].base_threshold
    burst = threshold + 2
    alloc, free = peer.alloc, peer.free
    trips_before = _trips(peer)
    blocks = [0] * burst
    start = time.perf_counter_ns()
    for _ in range(bursts):
        for i in range(burst):
            blocks[i] = alloc(size)
        for block in blocks:
            free(size, block)
    elapsed = time.perf_counter_ns() - start
    ops = 2 * burst * bursts
    metrics: dict[str, float] = {"burst": float(burst)}
    trips_after = _trips(peer)
    if trips_before is not None and trips_after is not None:
        metrics["depot_trips_per_op"] = (trips_after - trips_before) / ops
    return Outcome(elapsed, ops, metrics)


# --------------------------------------------------------------------------- W4
def w4_hammer(peer: Peer, params: Params) -> Outcome:
    """GLib's memory hammer (API-020) with space sampled between rounds."""
    n, reps, bursts = params["blocks"], params["repeats"], params["bursts"]
    every = max(1, params.get("sample_every", 10))
    rand = lcg(params.get("seed", 12346))
    alloc, free = peer.alloc, peer.free
    sizes = [next(rand) % 1021 for _ in range(n)]
    live_sizes: collections.Counter[int] = collections.Counter(sizes)
    probe = SpaceProbe(peer)
    trips_before = _trips(peer)
    start = time.perf_counter_ns()
    blocks = [alloc(s) for s in sizes]
    elapsed = time.perf_counter_ns() - start
    ops = n
    probe.sample(sum(sizes), live_sizes)
    for rep in range(reps):
        new_sizes = [next(rand) % 1021 for _ in range(0, n, 2)]
        start = time.perf_counter_ns()
        for k, i in enumerate(range(0, n, 2)):
            free(sizes[i], blocks[i])
            blocks[i] = alloc(new_sizes[k])
        elapsed += time.perf_counter_ns() - start
        ops += 2 * len(new_sizes)
        for k, i in enumerate(range(0, n, 2)):
            live_sizes[sizes[i]] -= 1
            live_sizes[new_sizes[k]] += 1
            sizes[i] = new_sizes[k]
        if rep % every == every - 1 or rep == reps - 1:
            probe.sample(sum(sizes), live_sizes)
    metrics = probe.metrics()
    start = time.perf_counter_ns()
    for size, block in zip(sizes, blocks, strict=True):
        free(size, block)
    elapsed += time.perf_counter_ns() - start
    ops += n
    for _ in range(bursts):
        size = next(rand) % 1021
        start = time.perf_counter_ns()
        burst = [alloc(size) for _ in range(100)]
        for block in burst:
            free(size, block)
        elapsed += time.perf_counter_ns() - start
        ops += 200
    metrics["mapped_after_free_all"] = float(peer.space().mapped)
    trips_after = _trips(peer)
    if trips_before is not None and trips_after is not None:
        metrics["depot_trips_per_op"] = (trips_after - trips_before) / ops
    return Outcome(elapsed, ops, metrics)


# --------------------------------------------------------------------------- W5
def w5_producer_consumer(peer: Peer, params: Params) -> Outcome:
    """``pairs`` producer threads allocate; as many consumer threads free (API-009)."""
    pairs, n, size = params["pairs"], params["blocks"], params["size"]
    batch = 64
    queues: list[queue.SimpleQueue[list[int] | None]] = [queue.SimpleQueue() for _ in range(pairs)]
    barrier = threading.Barrier(2 * pairs + 1)
    errors: list[BaseException] = []

    def producer(q: queue.SimpleQueue[list[int] | None]) -> None:
        alloc = peer.alloc
        try:
            barrier.wait()
            for _ in range(n // batch):
                q.put([alloc(size) for _ in range(batch)])
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            q.put(None)

    def consumer(q: queue.SimpleQueue[list[int] | None]) -> None:
        free = peer.free
        try:
            barrier.wait()
            while (blocks := q.get()) is not None:
                for block in blocks:
                    free(size, block)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=producer, args=(q,)) for q in queues]
    threads += [threading.Thread(target=consumer, args=(q,)) for q in queues]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter_ns() - start
    if errors:
        raise errors[0]
    ops = 2 * pairs * (n // batch) * batch
    return Outcome(elapsed, ops, {"threads": float(2 * pairs), "ops_per_s": ops / elapsed * 1e9})


# --------------------------------------------------------------------------- W6
def _sizes_w6(n: int) -> list[int]:
    rand = lcg(6)
    return [16 + next(rand) % 497 for _ in range(n)]  # 16..512: the magazine route


def w6_release(peer: Peer, params: Params) -> Outcome:
    """Allocate a lot in a worker, free it, expire the working set, push once more per class.

    Pushing needs full magazines, so the main thread first sets aside, per
    class, three magazines' worth plus one block (twelve for the first class:
    the stamp is re-read only on every 8th push, DEPOT-006), and
    frees those after the expiry: each class then sees at least one push with
    a fresh stamp, which trims everything older (DEPOT-007).  The reserve is
    allocated before the measurement starts, so it is not counted as freed.
    """
    n = params["blocks"]
    sizes = _sizes_w6(n)
    classes = sorted({GEOMETRY.p2align(s) for s in sizes})
    reserve: list[tuple[int, int]] = []
    for k, chunk in enumerate(classes):
        threshold = GEOMETRY.classes[GEOMETRY.class_index(chunk)].base_threshold
        # 2T + 1 frees give one push (fill magazine2, swap, fill again, unload);
        # the first class pushes at least 9 times.
        count = (12 if k == 0 else 3) * threshold + 1
        reserve += [(chunk, peer.alloc(chunk)) for _ in range(count)]
    before = peer.space().mapped
    peak = [0]
    elapsed = [0]

    def work() -> None:
        start = time.perf_counter_ns()
        blocks = [peer.alloc(s) for s in sizes]
        elapsed[0] += time.perf_counter_ns() - start
        peak[0] = peer.space().mapped
        start = time.perf_counter_ns()
        for s, b in zip(sizes, blocks, strict=True):
            peer.free(s, b)
        elapsed[0] += time.perf_counter_ns() - start

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    after_free = peer.space().mapped
    peer.expire()
    start = time.perf_counter_ns()
    for chunk, block in reserve:
        peer.free(chunk, block)
    elapsed[0] += time.perf_counter_ns() - start
    final = peer.space().mapped
    grown = max(1, peak[0] - before)
    return Outcome(
        elapsed[0],
        2 * n + len(reserve),
        {
            "mapped_before": float(before),
            "mapped_peak": float(peak[0]),
            "mapped_after_free": float(after_free),
            "mapped_final": float(final),
            # Capped at 1: a peer on malloc may also return the reserve's bytes.
            "returned_fraction": min(1.0, (peak[0] - final) / grown),
        },
    )


# --------------------------------------------------------------------------- W7
_SCAN_C: Final = r"""
#include <stddef.h>
#include <stdint.h>
/* Touch the first word of every object, reps times; return the sum so no
   compiler can drop the loads. */
uint64_t scan(const uintptr_t *ptrs, size_t n, size_t reps) {
    uint64_t sum = 0;
    for (size_t r = 0; r < reps; r++)
        for (size_t i = 0; i < n; i++)
            sum += *(volatile const uint64_t *)ptrs[i];
    return sum;
}
"""
_SCAN: list[Callable[[ctypes.Array[ctypes.c_size_t], int, int], int]] = []


def _scanner() -> Callable[[ctypes.Array[ctypes.c_size_t], int, int], int]:
    """The C scan loop, compiled once per process with the system gcc (fails loudly without)."""
    if not _SCAN:
        import subprocess
        import tempfile
        from pathlib import Path

        folder = Path(tempfile.mkdtemp(prefix="memslice-bench-"))
        source, library = folder / "scan.c", folder / "scan.so"
        source.write_text(_SCAN_C)
        subprocess.run(
            ["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)], check=True
        )
        lib = ctypes.CDLL(str(library))
        lib.scan.argtypes = [ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t, ctypes.c_size_t]
        lib.scan.restype = ctypes.c_uint64
        _SCAN.append(lib.scan)
    return _SCAN[0]


def w7_colour(peer: Peer, params: Params) -> Outcome:
    """Touch the first word of ``objects`` same-size objects, many times (COLOR-005)."""
    size, n, reps = params["size"], params["objects"], params["reps"]
    scan = _scanner()
    blocks = [peer.alloc(size) for _ in range(n)]
    for block in blocks:
        ctypes.c_uint64.from_address(block).value = 1
    array = (ctypes.c_size_t * n)(*blocks)
    scan(array, n, 1)  # warm
    start = time.perf_counter_ns()
    total = scan(array, n, reps)
    elapsed = time.perf_counter_ns() - start
    if total != n * reps:
        raise AssertionError(f"scan read {total}, expected {n * reps}")
    lines = len({b // 64 % 64 for b in blocks})  # distinct L1 sets (64 sets of 64 B)
    for block in blocks:
        peer.free(size, block)
    return Outcome(elapsed, n * reps, {"distinct_l1_sets": float(lines)})


# --------------------------------------------------------------------------- W8
@dataclass(frozen=True, slots=True)
class Trace:
    """A recorded program's slice calls: ``(op, size, block id)``, op 'a' or 'f'."""

    name: str
    command: str
    events: tuple[tuple[str, int, int], ...]


def load_traces() -> list[Trace]:
    """Every trace shipped in ``memslice_bench/traces`` (JSON Lines, header first)."""
    traces = []
    folder = resources.files("memslice_bench") / "traces"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".jsonl"):
            continue
        lines = entry.read_text().splitlines()
        header = json.loads(lines[0])
        events = tuple(
            (str(op), int(size), int(ident)) for op, size, ident in map(json.loads, lines[1:])
        )
        traces.append(Trace(entry.name.removesuffix(".jsonl"), str(header["command"]), events))
    if not traces:
        raise FileNotFoundError("no traces in memslice_bench/traces: record them first (W8)")
    return traces


def replay(
    peer: Peer, events: Sequence[tuple[str, int, int]], probe: SpaceProbe, every: int
) -> int:
    """Replay a trace; returns the time in ns of the operations alone."""
    alloc, free = peer.alloc, peer.free
    blocks: dict[int, tuple[int, int]] = {}
    live = 0
    live_sizes: collections.Counter[int] = collections.Counter()
    elapsed = 0
    clock = time.perf_counter_ns
    for i, (op, size, ident) in enumerate(events):
        if op == "a":
            start = clock()
            blocks[ident] = (size, alloc(size))
            elapsed += clock() - start
            live += size
            live_sizes[size] += 1
        else:
            size, block = blocks.pop(ident)
            start = clock()
            free(size, block)
            elapsed += clock() - start
            live -= size
            live_sizes[size] -= 1
        if i % every == every - 1:
            probe.sample(live, live_sizes)
    probe.sample(live, live_sizes)
    for size, block in blocks.values():  # the program's leftovers: free them after measuring
        free(size, block)
    return elapsed


def w8_replay(peer: Peer, params: Params) -> Outcome:
    """Replay every shipped trace on a fresh peer state (each trace in turn)."""
    elapsed = ops = 0
    metrics: dict[str, float] = {}
    limit = params.get("max_events", 0)
    for trace in load_traces():
        events = trace.events[:limit] if limit else trace.events
        probe = SpaceProbe(peer)
        elapsed += replay(peer, events, probe, params.get("sample_every", 500))
        ops += len(events)
        for key, value in probe.metrics().items():
            if not key.startswith("waste."):
                metrics[f"{trace.name}.{key}"] = value
    us = [v for k, v in metrics.items() if k.endswith(".U")]
    if us:
        metrics["U_mean"] = sum(us) / len(us)
    return Outcome(elapsed, ops, metrics)


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload(
            "W1",
            "fast path: alloc+free of one size",
            w1_fast_path,
            {"size": 40, "pairs": 100_000},
            {"size": 40, "pairs": 500},
            needs_memory=False,
        ),
        Workload(
            "W2",
            "build and tear down list nodes (16 and 24 bytes)",
            w2_build_tear_down,
            {"nodes": 20_000, "repeats": 3},
            {"nodes": 200, "repeats": 1},
            space=True,
        ),
        Workload(
            "W3",
            "magazine boundary: bursts of threshold + 2",
            w3_boundary,
            {"size": 64, "bursts": 5_000},
            {"size": 64, "bursts": 20},
        ),
        Workload(
            "W4",
            "GLib's memory hammer",
            w4_hammer,
            {"blocks": 10_000, "repeats": 100, "bursts": 200, "sample_every": 10},
            {"blocks": 300, "repeats": 4, "bursts": 3, "sample_every": 2},
            extra_peers=("reference-eager",),
            space=True,
        ),
        Workload(
            "W5",
            "producer/consumer threads",
            w5_producer_consumer,
            {"pairs": 2, "blocks": 20_000, "size": 48},
            {"pairs": 2, "blocks": 256, "size": 48},
        ),
        Workload(
            "W6",
            "release to the OS after the working set expires",
            w6_release,
            {"blocks": 100_000},
            {"blocks": 2_000},
            space=True,
        ),
        Workload(
            "W7",
            "colour: scanning first words of same-size objects",
            w7_colour,
            {"size": 464, "objects": 320, "reps": 12_500},
            {"size": 464, "objects": 64, "reps": 10},
            only_peers=("reference", "glib"),
            extra_peers=("reference-nocolour",),
        ),
        Workload(
            "W8",
            "replay of real GLib programs' slice traces",
            w8_replay,
            {"sample_every": 200},
            {"sample_every": 100, "max_events": 400},
            space=True,
        ),
    )
}
