"""fork: a child of a process whose threads churn the allocator starts consistent and unlocked.

Issue 12 item 9: with six threads churning, five of six ``fork()`` children
deadlocked on ``LargeBlocks._lock`` (a lock another thread held at the fork).
PY-025 decides what a child gets: every lock free, the forking thread's
magazines as they were, the other threads' magazines retired as at their
exit (EXIT-002).  Each test forks children while six threads allocate and
free on every route; each child must allocate, free, pass ``check()`` and
exit within a timeout, or the test fails (a deadlocked child is killed).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from memslice import Allocator, SliceConfig

SIZES = (16, 24, 40, 100, 500, 1000, 2000, 5000)  # several classes and the malloc route
CHILD_TIMEOUT = 30.0  # seconds: a correct child needs well under one


def _churn(
    allocator: Allocator, stop: threading.Event, seed: int, errors: list[BaseException]
) -> None:
    rng = random.Random(seed)
    held: list[tuple[int, int]] = []
    try:
        while not stop.is_set():
            for _ in range(50):
                if held and rng.random() < 0.5:
                    size, block = held.pop(rng.randrange(len(held)))
                    allocator.free1(size, block)
                else:
                    size = rng.choice(SIZES)
                    held.append((size, allocator.alloc(size)))
        for size, block in held:
            allocator.free1(size, block)
    except BaseException as error:  # pragma: no cover - reported by the test
        errors.append(error)


@pytest.fixture
def churning() -> Iterator[Allocator]:
    allocator = Allocator(environ={})
    # Working set 0: every depot push trims, so the depot and slab locks are held
    # often; a short switch interval lets a fork land while another thread holds one.
    allocator.set_config(SliceConfig.WORKING_SET_MSECS, 0)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    stop = threading.Event()
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_churn, args=(allocator, stop, seed, errors)) for seed in range(6)
    ]
    for thread in threads:
        thread.start()
    try:
        yield allocator
    finally:
        sys.setswitchinterval(interval)
        stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    allocator.check()
    allocator.close()


def _child(allocator: Allocator, held: int, content: bytes) -> int:
    """What each child does; its exit status is 0 only if everything held."""
    try:
        blocks = [(size, allocator.alloc(size)) for size in SIZES * 20]
        for size, block in blocks:
            allocator.free1(size, block)
        allocator.check()  # no chunk in two places, slabs, rings and depot sound
        if allocator.read(held, len(content)) != content:
            return 3
        allocator.free1(len(content), held)
        allocator.check()
        worker = threading.Thread(target=lambda: allocator.free1(64, allocator.alloc(64)))
        worker.start()  # threads work in the child too
        worker.join()
        allocator.check()
        return 0
    except BaseException:  # pragma: no cover - the parent sees the status
        import traceback

        traceback.print_exc()
        return 2


def _wait(pid: int) -> int:
    deadline = time.monotonic() + CHILD_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1  # deadlocked


def _fork_many(allocator: Allocator, forks: int) -> list[int]:
    content = bytes(range(40))
    statuses = []
    for _ in range(forks):
        held = allocator.alloc(len(content))
        allocator.write(held, content)
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            os._exit(_child(allocator, held, content))
        statuses.append(_wait(pid))
        allocator.free1(len(content), held)
        time.sleep(0.005)  # let the churners move on to another state
    return statuses


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_fork_children_of_a_churning_process_work(churning: Allocator) -> None:
    """PY-025: each child allocates, frees, passes check() and exits (-1 = deadlocked)."""
    statuses = _fork_many(churning, 8)
    assert statuses == [0] * len(statuses)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_many_fork_children_of_a_churning_process_work(churning: Allocator) -> None:
    """PY-025, long form: 200 forks."""
    statuses = _fork_many(churning, 200)
    assert statuses == [0] * len(statuses)


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_fork_child_keeps_its_own_magazines_and_reuses_the_others() -> None:
    """PY-025: the forking thread's magazines are as they were; another thread's are retired."""
    allocator = Allocator(environ={})
    mine = [allocator.alloc(24) for _ in range(3)]
    for block in mine:
        allocator.free1(24, block)
    ready, release = threading.Event(), threading.Event()

    def other() -> None:
        theirs = [allocator.alloc(24) for _ in range(5)]
        for block in theirs:
            allocator.free1(24, block)
        ready.set()
        release.wait()

    thread = threading.Thread(target=other)
    thread.start()
    ready.wait()
    before = {t.thread_id: t for t in allocator.snapshot().threads}
    me = before[threading.get_ident()]
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            after = allocator.snapshot()
            survivors = {t.thread_id: t for t in after.threads}
            if set(survivors) == {threading.get_ident()} and survivors[me.thread_id] == me:
                allocator.check()
                status = 0
        finally:
            os._exit(status)
    try:
        assert _wait(pid) == 0
    finally:
        release.set()
        thread.join()
    allocator.check()
    allocator.close()
