"""The worker process and its client: isolation for implementations that can crash.

Rules and theory of operation
-----------------------------
``python -m memslice_conformance.worker --impl IMPL`` loads one
implementation (``lib:PATH``, ``glib``, ``glib:always-malloc``,
``glib:debug-blocks``, ``malloc``, ``reference``, ``py:module:attr``) and
serves ``memslice-jsonl`` v1 (see :mod:`memslice_conformance.jsonl`) on its
stdin/stdout::

    WorkerClient ──requests──► stdin ─► reader (main thread)
                                           │ submit to named OpThreads
         ◄──responses── stdout ◄─ writer thread (request order)

The worker moves the protocol to a private duplicate of fd 1 and points fd 1
at stderr first, so a library that prints to stdout cannot corrupt the
stream.  ``cmd:PROGRAM ARGS`` implementations speak the same protocol and
are driven by the same :class:`WorkerClient`.

Client rules:

* every exchange has a deadline; past it the process is killed and
  :class:`~memslice_conformance.failures.ImplHang` raised;
* end of stream means a crash: the exit status or signal name and the tail
  of stderr go into :class:`~memslice_conformance.failures.ImplCrash`;
* requests and responses are exchanged with non-blocking I/O, so pipelining
  a large batch cannot deadlock against a peer that answers one by one;
* after a crash or hang the client is dead; ``restart()`` spawns afresh;
* the process's address space is capped (``RLIMIT_AS``, 4 GiB unless
  ``MEMSLICE_WORKER_MEMORY`` says otherwise, ``0`` for none), so an
  implementation that eats memory gets NULL from its own allocations or dies,
  and the verdict names the check that was running, instead of the machine
  running out of memory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import IO, Final, cast

from .executor import MAIN_THREAD, OpThreads
from .failures import ImplCrash, ImplError, ImplHang, ImplUnavailable
from .jsonl import (
    PROTOCOL_NAME,
    PROTOCOL_VERSION,
    Hello,
    JSONValue,
    ProtocolError,
    Request,
    call_allocator,
    decode_line,
    encode,
    validate_request,
)
from .protocol import SliceAllocator

__all__ = ["DEFAULT_DEADLINE", "WorkerClient", "main", "serve"]

#: Seconds an exchange may take before the implementation counts as hung.
DEFAULT_DEADLINE: Final = 10.0


# --------------------------------------------------------------------- server


def _error(ident: int | None, exc: BaseException) -> dict[str, JSONValue]:
    return {
        "id": ident,
        "ok": False,
        "error": {"type": type(exc).__name__, "message": str(exc)},
    }


def _run_op(impl: SliceAllocator, message: Request) -> JSONValue:
    if message["op"] == "set_config":
        # A Python implementation may warn when configured too late
        # (CONF-004); that is an allowed answer, not an error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call_allocator(impl, message)
    return call_allocator(impl, message)


def _job(impl: SliceAllocator, message: Request) -> Callable[[], object]:
    return lambda: _run_op(impl, message)


def serve(impl: SliceAllocator, hello: Hello, inp: IO[bytes], out: IO[bytes]) -> int:
    """Serve the protocol until ``shutdown`` or end of input; return exit status."""
    threads = OpThreads(impl)
    pending: queue.SimpleQueue[tuple[int | None, Future[object] | None, object]] = (
        queue.SimpleQueue()
    )
    stop = object()

    def writer() -> None:
        while True:
            item = pending.get()
            ident, future, immediate = item
            if future is None and immediate is stop:
                return
            if future is None:
                line = encode(cast(Request, immediate) if isinstance(immediate, dict) else {})
            else:
                try:
                    result = future.result()
                    line = encode({"id": ident, "ok": True, "result": result})  # type: ignore[dict-item]
                except BaseException as exc:
                    line = encode(_error(ident, exc))
            out.write(line)
            out.flush()

    writer_thread = threading.Thread(target=writer, name="conformance-writer", daemon=True)
    writer_thread.start()
    for raw in inp:
        if not raw.strip():
            continue
        ident: int | None = None
        try:
            message = decode_line(raw)
            got = message.get("id")
            ident = got if isinstance(got, int) else None
            ident, op, thread = validate_request(message)
        except ProtocolError as exc:
            pending.put((None, None, _error(ident, exc)))
            continue
        if op == "hello":
            pending.put((None, None, {"id": ident, "ok": True, "result": hello.to_json()}))
        elif op == "shutdown":
            pending.put((None, None, {"id": ident, "ok": True, "result": None}))
            break
        elif op == "thread_exit":
            try:
                pending.put((ident, threads.exit_thread(thread), None))
            except ValueError as exc:
                pending.put((None, None, _error(ident, exc)))
        else:
            pending.put((ident, threads.submit(thread, _job(impl, message)), None))
    pending.put((None, None, stop))
    writer_thread.join()
    threads.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m memslice_conformance.worker``."""
    parser = argparse.ArgumentParser(prog="memslice_conformance.worker")
    parser.add_argument("--impl", required=True, help="implementation to host")
    args = parser.parse_args(argv)
    # Keep the protocol stream private before any foreign code is loaded.
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    from .impls import make_local

    try:
        impl, name, profiles = make_local(args.impl)
    except ImplUnavailable as exc:
        print(f"memslice_conformance.worker: {exc}", file=sys.stderr)
        return 2
    hello = Hello(PROTOCOL_NAME, PROTOCOL_VERSION, name, tuple(sorted(profiles)))
    from .bulk import allow_memory_cap

    allow_memory_cap()  # the bulk op's cap_memory step may lower this process's RLIMIT_AS
    return serve(impl, hello, sys.stdin.buffer, proto)


