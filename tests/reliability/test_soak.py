"""Soak: GLib's memory-hammer, single- and multi-threaded, with periodic consistency checks.

The hammer (API-020) is GLib's ``test_sliced_mem_thread``: a 32-bit LCG
(``rand = 1664525 * rand + 1013904223``) picks sizes ``rand % 1021`` (0 to
1020, so both the slab and the malloc route); it allocates ``n_blocks``
blocks, then each round frees the even-indexed half and re-allocates it with
new sizes, then frees everything, then each round allocates 100 blocks of one
random size and frees them.  Every live block carries an 8-byte tag checked
when it is freed (API-005); every few rounds the consistency checker is given
exactly the blocks held (INTRO-003).

Resident memory (``/proc/self/statm``) is sampled after every round: the peak
must stay bounded, and after everything is freed and the working set has
expired (injected clock, DEPOT-007), the slab pages still mapped must be no
more than the caches may pin, and in the long runs at most half their peak,
with the RSS giving back at least a quarter of its climb (pages of emptied
slabs go back to the OS, PAGE-003).

The multi-thread variant runs one hammer per thread on one allocator; in
round ``r`` thread ``i`` works on block list ``(i + r) % n``, so most frees are
of blocks another thread allocated (API-009).  Threads meet at a barrier
between rounds so the checker runs on a quiet allocator.

Default run: a short hammer.  ``tox -e soak`` runs the long one and prints the
figures (duration, operations, peak and final RSS).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest

from memslice import GLIB_2_74, Allocator
from memslice.faults import FailingClock

from .support import Lcg, peak_rss_bytes, record, rss_bytes

PRIME_SIZE = 1021  # GLib's prime_size: sizes 0..1020


@dataclass
class Hammer:
    """One hammer's state: its generator and its block list (address, size, tag)."""

    rng: Lcg
    blocks: list[tuple[int, int, int]] = field(default_factory=list)
    operations: int = 0


def tag_of(address: int, size: int) -> bytes:
    """The tag written into a block's first bytes (as many as fit, up to 8)."""
    return ((address * 2654435761) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, sys.byteorder)[:size]


def take(allocator: Allocator, size: int) -> tuple[int, int, int]:
    address = allocator.alloc(size)
    if size:
        allocator.write(address, tag_of(address, min(size, 8)))
    return address, size, 0


def give_back(allocator: Allocator, block: tuple[int, int, int]) -> None:
    address, size, _ = block
    if size:
        assert allocator.read(address, min(size, 8)) == tag_of(address, min(size, 8))
    allocator.free1(size, address)


def replace_even_half(allocator: Allocator, hammer: Hammer) -> None:
    """One GLib round: free the even-indexed blocks, re-allocate them with new sizes."""
    blocks = hammer.blocks
    for index in range(0, len(blocks), 2):
        give_back(allocator, blocks[index])
    for index in range(0, len(blocks), 2):
        blocks[index] = take(allocator, hammer.rng.next() % PRIME_SIZE)
    hammer.operations += len(blocks)


def same_size_burst(allocator: Allocator, hammer: Hammer, count: int = 100) -> None:
    """The hammer's last phase: ``count`` blocks of one random size, then free them."""
    size = hammer.rng.next() % PRIME_SIZE
    burst = [take(allocator, size) for _ in range(count)]
    for block in burst:
        give_back(allocator, block)
    hammer.operations += 2 * count


@dataclass(frozen=True, slots=True)
class SoakFigures:
    """What a soak run measured."""

    threads: int
    operations: int
    checks: int
    seconds: float
    baseline_rss: int
    peak_rss: int
    final_rss: int
    peak_mapped: int
    final_mapped: int
    cache_bound: int

    def line(self) -> str:
        mib = 1 << 20
        return (
            f"soak: {self.threads} thread(s), {self.operations:,} alloc+free operations, "
            f"{self.checks} consistency checks in {self.seconds:.1f} s; RSS baseline "
            f"{self.baseline_rss / mib:.1f} MiB, peak {self.peak_rss / mib:.1f} MiB, "
            f"final {self.final_rss / mib:.1f} MiB; slab pages mapped: peak "
            f"{self.peak_mapped / mib:.2f} MiB, final {self.final_mapped / mib:.2f} MiB"
        )


