"""Thread exit: a dead thread's magazines go to the depot (>= 4 chunks) or the slabs."""

from __future__ import annotations

import threading

from memslice import Allocator

from .test_magazine import in_thread


def test_new_thread_reuses_what_an_exited_thread_freed(allocator: Allocator) -> None:
    """EXIT-001, EXIT-002, PY-015: GLib measured 98 of 100 reused; so does the reference."""

    def t1() -> list[int]:
        blocks = [allocator.alloc(40) for _ in range(100)]
        for block in blocks:
            allocator.free1(40, block)
        return blocks

    freed = in_thread(t1)
    assert len(allocator.snapshot().threads) == 0  # the reaper ran when T1 ended
    again = in_thread(lambda: [allocator.alloc(40) for _ in range(100)])
    assert len(set(again) & set(freed)) == 98
    allocator.check(live=[(block, 40) for block in again])


def test_small_magazines_go_back_to_the_slabs(allocator: Allocator) -> None:
    """EXIT-002: fewer than MIN_MAGAZINE_SIZE chunks are freed to their slabs; slabs empty out."""

    def body() -> None:
        block = allocator.alloc(1000)  # threshold 4: loaded keeps 3, freeing gets 1
        allocator.free1(1000, block)

    in_thread(body)
    snapshot = allocator.snapshot()
    assert not snapshot.classes[62].depot
    assert not snapshot.classes[62].slabs  # all four chunks returned: slab released
    assert snapshot.totals.mapped == 0


def test_full_magazines_go_to_the_depot(allocator: Allocator) -> None:
    """EXIT-002: a magazine of >= 4 chunks is pushed to the depot, stamped."""
    in_thread(lambda: allocator.alloc(40))
    depot = allocator.snapshot().classes[2].depot
    assert [m.count for m in depot] == [33]


def test_explicit_thread_exit_and_blocks_outliving_their_thread(allocator: Allocator) -> None:
    """EXIT-001, EXIT-004: blocks of an exited thread stay valid and are freed elsewhere."""
    block = in_thread(lambda: allocator.alloc(24))
    allocator.write(block, b"still mine")
    assert allocator.read(block, 10) == b"still mine"
    allocator.free1(24, block)
    allocator.thread_exit()
    allocator.thread_exit()  # idempotent
    assert not allocator.snapshot().threads
    allocator.check(live=[])
    assert allocator.alloc(24)  # the thread can start again


def test_many_threads_come_and_go(allocator: Allocator) -> None:
    """EXIT-005: the allocator keeps working while many threads are created and destroyed."""
    survivors: list[int] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        mine = [allocator.alloc(16 + (seed * 7 + k) % 300) for k in range(30)]
        for k, block in enumerate(mine):
            if k % 3:
                allocator.free1(16 + (seed * 7 + k) % 300, block)
            else:
                with lock:
                    survivors.append((block, 16 + (seed * 7 + k) % 300))  # type: ignore[arg-type]

    for wave in range(5):
        threads = [threading.Thread(target=worker, args=(wave * 10 + n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    allocator.check(live=survivors)  # type: ignore[arg-type]
    assert not allocator.snapshot().threads
