"""Parallel lanes (RUN-015): the same verdicts as one lane, in the run's order.

The lanes are real forked processes running real checks; the comparison is
with the same run done one check after another.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memslice_conformance.cli import main
from memslice_conformance.lanes import plan_lanes
from memslice_conformance.runner import EXPECTED_SECONDS, run_conformance

QUICK = ["edges", "sizes_sweep", "chain_sweep", "thread_churn"]


def test_plan_balances_the_expected_time_and_keeps_the_run_order() -> None:
    checks = ["edges", "sizes_sweep", "chain_sweep", "machine", "threads", "hammer", "scale"]
    lanes = plan_lanes(checks, EXPECTED_SECONDS, 2)
    assert sorted(name for lane in lanes for name in lane) == sorted(checks)
    assert len(lanes) == 2 and "machine" in lanes[0]  # the longest goes first, to lane 0
    loads = [sum(EXPECTED_SECONDS[name] for name in lane) for lane in lanes]
    # The greedy schedule: no lane ends later than the other by more than its last check.
    assert abs(loads[0] - loads[1]) <= max(EXPECTED_SECONDS[name] for name in checks)
    assert max(loads) < 0.6 * sum(loads)
    for lane in lanes:
        assert lane == sorted(lane, key=checks.index)
    assert plan_lanes(checks, EXPECTED_SECONDS, 1) == [checks]
    assert plan_lanes(["edges"], EXPECTED_SECONDS, 4) == [["edges"]]


def _verdicts(impl: str, jobs: int, trace_dir: Path) -> tuple[object, ...]:
    report = run_conformance(impl, checks=QUICK, trace_dir=trace_dir, jobs=jobs,
                             trace_shrink_seconds=2)
    checks = [(c.name, c.status, c.failure, c.examples,
               None if c.trace is None else c.trace.steps) for c in report.checks]
    clauses = [(c.id, c.status, c.checks, c.note) for c in report.clauses]
    return report.status, checks, clauses


def test_two_lanes_give_the_verdicts_of_one(tmp_path: Path) -> None:
    for impl in ("reference", "py:pyimpls:FourAligned", "py:pyimpls:ChainIgnoresOffset"):
        one = _verdicts(impl, 1, tmp_path / "one")
        two = _verdicts(impl, 2, tmp_path / "two")
        assert one == two, impl
    assert one[0] == "not-conforming"  # the broken ones fail in both


def test_progress_lines_without_a_terminal_come_in_the_runs_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sizes_sweep (lane 0) ends a second after chain_sweep (lane 1); its line still
    comes first, so two logs of one run read the same (they came as finished,
    RUN-015)."""
    assert main(["run", "--impl", "py:pyimpls:SlowAt1111", "--check", "edges",
                 "--check", "sizes_sweep", "--check", "chain_sweep", "--jobs", "2"]) == 0
    shown = [line.split(":")[0].strip() for line in capsys.readouterr().out.splitlines()
             if line.startswith("  ") and line.endswith(": pass")]
    assert shown == ["edges", "sizes_sweep", "chain_sweep"]


def test_a_lane_that_dies_leaves_its_checks_incomplete(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    status = main(["run", "--impl", "py:hostile:DiesInForkedLane", "--check", "edges",
                   "--check", "sizes_sweep", "--jobs", "2", "--quiet",
                   "--report", str(report)])
    data = json.loads(report.read_text())
    statuses = dict((c["name"], c["status"]) for c in data["checks"])
    # sizes_sweep (longer) stays in this process and passes; edges ran in the child.
    assert statuses == {"edges": "incomplete", "sizes_sweep": "pass"}
    note = next(c["note"] for c in data["checks"] if c["name"] == "edges")
    assert "SIGKILL" in note
    assert status == 3 and data["status"] == "incomplete"


def test_fail_fast_in_one_lane_stops_the_check_running_in_another(tmp_path: Path) -> None:
    """Lane 1 (edges, sizes_sweep) fails at once; lane 0's state machine, correct
    here, stops at its next exchange and is not run, rather than run to its end."""
    report = tmp_path / "r.json"
    status = main(["run", "--impl", "py:hostile:MisalignsInForkedLane", "--check", "machine",
                   "--check", "edges", "--check", "sizes_sweep", "--jobs", "2", "--fail-fast",
                   "--quiet", "--shrink-seconds", "1", "--report", str(report),
                   "--trace-dir", str(tmp_path / "t")])
    data = json.loads(report.read_text())
    statuses = dict((c["name"], c["status"]) for c in data["checks"])
    assert status == 1 and data["status"] == "not-conforming"
    assert "machine" not in statuses, statuses
    assert "fail" in statuses.values()


def test_a_killed_runner_leaves_no_lane_behind(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    # A slow implementation: the lane's check would go on for minutes, with
    # nothing to send its parent that could make it notice the parent is gone.
    slow = f"cmd:{sys.executable} {Path(__file__).parent / 'impls' / 'slow_proxy.py'} 0.5"
    runner = subprocess.Popen(
        [sys.executable, "-m", "memslice_conformance.cli", "run", "--impl", slow,
         "--check", "machine", "--check", "hammer", "--jobs", "2", "--quiet",
         "--trace-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lanes: list[int] = []
        deadline = time.monotonic() + 30
        while not lanes and time.monotonic() < deadline:
            time.sleep(0.2)
            children = Path(f"/proc/{runner.pid}/task/{runner.pid}/children")
            own = Path(f"/proc/{runner.pid}/cmdline").read_bytes()
            # A lane is a fork of the runner: the same command line (workers differ).
            lanes = [int(pid) for pid in children.read_text().split()
                     if _cmdline(int(pid)) == own]
        assert lanes, "the run forked no lane"
        runner.send_signal(signal.SIGTERM)
        runner.wait(10)
        deadline = time.monotonic() + 3
        while [pid for pid in lanes if _alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in lanes if _alive(pid)]
    finally:
        if runner.poll() is None:
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
