"""The worker process and its client: isolation for implementations that can crash.

Rules and theory of operation
-----------------------------
``python -m memslice_conformance.impl.worker --impl IMPL`` loads one
implementation (``lib:PATH``, ``glib``, ``glib:always-malloc``,
``glib:debug-blocks``, ``malloc``, ``reference``, ``py:module:attr``) and
serves ``memslice-jsonl`` v1 (see :mod:`memslice_conformance.impl.jsonl`) on its
stdin/stdout::

    WorkerClient ──requests──► stdin ─► reader (main thread): runs "main"'s
                                           │ requests itself; a run for any
                                           │ other thread = one job on that
                                           │ thread's OpThreads lane
         ◄──responses── stdout ◄─ the reader's own answers directly, unless
                                   answers of other lanes are still awaited:
                                   then all in request order by the writer
                                   thread (see _Output)

The common step, every request on ``main``, thus costs no thread hop in
the worker: the reader calls the library and writes the answers.

The worker moves the protocol to a private duplicate of fd 1 and points fd 1
at stderr first, so a library that prints to stdout cannot corrupt the
stream.  ``cmd:PROGRAM ARGS`` implementations speak the same protocol and
are driven by the same :class:`WorkerClient`.

A fresh allocator per example without a fresh process (``reset``).  Once
the library is loaded (constructors run, nothing called yet), the worker
becomes a *zygote*: it forks a child that serves the stream, and on
``reset`` the child exits and the zygote forks a new one from the same
pristine state, which answers the reset.  A child that crashes takes the
zygote with it (same signal or exit status), so the client sees a crash as
before.  A library that started threads of its own at load cannot be forked
safely: then the worker serves directly and does not offer ``reset``.

    zygote (library loaded, one thread) ──fork──► child 1 ── reset ──► exits
        └──────────────────────────────────fork──► child 2 answers the reset

Loading (LOAD-002..LOAD-006): a library that cannot be loaded is answered
with ``ImplUnavailable`` errors to every request (the client turns that into
"could not be loaded", CLI exit 2), never a bare exit status.  A library
refused for lack of static TLS is loaded again by re-executing the worker with
``GLIBC_TUNABLES=glibc.rtld.optional_static_tls=N`` (the tunable is read only
at process start), and ``hello.notes`` says so.

Client rules:

* every exchange has a deadline; past it the process is killed and
  :class:`~memslice_conformance.failures.ImplHang` raised;
* end of stream means a crash: the exit status or signal name and the tail
  of stderr go into :class:`~memslice_conformance.failures.ImplCrash`;
* requests and responses are exchanged with non-blocking I/O, so pipelining
  a large batch cannot deadlock against a peer that answers one by one;
* after a crash or hang the client is dead; ``restart()`` spawns afresh;
* the process runs in its own process group (session), and closing the
  client kills the whole group, so nothing a library or program forked
  outlives the run (LOAD-007);
* stderr is drained by a thread that keeps only the last 64 KiB and counts
  the rest (LOAD-008);
* the process's address space is capped (``RLIMIT_AS``, 4 GiB unless
  ``MEMSLICE_WORKER_MEMORY`` says otherwise, ``0`` for none), the hello probe
  included (LOAD-009), so an implementation that eats memory gets NULL from
  its own allocations or dies, and the verdict names the check that was
  running, instead of the machine running out of memory.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import json
import os
import queue
import resource
import selectors
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import IO, Any, Final, Literal, NoReturn, cast

from memslice_conformance.failures import ImplCrash, ImplError, ImplHang, ImplUnavailable
from memslice_conformance.impl.executor import MAIN_THREAD, OpThreads
from memslice_conformance.impl.jsonl import (
    OPTIONAL_OPS,
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
from memslice_conformance.impl.protocol import SliceAllocator

__all__ = [
    "DEFAULT_DEADLINE",
    "STDERR_TAIL",
    "WorkerClient",
    "default_memory_limit",
    "main",
    "memory_limit_for",
    "serve",
    "worker_argv",
]

#: Seconds an exchange may take before the implementation counts as hung.
DEFAULT_DEADLINE: Final = 10.0


# --------------------------------------------------------------------- server

#: Largest ``glibc.rtld.optional_static_tls`` the worker will ask for (LOAD-005).
_MAX_STATIC_TLS: Final = 64 << 20
_STATIC_TLS_ENV: Final = "MEMSLICE_WORKER_STATIC_TLS"
#: The client tells our own worker its address-space cap, so the worker sets
#: it before loading anything (``prlimit`` from outside can come too late).
_MEMORY_ENV: Final = "MEMSLICE_WORKER_AS_LIMIT"


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


#: One answer of a run: (True, result) or (False, the exception).
_Outcome = tuple[bool, object]


def _run_job(impl: SliceAllocator, messages: list[Request]) -> Callable[[], object]:
    """A run of requests for one thread as one work item: each op runs even if
    an earlier one raised, exactly as if they had been queued one by one."""

    def job() -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        for message in messages:
            try:
                outcomes.append((True, _run_op(impl, message)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes

    return job


# What the reader hands the writer, in request order.
_Pending = (
    tuple[Literal["line"], bytes]
    | tuple[Literal["run"], list[int], "Future[object]"]
    | tuple[Literal["exit"], int, "Future[object]"]
    | tuple[Literal["reset"], int]
    | tuple[Literal["stop"]]
)


def _answer(ident: int, outcome: _Outcome) -> bytes:
    ok, value = outcome
    if ok:
        return encode({"id": ident, "ok": True, "result": cast(JSONValue, value)})
    return encode(_error(ident, cast(BaseException, value)))


class _Output:
    """The answer stream: written in request order by the reader or the writer.

    Answers the reader computes itself (the ``main`` thread's runs, hello,
    protocol errors) go straight to the stream when nothing is queued
    ahead of them; otherwise they queue behind the answers the writer
    thread is still waiting for (other threads' runs, exits, a reset), so
    the order stays the order of the requests.  ``queued`` counts items
    handed to the writer and not yet written; both sides hold ``lock``
    while writing or looking at it.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.queued = 0
        self.pending: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        #: The reader's answers not yet written or queued (request order).
        self.ready: list[bytes] = []

    def write(self, chunks: list[bytes]) -> None:
        if chunks:
            self.out.write(b"".join(chunks))
            self.out.flush()

    def hand(self, item: _Pending) -> None:
        """Queue an item for the writer, after whatever the reader has ready."""
        with self.lock:
            if self.ready:
                self._release_ready()
            self.queued += 1
        self.pending.put(item)

    def release(self) -> None:
        """Write (or queue) what the reader has ready: at the end of each read."""
        if self.ready:
            with self.lock:
                self._release_ready()

    def _release_ready(self) -> None:
        ready, self.ready = self.ready, []
        if self.queued:
            self.queued += 1
            self.pending.put(("line", b"".join(ready)))
        else:
            self.write(ready)


def serve(
    impl: SliceAllocator,
    hello: Hello,
    inp: int,
    out: IO[bytes],
    on_reset: Callable[[int], NoReturn] | None = None,
    announce: int | None = None,
) -> int:
    """Serve the protocol on fd ``inp`` until ``shutdown`` or end of input.

    The ``main`` thread's runs execute here, on the thread that reads the
    stream: the common single-thread step costs no thread hop at all.  Every
    other named thread is an :class:`OpThreads` lane whose answers the
    writer thread collects in order (see :class:`_Output`).

    ``on_reset`` (zygote children only) is called with the reset's id once
    every earlier answer is written; ``announce`` is the id of the reset
    this process answers first.  Returns the exit status.
    """
    threads = OpThreads(impl, on_thread_start=_dirty_thread_heap)
    output = _Output(out)

    def writer() -> None:
        while True:
            item = output.pending.get()
            if item[0] == "line":
                chunk = item[1]
            elif item[0] == "run":
                _, idents, future = item
                try:
                    outcomes = cast(list[_Outcome], future.result())
                except BaseException as exc:
                    outcomes = [(False, exc)] * len(idents)
                chunk = b"".join(
                    _answer(ident, outcome)
                    for ident, outcome in zip(idents, outcomes, strict=True))
            elif item[0] == "exit":
                _, ident, future = item
                try:
                    future.result()
                    chunk = encode({"id": ident, "ok": True, "result": None})
                except BaseException as exc:
                    chunk = encode(_error(ident, exc))
            else:
                with output.lock:
                    output.queued -= 1
                if item[0] == "reset":
                    assert on_reset is not None
                    on_reset(item[1])
                return
            with output.lock:
                output.write([chunk])
                output.queued -= 1

    writer_thread = threading.Thread(target=writer, name="conformance-writer", daemon=True)
    writer_thread.start()
    if announce is not None:
        output.ready.append(encode({"id": announce, "ok": True, "result": {"pid": os.getpid()}}))
        output.release()  # now: the client waits for it before sending more
    run_thread: str | None = None
    run_ids: list[int] = []
    run_messages: list[Request] = []

    def flush_run() -> None:
        nonlocal run_thread, run_ids, run_messages
        if run_thread == MAIN_THREAD:
            try:
                outcomes = cast(list[_Outcome], _run_job(impl, run_messages)())
            except BaseException as exc:  # as a lane's Future would carry it
                outcomes = [(False, exc)] * len(run_ids)
            output.ready.extend(
                _answer(ident, outcome) for ident, outcome in zip(run_ids, outcomes, strict=True))
        elif run_thread is not None:
            future = threads.submit(run_thread, _run_job(impl, run_messages))
            output.hand(("run", run_ids, future))
        run_thread, run_ids, run_messages = None, [], []

    def read_loop() -> None:
        nonlocal run_thread
        _dirty_thread_heap()  # RUN-017: before the implementation runs on this thread
        buffer = b""
        finished = False
        while not finished:
            chunk = os.read(inp, 1 << 20)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                if not raw.strip():
                    continue
                ident: int | None = None
                try:
                    message = decode_line(raw)
                    got = message.get("id")
                    ident = got if isinstance(got, int) else None
                    ident, op, thread = validate_request(message)
                    if op == "reset" and on_reset is None:
                        raise ProtocolError("reset: not offered by this worker (see hello)")
                except ProtocolError as exc:
                    flush_run()
                    output.ready.append(encode(_error(ident, exc)))
                    continue
                if op not in ("hello", "shutdown", "thread_exit", "reset"):
                    if thread != run_thread:
                        flush_run()
                        run_thread = thread
                    run_ids.append(ident)
                    run_messages.append(message)
                    continue
                flush_run()
                if op == "hello":
                    output.ready.append(
                        encode({"id": ident, "ok": True, "result": hello.to_json()}))
                elif op == "thread_exit":
                    try:
                        output.hand(("exit", ident, threads.exit_thread(thread)))
                    except ValueError as exc:
                        output.ready.append(encode(_error(ident, exc)))
                elif op == "reset":
                    # The writer hands over once every earlier answer is out;
                    # nothing may follow a reset in flight (see jsonl).
                    output.hand(("reset", ident))
                    writer_thread.join()
                else:  # shutdown
                    output.ready.append(encode({"id": ident, "ok": True, "result": None}))
                    finished = True
                    break
            flush_run()
            output.release()

    # The reader is the "main" lane: a thread of its own, not the process's
    # first thread, which loaded the library and may have run its
    # constructors' allocations (GLib makes two at load): an allocator's
    # per-thread state for "main" starts as fresh as any other lane's.
    reader = threading.Thread(target=read_loop, name="conformance-main")
    reader.start()
    reader.join()
    output.hand(("stop",))
    writer_thread.join()
    threads.close()
    return 0


_GARBAGE: Final = 0xA5  # the --emit-c program's pattern too (RUN-008)


@functools.cache
def _libc_heap() -> tuple[Any, Any, Any | None]:
    """The process's ``malloc``, ``free`` and ``malloc_usable_size`` (None if absent),
    with their prototypes set once."""
    libc = ctypes.CDLL(None)
    malloc, free = libc.malloc, libc.free
    malloc.restype, malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    free.restype, free.argtypes = None, [ctypes.c_void_p]
    usable = getattr(libc, "malloc_usable_size", None)
    if usable is not None:
        usable.restype, usable.argtypes = ctypes.c_size_t, [ctypes.c_void_p]
    return malloc, free, usable


def _dirty_thread_heap() -> None:
    """Leave garbage in this thread's C heap before an implementation runs here (RUN-017).

    A thread's first ``malloc`` may be served from a fresh arena whose memory
    reads as zero; a library that reads memory it never wrote (a chain link
    read past a block's end) then stops cleanly on NULL here, where a real
    program, and the ``--emit-c`` reproducer, would follow garbage.  So, as
    that program's ``dirty_heap`` does: blocks of every size up to 1 KiB,
    filled to their usable size and freed, then 1 MiB of pieces freed behind
    a small block kept allocated (so the freed pieces stay in the heap rather
    than going back to the kernel), from which later blocks are carved.
    """
    malloc, free, usable = _libc_heap()

    def dirty(size: int) -> int | None:
        block: int | None = malloc(size)
        if block:
            ctypes.memset(block, _GARBAGE, usable(block) if usable is not None else size)
        return block

    for size in range(16, 1025, 16):
        blocks = [dirty(size) for _ in range(4)]
        for block in blocks:
            free(block)
    pieces = [dirty(64 << 10) for _ in range(16)]
    dirty(32)  # the fence, kept: one small block per thread that the worker never frees
    for piece in pieces:
        free(piece)


def _serve_unavailable(reason: str, inp: int, out: IO[bytes]) -> int:
    """Answer every request with ``ImplUnavailable`` (LOAD-002): the client
    reports "could not be loaded" with this reason, not a crash."""
    print(f"memslice_conformance.impl.worker: {reason}", file=sys.stderr)
    buffer = b""
    while chunk := os.read(inp, 1 << 16):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            try:
                got = decode_line(raw).get("id") if raw.strip() else None
            except ProtocolError:
                got = None
            if raw.strip():
                out.write(encode({
                    "id": got if isinstance(got, int) else None,
                    "ok": False,
                    "error": {"type": "ImplUnavailable", "message": reason},
                }))
                out.flush()
    return 2


def _single_threaded() -> bool:
    """Whether this process has exactly one thread (so fork copies all of it)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _serve_forking(impl: SliceAllocator, hello: Hello, inp: int, out: IO[bytes]) -> int:
    """The zygote loop (module doc): one child per reset, crashes passed on."""
    announce: int | None = None
    while True:
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the forked child
            os.close(read_end)

            def hand_over(ident: int, pipe: int = write_end) -> NoReturn:
                os.write(pipe, str(ident).encode())
                os._exit(0)

            code = 1
            try:
                code = serve(impl, replace(hello, pid=os.getpid()), inp, out,
                             on_reset=hand_over, announce=announce)
            finally:
                os._exit(code)
        os.close(write_end)
        message = b""
        while part := os.read(read_end, 64):
            message += part
        os.close(read_end)
        _, status = os.waitpid(child, 0)
        if os.WIFSIGNALED(status):
            # Die the same way, so the client names the child's signal.
            number = os.WTERMSIG(status)
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            return 128 + number
        if message:
            announce = int(message)
            continue
        return os.waitstatus_to_exitcode(status)


def _retry_with_static_tls(path: str, proto: IO[bytes], argv: Sequence[str]) -> bool:
    """Re-execute this worker with a larger static TLS reserve (LOAD-005).

    Returns False when the reserve is already at its cap (no retry left).
    """
    from memslice_conformance.impl.native import static_tls_size

    previous = int(os.environ.get(_STATIC_TLS_ENV, "0"))
    wanted = max(64 << 10, 2 * static_tls_size(path) + 4096) if not previous else previous * 8
    if wanted > _MAX_STATIC_TLS:
        return False
    env = dict(os.environ)
    tunable = f"glibc.rtld.optional_static_tls={wanted}"
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), tunable]))
    env[_STATIC_TLS_ENV] = str(wanted)
    print(f"memslice_conformance.impl.worker: {path}: not enough static TLS; "
          f"retrying with GLIBC_TUNABLES={tunable}", file=sys.stderr)
    os.dup2(proto.fileno(), 1)  # give the protocol stream back to the new image
    os.execve(
        sys.executable, [sys.executable, "-m", "memslice_conformance.impl.worker", *argv], env
    )
    return False  # pragma: no cover - execve does not return


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m memslice_conformance.impl.worker``."""
    parser = argparse.ArgumentParser(prog="memslice_conformance.impl.worker")
    parser.add_argument("--impl", required=True, help="implementation to host")
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    cap = int(os.environ.get(_MEMORY_ENV, "0") or 0)
    if cap:
        # Before anything foreign is loaded: a constructor is bound too (LOAD-009).
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    # Keep the protocol stream private before any foreign code is loaded.
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    from memslice_conformance.impl import native
    from memslice_conformance.impl.impls import make_local

    try:
        impl, name, profiles, notes = make_local(args.impl)
    except ImplUnavailable as exc:
        head, _, rest = args.impl.partition(":")
        if (
            isinstance(exc.__cause__, native.StaticTLSError)
            and head == "lib"
            and _retry_with_static_tls(rest, proto, arguments)
        ):
            return 2  # pragma: no cover - replaced by the new image
        return _serve_unavailable(f"{args.impl} could not be loaded: {exc}", 0, proto)
    except MemoryError as exc:
        return _serve_unavailable(
            f"{args.impl} could not be loaded: out of memory under the worker's "
            f"address-space cap ({exc}) (LOAD-009)", 0, proto)
    tls = os.environ.get(_STATIC_TLS_ENV)
    if tls:
        notes = (*notes, (
            f"loaded with GLIBC_TUNABLES=glibc.rtld.optional_static_tls={tls}: its "
            "initial-exec thread-local storage does not fit glibc's default static TLS "
            "reserve (LOAD-005)"
        ))
    from memslice_conformance.impl.bulk import allow_memory_cap

    allow_memory_cap()  # the bulk op's cap_memory step may lower a serving process's RLIMIT_AS
    forking = _single_threaded()
    hello = Hello(
        PROTOCOL_NAME,
        PROTOCOL_VERSION,
        name,
        tuple(sorted(profiles)),
        optional_ops=OPTIONAL_OPS if forking else OPTIONAL_OPS - {"reset"},
        pid=os.getpid(),
        notes=tuple(notes),
    )
    if forking:
        return _serve_forking(impl, hello, 0, proto)
    return serve(impl, hello, 0, proto)


# --------------------------------------------------------------------- client


#: Bytes of stderr kept per worker (the rest is counted, LOAD-008).
STDERR_TAIL: Final = 64 << 10


def default_memory_limit() -> int | None:
    """The worker address-space cap: ``MEMSLICE_WORKER_MEMORY`` bytes, default 4 GiB."""
    value = int(os.environ.get("MEMSLICE_WORKER_MEMORY", str(4 << 30)))
    return value or None


def memory_limit_for(spec: str) -> int | None:
    """The cap for a worker hosting ``spec``: the default, except for the reference.

    The reference reserves a large, untouched arena of address space
    (PAGE-001); its memory is bounded by that arena, so it gets no cap.
    """
    return None if "reference" in spec else default_memory_limit()


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a process just sent SIGKILL, in bounded time (RUN-005).

    Not ``Popen.wait()`` alone: a deadline's exception (the runner's SIGALRM)
    can strike inside an earlier ``wait`` and leave Popen's internal waitpid
    lock held, and a plain ``wait()`` then blocks for ever on that lock.  With
    a timeout ``wait`` only tries the lock; after it, the killed child is
    reaped directly (SIGKILL cannot be caught, so this returns at once).
    """
    try:
        proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, 0)


class _StderrTail:
    """Drains a pipe on a daemon thread, keeping the last bytes (LOAD-008)."""

    def __init__(self, fd: int, keep: int = STDERR_TAIL) -> None:
        self.keep = keep
        self.dropped = 0
        self._data = bytearray()
        self._lock = threading.Lock()
        self._fd = fd
        self.thread = threading.Thread(target=self._drain, name="worker-stderr", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            while chunk := os.read(self._fd, 1 << 16):
                with self._lock:
                    self._data += chunk
                    excess = len(self._data) - self.keep
                    if excess > 0:
                        del self._data[:excess]
                        self.dropped += excess
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def text(self, limit: int) -> str:
        with self._lock:
            data = bytes(self._data[-limit:])
            cut = self.dropped + len(self._data) - len(data)
        prefix = f"[{cut} earlier bytes of stderr not kept]\n" if cut else ""
        return prefix + data.decode(errors="replace")


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
        self._stderr: _StderrTail | None = None
        self._buffer = b""
        self._next_id = 1
        self._hello: Hello | None = None
        self._serving: int | None = None
        self._selector: selectors.BaseSelector | None = None

    # -- lifecycle

    def start(self) -> None:
        """Spawn the process (does not wait for it to be ready)."""
        env = dict(self.env)
        if self.memory_limit:
            env[_MEMORY_ENV] = str(self.memory_limit)
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                close_fds=True,
                # Its own session and process group: close() kills the group,
                # so whatever it forked goes too (LOAD-007).
                start_new_session=True,
            )
        except OSError as exc:
            raise ImplUnavailable(f"cannot start {self.argv[0]!r}: {exc}") from exc
        if self.memory_limit:
            # From the parent, right after the spawn, for programs that are not
            # our worker (ours sets its own cap first): preexec_fn is unsafe in
            # a threaded runner, and the cap only has to stop runaway growth.
            with contextlib.suppress(ProcessLookupError):
                resource.prlimit(
                    self._proc.pid, resource.RLIMIT_AS, (self.memory_limit, self.memory_limit)
                )
        assert self._proc.stdin and self._proc.stdout and self._proc.stderr
        os.set_blocking(self._proc.stdin.fileno(), False)
        os.set_blocking(self._proc.stdout.fileno(), False)
        self._stderr = _StderrTail(os.dup(self._proc.stderr.fileno()))
        self._proc.stderr.close()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._proc.stdout.fileno(), selectors.EVENT_READ)
        self._buffer = b""
        self._hello = None
        self._serving = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process that serves the stream now (for reading its memory), if known.

        With ``reset`` that is the worker's current child, not the process
        the client started.
        """
        if self._proc is None:
            return None
        return self._serving or self._proc.pid

    @property
    def optional_ops(self) -> frozenset[str]:
        """Optional ops the implementation offered in its ``hello`` (none before it)."""
        return frozenset() if self._hello is None else self._hello.optional_ops

    def handshake(self) -> Hello:
        """``hello`` (cached); a crash or hang stays :class:`ImplCrash`/:class:`ImplHang`."""
        if self._hello is None:
            [response] = self.exchange([{"op": "hello"}])
            if not response.get("ok"):
                error = response.get("error")
                if isinstance(error, dict) and error.get("type") == "ImplUnavailable":
                    raise ImplUnavailable(str(error.get("message")))
                self.kill()
                raise ImplCrash(None, None, f"protocol violation: hello failed: {error!r}")
            try:
                self._hello = Hello.from_json(response.get("result"))
            except ProtocolError as exc:
                self.kill()
                raise ImplCrash(None, None, f"protocol violation: {exc}") from exc
            self._serving = self._hello.pid
        return self._hello

    def hello(self) -> Hello:
        """Handshake (cached); any failure to answer is :class:`ImplUnavailable`."""
        try:
            return self.handshake()
        except ImplCrash as exc:
            raise ImplUnavailable(_load_failure(self.argv, exc)) from exc
        except ImplHang as exc:
            raise ImplUnavailable(
                f"{' '.join(self.argv)} did not answer hello within {exc}"
            ) from exc

    def reset(self) -> None:
        """A fresh allocator in the same stream (only if ``hello`` offered ``reset``)."""
        [response] = self.exchange([{"op": "reset"}])
        result = response.get("result")
        if not response.get("ok") or not isinstance(result, dict):
            self.kill()
            raise ImplCrash(None, None, f"protocol violation: reset answered {response!r}")
        pid = result.get("pid")
        self._serving = pid if isinstance(pid, int) else None

    def stderr_tail(self, limit: int = 4000) -> str:
        """The last ``limit`` bytes of stderr (and how many were not kept)."""
        return "" if self._stderr is None else self._stderr.text(limit)

    def _kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        # The group id is the worker's pid (start_new_session); the group may
        # outlive the worker itself when a child of it still runs.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    def close(self) -> None:
        """Stop the process and its whole group (killed: disposable); never raises."""
        proc, self._proc = self._proc, None
        selector, self._selector = self._selector, None
        if selector is not None:
            selector.close()
        if proc is None:
            return
        try:
            self._kill_group(proc)
            _reap(proc)
        finally:
            for stream in (proc.stdout, proc.stdin):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            if self._stderr is not None:
                self._stderr.thread.join(1.0)

    def kill(self) -> None:
        proc = self._proc
        if proc is not None:
            self._kill_group(proc)
            _reap(proc)

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
        if proc is None or proc.stdin is None or proc.stdout is None or self._selector is None:
            raise ImplCrash(None, None, "worker not running")
        first = self._next_id
        payload = b"".join(
            encode({**request, "id": first + offset}) for offset, request in enumerate(requests))
        self._next_id += len(requests)
        budget = (self.deadline if deadline is None else deadline) + 0.002 * len(requests)
        limit = time.monotonic() + budget
        responses: list[dict[str, JSONValue]] = []
        out_fd, in_fd = proc.stdin.fileno(), proc.stdout.fileno()
        selector = self._selector  # in_fd stays registered for the client's life
        # Most batches fit the pipe: write at once, and wait for output only
        # when the peer has not read everything yet.
        position = self._send(out_fd, payload, 0)
        writing = position < len(payload)
        if writing:
            selector.register(out_fd, selectors.EVENT_WRITE)
        try:
            while len(responses) < len(requests):
                remaining = limit - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    hang = ImplHang(budget, self.stderr_tail())
                    hang.answered = len(responses)  # type: ignore[attr-defined]
                    raise hang
                for key, _ in selector.select(remaining):
                    if key.fd == out_fd:
                        position = self._send(out_fd, payload, position)
                        if position >= len(payload):
                            selector.unregister(out_fd)
                            writing = False
                        continue
                    try:
                        chunk = os.read(in_fd, 1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        crash = self._crashed()
                        # How far it got: the checker tells ops from re-reads.
                        crash.answered = len(responses)  # type: ignore[attr-defined]
                        raise crash
                    self._buffer += chunk
                    *complete, self._buffer = self._buffer.split(b"\n")
                    responses += self._decode_all(complete, first + len(responses))
        finally:
            if writing:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(out_fd)
        return responses

    @staticmethod
    def _send(fd: int, payload: bytes, position: int) -> int:
        """Write what the pipe takes from ``position`` on; the new position.

        A closed pipe counts as all written: the peer died, and the read side
        reports the crash with its status.
        """
        while position < len(payload):
            try:
                position += os.write(fd, payload[position : position + (1 << 16)])
            except BlockingIOError:
                break
            except BrokenPipeError:
                return len(payload)
        return position

    def _decode_all(self, lines: list[bytes], first_id: int) -> list[dict[str, JSONValue]]:
        """The answers in ``lines``, ids checked; one JSON parse for the lot."""
        lines = [line for line in lines if line.strip()]
        if not lines:
            return []
        try:
            batch = json.loads(b"[" + b",".join(lines) + b"]")
        except (ValueError, UnicodeDecodeError):
            batch = None  # find and report the bad line one by one
        if batch is None or not all(type(message) is dict for message in batch):
            return [self._decode(line, first_id + index) for index, line in enumerate(lines)]
        for index, message in enumerate(batch):
            if message.get("id") != first_id + index:
                return [self._decode(line, first_id + i) for i, line in enumerate(lines)]
        return cast(list[dict[str, JSONValue]], batch)

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
        # Whatever it forked goes too, and the last stderr is read (LOAD-007).
        self._kill_group(proc)
        if self._stderr is not None:
            self._stderr.thread.join(0.5)
        name: str | None = None
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
        return ImplCrash(returncode, name, self.stderr_tail())




def _load_failure(argv: Sequence[str], exc: ImplCrash) -> str:
    """"Could not be loaded", for a process that died before answering hello."""
    if exc.signal_name:
        how = (f"it died with {exc.signal_name} while loading "
               "(a constructor that aborts or crashes?)")
    elif exc.returncode is not None:
        how = f"it exited with status {exc.returncode} before answering hello"
    else:
        how = str(exc)
    tail = f"; stderr: {exc.stderr_tail.strip()[-800:]}" if exc.stderr_tail.strip() else ""
    return f"{' '.join(argv)} could not be loaded: {how}{tail}"


def worker_argv(impl: str) -> list[str]:
    """The command line that hosts ``impl`` in a Python worker process."""
    return [sys.executable, "-m", "memslice_conformance.impl.worker", "--impl", impl]


if __name__ == "__main__":
    sys.exit(main())
