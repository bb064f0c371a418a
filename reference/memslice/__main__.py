"""``python -m memslice``: watch the reference allocator work, layer by layer.

Rules and theory of operation
-----------------------------
Three commands over one engine of *workloads* and one of *call traces*::

    python -m memslice demo                      narrate a short workload step by step
    python -m memslice show --workload NAME --out FILE.svg|.html
                                                 draw the allocator after a workload
    python -m memslice record --out TRACE.json -- PROGRAM ARGS
                                                 record a real GLib program's slice calls
    python -m memslice show --trace TRACE.json --out PAGE.html
                                                 replay a trace on the reference and step
                                                 through it one call at a time (INTRO-007)

``record`` and ``show --trace`` are thin layers over :mod:`memslice.recorder`
and :mod:`memslice.stepthrough`; the trace is the conformance suite's format
(:mod:`memslice.calltrace`).

A workload is a named list of :class:`Step` s.  Each step acts on a fresh,
isolated :class:`~memslice.Allocator` (GLib 2.74 profile unless told
otherwise, an empty environment so the caller's ``G_SLICE`` does not change
what is shown, and a fixed clock so depot stamps are reproducible).
:func:`run_workload` snapshots the allocator around every step and asks
:func:`memslice.visualise.explain` what each layer did::

    snapshot ─▶ step.action(ctx) ─▶ snapshot ─▶ explain(before, after) ─▶ StepResult
        ▲                                                                     │
        └─────────────────────────── next step ◀──────────────────────────────┘

The Sphinx docs run the same workloads at build time, so the tutorial's
pictures and narration are the live reference's (INTRO-001).  Nothing here
changes the allocator's behaviour; it only drives it through its public API.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from . import typed
from .allocator import Allocator
from .calltrace import CallTrace, TraceError, load_call_trace, save_call_trace
from .config import SliceConfig
from .recorder import RecordError, record
from .snapshot import AllocatorSnapshot
from .stepthrough import ThreadLane, replay, stepper_page
from .tunables import PROFILES, Tunables
from .visualise import (
    chunk_states,
    explain,
    magazines_svg,
    ring_svg,
    size_class_table_svg,
    slab_svg,
    snapshot_html,
)

__all__ = [
    "WORKLOADS",
    "FixedClock",
    "GRealArray",
    "Step",
    "StepResult",
    "Workload",
    "WorkloadContext",
    "busiest_class",
    "main",
    "run_workload",
    "workload_svg",
]


class FixedClock:
    """A clock for depot stamps that only moves when told (milliseconds)."""

    def __init__(self, start: int = 1_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


@dataclass
class WorkloadContext:
    """What steps share: the allocator, its clock, the blocks held by name, and
    whether depot-lock acquisitions are currently declared contended (CONT-005)."""

    allocator: Allocator
    clock: FixedClock
    held: dict[str, list[int]] = field(default_factory=dict)
    contended: bool = False
    workers: dict[str, ThreadLane] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a workload, with the words a reader sees before it runs."""

    title: str
    code: str
    action: Callable[[WorkloadContext], None]


@dataclass(frozen=True, slots=True)
class Workload:
    """A named, documented sequence of steps."""

    name: str
    summary: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step and the allocator around it."""

    step: Step
    before: AllocatorSnapshot
    after: AllocatorSnapshot
    narration: tuple[str, ...]


class GRealArray(ctypes.Structure):
    """The layout of GLib's ``GRealArray`` on x86_64 (40 bytes: class 48 B)."""

    _fields_ = [
        ("data", ctypes.c_char_p),
        ("len", ctypes.c_uint),
        ("alloc", ctypes.c_uint),
        ("elt_size", ctypes.c_uint),
        ("zero_terminated", ctypes.c_uint, 1),
        ("clear", ctypes.c_uint, 1),
        ("ref_count", ctypes.c_int),
        ("clear_func", ctypes.c_void_p),
    ]


# ----------------------------------------------------------------------- step actions
def _alloc_n(name: str, size: int, n: int, fill: bool = False) -> Callable[[WorkloadContext], None]:
    def action(ctx: WorkloadContext) -> None:
        blocks = ctx.held.setdefault(name, [])
        for _ in range(n):
            i = len(blocks)
            address = ctx.allocator.alloc(size)
            if fill:
                # The seed's junk: mem[i][j] = i * j, truncated to a byte.
                ctx.allocator.write(address, bytes((i * j) & 0xFF for j in range(size)))
            blocks.append(address)

    return action


