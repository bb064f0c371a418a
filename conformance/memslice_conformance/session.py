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

An in-process op that does not finish by the deadline raises ``ImplHang`` (its
thread is abandoned: it is a daemon); a worker's crash or hang raises
``ImplCrash``/``ImplHang`` from the client.  Either way the session is dead
afterwards and the check that was running fails; the next check opens a new
session.  ``SessionFactory`` keeps one worker process warming up in the
background, so a fresh process per Hypothesis example costs little.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Protocol

from .executor import MAIN_THREAD, OpThreads
from .failures import ImplHang
from .impls import Implementation
from .jsonl import PROTOCOL_NAME, PROTOCOL_VERSION, Hello, JSONValue, Request, call_allocator
from .protocol import SliceAllocator
from .worker import DEFAULT_DEADLINE, WorkerClient, default_memory_limit

__all__ = ["InProcessSession", "Session", "SessionFactory", "WorkerSession"]

Response = dict[str, JSONValue]


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

    def _job(self, request: Request) -> Callable[[], object]:
        return lambda: _call(self.impl, request)

    def run(self, requests: Sequence[Request]) -> list[Response]:
        if self._dead:
            raise ImplHang(self.deadline)
        futures: list[Future[object]] = []
        for request in requests:
            thread = str(request.get("thread", MAIN_THREAD))
            op = request["op"]
            if op == "thread_exit":
                futures.append(self._threads.exit_thread(thread))
            elif op == "hello":
                done: Future[object] = Future()
                done.set_result(self.hello.to_json())
                futures.append(done)
            else:
                futures.append(self._threads.submit(thread, self._job(request)))
        budget = self.deadline + 0.002 * len(requests)
        limit = time.monotonic() + budget
        responses: list[Response] = []
        for future in futures:
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
            responses.append({"ok": True, "result": result})  # type: ignore[dict-item]
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

    def __init__(self, client: WorkerClient) -> None:
        self.client = client

    def run(self, requests: Sequence[Request]) -> list[Response]:
        return self.client.exchange(requests)

    def close(self) -> None:
        self.client.close()

    def stderr_tail(self) -> str:
        return self.client.stderr_tail()


class SessionFactory:
    """Opens fresh sessions on one :class:`Implementation`."""

    def __init__(self, impl: Implementation, deadline: float = DEFAULT_DEADLINE) -> None:
        self.impl = impl
        self.deadline = deadline
        self._spare: WorkerClient | None = None
        self.opened = 0

    def _spawn(self) -> WorkerClient:
        # The reference reserves a large, untouched arena of address space
        # (PAGE-001); its memory is bounded by that arena, so it gets no cap.
        hosts_reference = "reference" in self.impl.spec
        client = WorkerClient(
            self.impl.argv,
            self.impl.env,
            deadline=self.deadline,
            memory_limit=None if hosts_reference else default_memory_limit(),
        )
        client.start()
        return client

    def open(self) -> Session:
        """A fresh instance: a new object, or a new (pre-spawned) process."""
        self.opened += 1
        if self.impl.kind == "in-process":
            assert self.impl.factory is not None
            hello = Hello(
                PROTOCOL_NAME, PROTOCOL_VERSION, self.impl.name, tuple(sorted(self.impl.profiles))
            )
            return InProcessSession(self.impl.factory(), hello, self.deadline)
        client = self._spare if self._spare is not None and self._spare.alive else None
        if client is None:
            if self._spare is not None:
                self._spare.close()
            client = self._spawn()
        # Warm the next process while this one is used.
        self._spare = self._spawn()
        return WorkerSession(client)

    def close(self) -> None:
        if self._spare is not None:
            self._spare.close()
            self._spare = None
