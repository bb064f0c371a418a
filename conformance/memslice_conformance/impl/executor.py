"""Named OS threads that execute allocator ops in order: ``OpThreads``.

Rules and theory of operation
-----------------------------
Cross-thread frees and thread-exit cleanup are only real if the calls really
come from different OS threads.  ``OpThreads`` keeps one ``threading.Thread``
per name, each draining its own FIFO of work items::

    submit("t1", f) ─► [queue t1] ─► thread "t1": f() ─► Future
    submit("t2", g) ─► [queue t2] ─► thread "t2": g() ─► Future
    exit_thread("t1") ─► [queue t1: EXIT] ─► impl.thread_exit(); thread ends

Invariants:

* items submitted to one name run in submission order, on one OS thread,
  until that name's ``exit_thread``; the next submission to the name starts
  a fresh OS thread (so "reuse after a thread exited" is exercised: EXIT-005);
* ``exit_thread`` completes only once the OS thread has ended (joined), so
  the implementation's own thread-end hooks (thread-local destructors) have
  run before the next op is issued;
* ``main`` is a worker thread like the others but may not exit;
* ``on_thread_start``, when given, runs first on every lane's OS thread,
  before any work (the worker dirties the thread's C heap there, RUN-017).

The same class serves the worker process (library impls) and in-process
sessions (Python impls): one execution model for both.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Final

from memslice_conformance.impl.protocol import SliceAllocator, ThreadAware

__all__ = ["MAIN_THREAD", "OpThreads"]

MAIN_THREAD: Final = "main"

_Work = Callable[[], object]
_EXIT: Final = object()


class _Lane:
    """One named OS thread and its FIFO."""

    def __init__(
        self, name: str, impl: SliceAllocator, on_start: Callable[[], None] | None
    ) -> None:
        self.queue: queue.SimpleQueue[tuple[object, Future[object]]] = queue.SimpleQueue()
        self._impl = impl
        self._on_start = on_start
        self.thread = threading.Thread(target=self._run, name=f"conformance-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while True:
            work, future = self.queue.get()
            if work is _EXIT:
                try:
                    # Implementations with explicit per-thread cleanup get it
                    # now, on the exiting thread itself (EXIT-001).
                    if isinstance(self._impl, ThreadAware):
                        self._impl.thread_exit()
                except BaseException as exc:
                    future.set_exception(exc)
                    return
                future.set_result(None)
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                assert callable(work)
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)


class OpThreads:
    """A set of named worker threads bound to one implementation."""

    def __init__(
        self, impl: SliceAllocator, on_thread_start: Callable[[], None] | None = None
    ) -> None:
        self._impl = impl
        self._on_thread_start = on_thread_start
        self._lanes: dict[str, _Lane] = {}
        self._lock = threading.Lock()

    def submit(self, thread: str, work: _Work) -> Future[object]:
        """Queue ``work`` on the named thread (starting it if needed)."""
        future: Future[object] = Future()
        with self._lock:
            lane = self._lanes.get(thread)
            if lane is None:
                lane = self._lanes[thread] = _Lane(thread, self._impl, self._on_thread_start)
            lane.queue.put((work, future))
        return future

    def exit_thread(self, thread: str) -> Future[object]:
        """End the named thread after its queued work; resolves once joined."""
        if thread == MAIN_THREAD:
            raise ValueError("the main thread cannot exit")
        done: Future[object] = Future()
        with self._lock:
            lane = self._lanes.pop(thread, None)
        if lane is None:
            # Exiting a thread that never ran (or already exited) is a no-op.
            done.set_result(None)
            return done
        inner: Future[object] = Future()
        lane.queue.put((_EXIT, inner))

        def finish() -> None:
            lane.thread.join()
            exc = inner.exception()
            if exc is not None:
                done.set_exception(exc)
            else:
                done.set_result(None)

        threading.Thread(target=finish, daemon=True, name=f"conformance-join-{thread}").start()
        return done

    def live_threads(self) -> list[str]:
        with self._lock:
            return sorted(self._lanes)

    def close(self, timeout: float = 5.0) -> None:
        """Let every thread finish its queue and end (exit hooks included)."""
        with self._lock:
            lanes = list(self._lanes.values())
            self._lanes.clear()
        for lane in lanes:
            lane.queue.put((_EXIT, Future()))
        for lane in lanes:
            lane.thread.join(timeout)
