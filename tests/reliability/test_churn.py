"""Thread churn: thousands of threads come and go while others hold blocks across them.

Each *churner* thread allocates a few dozen blocks of mixed sizes (slab and
malloc routes), fills them, frees most, frees a few blocks that earlier
(already dead) churners left behind, leaves a few of its own for later ones,
and ends -- its exit cleanup runs by itself (PY-015).  *Holder* threads and
the main thread keep blocks alive across the whole churn.  Afterwards:

* every block still held has its bytes (API-005, EXIT-001) and the
  consistency checker, given exactly the held blocks, finds nothing lost or
  doubled (INTRO-003, EXIT-005);
* once the working set has expired (injected clock, DEPOT-007) and every
  class used has seen a later depot push, the memory mapped for slab pages is
  within a stated bound of what the held blocks need:

      mapped <= pinned + sum over classes used of 3 * threshold * max(page_size, OS page)

  where ``pinned`` is the OS pages overlapping slab pages that hold a held
  block.  Why 3 magazines: after the trim a class keeps at most the depot
  magazine whose push read the new time plus the main thread's two
  magazines, and each cached chunk pins at most one slab page (SLAB-007: a
  slab with nothing allocated is released at once, PAGE-003).  Exactly: the
  mapped bytes are the OS pages under slabs that hold a held or cached chunk.
* once every block is freed and the working set has expired again, the
  mapped bytes fall to at most the caches' bound alone (pinned = 0).

200 threads run by default; 2,000 in the slow run (tox -e soak).
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass, field

import pytest

from memslice import GLIB_2_74, Allocator
from memslice.faults import FailingClock
from memslice.snapshot import AllocatorSnapshot

from .support import record

SIZES = (24, 40, 100, 500, 1000, 2000)  # classes 32, 48, 112, 512, 1008 and the malloc route
WAVE = 8  # churners alive at once (a 2-core machine: more only adds scheduling noise)


@dataclass
class Shared:
    """Blocks in flight between threads, guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    left_behind: list[tuple[int, int, bytes]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    operations: int = 0  # allocations and frees done by the churners and holders


def fill(allocator: Allocator, size: int, tag: int) -> tuple[int, int, bytes]:
    """Allocate ``size`` bytes and write a pattern unique to ``tag``."""
    address = allocator.alloc(size)
    content = bytes((tag * 31 + k) & 0xFF for k in range(size))
    allocator.write(address, content)
    return address, size, content


def churner(allocator: Allocator, shared: Shared, number: int) -> None:
    """Allocate, free most, free others' leftovers, leave a few, end (EXIT-001, API-009)."""
    try:
        rng = random.Random(number)
        blocks = [fill(allocator, rng.choice(SIZES), number) for _ in range(rng.randint(5, 40))]
        rng.shuffle(blocks)
        keep = rng.randint(0, 2)
        for address, size, content in blocks[keep:]:
            assert allocator.read(address, size) == content
            allocator.free1(size, address)
        with shared.lock:
            others = [shared.left_behind.pop() for _ in range(min(2, len(shared.left_behind)))]
            shared.left_behind.extend(blocks[:keep])
        for address, size, content in others:  # blocks of a thread that has ended
            assert allocator.read(address, size) == content
            allocator.free1(size, address)
        with shared.lock:
            shared.operations += 2 * len(blocks) - keep + len(others)
    except BaseException as error:
        with shared.lock:
            shared.errors.append(error)


def holder(allocator: Allocator, shared: Shared, number: int, done: threading.Event) -> None:
    """Hold blocks for the whole churn, then hand them over and end."""
    try:
        blocks = [fill(allocator, size, 10_000 + number) for size in SIZES for _ in range(20)]
        done.wait()
        for address, size, content in blocks:
            assert allocator.read(address, size) == content
        with shared.lock:
            shared.left_behind.extend(blocks)
            shared.operations += len(blocks)
    except BaseException as error:
        with shared.lock:
            shared.errors.append(error)


@dataclass(frozen=True, slots=True)
class ChurnFigures:
    """What a churn run measured, for the closing note."""

    threads: int
    held_blocks: int
    mapped_before_trim: int
    mapped_after_trim: int
    pinned: int
    bound: int
    mapped_after_free_all: int = 0
    operations: int = 0


def expire_working_set(allocator: Allocator, clock: FailingClock) -> None:
    """Let the working set pass, then push to every class until stale magazines are trimmed.

    The depot reads the clock only on every 8th push (DEPOT-006) and trims a
    class only when that class is pushed to (DEPOT-007): so each class gets
    enough pushes, from the main thread, for the new time to be read and used.
    """
    clock.advance(allocator.settings.working_set_msecs + 1)
    geometry = allocator.geometry
    for size in SIZES:
        chunk = geometry.p2align(size)
        if chunk > geometry.max_slab_chunk_size:
            continue
        threshold = allocator.snapshot().classes[geometry.class_index(chunk)].threshold
        for _ in range(9):  # >= 8 pushes: at least one reads the clock, the last trims
            blocks = [allocator.alloc(size) for _ in range(2 * threshold + 1)]
            for block in blocks:
                allocator.free1(size, block)


def pinned_and_bound(
    allocator: Allocator, snapshot: AllocatorSnapshot, held: list[tuple[int, int]]
) -> tuple[int, int]:
    """OS bytes under slab pages holding a held block, and the module docstring's bound."""
    geometry = allocator.geometry
    os_page = 4096
    pages: set[int] = set()
    for address, size in held:
        chunk = geometry.p2align(size)
        if not 0 < chunk <= geometry.max_slab_chunk_size:
            continue
        page_size = geometry.classes[geometry.class_index(chunk)].page_size
        page = address & ~(page_size - 1)
        pages.update(range(page // os_page, (page + page_size - 1) // os_page + 1))
    pinned = len(pages) * os_page
    slack = 0
    for size in SIZES:
        chunk = geometry.p2align(size)
        if 0 < chunk <= geometry.max_slab_chunk_size:
            size_class = snapshot.classes[geometry.class_index(chunk)]
            slack += 3 * size_class.threshold * max(size_class.page_size, os_page)
    return pinned, pinned + slack


def run_churn(n_threads: int, n_holders: int = 2) -> ChurnFigures:
    """Churn ``n_threads`` threads in waves; check everything; return the figures."""
    clock = FailingClock(start=1_000)
    allocator = Allocator(GLIB_2_74, environ={}, clock=clock)
    shared = Shared()
    mine = [fill(allocator, size, 99) for size in SIZES for _ in range(10)]  # main thread's
    done = threading.Event()
    holders = [
        threading.Thread(target=holder, args=(allocator, shared, k, done)) for k in range(n_holders)
    ]
    for thread in holders:
        thread.start()
    for first in range(0, n_threads, WAVE):
        wave = [
            threading.Thread(target=churner, args=(allocator, shared, number))
            for number in range(first, min(first + WAVE, n_threads))
        ]
        for thread in wave:
            thread.start()
        for thread in wave:
            thread.join()
    done.set()
    for thread in holders:
        thread.join()
    assert not shared.errors, shared.errors[:3]
    assert not allocator.snapshot().threads[1:], "every ended thread was cleaned up (PY-015)"
    held = [*mine, *shared.left_behind]
    for address, size, content in held:
        assert allocator.read(address, size) == content  # API-005, EXIT-001
    pairs = [(address, size) for address, size, _ in held]
    allocator.check(live=pairs)  # INTRO-003, EXIT-005
    mapped_before = allocator.snapshot().totals.mapped
    expire_working_set(allocator, clock)
    allocator.check(live=pairs)
    snapshot = allocator.snapshot()
    pinned, bound = pinned_and_bound(allocator, snapshot, pairs)
    figures = ChurnFigures(
        n_threads, len(held), mapped_before, snapshot.totals.mapped, pinned, bound
    )
    assert snapshot.totals.mapped <= bound, figures
    assert snapshot.totals.mapped == slab_os_bytes(snapshot)  # no empty slab kept (SLAB-007)
    for address, size, _ in held:
        allocator.free1(size, address)
    expire_working_set(allocator, clock)
    allocator.check(live=[])
    snapshot = allocator.snapshot()
    _, slack = pinned_and_bound(allocator, snapshot, [])
    assert snapshot.totals.mapped <= slack  # only the caches' last magazines remain
    allocator.close()
    operations = shared.operations + len(mine) + len(held)  # the main thread's allocs, all frees
    return dataclasses.replace(
        figures, mapped_after_free_all=snapshot.totals.mapped, operations=operations
    )


def slab_os_bytes(snapshot: AllocatorSnapshot) -> int:
    """OS bytes overlapping the live slab pages; every listed slab must hold a chunk."""
    os_page = 4096
    pages: set[int] = set()
    for size_class in snapshot.classes:
        for slab in size_class.slabs:
            assert slab.n_allocated > 0, f"empty slab {slab.page:#x} kept (SLAB-007)"
            first = slab.page // os_page
            pages.update(range(first, (slab.page + slab.page_size - 1) // os_page + 1))
    return len(pages) * os_page


def test_churn_200_threads() -> None:
    """EXIT-001, EXIT-005, DEPOT-007, PY-015: 200 threads; nothing lost; memory comes back."""
    figures = run_churn(200)
    assert figures.held_blocks >= 60 + 2 * 20 * len(SIZES)  # main's and the holders' at least
    assert 0 < figures.pinned <= figures.mapped_after_trim <= figures.bound


@pytest.mark.slow
def test_churn_2000_threads() -> None:
    """EXIT-005: the full 2,000-thread churn, with its figures printed for the closing note."""
    figures = run_churn(2_000, n_holders=4)
    print(f"\nchurn: {figures}")
    assert 0 < figures.pinned <= figures.mapped_after_trim <= figures.bound
    record("load held", f"thread churn: {figures.threads:,} threads, {figures.operations:,} "
           f"alloc+free operations, {figures.held_blocks:,} blocks held across it, none lost")
