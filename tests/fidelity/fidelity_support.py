"""Helpers for the differential fidelity tests: run a trace on GLib and on the reference.

``run_glib`` executes a trace in a fresh interpreter that loads the real
``libglib-2.0.so.0`` first (``glib_runner.py``), so every trace starts from
GLib's load-time state.  ``run_reference`` executes the same trace on a fresh
reference allocator, first reproducing that load-time state
(``reproduce_glib_load_state``, CONF-015).  ``predict_fresh_class_run`` is an
independent model, written from the spec's formulas only, of where ``n``
allocations of one untouched class land in one thread: the expected values the
hand-written tests hold both allocators to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from memslice_conformance.checks import layout
from memslice_conformance.checks.layout import (
    MAIN,
    Alloc,
    ConfigObservation,
    Free,
    FreeChain,
    NormBlock,
    Observation,
    Op,
)

RUNNER = Path(__file__).with_name("glib_runner.py")
GEOMETRY = layout.X86_64
N_CLASSES = 63


class GlibRunError(RuntimeError):
    """The GLib runner subprocess failed (GLib missing, crash, bad trace)."""

    def __init__(self, returncode: int, stderr: str) -> None:
        super().__init__(f"glib_runner exited with {returncode}:\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr


def glib_env(g_slice: str | None) -> dict[str, str]:
    """The environment for a GLib subprocess: ``G_SLICE`` exactly as given."""
    env = {k: v for k, v in os.environ.items() if k not in ("G_SLICE", "G_DEBUG")}
    if g_slice is not None:
        env["G_SLICE"] = g_slice
    return env


def run_glib(
    trace: Sequence[Op],
    g_slice: str | None = None,
    config: bool = False,
    contention: bool = True,
) -> tuple[Observation, ConfigObservation | None]:
    """Run ``trace`` on the real GLib in a fresh process."""
    request = {
        "trace": json.loads(layout.trace_to_json(trace)),
        "config": config,
        "contention": contention,
    }
    done = subprocess.run(
        [sys.executable, str(RUNNER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=glib_env(g_slice),
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise GlibRunError(done.returncode, done.stderr)
    result = json.loads(done.stdout)
    observation = Observation(tuple(result["addresses"]), tuple(result["routes"]))
    cfg = None if result["config"] is None else layout.config_from_json(result["config"])
    return observation, cfg


def run_reference(
    trace: Sequence[Op],
    g_slice: str | None = None,
    config: bool = False,
    contention: bool = True,
    load_state: bool = True,
) -> tuple[Observation, ConfigObservation | None]:
    """Run ``trace`` on a fresh reference allocator in this process."""
    import memslice
    from memslice.tunables import GLIB_2_74

    environ = {} if g_slice is None else {"G_SLICE": g_slice}
    allocator = memslice.Allocator(GLIB_2_74, environ=environ)
    try:
        if load_state:
            layout.reproduce_glib_load_state(allocator)
        observation = layout.execute_trace(trace, layout.ReferenceBackend(allocator))
        cfg = None
        if config:
            cfg = layout.observe_config(_ReferenceConfig(allocator), N_CLASSES, contention)
        allocator.check()
        return observation, cfg
    finally:
        allocator.close()


@dataclass
class _ReferenceConfig:
    allocator: object

    def get_config(self, key: int) -> int:
        return int(self.allocator.get_config(key))  # type: ignore[attr-defined]

    def get_config_state(self, key: int, address: int) -> list[int] | None:
        return self.allocator.get_config_state(key, address)  # type: ignore[attr-defined, no-any-return]


def both(
    trace: Sequence[Op], g_slice: str | None = None
) -> tuple[tuple[NormBlock, ...], tuple[NormBlock, ...]]:
    """Normalised layouts of ``trace`` on GLib and on the reference."""
    glib, _ = run_glib(trace, g_slice)
    ref, _ = run_reference(trace, g_slice)
    return layout.normalise(trace, glib), layout.normalise(trace, ref)


def assert_same_layout(trace: Sequence[Op], g_slice: str | None = None) -> tuple[NormBlock, ...]:
    """GLib and the reference place every block of ``trace`` alike; returns GLib's layout."""
    glib, ref = both(trace, g_slice)
    problems = layout.compare(glib, ref, ("glib", "reference"))
    assert not problems, "\n".join(problems)
    return glib


# --------------------------------------------------------------------------- the model


def colour(accu: int, chunk: int) -> int:
    """COLOR-002: the colour a new slab of ``chunk`` gets with accumulator ``accu``."""
    pad = GEOMETRY.padding(chunk)
    return (accu * GEOMETRY.p2alignment) % pad if pad else 0