def expire(allocator: Allocator, clock: FailingClock) -> None:
    """Let the working set pass, then push to every class so stale magazines are trimmed."""
    clock.advance(allocator.settings.working_set_msecs + 1)
    geometry = allocator.geometry
    for size_class in allocator.snapshot().classes:
        if not size_class.slabs and not size_class.depot:
            continue
        size = size_class.chunk_size
        for _ in range(9):  # the clock is read on every 8th push (DEPOT-006)
            blocks = [allocator.alloc(size) for _ in range(2 * size_class.threshold + 1)]
            for block in blocks:
                allocator.free1(size, block)
    assert geometry.n_classes == len(allocator.snapshot().classes)


def soak(n_threads: int, n_blocks: int, rounds: int, bursts: int, check_every: int) -> SoakFigures:
    """Run the hammer on ``n_threads`` threads (1 = the main thread alone)."""
    gc.collect()
    baseline = rss_bytes()
    clock = FailingClock(start=1_000)
    allocator = Allocator(GLIB_2_74, environ={}, clock=clock)
    hammers = [Hammer(Lcg(seed)) for seed in range(1, n_threads + 1)]
    peak = baseline
    peak_mapped = 0
    checks = 0
    started = time.perf_counter()

    def held() -> list[tuple[int, int]]:
        return [(a, s) for hammer in hammers for a, s, _ in hammer.blocks]

    def checkpoint(round_number: int) -> None:
        nonlocal peak, peak_mapped, checks
        peak = max(peak, rss_bytes())
        if round_number % check_every == 0:
            allocator.check(live=held())  # INTRO-003
            peak_mapped = max(peak_mapped, allocator.snapshot().totals.mapped)
            checks += 1

    if n_threads == 1:
        hammer = hammers[0]
        hammer.blocks = [take(allocator, hammer.rng.next() % PRIME_SIZE) for _ in range(n_blocks)]
        hammer.operations += n_blocks
        for number in range(rounds):
            replace_even_half(allocator, hammer)
            checkpoint(number)
        for block in hammer.blocks:
            give_back(allocator, block)
        hammer.operations += len(hammer.blocks)
        hammer.blocks = []
        for number in range(bursts):
            same_size_burst(allocator, hammer)
            if number % 100 == 0:
                checkpoint(0)
    else:
        run_threads(allocator, hammers, n_blocks, rounds, bursts, checkpoint)
    allocator.check(live=[])
    checks += 1
    peak = max(peak, rss_bytes())
    allocator.thread_exit()  # the main thread's magazines go to the depot (EXIT-004)
    expire(allocator, clock)
    allocator.thread_exit()
    expire(allocator, clock)
    allocator.check(live=[])
    snapshot = allocator.snapshot()
    final_mapped = snapshot.totals.mapped
    # What the caches may still pin after the trim: per class with slabs, three
    # magazines (the depot's newest and the main thread's two), each chunk on
    # its own slab page at worst (the bound stated in test_churn).
    cache_bound = sum(
        3 * size_class.threshold * max(size_class.page_size, 4096)
        for size_class in snapshot.classes
        if size_class.slabs
    )
    gc.collect()
    final = rss_bytes()
    seconds = time.perf_counter() - started
    operations = sum(hammer.operations for hammer in hammers)
    allocator.close()
    return SoakFigures(
        n_threads,
        operations,
        checks,
        seconds,
        baseline,
        peak,
        final,
        peak_mapped,
        final_mapped,
        cache_bound,
    )


