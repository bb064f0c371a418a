"""Bytecode per operation: where the reference's time goes, counted rather than timed.

Rules and theory of operation
-----------------------------
On a shared machine a timed profile moves by 10 to 20 % from run to run; the
number of bytecode instructions CPython executes does not.  This module runs
a workload of ``memslice_bench.speed`` on a fresh reference allocator under
``sys.settrace`` with opcode events on, and counts the instructions executed
in each function, divided by the workload's operations::

    python -m memslice_bench.bytecode fresh    # 20,000 24-byte allocations into fresh slabs
    python -m memslice_bench.bytecode w6       # W6's core at 10,000 blocks (trim included)
    python -m memslice_bench.bytecode w6-trim  # only W6's last part: the trim, per trimmed block

An instruction is not a unit of time (a call or a big-integer operation costs
more than a load), so read the counts as *where* the work is, beside the CPU
ratios of ``memslice-bench --speed-only``, not instead of them.  Only the
counted stretch is traced; setting up the allocator is not.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import Any

from memslice import Allocator, SliceConfig

from .workloads import lcg

__all__ = ["count"]


def count(workload: str) -> tuple[int, Counter[str]]:
    """``(operations, {"module:function": instructions})`` for one workload."""
    counts: Counter[str] = Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            counts[f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"] += 1
        return tracer

    if workload == "fresh":
        allocator = Allocator(environ={})
        alloc = allocator.alloc
        alloc(24)  # initialised: settings, tables, the first slab
        sys.settrace(tracer)
        kept = [alloc(24) for _ in range(20_000)]
        sys.settrace(None)
        allocator.close()
        return len(kept), counts
    if workload not in ("w6", "w6-trim"):
        raise SystemExit(f"unknown workload {workload!r}: fresh, w6 or w6-trim")
    n = 10_000
    rand = lcg(6)
    sizes = [16 + next(rand) % 497 for _ in range(n)]
    now = [0]
    allocator = Allocator(environ={}, clock=lambda: now[0])
    geometry = allocator.geometry
    classes = sorted({geometry.p2align(s) for s in sizes})
    reserve = [
        (chunk, allocator.alloc(chunk))
        for k, chunk in enumerate(classes)
        for _ in range(
            (12 if k == 0 else 3) * geometry.classes[geometry.class_index(chunk)].base_threshold + 1
        )
    ]
    alloc, free1 = allocator.alloc, allocator.free1
    if workload == "w6":
        sys.settrace(tracer)
    blocks = [alloc(s) for s in sizes]
    for size, block in zip(sizes, blocks, strict=True):
        free1(size, block)
    now[0] += allocator.get_config(SliceConfig.WORKING_SET_MSECS) + 1
    sys.settrace(tracer)
    for size, block in reserve:
        free1(size, block)
    sys.settrace(None)
    allocator.close()
    return (2 * n if workload == "w6" else n), counts


def main(argv: list[str]) -> None:
    workload = argv[0] if argv else "fresh"
    operations, counts = count(workload)
    total = sum(counts.values())
    print(f"{workload}: {total / operations:.1f} bytecode instructions per operation")
    for name, instructions in counts.most_common(16):
        print(f"  {instructions / operations:7.1f}  {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