def predict_fresh_class_run(chunk: int, n: int, accu: int) -> tuple[list[tuple[int, int]], int]:
    """Where ``n`` allocations of a class no one has touched land, in one thread.

    Magazine reloads take ``threshold`` chunks at a time straight from fresh
    slabs, in address order (DEPOT-005, SLAB-005), so block ``i`` is chunk
    ``i % per_slab`` of slab ``i // per_slab``.  Returns the (slab, offset)
    list and the accumulator afterwards: every slab the reloads created (a
    reload may create slabs whose chunks are not yet handed out) advances it,
    if the class has padding.
    """
    per_slab = GEOMETRY.chunks_per_slab(chunk)
    threshold = GEOMETRY.threshold(chunk)
    placements = []
    for i in range(n):
        slab = i // per_slab
        placements.append((slab, colour(accu + slab, chunk) + (i % per_slab) * chunk))
    taken = -(-n // threshold) * threshold
    slabs = -(-taken // per_slab)
    return placements, accu + (slabs if GEOMETRY.padding(chunk) else 0)


GLIB_START_ACCU = 2
"""The colour accumulator when a program's code first runs (CONF-016)."""


# --------------------------------------------------------------------------- strategies

SIZES = (0, 1, 8, 16, 17, 24, 40, 48, 96, 100, 112, 200, 500, 1000, 1008, 1009, 2000)
CHAIN_SIZES = (16, 24, 40, 100)


@st.composite
def single_thread_traces(draw: st.DrawFn, max_ops: int = 120) -> tuple[Op, ...]:
    """Main-thread traces mixing allocations, frees of random live blocks and chains.

    Allocations come in runs of one size (so magazines reload and slabs fill),
    frees pick any live block (so LIFO reuse is exercised), and chains link a
    few live blocks of one size at a random pointer-aligned offset.
    """
    ops: list[Op] = []
    live: list[tuple[int, int]] = []  # (block, size), allocation order
    n_blocks = 0
    while len(ops) < max_ops:
        kind = draw(st.sampled_from(("alloc", "alloc", "free", "chain")))
        if kind == "alloc" or not live:
            size = draw(st.sampled_from(SIZES + CHAIN_SIZES))
            for _ in range(draw(st.integers(1, 40))):
                ops.append(Alloc(MAIN, size))
                live.append((n_blocks, size))
                n_blocks += 1
        elif kind == "free":
            for _ in range(draw(st.integers(1, 8))):
                if not live:
                    break
                block, _size = live.pop(draw(st.integers(0, len(live) - 1)))
                ops.append(Free(MAIN, block))
        else:
            size = draw(st.sampled_from(CHAIN_SIZES))
            candidates = [b for b, s in live if s == size]
            if not candidates:
                continue
            chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, unique=True))
            offset = 8 * draw(st.integers(0, (size - 8) // 8))
            ops.append(FreeChain(MAIN, tuple(chosen), offset))
            live = [(b, s) for b, s in live if b not in chosen]
        if draw(st.integers(0, 9)) == 0:
            break
    return tuple(ops)


@st.composite
def multi_thread_traces(draw: st.DrawFn, max_ops: int = 150) -> tuple[Op, ...]:
    """Traces over the main thread and up to three more at a time, which start and
    exit along the way; frees may run on any thread (cross-thread frees), so
    magazines travel through thread exit into the depot and back."""
    ops: list[Op] = []
    live: list[tuple[int, int]] = []
    running = [MAIN]
    n_blocks = n_threads = 0
    while len(ops) < max_ops:
        kind = draw(st.sampled_from(("alloc", "alloc", "free", "start", "exit", "chain")))
        if kind == "start" and len(running) < 4:
            name = f"t{n_threads}"
            n_threads += 1
            running.append(name)
            ops.append(layout.ThreadStart(name))
            continue
        if kind == "exit" and len(running) > 1:
            name = draw(st.sampled_from(running[1:]))
            running.remove(name)
            ops.append(layout.ThreadExit(name))
            continue
        thread = draw(st.sampled_from(running))
        if kind == "free" and live:
            for _ in range(draw(st.integers(1, 12))):
                if not live:
                    break
                block, _size = live.pop(draw(st.integers(0, len(live) - 1)))
                ops.append(Free(thread, block))
        elif kind == "chain" and live:
            size = draw(st.sampled_from(CHAIN_SIZES))
            candidates = [b for b, s in live if s == size]
            if candidates:
                chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, unique=True))
                ops.append(FreeChain(thread, tuple(chosen), 8 * draw(st.integers(0, 1))))
                live = [(b, s) for b, s in live if b not in chosen]
        else:
            size = draw(st.sampled_from((8, 24, 40, 100, 1000, 2000, *CHAIN_SIZES)))
            for _ in range(draw(st.integers(1, 40))):
                ops.append(Alloc(thread, size))
                live.append((n_blocks, size))
                n_blocks += 1
        if draw(st.integers(0, 14)) == 0:
            break
    ops += [layout.ThreadExit(name) for name in running[1:]]
    return tuple(ops)