def run_threads(
    allocator: Allocator,
    hammers: list[Hammer],
    n_blocks: int,
    rounds: int,
    bursts: int,
    checkpoint: object,
) -> None:
    """The multi-thread hammer: rotate block lists between threads every round."""
    n = len(hammers)
    barrier = threading.Barrier(n + 1)
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            mine = hammers[number]
            mine.blocks = [take(allocator, mine.rng.next() % PRIME_SIZE) for _ in range(n_blocks)]
            barrier.wait()
            for round_number in range(rounds):
                replace_even_half(allocator, hammers[(number + round_number) % n])
                barrier.wait()  # round done: the main thread checks
                barrier.wait()  # check done
            for block in mine.blocks:
                give_back(allocator, block)
            mine.blocks = []
            for _ in range(bursts):
                same_size_burst(allocator, mine)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for thread in threads:
        thread.start()
    assert callable(checkpoint)
    try:
        barrier.wait()
        for round_number in range(rounds):
            barrier.wait()
            checkpoint(round_number)
            barrier.wait()
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join()
    assert not errors, errors


def assert_memory_came_back(figures: SoakFigures, *, long_run: bool) -> None:
    """Peak bounded; memory falls back toward the baseline once trimmed (PAGE-003, DEPOT-007).

    The slab pages still mapped at the end are only what the caches may pin
    (``cache_bound``: DEPOT-007 keeps the magazine whose push read the time,
    and the main thread keeps its two) and, in a long run, at most half the
    peak, and the RSS gives back at least a quarter of its climb (the rest is
    the Python heap, the C library's heap and those last magazines).
    """
    climb = figures.peak_rss - figures.baseline_rss
    assert climb < 512 << 20, figures.line()
    assert figures.final_mapped <= figures.cache_bound, figures.line()
    if long_run:  # short runs move the RSS by less than the Python heap's noise
        assert figures.final_rss < figures.peak_rss, figures.line()
        assert figures.final_mapped <= figures.peak_mapped // 2, figures.line()
        assert figures.final_rss - figures.baseline_rss <= climb * 3 // 4, figures.line()


def test_short_hammer() -> None:
    """API-020, INTRO-003, PAGE-003: a short single-thread hammer."""
    figures = soak(n_threads=1, n_blocks=2_000, rounds=6, bursts=100, check_every=2)
    assert figures.checks >= 4
    assert_memory_came_back(figures, long_run=False)


def test_short_multithread_hammer() -> None:
    """API-009, API-020, INTRO-003: three threads trading block lists every round."""
    figures = soak(n_threads=3, n_blocks=600, rounds=4, bursts=20, check_every=1)
    assert figures.checks == 5
    assert_memory_came_back(figures, long_run=False)


@pytest.mark.slow
def test_soak_hammer() -> None:
    """API-020: GLib's hammer with 10,000 live blocks, 2,000 rounds, 10,000 bursts."""
    figures = soak(n_threads=1, n_blocks=10_000, rounds=2_000, bursts=10_000, check_every=100)
    print(f"\n{figures.line()}")
    assert_memory_came_back(figures, long_run=True)
    _record(figures)


@pytest.mark.slow
def test_soak_multithread_hammer() -> None:
    """API-009, API-020: four threads, 10,000 blocks each, trading lists every round."""
    figures = soak(n_threads=4, n_blocks=10_000, rounds=300, bursts=2_000, check_every=25)
    print(f"\n{figures.line()}")
    assert_memory_came_back(figures, long_run=True)
    _record(figures)


def _record(figures: SoakFigures) -> None:
    """The soak's load and the runner's memory high-water mark, for the summary."""
    mib = 1 << 20
    record("load held", f"hammer soak: {figures.operations:,} alloc+free operations on "
           f"{figures.threads} thread(s), {figures.checks} consistency checks, "
           f"{figures.seconds:.0f} s; RSS peak {figures.peak_rss / mib:.1f} MiB, "
           f"final {figures.final_rss / mib:.1f} MiB")
    record("peak runner memory",
           f"runner ru_maxrss after the {figures.threads}-thread soak: "
           f"{peak_rss_bytes() / mib:.1f} MiB")
