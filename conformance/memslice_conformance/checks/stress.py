"""The native stress driver: real POSIX threads hammering a C slice allocator.

Rules and theory of operation
-----------------------------
A thread-unsafe C allocator passes any Python-level thread test, because the
GIL serialises everything outside the few nanoseconds a ctypes call spends in
C.  The ``concurrency`` profile therefore runs ``native/stress.c``, compiled
with the system's C compiler on first use and cached by the hash of its
source::

    run_stress("libglib-2.0.so.0", env={"G_SLICE": ...})
        │ compile (once)  gcc -O2 -pthread stress.c -ldl  ->  ~/.cache/memslice/stress-<hash>
        │ spawn           stress LIBRARY THREADS OPS GENERATIONS SEED   (own process)
        ▼
    JSON lines: one per violation, then a summary   ->  StressRun

Threads allocate random sizes across every slab class and the malloc path,
stamp every byte, hand blocks to each other to free (cross-thread frees),
free chains, exit, and are replaced by a new generation while their blocks
stay live (API-004, API-005, API-009, EXIT-001, EXIT-005).  A block handed out twice
while live, a changed byte, a NULL for a nonzero size or a misaligned block is
a violation; so is a crash (reported with its signal) or a hang past the
deadline.  Each round uses another seed, so repeated rounds explore different
interleavings.

When a run fails, the driver prints each thread's last operations (its
ring); :attr:`StressRun.interleaving` merges them by their global sequence
number, and :meth:`StressRun.describe` shows the last few, so the report
shows which calls of which threads met.  :func:`rerun_stress` replays a
failing seed until it fails again or a time budget ends (threads make it
best effort: the same seed gives the same calls, not the same timing).

No compiler is not a silent skip: :class:`CompilerMissing` says what to install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

__all__ = [
    "CompilerMissing",
    "RingEntry",
    "StressRun",
    "StressViolation",
    "compile_native",
    "rerun_stress",
    "run_stress",
]

NATIVE_DIR: Final = Path(__file__).resolve().parents[1] / "native"


class CompilerMissing(RuntimeError):
    """No C compiler: the native driver cannot be built (install gcc, or set CC)."""


@dataclass(frozen=True, slots=True)
class StressViolation:
    """One thing the driver saw go wrong."""

    kind: str
    address: int
    size: int
    detail: str


@dataclass(frozen=True, slots=True)
class RingEntry:
    """One call a driver thread made, in the global order of calls."""

    seq: int
    thread: int
    op: str  # "alloc", "free", "cross-free" (a block from another thread), "chain"
    size: int
    address: int

    def describe(self) -> str:
        if self.op == "alloc":
            return f"#{self.seq} T{self.thread}: g_slice_alloc({self.size}) -> {self.address:#x}"
        if self.op == "chain":
            return f"#{self.seq} T{self.thread}: g_slice_free_chain_with_offset({self.size}, " \
                f"{self.address:#x}, 0)"
        what = " (allocated by another thread)" if self.op == "cross-free" else ""
        return f"#{self.seq} T{self.thread}: g_slice_free1({self.size}, {self.address:#x}){what}"


_RING_OPS: Final = {"a": "alloc", "f": "free", "x": "cross-free", "c": "chain"}
#: Calls shown in a failure's description (the whole rings are in ``interleaving``).
SHOWN_CALLS: Final = 12


@dataclass(frozen=True, slots=True)
class StressRun:
    """The outcome of one driver run."""

    library: str
    seed: int
    threads: int
    generations: int
    operations: int = 0
    seconds: float = 0.0
    violations: tuple[StressViolation, ...] = field(default_factory=tuple)
    crash: str | None = None
    timed_out: bool = False
    error: str | None = None
    #: Every thread's last calls before the failure, merged in global order.
    interleaving: tuple[RingEntry, ...] = ()
    #: The driver thread that took the crash signal (-1: the main thread).
    crashed_thread: int | None = None

    @property
    def passed(self) -> bool:
        """No violation, no crash, no hang, no load error."""
        return not (self.violations or self.crash or self.timed_out or self.error)

    def describe(self) -> str:
        """What went wrong, then the last calls of every thread that led there."""
        head = self._headline()
        if not self.interleaving:
            return head
        threads = sorted({e.thread for e in self.interleaving})
        # The last calls overall, and each thread's last few: who met whom.
        chosen = set(self.interleaving[-SHOWN_CALLS:])
        for thread in threads:
            chosen.update([e for e in self.interleaving if e.thread == thread][-3:])
        shown = sorted(chosen, key=lambda e: e.seq)
        lines = "\n  ".join(e.describe() for e in shown)
        return (
            f"{head}; the last {len(shown)} of {len(self.interleaving)} calls recorded on "
            f"threads {', '.join(f'T{t}' for t in threads)}:\n  {lines}"
        )

    def _headline(self) -> str:
        if self.error:
            return f"driver error: {self.error}"
        if self.crash:
            where = f" in thread T{self.crashed_thread}" if self.crashed_thread not in (
                None, -1) else ""
            return (
                f"the library crashed the stress driver with {self.crash}{where} "
                f"(seed {self.seed})"
            )
        if self.timed_out:
            return f"the stress driver hung past its deadline (seed {self.seed})"
        if self.violations:
            first = self.violations[0]
            return (
                f"{len(self.violations)} violation(s), first: {first.kind} at {first.address:#x} "
                f"size {first.size}: {first.detail} (seed {self.seed})"
            )
        return f"{self.operations} operations on {self.threads} threads, no violation"


def _cache_dir() -> Path:
    root = os.environ.get("MEMSLICE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "memslice"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def compile_native(source_name: str, *, shared: bool = False) -> Path:
    """Compile ``native/<source_name>`` once (cached by content hash) and return the binary."""
    source = NATIVE_DIR / source_name
    text = source.read_bytes()
    compiler = os.environ.get("CC", "gcc")
    digest = hashlib.sha256(text + compiler.encode() + bytes([shared])).hexdigest()[:16]
    suffix = ".so" if shared else ""
    target = _cache_dir() / f"{source.stem}-{digest}{suffix}"
    if target.exists():
        return target
    if shutil.which(compiler) is None:
        raise CompilerMissing(
            f"the {source_name} stress driver needs a C compiler, and {compiler!r} is not on PATH: "
            "install one (Debian: apt-get install gcc libc6-dev) or set CC"
        )
    flags = ["-shared", "-fPIC"] if shared else ["-pthread"]
    partial = target.with_name(target.name + f".{os.getpid()}.tmp")
    command = [compiler, "-O2", "-std=c11", *flags, "-o", str(partial), str(source)]
    if not shared:
        command.append("-ldl")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise CompilerMissing(f"compiling {source_name} failed:\n{result.stderr}")
    partial.replace(target)  # atomic: concurrent runs never see half a binary
    return target


def run_stress(
    library: str,
    *,
    env: Mapping[str, str] | None = None,
    threads: int = 4,
    operations: int = 20000,
    generations: int = 4,
    seed: int = 1,
    timeout: float = 60.0,
) -> StressRun:
    """Run the driver once against ``library`` (a path or soname) in its own process."""
    driver = compile_native("stress.c")
    environment = dict(os.environ)
    environment.update(env or {})
    command = [str(driver), library, str(threads), str(operations), str(generations), str(seed)]
    base = StressRun(library=library, seed=seed, threads=threads, generations=generations)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=environment, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return replace(base, timed_out=True)
    violations = []
    entries: list[RingEntry] = []
    crashed_thread: int | None = None
    operations_done, seconds = 0, 0.0
    error: str | None = None
    for line in result.stdout.splitlines():
        try:
            record: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "violation" in record:
            violations.append(
                StressViolation(
                    record["violation"], record["address"], record["size"], record["detail"]
                )
            )
        elif "crashed_thread" in record:
            crashed_thread = int(record["crashed_thread"])
        elif "ring" in record:
            for seq, op, size, address in record.get("ops", []):
                entries.append(
                    RingEntry(int(seq), int(record["ring"]), _RING_OPS.get(op, op), size, address)
                )
        elif record.get("summary"):
            operations_done, seconds = int(record["operations"]), float(record["seconds"])
        elif "error" in record:
            error = f"{record['error']}: {record.get('detail', '')}".rstrip(": ")
    # A ring read while its thread ran on may repeat a call: keep each once.
    entries = list({e.seq: e for e in entries}.values())
    crash = None
    if result.returncode < 0:
        crash = signal.Signals(-result.returncode).name
    elif result.returncode == 2 and error is None:
        error = result.stderr.strip() or "usage error"
    return StressRun(
        library=library,
        seed=seed,
        threads=threads,
        generations=generations,
        operations=operations_done,
        seconds=seconds,
        violations=tuple(violations),
        crash=crash,
        error=error,
        interleaving=tuple(sorted(entries, key=lambda e: e.seq)),
        crashed_thread=crashed_thread,
    )


def rerun_stress(run: StressRun, budget: float, **kwargs: Any) -> tuple[int, int]:
    """Rerun a failed run's seed until it fails again or ``budget`` seconds end.

    Returns (failing reruns, reruns).  Best effort: threads do not replay
    their timing, so a narrow race may need several reruns or none may fail.
    """
    deadline = time.monotonic() + budget
    failed = tries = 0
    while time.monotonic() < deadline:
        again = run_stress(
            run.library, seed=run.seed, threads=run.threads, generations=run.generations,
            timeout=max(1.0, deadline - time.monotonic()), **kwargs,
        )
        tries += 1
        if not again.passed and not again.timed_out:
            failed += 1
            break
    return failed, tries

