"""The GMemChunk facts' §3.3 tables, rerun on the 2.8 model and on the reference.

Rules and theory of operation
-----------------------------
The facts measured GLib 2.8's C code against GSlice 2.74.  Two of those
tables depend on the *design* rather than on C speed, so the model can
reproduce their shape (absolute times differ: this is Python)::

    table 2  where the memory goes, by phase of slice-test's workload
             (allocate 10000, churn, free all, same-size bursts of 100):
             bytes held by the GMemChunk model vs mapped by the reference
    table 3  the tree lookup: one chunk of 16-byte atoms, N live, free a
             random atom and allocate one, repeatedly; then free all N and
             time the next single allocation (the lazy drain, P2)

Figures reported per row: ns per free+alloc pair, balanced-tree comparisons
per pair (the model counts the ⌈log2(areas+1)⌉ a GTree search makes), and the
latency and number of atoms drained by the first allocation after the mass
free.  The reference's pair stays flat in N (magazines, API-001/API-013);
the model's comparisons grow with log N and its first allocation after a
mass free drains every freed atom (the facts' P1 and P2).  In table 2 the
model keeps every area until a later allocation of the same size drains it
(W2 of the facts), while the reference's slabs hold only what the magazines
and depot cache (DEPOT-009).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from memslice import Allocator

from .peers.gmemchunk import G_ALLOC_AND_FREE, GMemChunkPeer, MemChunk
from .workloads import lcg

__all__ = ["LookupRow", "PhaseRow", "lookup_table", "phase_table"]


@dataclass(frozen=True, slots=True)
class LookupRow:
    """Table 3: one N."""

    live: int
    areas: int
    model_ns_per_pair: float
    model_comparisons_per_pair: float
    reference_ns_per_pair: float
    model_first_alloc_us: float
    model_drained_by_first_alloc: int
    reference_first_alloc_us: float


def lookup_table(
    sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000), pairs: int = 20_000
) -> list[LookupRow]:
    """Free a random live 16-byte atom and allocate one, ``pairs`` times, for each N."""
    rows = []
    for n in sizes:
        rng = random.Random(n)
        chunk = MemChunk("lookup", 16, 4096, G_ALLOC_AND_FREE)
        live = [chunk.alloc() for _ in range(n)]
        before = chunk.comparisons
        start = time.perf_counter_ns()
        for _ in range(pairs):
            i = rng.randrange(n)
            chunk.free(live[i])
            live[i] = chunk.alloc()
        model_ns = (time.perf_counter_ns() - start) / pairs
        comparisons = (chunk.comparisons - before) / pairs
        areas = chunk.num_mem_areas
        for atom in live:
            chunk.free(atom)
        drained = chunk.drained
        start = time.perf_counter_ns()
        chunk.alloc()
        model_first = (time.perf_counter_ns() - start) / 1000
        drained = chunk.drained - drained
        chunk.destroy()

        allocator = Allocator()
        blocks = [allocator.alloc(16) for _ in range(n)]
        start = time.perf_counter_ns()
        for _ in range(pairs):
            i = rng.randrange(n)
            allocator.free1(16, blocks[i])
            blocks[i] = allocator.alloc(16)
        ref_ns = (time.perf_counter_ns() - start) / pairs
        for block in blocks:
            allocator.free1(16, block)
        start = time.perf_counter_ns()
        allocator.alloc(16)
        ref_first = (time.perf_counter_ns() - start) / 1000
        allocator.close()
        rows.append(
            LookupRow(n, areas, model_ns, comparisons, ref_ns, model_first, drained, ref_first)
        )
    return rows


@dataclass(frozen=True, slots=True)
class PhaseRow:
    """Table 2: bytes held after one phase."""

    phase: str
    model_bytes: int
    reference_bytes: int


def phase_table(blocks: int = 10_000, churn: int = 100, bursts: int = 2_000) -> list[PhaseRow]:
    """slice-test's one-thread workload; bytes held after each phase (seed 12346)."""
    model = GMemChunkPeer()
    allocator = Allocator()
    rows = []
    for_model = (model.alloc, model.free)
    for_ref = (allocator.alloc, allocator.free1)
    held: dict[str, list[int]] = {}
    for name, (alloc, free) in (("model", for_model), ("reference", for_ref)):
        rand = lcg(12346)
        sizes = [next(rand) % 1021 for _ in range(blocks)]
        live = [alloc(s) for s in sizes]
        marks = [_held(name, model, allocator)]
        for _ in range(churn):
            for i in range(0, blocks, 2):
                free(sizes[i], live[i])
                sizes[i] = next(rand) % 1021
                live[i] = alloc(sizes[i])
        marks.append(_held(name, model, allocator))
        for size, block in zip(sizes, live, strict=True):
            free(size, block)
        marks.append(_held(name, model, allocator))
        for _ in range(bursts):
            size = next(rand) % 1021
            burst = [alloc(size) for _ in range(100)]
            for block in burst:
                free(size, block)
        marks.append(_held(name, model, allocator))
        held[name] = marks
    phases = (
        f"after allocating {blocks} blocks",
        f"after {churn} churn rounds",
        "after freeing every block",
        f"after {bursts} same-size bursts of 100",
    )
    for i, phase in enumerate(phases):
        rows.append(PhaseRow(phase, held["model"][i], held["reference"][i]))
    model.close()
    allocator.close()
    return rows


def _held(name: str, model: GMemChunkPeer, allocator: Allocator) -> int:
    if name == "model":
        return model.space().mapped
    totals = allocator.snapshot().totals
    return totals.mapped + totals.large_live