def _free_n(name: str, size: int, n: int | None = None) -> Callable[[WorkloadContext], None]:
    def action(ctx: WorkloadContext) -> None:
        blocks = ctx.held[name]
        count = len(blocks) if n is None else n
        for address in blocks[:count]:
            ctx.allocator.free1(size, address)
        del blocks[:count]

    return action


def _in_thread(
    name: str, body: Callable[[WorkloadContext], None]
) -> Callable[[WorkloadContext], None]:
    def action(ctx: WorkloadContext) -> None:
        def run() -> None:
            body(ctx)
            # Run the exit cleanup now, while the thread still exists, so the
            # step's "after" snapshot already shows where its magazines went.
            ctx.allocator.thread_exit()

        worker = threading.Thread(target=run, name=name)
        worker.start()
        worker.join()

    return action


def _on_worker(
    name: str, body: Callable[[WorkloadContext], None]
) -> Callable[[WorkloadContext], None]:
    """Run ``body`` on a worker thread that stays alive after the step (see _end_worker)."""

    def action(ctx: WorkloadContext) -> None:
        lane = ctx.workers.get(name)
        if lane is None:
            lane = ctx.workers[name] = ThreadLane(name, ctx.allocator)
        lane.run(lambda: body(ctx))

    return action


def _end_worker(name: str) -> Callable[[WorkloadContext], None]:
    def action(ctx: WorkloadContext) -> None:
        ctx.workers.pop(name).run(None)  # the thread's exit cleanup, then it ends

    return action


def _new_array(ctx: WorkloadContext) -> None:
    array = typed.new(ctx.allocator, GRealArray)
    assert array is not None  # sizeof(GRealArray) is 40, never 0
    array.data = None
    array.len = 0
    array.alloc = 0
    array.zero_terminated = 1
    array.clear = 0
    array.elt_size = 8
    ctx.held["array"] = [ctypes.addressof(array)]


def _free_array(ctx: WorkloadContext) -> None:
    (address,) = ctx.held.pop("array")
    typed.free(ctx.allocator, GRealArray, GRealArray.from_address(address))


def _each(
    actions: Iterable[Callable[[WorkloadContext], None]],
) -> Callable[[WorkloadContext], None]:
    todo = list(actions)

    def action(ctx: WorkloadContext) -> None:
        for one in todo:
            one(ctx)

    return action


_MIXED: Final = (24, 50, 100, 500, 1000)


def _contended_reloads(
    on: bool, size: int, until: Callable[[int], bool]
) -> Callable[[WorkloadContext], None]:
    """Allocate ``size``-byte blocks, with the depot lock contended or not, until
    ``until(counter)`` holds for the class's contention counter."""

    def action(ctx: WorkloadContext) -> None:
        ctx.contended = on
        a = ctx.allocator
        ix = a.geometry.class_index(a.geometry.p2align(size))
        blocks = ctx.held.setdefault(f"c{size}", [])
        for _ in range(100_000):  # a bound, never reached: each reload moves the counter
            state = a.get_config_state(SliceConfig.CONTENTION_COUNTER, ix)
            if state is not None and until(state[1]):
                break
            blocks.append(a.alloc(size))
        ctx.contended = False

    return action


def _tick(ms: int) -> Callable[[WorkloadContext], None]:
    def action(ctx: WorkloadContext) -> None:
        ctx.clock.now += ms

    return action