# --------------------------------------------------------------------- client


def default_memory_limit() -> int | None:
    """The worker address-space cap: ``MEMSLICE_WORKER_MEMORY`` bytes, default 4 GiB."""
    value = int(os.environ.get("MEMSLICE_WORKER_MEMORY", str(4 << 30)))
    return value or None


class WorkerClient:
    """Drive one implementation process speaking ``memslice-jsonl`` v1."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        deadline: float = DEFAULT_DEADLINE,
        memory_limit: int | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(os.environ if env is None else env)
        self.deadline = deadline
        self.memory_limit = memory_limit
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buffer = b""
        self._next_id = 1
        self._hello: Hello | None = None

    # -- lifecycle

    def start(self) -> None:
        """Spawn the process (does not wait for it to be ready)."""
        # Kept open for the process's lifetime (closed in close()), so it
        # cannot be a with-block.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=self.env,
                close_fds=True,
            )
        except OSError as exc:
            raise ImplUnavailable(f"cannot start {self.argv[0]!r}: {exc}") from exc
        if self.memory_limit:
            # From the parent, right after the spawn: preexec_fn is unsafe in a
            # threaded runner, and the cap only has to stop runaway growth.
            with contextlib.suppress(ProcessLookupError):
                resource.prlimit(
                    self._proc.pid, resource.RLIMIT_AS, (self.memory_limit, self.memory_limit)
                )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        os.set_blocking(self._proc.stdout.fileno(), False)
        self._buffer = b""
        self._hello = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The implementation's process id (for reading its memory), if started."""
        return None if self._proc is None else self._proc.pid

    def hello(self) -> Hello:
        """Handshake (cached); a load failure is :class:`ImplUnavailable`."""
        if self._hello is None:
            try:
                [response] = self.exchange([{"op": "hello"}])
            except (ImplCrash, ImplHang) as exc:
                raise ImplUnavailable(f"{' '.join(self.argv)}: {exc}") from exc
            if not response.get("ok"):
                raise ImplUnavailable(f"hello failed: {response.get('error')}")
            try:
                self._hello = Hello.from_json(response.get("result"))
            except ProtocolError as exc:
                raise ImplUnavailable(str(exc)) from exc
        return self._hello

    def stderr_tail(self, limit: int = 4000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read().decode(errors="replace")

    def close(self) -> None:
        """Stop the process (killed: its state is disposable); never raises."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        finally:
            for stream in (proc.stdout, proc.stdin):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.close()
        self.start()

    # -- exchanges

    def call(self, op: str, thread: str = MAIN_THREAD, **args: JSONValue) -> JSONValue:
        """One op; an error answer raises :class:`ImplError`."""
        request: Request = {"op": op, "thread": thread, **args}
        [response] = self.exchange([request])
        if not response.get("ok"):
            error = response.get("error")
            etype, message = "Error", str(error)
            if isinstance(error, dict):
                etype = str(error.get("type", "Error"))
                message = str(error.get("message", ""))
            raise ImplError(op, etype, message)
        return response.get("result")

    def exchange(
        self, requests: Sequence[Request], deadline: float | None = None
    ) -> list[dict[str, JSONValue]]:
        """Send ``requests`` pipelined; return the responses in order.

        Ids are assigned here.  Raises :class:`ImplCrash` or :class:`ImplHang`
        (after killing the process); the caller restarts if it wants more.
        """
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise ImplCrash(None, None, "worker not running")
        first = self._next_id
        lines = []
        for offset, request in enumerate(requests):
            lines.append(encode({**request, "id": first + offset}))
        self._next_id += len(requests)
        payload = b"".join(lines)
        budget = (self.deadline if deadline is None else deadline) + 0.002 * len(requests)
        limit = time.monotonic() + budget
        responses: list[dict[str, JSONValue]] = []
        out_fd, in_fd = proc.stdin.fileno(), proc.stdout.fileno()
        position = 0
        with selectors.DefaultSelector() as selector:
            if payload:
                selector.register(out_fd, selectors.EVENT_WRITE)
            selector.register(in_fd, selectors.EVENT_READ)
            while len(responses) < len(requests):
                remaining = limit - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    raise ImplHang(budget, self.stderr_tail())
                for key, _ in selector.select(remaining):
                    if key.fd == out_fd:
                        try:
                            position += os.write(out_fd, payload[position : position + 65536])
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            selector.unregister(out_fd)
                            continue
                        if position >= len(payload):
                            selector.unregister(out_fd)
                        continue
                    try:
                        chunk = os.read(in_fd, 1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise self._crashed()
                    self._buffer += chunk
                    *complete, self._buffer = self._buffer.split(b"\n")
                    for line in complete:
                        if line.strip():
                            responses.append(self._decode(line, first + len(responses)))
        return responses

    def _decode(self, line: bytes, expected_id: int) -> dict[str, JSONValue]:
        try:
            message = decode_line(line)
        except ProtocolError as exc:
            self.kill()
            raise ImplCrash(None, None, f"protocol violation: {exc}") from exc
        if message.get("id") != expected_id:
            self.kill()
            raise ImplCrash(
                None, None, f"protocol violation: expected id {expected_id}, got {line[:200]!r}"
            )
        return message

    def _crashed(self) -> ImplCrash:
        proc = self._proc
        assert proc is not None
        try:
            returncode = proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        name: str | None = None
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
        return ImplCrash(returncode, name, self.stderr_tail())


def worker_argv(impl: str) -> list[str]:
    """The command line that hosts ``impl`` in a Python worker process."""
    return [sys.executable, "-m", "memslice_conformance.worker", "--impl", impl]


if __name__ == "__main__":
    sys.exit(main())
