"""One interface to a fresh instance of the implementation: ``Session``.

Rules and theory of operation
-----------------------------
Checks never care where the implementation runs.  They hand a *batch* of
requests (``memslice-jsonl`` messages without ids) to a session and get the
responses back in order::

    check ─ batch ─► Session.run ─┬─ InProcessSession: OpThreads in this process
                                  └─ WorkerSession: WorkerClient ─► worker / cmd

Batch semantics (the same in both): requests for one thread run in order;
requests for different threads may run concurrently; the batch returns when
every request is answered.  A sequential check sends batches of one.

A run of consecutive requests for one thread is one work item on that
thread (one queue hop, one Future), in process as in the worker: a
single-thread step costs one hop, not one per request.

An in-process op that does not finish by the deadline raises ``ImplHang`` (its
thread is abandoned: it is a daemon); a worker's crash or hang raises
``ImplCrash``/``ImplHang`` from the client.  Either way the session is dead
afterwards and the check that was running fails; the next check opens a new
session.

Fresh instances, cheaply.  Every session is a fresh allocator: a new object
in process; for a worker that offers ``reset`` (the Python worker, see
:mod:`memslice_conformance.impl.worker`), the same process reset to the pristine
state it had right after loading, so one worker serves every example of a
check; a crashed or hung worker is replaced by a new process.  For a
``cmd:`` program without ``reset``, ``SessionFactory`` keeps one process
warming up in the background, so a fresh process per example costs little.
``optional_ops`` says whether a session also answers ``digests`` (the
checker then re-reads live blocks with one request per step).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Final, Protocol, cast

from memslice_conformance.failures import ImplFailure, ImplHang
from memslice_conformance.impl.executor import MAIN_THREAD, OpThreads
from memslice_conformance.impl.impls import Implementation
from memslice_conformance.impl.jsonl import (
    PROTOCOL_NAME,
    PROTOCOL_VERSION,
    Hello,
    JSONValue,
    Request,
    call_allocator,
)
from memslice_conformance.impl.protocol import SliceAllocator
from memslice_conformance.impl.worker import DEFAULT_DEADLINE, WorkerClient, memory_limit_for

__all__ = ["InProcessSession", "Response", "Session", "SessionFactory", "WorkerSession"]

Response = dict[str, JSONValue]

#: In process, ``digests`` is one work item like any other op; there is no
#: process to reset (a fresh object is made instead).
_IN_PROCESS_OPS: Final = frozenset({"digests", "bulk"})


class Session(Protocol):
    """A fresh instance of the implementation under test."""

    def run(self, requests: Sequence[Request]) -> list[Response]:
        """Execute a batch; responses in request order (see module doc)."""
        ...

    def close(self) -> None:
        """Release the instance (threads ended, process stopped)."""
        ...

    def stderr_tail(self) -> str:
        """What the implementation printed to stderr lately ("" if unknown)."""
        ...

    @property
    def optional_ops(self) -> frozenset[str]:
        """The optional protocol ops this session answers (``digests``...)."""
        ...


def _call(impl: SliceAllocator, request: Request) -> JSONValue:
    if request["op"] == "set_config":
        # A late set_config may warn (CONF-004); that is an allowed outcome.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call_allocator(impl, request)
    return call_allocator(impl, request)


class InProcessSession:
    """A Python implementation driven on named threads of this process."""

    def __init__(self, impl: SliceAllocator, hello: Hello, deadline: float) -> None:
        self.impl = impl
        self.hello = hello
        self.deadline = deadline
        self._threads = OpThreads(impl)
        self._dead = False

    @property
    def optional_ops(self) -> frozenset[str]:
        return _IN_PROCESS_OPS

    def _job(self, requests: list[Request]) -> Callable[[], object]:
        impl = self.impl

        def job() -> list[Response]:
            answers: list[Response] = []
            for request in requests:
                try:
                    answers.append({"ok": True, "result": _call(impl, request)})
                except Exception as exc:
                    answers.append(
                        {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)}}
                    )
            return answers

        return job

    def run(self, requests: Sequence[Request]) -> list[Response]:
        if self._dead:
            raise ImplHang(self.deadline)
        # (future, how many answers it carries): a run's future answers a list.
        futures: list[tuple[Future[object], int]] = []
        run: list[Request] = []
        run_thread: str | None = None

        def flush() -> None:
            nonlocal run, run_thread
            if run_thread is not None:
                futures.append((self._threads.submit(run_thread, self._job(run)), len(run)))
            run, run_thread = [], None

        for request in requests:
            thread = str(request.get("thread", MAIN_THREAD))
            op = request["op"]
            if op not in ("thread_exit", "hello"):
                if thread != run_thread:
                    flush()
                    run_thread = thread
                run.append(request)
                continue
            flush()
            if op == "thread_exit":
                futures.append((self._threads.exit_thread(thread), 0))
            else:
                done: Future[object] = Future()
                done.set_result(self.hello.to_json())
                futures.append((done, -1))
        flush()
        budget = self.deadline + 0.002 * len(requests)
        limit = time.monotonic() + budget
        responses: list[Response] = []
        for future, count in futures:
            try:
                result = future.result(timeout=max(0.0, limit - time.monotonic()))
            except FutureTimeout:
                self._dead = True
                raise ImplHang(budget) from None
            except Exception as exc:
                responses.append(
                    {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)}}
                )
                continue
            if count > 0:
                responses.extend(cast(list[Response], result))
            else:
                responses.append({"ok": True, "result": cast(JSONValue, result)})
        return responses

    def close(self) -> None:
        if not self._dead:
            self._threads.close()
        close = getattr(self.impl, "close", None)
        if callable(close) and not self._dead:
            close()

    def stderr_tail(self) -> str:
        return ""


class WorkerSession:
    """An implementation in a child process, driven by a :class:`WorkerClient`."""

    def __init__(self, client: WorkerClient, factory: SessionFactory | None = None) -> None:
        self.client = client
        self._factory = factory

    @property
    def optional_ops(self) -> frozenset[str]:
        return self.client.optional_ops

    def run(self, requests: Sequence[Request]) -> list[Response]:
        return self.client.exchange(requests)

    def close(self) -> None:
        factory, self._factory = self._factory, None
        if factory is not None and factory.keep(self.client):
            return
        self.client.close()

    def stderr_tail(self) -> str:
        return self.client.stderr_tail()


class SessionFactory:
    """Opens fresh sessions on one :class:`Implementation`."""

    def __init__(self, impl: Implementation, deadline: float = DEFAULT_DEADLINE) -> None:
        self.impl = impl
        self.deadline = deadline
        self._spare: WorkerClient | None = None
        #: A live worker whose session ended; reset before it serves again.
        self._idle: WorkerClient | None = None
        self.opened = 0

    def _spawn(self) -> WorkerClient:
        client = WorkerClient(
            self.impl.argv,
            self.impl.env,
            deadline=self.deadline,
            memory_limit=memory_limit_for(self.impl.spec),
        )
        client.start()
        return client

    def keep(self, client: WorkerClient) -> bool:
        """Take back a closed session's worker for the next example, if it can reset."""
        if not client.alive or "reset" not in client.optional_ops:
            return False
        if self._idle is not None and self._idle is not client:
            self._idle.close()
        self._idle = client
        return True

    def open(self) -> Session:
        """A fresh instance: a new object, a reset worker, or a new (pre-spawned) process."""
        self.opened += 1
        if self.impl.kind == "in-process":
            assert self.impl.factory is not None
            hello = Hello(
                PROTOCOL_NAME, PROTOCOL_VERSION, self.impl.name, tuple(sorted(self.impl.profiles))
            )
            return InProcessSession(self.impl.factory(), hello, self.deadline)
        idle, self._idle = self._idle, None
        if idle is not None:
            try:
                idle.reset()
                return WorkerSession(idle, self)
            except ImplFailure:
                idle.close()  # it died resetting: start afresh below
        client = self._spare if self._spare is not None and self._spare.alive else None
        self._spare = None
        if client is None:
            client = self._spawn()
        client.handshake()
        if "reset" not in client.optional_ops:
            # Warm the next process while this one is used.
            self._spare = self._spawn()
        return WorkerSession(client, self)

    def close(self) -> None:
        for client in (self._spare, self._idle):
            if client is not None:
                client.close()
        self._spare = self._idle = None