# ----------------------------------------------------------------------- the workloads
WORKLOADS: Final[dict[str, Workload]] = {
    w.name: w
    for w in (
        Workload(
            "seed-blocks",
            "The seed's first example: 10000 blocks of 50 bytes allocated, filled, freed.",
            (
                Step(
                    "The first g_slice_alloc(50)",
                    "mem[0] = g_slice_alloc (50);",
                    _alloc_n("mem", 50, 1, fill=True),
                ),
                Step(
                    "Allocate the loaded magazine dry (24 more blocks)",
                    "for (i = 1; i < 25; i++) mem[i] = g_slice_alloc (50);",
                    _alloc_n("mem", 50, 24, fill=True),
                ),
                Step(
                    "One more block: the magazine reloads",
                    "mem[25] = g_slice_alloc (50);",
                    _alloc_n("mem", 50, 1, fill=True),
                ),
                Step(
                    "The other 9974 blocks",
                    "for (i = 26; i < 10000; i++) ...",
                    _alloc_n("mem", 50, 9974, fill=True),
                ),
                Step("Free the first block", "g_slice_free1 (50, mem[0]);", _free_n("mem", 50, 1)),
                Step(
                    "Free the next 49",
                    "for (i = 1; i < 50; i++) g_slice_free1 (50, mem[i]);",
                    _free_n("mem", 50, 49),
                ),
                Step(
                    "Free all the rest",
                    "for (i = 50; i < 10000; i++) g_slice_free1 (...);",
                    _free_n("mem", 50),
                ),
            ),
        ),
        Workload(
            "seed-struct",
            "The seed's second example: g_slice_new (GRealArray), use it, g_slice_free.",
            (
                Step("g_slice_new (GRealArray)", "array = g_slice_new (GRealArray);", _new_array),
                Step(
                    "g_slice_free (GRealArray, array)",
                    "g_slice_free (GRealArray, array);",
                    _free_array,
                ),
            ),
        ),
        Workload(
            "thread-exit",
            "A worker thread allocates and frees 100 blocks of 40 bytes, then exits; "
            "the main thread allocates 100 more.",
            (
                Step(
                    "A worker allocates 100 x 40 B, frees them, and exits",
                    "worker: 100 x g_slice_alloc (40); 100 x g_slice_free1; exit",
                    _in_thread("worker", _each([_alloc_n("w", 40, 100), _free_n("w", 40)])),
                ),
                Step(
                    "Main allocates 100 x 40 B",
                    "100 x g_slice_alloc (40)",
                    _alloc_n("main", 40, 100),
                ),
            ),
        ),
        Workload(
            "thread-exit-steps",
            "The thread-exit workload with the exit as a step of its own: before and after.",
            (
                Step(
                    "A worker allocates 100 x 40 B and frees them; it is still running",
                    "worker: 100 x g_slice_alloc (40); 100 x g_slice_free1 (40, ...)",
                    _on_worker("worker", _each([_alloc_n("w", 40, 100), _free_n("w", 40)])),
                ),
                Step("The worker exits", "worker: return from the thread", _end_worker("worker")),
                Step(
                    "Main allocates 100 x 40 B",
                    "100 x g_slice_alloc (40)",
                    _alloc_n("main", 40, 100),
                ),
            ),
        ),
        Workload(
            "colour",
            "Enough slabs of two classes to see colour offsets climb and wrap (COLOR-002).",
            (
                Step(
                    "Allocate 64 x 1000 B: eight slabs of the 1008-byte class",
                    "64 x g_slice_alloc (1000)",
                    _alloc_n("k1000", 1000, 64),
                ),
                Step(
                    "Allocate 320 x 464 B, the objects W7 scans",
                    "320 x g_slice_alloc (464)",
                    _alloc_n("k464", 464, 320),
                ),
            ),
        ),
        Workload(
            "depot-trim",
            "Magazines age in the depot; a later push 15 s on trims them and slabs are freed.",
            (
                Step("Allocate 200 x 100 B", "200 x g_slice_alloc (100)", _alloc_n("a", 100, 200)),
                Step(
                    "Free them all: full magazines go to the depot",
                    "200 x g_slice_free1 (100, ...)",
                    _free_n("a", 100),
                ),
                Step("16 seconds pass", "sleep (16)", _tick(16_000)),
                Step(
                    "Cycle 8 magazines' worth so the clock is re-read and the depot trimmed",
                    "8 x (alloc 14, free 14) in a fresh thread",
                    _in_thread("late", _each([_alloc_n("b", 100, 8 * 14), _free_n("b", 100)])),
                ),
            ),
        ),
        Workload(
            "contention",
            "Reloads of 16-byte chunks find the depot lock contended, then stop finding it so.",
            (
                Step(
                    "20 contended reloads",
                    "threads collide on the depot lock while reloading 16-byte magazines",
                    _contended_reloads(True, 16, lambda cc: cc >= 20),
                ),
                Step(
                    "The collisions stop: 24 quiet reloads",
                    "reloads now find the depot lock free",
                    _contended_reloads(False, 16, lambda cc: cc <= 18),
                ),
            ),
        ),
        Workload(
            "mixed",
            "Blocks of several sizes, including a large one that goes to the system malloc.",
            (
                Step(
                    "Allocate 24, 50, 100, 500 and 1000 bytes, 20 of each",
                    "20 x g_slice_alloc (n) for n in 24, 50, 100, 500, 1000",
                    _each(_alloc_n(f"s{n}", n, 20) for n in _MIXED),
                ),
                Step("Allocate 5000 bytes", "g_slice_alloc (5000)", _alloc_n("large", 5000, 1)),
                Step(
                    "Free half of each size",
                    "10 x g_slice_free1 (n, ...) for each n",
                    _each(_free_n(f"s{n}", n, 10) for n in _MIXED),
                ),
            ),
        ),
    )
}
"""The workloads ``demo``, ``show`` and the docs' tutorial run, by name."""


