"""Contention adaptation: the counted depot lock and its effect on thresholds."""

from __future__ import annotations

import threading

from memslice import Allocator, SliceConfig
from memslice.contention import ContendedLock

from .formulas import threshold


def test_one_contended_acquisition_raises_the_counter() -> None:
    """CONT-002: contended -> mutex_counter reaches 1 -> reset, cc += 1."""
    lock = ContendedLock(3, probe=lambda index: True)
    assert lock.acquire_counted(1) is True
    lock.lock.release()
    assert lock.counters == [0, 1, 0] and lock.mutex_counter == 0


def test_twelve_quiet_acquisitions_lower_it_by_one() -> None:
    """CONT-002: eleven uncontended leave cc alone; the twelfth lowers it."""
    lock = ContendedLock(1)
    lock.counters[0] = 5
    for _ in range(11):
        assert lock.acquire_counted(0) is False
        lock.lock.release()
    assert lock.counters == [5] and lock.mutex_counter == -11
    lock.acquire_counted(0)
    lock.lock.release()
    assert lock.counters == [4] and lock.mutex_counter == 0


def test_contention_after_quiet_spells_only_moves_the_counter_back() -> None:
    """CONT-002: a contended lock after uncontended ones does not raise cc."""
    contended = [False]
    lock = ContendedLock(1, probe=lambda index: contended[0])
    for _ in range(3):
        lock.acquire_counted(0)
        lock.lock.release()
    contended[0] = True
    lock.acquire_counted(0)
    lock.lock.release()
    assert lock.counters == [0] and lock.mutex_counter == -2


def test_counter_is_capped() -> None:
    """CONT-003: cc never exceeds MAX_MAGAZINE_SIZE (256)."""
    lock = ContendedLock(1, probe=lambda index: True)
    for _ in range(300):
        lock.acquire_counted(0)
        lock.lock.release()
    assert lock.counters == [256]


def test_a_real_blocked_acquisition_counts_as_contention() -> None:
    """CONT-001: a failed trylock followed by a blocking lock counts."""
    lock = ContendedLock(1)
    lock.lock.acquire()
    started = threading.Event()
    result: list[bool] = []

    def contender() -> None:
        started.set()
        result.append(lock.acquire_counted(0))
        lock.lock.release()

    thread = threading.Thread(target=contender)
    thread.start()
    started.wait()
    threading.Event().wait(0.05)  # let the contender reach the blocking acquire
    lock.lock.release()
    thread.join()
    assert result == [True] and lock.counters == [1]


def test_contention_grows_magazines_and_get_config_state_reports_it() -> None:
    """CONT-004, CONF-010: cc feeds the threshold; the triple is [chunk, cc, threshold]."""
    allocator = Allocator(environ={}, contention=lambda index: index == 0)
    blocks = []
    for _ in range(40):  # each empty-magazine reload is one counted, contended pop
        blocks.extend(allocator.alloc(16) for _ in range(allocator.get_config_state(6, 0)[2]))  # type: ignore[index]
    chunk, counter, limit = allocator.get_config_state(SliceConfig.CONTENTION_COUNTER, 0)  # type: ignore[misc]
    assert chunk == 16 and counter >= 30
    assert limit == threshold(16, counter) > threshold(16)
    assert allocator.get_config_state(SliceConfig.CONTENTION_COUNTER, 1) == [32, 0, threshold(32)]
