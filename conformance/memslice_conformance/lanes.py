"""Checks in parallel lanes: one run's checks shared between this process and forked ones.

Rules and theory of operation
-----------------------------
A default ``core`` run is one long check (the state machine, about half of
the run) and several shorter ones, and each check keeps about one core busy
(the runner's Python and the implementation's worker take turns).  On a
machine with a spare core the runner therefore splits the selected checks
into *lanes* before it runs any, and runs the lanes at the same time
(RUN-015)::

    plan_lanes(checks, expected_seconds, jobs)      longest first, each to the
      -> [[edges, machine, failure_paths],              lane with least work
          [sizes_sweep, chain_sweep, threads, thread_churn, hammer, scale]]
    run_lanes(lanes, run_lane, ...)
      lane 0: this process                   lane 1..: a child forked from it
      run_lane(lane 0)                       run_lane(lane 1)
                      ◄── pipe ── ("progress", check, state)   as it goes
                      ◄── pipe ── ("done", results, reason, evidence)

The forked lanes run at a lower scheduling priority (nice 5): lane 0 holds
the state machine, whose runner and worker hand each step back and forth,
so it is the one that waits for a core each time it wakes; the other lanes
take whatever time it leaves.

A check's result does not depend on its lane: every check opens its own
sessions (new workers or fresh allocator objects) and draws its randomness
from the run's seed alone.  What a lane learns while it runs stays in it:
a hang shortens the exchange deadline of its own lane only.

The child is forked before any check runs and shares nothing mutable with
its parent afterwards.  It sends its results, its stop reason and the
coverage evidence its checks recorded (:mod:`memslice_conformance.checks.coverage`)
back pickled over a pipe only it writes.  That pipe crosses no trust
boundary: the implementation never runs in the runner's processes except
a ``py:`` object, which runs in the runner's own process anyway.

Stopping.  Each lane stops on its own for the user's Ctrl-C (the signal
reaches the whole process group), the run's deadline and ``--fail-fast``.
When lane 0 stops early, the other lanes are asked to stop with ``SIGINT``;
when a child reports a failure under fail-fast, lane 0 stops too, its
running check at its next exchange.  Their unfinished checks are "not run".
A child that dies without reporting (a ``py:`` implementation that crashed
the interpreter) leaves its checks "incomplete" with the signal or status,
never passed.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from memslice_conformance.checks import coverage
from memslice_conformance.reporting.results import CheckResult

__all__ = ["LaneOutcome", "default_jobs", "plan_lanes", "run_lanes"]

#: What a lane runner returns: its results and why it stopped early ("" if it did not).
LaneRun = Callable[[Sequence[str], Callable[[], bool]], tuple[list[CheckResult], str]]


#: How much lower the forked lanes' scheduling priority is than lane 0's.
_LANE_NICENESS = 5


def default_jobs() -> int:
    """Lanes for a run: the cores this process may use, at most 4, 1 without ``fork``."""
    if not hasattr(os, "fork"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def plan_lanes(
    checks: Sequence[str], expected: Mapping[str, float], jobs: int
) -> list[list[str]]:
    """Split ``checks`` into at most ``jobs`` lanes of similar expected time.

    Longest first, each to the lane with the least work so far (the
    classic greedy schedule); within a lane the run's order is kept, so a
    lane reads like a shorter run.  Checks without an estimate count 1 s.
    """
    lanes: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(checks))))]
    loads = [0.0] * len(lanes)
    for name in sorted(checks, key=lambda c: -expected.get(c, 1.0)):
        lane = loads.index(min(loads))
        lanes[lane].append(name)
        loads[lane] += expected.get(name, 1.0)
    order = {name: index for index, name in enumerate(checks)}
    return [sorted(lane, key=order.__getitem__) for lane in lanes if lane]


@dataclass
class LaneOutcome:
    """Everything the lanes returned, merged."""

    results: list[CheckResult] = field(default_factory=list)
    #: Why the run stopped early ("" if it did not); lane 0's reason first.
    reason: str = ""
    #: Checks of a lane whose process died, with how it died.
    lost: dict[str, str] = field(default_factory=dict)


class _Child:
    """A forked lane seen from the parent: its pipe, its reader thread, its news."""

    def __init__(self, pid: int, fd: int, progress: Callable[[str, str], None] | None,
                 failed: threading.Event, fail_fast: bool) -> None:
        self.pid = pid
        self.fd = fd
        self.report: tuple[list[CheckResult], str, dict[tuple[str, str], frozenset[str]]] | None
        self.report = None
        self._progress = progress
        self._failed = failed
        self._fail_fast = fail_fast
        self.thread = threading.Thread(target=self._read, name=f"lane-{pid}", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with os.fdopen(self.fd, "rb") as stream:
            while header := stream.read(4):
                if len(header) < 4:
                    return
                (length,) = struct.unpack("<I", header)
                try:
                    message = pickle.loads(stream.read(length))  # our own child: see module doc
                except Exception:  # cut short: the child died mid-message (wait() says how)
                    return
                if message[0] == "progress":
                    _, name, state = message
                    if self._progress is not None:
                        self._progress(name, state)
                    if state == "fail" and self._fail_fast:
                        self._failed.set()
                elif message[0] == "done":
                    self.report = message[1:]

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)

    def wait(self) -> str:
        """Reap the child; "" if it reported, else how it died."""
        self.thread.join()
        _, status = os.waitpid(self.pid, 0)
        if self.report is not None:
            return ""
        if os.WIFSIGNALED(status):
            try:
                name = signal.Signals(os.WTERMSIG(status)).name
            except ValueError:
                name = f"signal {os.WTERMSIG(status)}"
            return f"the lane's process died with {name}"
        return f"the lane's process exited with status {os.waitstatus_to_exitcode(status)}"


def _send(fd: int, message: tuple[object, ...]) -> None:
    data = pickle.dumps(message)
    os.write(fd, struct.pack("<I", len(data)))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _die_with(parent: int) -> None:
    """End this lane if the runner is killed (SIGTERM from a CI timeout, say).

    Linux's parent-death signal: without it an orphaned lane would run its
    checks to the end for nobody.  Its workers then see their input close.
    """
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)


def _fork_lane(lane: Sequence[str], run_lane: LaneRun, stop: Callable[[], bool],
               set_progress: Callable[[Callable[[str, str], None]], None]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads (a progress display's
        # refresher): the child touches none of their locks.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end
    # The child: run the lane, report, and leave without the parent's exit hooks.
    code = 1
    try:  # pragma: no cover - runs in the forked child (its results are tested)
        os.close(read_end)
        _die_with(parent)
        os.nice(_LANE_NICENESS)
        set_progress(lambda name, state: _send(write_end, ("progress", name, state)))
        results, reason = run_lane(lane, stop)
        _send(write_end, ("done", results, reason, coverage.evidence()))
        code = 0
    finally:
        os._exit(code)


def run_lanes(
    lanes: Sequence[Sequence[str]],
    run_lane: LaneRun,
    progress: Callable[[str, str], None] | None,
    set_progress: Callable[[Callable[[str, str], None]], None],
    fail_fast: bool,
) -> LaneOutcome:
    """Run ``lanes[0]`` here and every other lane in a forked child (module doc).

    ``run_lane(names, stop)`` runs checks one by one and returns (results,
    reason), asking ``stop()`` between checks; ``set_progress`` points a
    child's progress reports at its pipe.
    """
    failed = threading.Event()
    children: list[_Child] = []
    for lane in lanes[1:]:
        pid, fd = _fork_lane(lane, run_lane, lambda: False, set_progress)
        children.append(_Child(pid, fd, progress, failed, fail_fast))
    outcome = LaneOutcome()
    asked_to_stop = False
    try:
        outcome.results, outcome.reason = run_lane(lanes[0], failed.is_set)
    finally:
        if outcome.reason or failed.is_set() or (
                fail_fast and any(r.status == "fail" for r in outcome.results)):
            asked_to_stop = True
            for child in children:
                child.stop()
        for lane, child in zip(lanes[1:], children, strict=True):
            while True:
                try:
                    death = child.wait()
                    break
                except BaseException:  # Ctrl-C while waiting: the lanes got it too
                    for other in children:
                        other.stop()
            if child.report is None:
                outcome.lost.update({name: death for name in lane})
                continue
            results, reason, evidence = child.report
            outcome.results += results
            # A lane we stopped says "interrupted": that is not the run's reason.
            if reason and not outcome.reason and not asked_to_stop:
                outcome.reason = reason
            for (clause, path), checks in evidence.items():
                for check in checks:
                    coverage.exercised(clause, path, check=check)
    return outcome