def run_workload(
    workload: Workload | str, tunables: Tunables | None = None
) -> tuple[WorkloadContext, list[StepResult]]:
    """Run every step on a fresh allocator; return the context and each step's result."""
    if isinstance(workload, str):
        workload = WORKLOADS[workload]
    clock = FixedClock()
    flag: list[WorkloadContext] = []
    # The probe only forces contention when a step asks for it; otherwise the
    # lock is tried as usual, so other workloads behave exactly as without it.
    allocator = Allocator(
        tunables or PROFILES["glib-2.74"],
        environ={},
        clock=clock,
        contention=lambda ix: bool(flag) and flag[0].contended,
    )
    ctx = WorkloadContext(allocator, clock)
    flag.append(ctx)
    results = []
    before = allocator.snapshot()
    try:
        for step in workload.steps:
            step.action(ctx)
            after = allocator.snapshot()
            results.append(StepResult(step, before, after, tuple(explain(before, after))))
            before = after
    finally:
        for lane in ctx.workers.values():  # workers a workload left running end here
            lane.run(None)
    return ctx, results


def busiest_class(snapshot: AllocatorSnapshot) -> int:
    """The class with the most slabs plus cached magazines (0 when all are idle)."""

    def weight(ix: int) -> tuple[int, int]:
        cls = snapshot.classes[ix]
        cached = sum(ix in t.magazines for t in snapshot.threads)
        return (len(cls.slabs) + len(cls.depot) + cached, -ix)

    return max(range(len(snapshot.classes)), key=weight) if snapshot.classes else 0


def _stack(svgs: Sequence[str]) -> str:
    """Several SVG documents one above the other in one SVG document."""
    import xml.etree.ElementTree as ET

    parts, y, width = [], 0.0, 0.0
    for text in svgs:
        root = ET.fromstring(text)
        w, h = float(root.get("width", "0")), float(root.get("height", "0"))
        parts.append(text.replace("<svg ", f'<svg x="0" y="{y:g}" ', 1))
        y += h
        width = max(width, w)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width:g}" '
        f'height="{y:g}" viewBox="0 0 {width:g} {y:g}">' + "".join(parts) + "</svg>\n"
    )


def workload_svg(snapshot: AllocatorSnapshot, class_index: int | None = None) -> str:
    """One SVG of a class (the busiest by default): its ring, head slab, magazines and depot."""
    ix = busiest_class(snapshot) if class_index is None else class_index
    cls = snapshot.classes[ix]
    states = chunk_states(snapshot)
    pictures = [ring_svg(cls, states)]
    if cls.slabs:
        pictures.append(slab_svg(cls.slabs[0], states))
    pictures.append(magazines_svg(snapshot, ix))
    return _stack(pictures)


# ----------------------------------------------------------------------- the CLI
def _demo(args: argparse.Namespace) -> int:
    names = args.workload or ["seed-struct", "seed-blocks", "thread-exit"]
    out = sys.stdout
    for name in names:
        workload = WORKLOADS[name]
        out.write(f"== {workload.name}: {workload.summary}\n")
        _, results = run_workload(workload, PROFILES[args.profile])
        for number, result in enumerate(results, 1):
            out.write(f"\n[{number}] {result.step.title}\n    {result.step.code}\n")
            for line in result.narration or ("(no layer changed)",):
                out.write(f"    - {line}\n")
        last = results[-1].after.totals
        out.write(
            f"\n    totals: {last.in_slabs} B in slabs, {last.handed_out} B handed out, "
            f"{last.in_magazines} B in magazines, {last.in_depot} B in the depot, "
            f"{last.large_live} B in large blocks\n\n"
        )
    return 0


def _origin(trace: CallTrace) -> str:
    """Where a trace's calls came from, in words: the recorded command, or the suite's run."""
    command = trace.recorded.get("command")
    if isinstance(command, list):
        return "`" + " ".join(map(str, command)) + "`"
    return f"a conformance trace of {trace.source}"


