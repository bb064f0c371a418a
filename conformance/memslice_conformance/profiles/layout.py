"""The ``glib-2.74`` profile: the same traces placed exactly where GLib 2.74 places them.

Rules and theory of operation
-----------------------------
The reference is the oracle (it is proven equal to GLib 2.74.6 by
``tests/fidelity``).  Seeded traces run twice, each time on a
fresh instance, and their normalised layouts (:func:`layout.normalise`)
must be equal, together with the configuration answers::

    trace (seeded)  ──► oracle: fresh reference, GLib's load state on thread L,
         │                      trace on thread M                ──► normalise ─┐
         └────────► implementation: fresh session; GLib's load  ──► normalise ─┤ compare,
                                    state made on thread "loader" unless the  │ get_config(0..7),
                                    library is GLib itself, trace on "main"   ┘ state(6, ix)

GLib's library constructors make two ``g_slice_alloc(96)`` calls on the
loading thread (CONF-015, CONF-016, CONF-018).  In a worker that thread is
the worker's main thread, which never runs ops; the trace runs on the op
thread ``main``.  The oracle mirrors that: the load allocations on the
calling thread, the trace on a second live thread (CONF-019, CONF-020).
An implementation that is not GLib gets the same two allocations from the
suite on a thread ``loader`` that stays alive.

Routes (slab chunk or malloc) are probed from the implementation's memory:
in-process directly, for a worker through ``/proc/PID/mem`` (the SlabInfo
record at the end of the page, SLAB-003).  Normalised layouts pin routes and
classes (SIZE-003..009), chunk strides and chunks per slab (SLAB-011),
colours (COLOR-001..004), the order freed chunks come back (MAG-005..007),
reload sizes (MAG-004, MAG-009, DEPOT-005) and slab order (SLAB-004, SLAB-005).
Side threads start, allocate, free their own and main's blocks and exit
one at a time (the trace waits until the worker's OS thread is gone, so its
exit cleanup has run): what goes to the depot or the slabs at exit and what
main reuses afterwards is compared too (EXIT-002, DEPOT-003, DEPOT-004).  The contention
counters are compared only where GLib answers (not under always-malloc,
where it crashes).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from memslice_conformance.checks import layout
from memslice_conformance.failures import Violation
from memslice_conformance.impl.impls import Implementation
from memslice_conformance.impl.jsonl import JSONValue, Request
from memslice_conformance.impl.session import Session, SessionFactory, WorkerSession
from memslice_conformance.profiles.registry import CheckInfo, register_check, untraced

if TYPE_CHECKING:
    import memslice

__all__ = [
    "CLAUSES",
    "INFO",
    "check_layout",
    "oracle",
    "random_trace",
    "wait_for_worker_threads",
    "worker_tasks",
]

#: What an equal normalised layout and configuration pin down (see the module doc).
CLAUSES: Final = (
    "SIZE-003", "SIZE-005", "SIZE-007", "SIZE-008", "SIZE-009",
    "SLAB-003", "SLAB-004", "SLAB-005", "SLAB-011",
    "COLOR-001", "COLOR-002", "COLOR-003", "COLOR-004",
    "MAG-004", "MAG-005", "MAG-006", "MAG-007", "MAG-009", "DEPOT-005",
    "CONF-006", "CONF-016", "CONF-018", "CONF-019", "CONF-020", "CONT-006",
    "EXIT-002", "DEPOT-003", "DEPOT-004",
)  # fmt: skip

INFO: Final = CheckInfo(
    "layout",
    "glib-2.74",
    CLAUSES,
    "custom",
    "seeded traces: normalised layout and configuration equal to the reference oracle",
)

#: Requested sizes the traces draw from: several classes, route edges, the malloc path.
_SIZES: Final = (1, 8, 16, 17, 24, 40, 48, 96, 100, 200, 256, 500, 1000, 1008, 1009, 3000)
_N_CLASSES: Final = layout.X86_64.max_chunk // layout.X86_64.p2alignment
_LOADER: Final = "loader"
_SIDE: Final = "side"


def random_trace(
    rng: random.Random, length: int = 120, side_threads: bool = True
) -> tuple[layout.Op, ...]:
    """A trace on ``main`` with runs, frees and chain frees, and (if ``side_threads``)
    short-lived side threads that allocate, free their own and main's blocks, and
    exit while some of their blocks stay live."""
    ops: list[layout.Op] = []
    live: list[int] = []
    sizes: list[int] = []
    palette = rng.sample(_SIZES, 4)
    while len(ops) < length:
        roll = rng.random()
        if roll < 0.55 or not live:
            size = rng.choice(palette)
            for _ in range(rng.randrange(1, 24)):
                ops.append(layout.Alloc(layout.MAIN, size))
                live.append(len(sizes))
                sizes.append(size)
        elif roll < 0.85 or (roll >= 0.93 and not side_threads):
            for _ in range(rng.randrange(1, len(live) + 1)):
                block = live.pop(rng.randrange(len(live)))
                ops.append(layout.Free(layout.MAIN, block))
        elif roll < 0.93:
            size = sizes[rng.choice(live)]
            chain = [b for b in live if sizes[b] == size and size >= 8][: rng.randrange(1, 12)]
            if chain:
                rng.shuffle(chain)
                for block in chain:
                    live.remove(block)
                ops.append(layout.FreeChain(layout.MAIN, tuple(chain), 0))
        else:
            ops.extend(_side_thread(rng, palette, live, sizes))
    layout.check_trace(ops)
    return tuple(ops)


def _side_thread(
    rng: random.Random, palette: list[int], live: list[int], sizes: list[int]
) -> list[layout.Op]:
    """A thread that allocates, frees (its own and main's blocks) and exits (EXIT-002)."""
    ops: list[layout.Op] = [layout.ThreadStart(_SIDE)]
    mine: list[int] = []
    for _ in range(rng.randrange(1, 30)):
        size = rng.choice(palette)
        ops.append(layout.Alloc(_SIDE, size))
        mine.append(len(sizes))
        sizes.append(size)
    for block in rng.sample(mine, rng.randrange(0, len(mine) + 1)):
        ops.append(layout.Free(_SIDE, block))
        mine.remove(block)
    for block in rng.sample(live, min(len(live), rng.randrange(0, 8))):
        ops.append(layout.Free(_SIDE, block))  # cross-thread frees (API-009)
        live.remove(block)
    ops.append(layout.ThreadExit(_SIDE))
    live.extend(mine)
    return ops


def oracle(
    trace: tuple[layout.Op, ...], contention: bool
) -> tuple[tuple[layout.NormBlock, ...], layout.ConfigObservation]:
    """Run ``trace`` on a fresh reference in GLib's load state (see the module doc)."""
    import memslice
    from memslice.tunables import GLIB_2_74

    allocator = memslice.Allocator(GLIB_2_74, environ={})
    result: list[tuple[tuple[layout.NormBlock, ...], layout.ConfigObservation]] = []
    errors: list[BaseException] = []

    def loader() -> None:
        # The loading thread: it makes GLib's load-time allocations and stays
        # alive (it is the worker's main thread in the implementation).
        try:
            layout.reproduce_glib_load_state(allocator)
            worker = "trace-main"
            renamed = (layout.ThreadStart(worker), *(_rename(op, worker) for op in trace))
            observed = layout.execute_trace(renamed, layout.ReferenceBackend(allocator))
            config = layout.observe_config(_Config(allocator), _N_CLASSES, contention)
            result.append((layout.normalise(renamed, observed), config))
        except BaseException as exc:  # re-raised on the caller's thread
            errors.append(exc)

    # A thread of its own, so that the suite's thread (which may have used the
    # reference before) is not the one whose magazines are compared.
    thread = threading.Thread(target=loader, name="oracle-loader")
    thread.start()
    thread.join()
    allocator.close()
    if errors:
        raise errors[0]
    return result[0]


class _Config:
    """The reference's configuration answers, typed as the layout reader wants."""

    def __init__(self, allocator: memslice.Allocator) -> None:
        self._allocator = allocator

    def get_config(self, key: int) -> int:
        return int(self._allocator.get_config(key))

    def get_config_state(self, key: int, address: int) -> list[int] | None:
        answer = self._allocator.get_config_state(key, address)
        return None if answer is None else [int(v) for v in answer]


def _rename(op: layout.Op, thread: str) -> layout.Op:
    if op.thread != layout.MAIN or isinstance(op, layout.ThreadStart | layout.ThreadExit):
        return op
    if isinstance(op, layout.Alloc):
        return layout.Alloc(thread, op.size)
    if isinstance(op, layout.Free):
        return layout.Free(thread, op.block)
    return layout.FreeChain(thread, op.blocks, op.next_offset)


def _is_glib(impl: Implementation) -> bool:
    """Does the library make GLib's load-time allocations itself?"""
    head, _, rest = impl.spec.partition(":")
    return head == "glib" or (head == "lib" and "libglib-2.0" in os.path.basename(rest))


def _reader(session: Session) -> Callable[[int, int], bytes | None]:
    if isinstance(session, WorkerSession) and session.client.pid is not None:
        path = f"/proc/{session.client.pid}/mem"

        def read(address: int, length: int) -> bytes | None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return None
            try:
                data = os.pread(fd, length, address)
            except OSError:
                return None
            finally:
                os.close(fd)
            return data if len(data) == length else None

        return read
    return layout._read_memory


def _call(session: Session, request: Request) -> JSONValue:
    [response] = session.run([request])
    if not response.get("ok"):
        error = response.get("error")
        raise Violation(CLAUSES, f"{request['op']} answered an error: {error}")
    return response.get("result")


def _run_on(
    session: Session, trace: tuple[layout.Op, ...], glib: bool, contention: bool
) -> tuple[tuple[layout.NormBlock, ...], layout.ConfigObservation]:
    if not glib:
        for size in layout.GLIB_LOAD_ALLOCATIONS:
            _call(session, {"op": "alloc", "size": size, "thread": _LOADER})
    sizes = layout.check_trace(trace)
    read = _reader(session)
    addresses: list[int] = []
    routes: list[layout.Route] = []
    before_side: set[str] | None = None
    for op in trace:
        if isinstance(op, layout.ThreadStart):
            before_side = worker_tasks(session)
        elif isinstance(op, layout.ThreadExit):
            session.run([{"op": "thread_exit", "thread": op.thread}])
            wait_for_worker_threads(session, before_side)
        elif isinstance(op, layout.Alloc):
            address = _call(session, {"op": "alloc", "size": op.size, "thread": op.thread})
            if not isinstance(address, int):
                raise Violation(("API-001",), f"alloc({op.size}) returned {address!r}")
            addresses.append(address)
            routes.append(layout.probe_route(address, op.size, read=read))
        elif isinstance(op, layout.Free):
            _call(
                session,
                {
                    "op": "free1",
                    "size": sizes[op.block],
                    "addr": addresses[op.block],
                    "thread": op.thread,
                },
            )
        elif isinstance(op, layout.FreeChain):
            chain = [addresses[b] for b in op.blocks]
            for here, there in zip(chain, [*chain[1:], 0], strict=True):
                _call(
                    session,
                    {
                        "op": "write",
                        "addr": here + op.next_offset,
                        "data": there.to_bytes(8, "little").hex(),
                        "thread": op.thread,
                    },
                )
            _call(
                session,
                {
                    "op": "free_chain_with_offset",
                    "size": sizes[op.blocks[0]],
                    "head": chain[0],
                    "next_offset": op.next_offset,
                    "thread": op.thread,
                },
            )
    observed = layout.Observation(tuple(addresses), tuple(routes))
    config = layout.observe_config(_SessionConfig(session), _N_CLASSES, contention)
    return layout.normalise(trace, observed), config


def worker_tasks(session: Session) -> set[str] | None:
    """The worker's OS threads (None in-process, where exit cleanup is synchronous)."""
    if not isinstance(session, WorkerSession) or session.client.pid is None:
        return None
    try:
        return set(os.listdir(f"/proc/{session.client.pid}/task"))
    except OSError:
        return None


def wait_for_worker_threads(
    session: Session, before: set[str] | None, timeout: float = 5.0, *, departed: bool = False
) -> None:
    """Wait until every OS thread started since ``before`` has gone (or, with
    ``departed``, until one of the threads in ``before`` has gone).

    A joined thread may still be running its thread-specific-data destructors,
    where GLib's exit cleanup lives (EXIT-002); the next op must come after.
    """
    if before is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = worker_tasks(session)
        if now is None:
            return
        if (before - now) if departed else not (now - before):
            return
        time.sleep(0.0005)


class _SessionConfig:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get_config(self, key: int) -> int:
        value = _call(self._session, {"op": "get_config", "key": key})
        if not isinstance(value, int):
            raise Violation(("CONF-002",), f"get_config({key}) returned {value!r}")
        return value

    def get_config_state(self, key: int, address: int) -> list[int] | None:
        value = _call(self._session, {"op": "get_config_state", "key": key, "address": address})
        if value is None:
            return None
        if not isinstance(value, list):
            raise Violation(("CONF-011",), f"get_config_state({key}) returned {value!r}")
        return [int(v) for v in value if isinstance(v, int)]


def _compare_config(
    expected: layout.ConfigObservation, actual: layout.ConfigObservation
) -> list[str]:
    problems = []
    if expected.values != actual.values:
        problems.append(f"get_config(0..7): reference={expected.values} impl={actual.values}")
    if expected.contention != actual.contention:
        problems.append(
            f"get_config_state(6, ix): reference={expected.contention} impl={actual.contention}"
        )
    return problems


def check_layout(impl: Implementation, seed: int, max_examples: int) -> None:
    """The ``layout`` check (see the module doc)."""
    rng = random.Random(f"glib-2.74-{seed}")
    contention = "always-malloc" not in impl.spec and "always-malloc" not in impl.env.get(
        "G_SLICE", ""
    )
    glib = _is_glib(impl)
    factory = SessionFactory(impl)
    try:
        for number in range(max(3, max_examples // 8)):
            trace = random_trace(rng)
            expected = oracle(trace, contention)
            session = factory.open()
            try:
                actual = _run_on(session, trace, glib, contention)
            finally:
                session.close()
            problems = layout.compare(expected[0], actual[0], ("reference", "impl"))
            problems += _compare_config(expected[1], actual[1])
            if problems:
                message = (
                    f"trace {number} (seed {seed}) differs from the reference: "
                    + "; ".join(problems[:6])
                    + f"; trace: {layout.trace_to_json(trace)[:1500]}"
                )
                raise Violation(CLAUSES, untraced(
                    message, impl.spec, INFO.name, seed,
                    "addresses are compared, normalised, with the reference oracle's, "
                    "which a trace's checker does not state", max_examples))
    finally:
        factory.close()


register_check(INFO, check_layout)