def _show_trace(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix != ".html":
        sys.stderr.write(
            f"show --trace draws an HTML page: --out must end in .html, not {out.suffix!r}\n"
        )
        return 2
    try:
        trace = load_call_trace(Path(args.trace))
    except TraceError as exc:
        sys.stderr.write(f"show: {exc}\n")
        return 2
    calls = trace.calls[: args.max_calls]
    frames = replay(CallTrace(calls, trace.source, trace.recorded), PROFILES[args.profile])
    left_out = len(trace.calls) - len(calls)
    intro = (
        f"{len(calls)} slice calls of {_origin(trace)}, replayed on the reference "
        f"({args.profile} profile)."
        + (
            f" The trace holds {left_out} more calls; raise --max-calls to see them."
            if left_out
            else ""
        )
        + (
            f" {trace.skipped_ops} ops that move no chunk were left out."
            if trace.skipped_ops
            else ""
        )
    )
    text = stepper_page(frames, f"memslice: {Path(args.trace).name}, one call at a time", intro)
    out.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {out} ({len(frames) - 1} calls, {len(text)} bytes)\n")
    return 0


def _record(args: argparse.Namespace) -> int:
    command = list(args.program)
    if command[:1] == ["--"]:
        command = command[1:]
    try:
        recording = record(command, timeout=args.timeout)
    except RecordError as exc:
        sys.stderr.write(f"record: {type(exc).__name__}: {exc}\n")
        return 2
    save_call_trace(recording.trace, Path(args.out))
    meta = recording.trace.recorded
    sys.stderr.write(
        f"recorded {meta.get('calls')} slice calls from {meta.get('threads')} thread(s) to "
        f"{args.out} (program exit status {recording.exit_status}; "
        f"{meta.get('unmatched_frees_dropped')} frees of unseen blocks dropped)\n"
        f"note: {meta.get('not_seen')}\n"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    if args.trace is not None:
        return _show_trace(args)
    ctx, results = run_workload(args.workload, PROFILES[args.profile])
    snapshot = results[-1].after if results else ctx.allocator.snapshot()
    out = Path(args.out)
    if out.suffix == ".html":
        text = snapshot_html(
            snapshot, ctx.allocator.geometry, title=f"memslice after workload {args.workload!r}"
        )
    elif out.suffix == ".svg":
        if args.table:
            text = size_class_table_svg(ctx.allocator.geometry)
        else:
            ix = None
            if args.size is not None:
                ix = ctx.allocator.geometry.class_index(ctx.allocator.geometry.p2align(args.size))
                if not 0 <= ix < ctx.allocator.geometry.n_classes:
                    sys.stderr.write(f"size {args.size} has no size class (SIZE-009)\n")
                    return 2
            text = workload_svg(snapshot, ix)
    else:
        sys.stderr.write(f"--out must end in .svg or .html, not {out.suffix!r}\n")
        return 2
    out.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {out} ({len(text)} bytes)\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m memslice``."""
    parser = argparse.ArgumentParser(
        prog="python -m memslice", description="Watch the reference slice allocator work."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="narrate workloads step by step, layer by layer")
    demo.add_argument(
        "--workload",
        action="append",
        choices=sorted(WORKLOADS),
        help="workload to narrate (repeatable; default: three short ones)",
    )
    show = sub.add_parser(
        "show", help="draw the allocator after a workload, or step through a trace"
    )
    source = show.add_mutually_exclusive_group(required=True)
    source.add_argument("--workload", choices=sorted(WORKLOADS))
    source.add_argument(
        "--trace", help="a call trace (from record, or a conformance trace): step through it"
    )
    show.add_argument("--out", required=True, help="FILE.svg (one class) or FILE.html (all)")
    show.add_argument(
        "--max-calls", type=int, default=200, help="with --trace: step through this many calls"
    )
    show.add_argument("--size", type=int, help="for .svg: draw the class serving this size")
    show.add_argument("--table", action="store_true", help="for .svg: the size-class table")
    rec = sub.add_parser(
        "record", help="run a GLib program and record its g_slice calls as a trace"
    )
    rec.add_argument("--out", required=True, help="the trace file to write (JSON)")
    rec.add_argument(
        "--timeout", type=float, help="kill the program after this many seconds (no trace)"
    )
    rec.add_argument(
        "program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS... (the program to run)"
    )
    for p in (demo, show):
        p.add_argument("--profile", choices=sorted(PROFILES), default="glib-2.74")
    args = parser.parse_args(argv)
    if args.command == "record":
        if not [a for a in args.program if a != "--"]:
            parser.error("record needs a program: record --out T.json -- PROGRAM ARGS")
        return _record(args)
    return int(_demo(args) if args.command == "demo" else _show(args))


if __name__ == "__main__":
    raise SystemExit(main())
