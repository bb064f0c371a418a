"""Layout fidelity: run one trace on two slice allocators and compare where blocks land.

Rules and theory of operation
-----------------------------
A *trace* is a short program of slice operations, each on a named thread::

    Alloc("main", 40)            -> block 0      (blocks are numbered by their Alloc)
    Alloc("main", 40)            -> block 1
    Free("main", 0)                              (free1 of block 0, with its own size)
    ThreadStart("t1"); Alloc("t1", 40) -> block 2; ThreadExit("t1")
    FreeChain("main", (1, 2), next_offset=8)     (link 1 -> 2 at offset 8, free the chain)

:func:`execute_trace` runs a trace on anything that satisfies :class:`SliceBackend`
(the reference in-process, or the real GLib through ctypes in a fresh
subprocess), on real threads: ``"main"`` is the calling thread, every other
name is a :class:`threading.Thread` that lives from its ``ThreadStart`` to its
``ThreadExit``.  The result is an :class:`Observation`: each block's address
and *route* (slab chunk or system malloc), probed from memory.

Raw addresses differ between processes (glibc decides where slab pages go),
so :func:`normalise` maps every block to a placement that does not depend on
glibc::

    address ──▶ (chunk size, slab id, offset in slab page)
                  │           │         └─ address mod page size (GLib pages are
                  │           │            aligned to their size: PAGE-002)
                  │           └─ slabs of one class numbered by first appearance
                  └─ P2ALIGN(size); page size from the class formula (SIZE-007)

    malloc block ──▶ ("malloc", requested size)      compared by route only

Two allocators with equal normalised layouts agree on strides, chunks per
slab, colour offsets (COLOR-002), the order in which freed chunks come back
(MAG-005, MAG-006), magazine reload sizes (how many allocations before a new slab or a
reused chunk), and what a new thread reuses after another exits (EXIT-002):
each of those is a function of the normalised sequence.  :func:`compare`
reports the first difference and the derived figures side by side.

GLib's starting state (CONF-015, CONF-016, CONF-018): GLib 2.74.6 initialises the slice
allocator inside its library constructors, which make two
``g_slice_alloc(96)`` calls (two ``g_hash_table_new_full`` calls) on the thread
that loads the library.  That loads a 17-chunk magazine for class 96 (two
slabs, so the global colour accumulator starts the program at 2) and keeps
two chunks live forever.  :func:`reproduce_glib_load_state` performs the same
two allocations on a reference allocator, so the comparison needs no
weakening.

Invariants checked by :func:`check_trace` before anything runs: a block is
freed at most once and only after its ``Alloc``; a chain's blocks share one
requested size that has room for a pointer at ``next_offset``; operations
name a thread that is running; ``"main"`` is never started or exited.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeAlias

if TYPE_CHECKING:  # the reference is only needed by ReferenceBackend's callers
    import memslice

__all__ = [
    "GLIB_LOAD_ALLOCATIONS",
    "MAIN",
    "X86_64",
    "Alloc",
    "ClassFigures",
    "ConfigObservation",
    "Free",
    "FreeChain",
    "NormBlock",
    "Observation",
    "Op",
    "ReferenceBackend",
    "Route",
    "SlabGeometry",
    "SliceBackend",
    "ThreadExit",
    "ThreadStart",
    "TraceError",
    "check_trace",
    "class_figures",
    "compare",
    "config_from_json",
    "config_to_json",
    "execute_trace",
    "normalise",
    "observe_config",
    "probe_route",
    "reproduce_glib_load_state",
    "trace_from_json",
    "trace_to_json",
]

MAIN: Final = "main"
"""The name of the thread that calls :func:`execute_trace`."""

GLIB_LOAD_ALLOCATIONS: Final = (96, 96)
"""Requested sizes GLib 2.74.6's library constructors allocate, in order, on the
loading thread, and never free (measured; CONF-016, CONF-018)."""

Route: TypeAlias = Literal["slab", "malloc", "null"]

# --------------------------------------------------------------------------- traces


@dataclass(frozen=True, slots=True)
class Alloc:
    """``alloc(size)`` on ``thread``; creates the next block id."""

    thread: str
    size: int


@dataclass(frozen=True, slots=True)
class Free:
    """``free1(size, addr)`` of block ``block`` (its own requested size) on ``thread``."""

    thread: str
    block: int


@dataclass(frozen=True, slots=True)
class FreeChain:
    """Link ``blocks`` in order through a pointer at ``next_offset`` and free the chain
    with one ``free_chain_with_offset`` call on ``thread`` (API-008)."""

    thread: str
    blocks: tuple[int, ...]
    next_offset: int


@dataclass(frozen=True, slots=True)
class ThreadStart:
    """Start a real thread named ``thread``; it does nothing until given operations."""

    thread: str


@dataclass(frozen=True, slots=True)
class ThreadExit:
    """End thread ``thread`` and wait until the OS thread is gone, so that its
    exit cleanup (EXIT-002) has run before the next operation."""

    thread: str


Op: TypeAlias = Alloc | Free | FreeChain | ThreadStart | ThreadExit
_OP_TYPES: Final[dict[str, type[Op]]] = {
    "alloc": Alloc,
    "free": Free,
    "free_chain": FreeChain,
    "thread_start": ThreadStart,
    "thread_exit": ThreadExit,
}
_OP_NAMES: Final = {cls: name for name, cls in _OP_TYPES.items()}


class TraceError(ValueError):
    """A trace that cannot be executed as written (see :func:`check_trace`)."""


def check_trace(trace: Sequence[Op], pointer_size: int = 8) -> tuple[int, ...]:
    """Validate ``trace``; return the requested size of every block, by block id."""
    sizes: list[int] = []
    freed: set[int] = set()
    running = {MAIN}
    for step, op in enumerate(trace):
        where = f"op {step} ({op!r})"
        if isinstance(op, ThreadStart):
            if op.thread in running or op.thread == MAIN:
                raise TraceError(f"{where}: thread {op.thread!r} is already running")
            running.add(op.thread)
            continue
        if op.thread not in running:
            raise TraceError(f"{where}: thread {op.thread!r} is not running")
        if isinstance(op, ThreadExit):
            if op.thread == MAIN:
                raise TraceError(f"{where}: the main thread cannot exit")
            running.remove(op.thread)
        elif isinstance(op, Alloc):
            if op.size < 0:
                raise TraceError(f"{where}: negative size")
            sizes.append(op.size)
        else:
            blocks = (op.block,) if isinstance(op, Free) else op.blocks
            if not blocks or len(set(blocks)) != len(blocks):
                raise TraceError(f"{where}: needs distinct blocks")
            for block in blocks:
                if not 0 <= block < len(sizes):
                    raise TraceError(f"{where}: block {block} was not allocated before")
                if block in freed:
                    raise TraceError(f"{where}: block {block} is already freed")
                freed.add(block)
            if isinstance(op, FreeChain):
                size = sizes[op.blocks[0]]
                if any(sizes[b] != size for b in op.blocks):
                    raise TraceError(f"{where}: chain blocks must share one requested size")
                if op.next_offset < 0 or op.next_offset + pointer_size > size:
                    raise TraceError(f"{where}: no room for a pointer at {op.next_offset}")
    return tuple(sizes)


def trace_to_json(trace: Sequence[Op]) -> str:
    """Serialise a trace as a JSON array of ``{"op": name, ...fields}`` objects."""
    rows = []
    for op in trace:
        row: dict[str, object] = {"op": _OP_NAMES[type(op)]}
        for field in dataclasses.fields(op):
            value = getattr(op, field.name)
            row[field.name] = list(value) if isinstance(value, tuple) else value
        rows.append(row)
    return json.dumps(rows)


def trace_from_json(text: str) -> tuple[Op, ...]:
    """Inverse of :func:`trace_to_json`."""
    ops: list[Op] = []
    for row in json.loads(text):
        cls = _OP_TYPES[row.pop("op")]
        if cls is FreeChain:
            row["blocks"] = tuple(row["blocks"])
        ops.append(cls(**row))
    return tuple(ops)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True, slots=True)
class SlabGeometry:
    """The few numbers normalisation needs, from the spec's formulas (SIZE-003..009).

    Defaults are GLib 2.74 on x86_64 with 4 KiB system pages.  Deliberately
    computed here rather than taken from the reference: the oracle must not
    grade itself.
    """

    p2alignment: int = 16
    slab_info_size: int = 48
    min_page_size: int = 128
    max_page_size: int = 8192

    @property
    def max_chunk(self) -> int:
        """The largest slab chunk size (1008 on x86_64; 1009+ bytes go to malloc)."""
        limit = (self.max_page_size - self.slab_info_size) // 8
        return limit - limit % self.p2alignment

    def chunk_size(self, size: int) -> int | None:
        """The slab class (chunk size) of a request, or None if it never uses slabs."""
        chunk = -(-size // self.p2alignment) * self.p2alignment
        return chunk if 0 < chunk <= self.max_chunk else None

    def page_size(self, chunk: int) -> int:
        """Slab page size of a class: the power of two >= 8 chunks + SlabInfo (SIZE-007)."""
        return max(1 << (8 * chunk + self.slab_info_size - 1).bit_length(), self.min_page_size)

    def chunks_per_slab(self, chunk: int) -> int:
        """How many chunks a slab of this class holds."""
        return (self.page_size(chunk) - self.slab_info_size) // chunk

    def padding(self, chunk: int) -> int:
        """Spare bytes of a slab of this class: the colour range (COLOR-001)."""
        return (self.page_size(chunk) - self.slab_info_size) % chunk

    def threshold(self, chunk: int) -> int:
        """Magazine threshold with contention counter 0 (MAG-004)."""
        return max(4, self.max_page_size // max(5 * chunk, 5 * 2 * self.p2alignment))


X86_64: Final = SlabGeometry()

# --------------------------------------------------------------------------- probing

_MEM_FD: int | None = None


def _read_memory(address: int, length: int) -> bytes | None:
    """Read process memory without risking a crash: unmapped memory gives None."""
    global _MEM_FD
    if _MEM_FD is None:
        _MEM_FD = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        data = os.pread(_MEM_FD, length, address)
    except OSError:
        return None
    return data if len(data) == length else None


def probe_route(
    address: int,
    size: int,
    geometry: SlabGeometry = X86_64,
    read: Callable[[int, int], bytes | None] = _read_memory,
) -> Route:
    """Observe, from memory alone, whether ``address`` is a slab chunk for ``size``.

    A slab chunk of class ``c`` lies in a page aligned to its page size ``P``
    whose ``SlabInfo`` record sits ``slab_info_size`` bytes before the end
    (SLAB-003): ``{chunks, n_allocated, next, prev}``.  The probe reads that
    record through ``/proc/self/mem`` (so a wrong guess cannot crash) and
    accepts it only if ``next`` and ``prev`` point at SlabInfo positions of
    the same page size, ``n_allocated`` is between 1 and the chunks per slab,
    and ``chunks`` is NULL or inside this page's chunk area.  A malloc block
    passes all of that only by an astronomically unlikely coincidence.
    ``read`` reads another process's memory when the allocator lives there
    (the conformance glib-2.74 profile reads ``/proc/PID/mem`` of a worker).
    """
    if address == 0:
        return "null"
    chunk = geometry.chunk_size(size)
    if chunk is None:
        return "malloc"
    page_size = geometry.page_size(chunk)
    page = address & ~(page_size - 1)
    info = page + page_size - geometry.slab_info_size
    if address + chunk > info:
        return "malloc"
    raw = read(info, 32)
    if raw is None:
        return "malloc"
    chunks = int.from_bytes(raw[0:8], "little")
    n_allocated = int.from_bytes(raw[8:12], "little")
    links = (int.from_bytes(raw[16:24], "little"), int.from_bytes(raw[24:32], "little"))
    offset = page_size - geometry.slab_info_size
    links_ok = all(link and link % page_size == offset for link in links)
    count_ok = 1 <= n_allocated <= geometry.chunks_per_slab(chunk)
    chunks_ok = chunks == 0 or page <= chunks < info
    return "slab" if links_ok and count_ok and chunks_ok else "malloc"


# --------------------------------------------------------------------------- backends


class SliceBackend(Protocol):
    """What :func:`execute_trace` needs from an allocator.

    Every method may be called from any thread the trace names; the backend
    must act on behalf of the calling thread (per-thread magazines).
    """

    def alloc(self, size: int) -> int:
        """``g_slice_alloc``: the block's address, 0 only for size 0."""
        ...

    def free1(self, size: int, address: int) -> None:
        """``g_slice_free1``."""
        ...

    def free_chain_with_offset(self, size: int, head: int, next_offset: int) -> None:
        """``g_slice_free_chain_with_offset``."""
        ...

    def write_pointer(self, address: int, value: int) -> None:
        """Store a pointer-sized little-endian ``value`` at ``address`` (inside a block)."""
        ...

    def thread_exiting(self) -> None:
        """Called on a trace thread just before it returns (may do nothing)."""
        ...


class ReferenceBackend:
    """:class:`SliceBackend` over a reference :class:`memslice.Allocator`."""

    def __init__(self, allocator: memslice.Allocator) -> None:
        self.allocator = allocator

    def alloc(self, size: int) -> int:
        return self.allocator.alloc(size)

    def free1(self, size: int, address: int) -> None:
        self.allocator.free1(size, address)

    def free_chain_with_offset(self, size: int, head: int, next_offset: int) -> None:
        self.allocator.free_chain_with_offset(size, head, next_offset)

    def write_pointer(self, address: int, value: int) -> None:
        # Slab memory is real process memory (PY-010), so C-style access is exact.
        import ctypes

        ctypes.c_uint64.from_address(address).value = value

    def thread_exiting(self) -> None:
        # Run the exit cleanup now rather than whenever Python finalises the
        # thread's locals, so that it has certainly happened when ThreadExit
        # returns (EXIT-004); GLib's runs in the pthread key destructor.
        self.allocator.thread_exit()


def reproduce_glib_load_state(allocator: memslice.Allocator) -> tuple[int, ...]:
    """Bring a fresh reference allocator into the state GLib 2.74.6 is in after loading.

    Performs GLib's load-time allocations (:data:`GLIB_LOAD_ALLOCATIONS`) on
    the calling thread, which must be the thread the comparison treats as the
    main thread, and returns their addresses (never freed, as in GLib).
    Afterwards class 96 has two slabs, the calling thread's loaded magazine
    holds 15 chunks of class 96, and the colour accumulator is 2 (CONF-016,
    CONF-020).
    """
    return tuple(allocator.alloc(size) for size in GLIB_LOAD_ALLOCATIONS)


# --------------------------------------------------------------------------- execution


@dataclass(frozen=True, slots=True)
class Observation:
    """What running a trace showed: per block id, its address and route."""

    addresses: tuple[int, ...]
    routes: tuple[Route, ...]


class _TraceThread:
    """A named real thread that runs the callables it is sent, one at a time."""

    def __init__(self, name: str, on_exit: Callable[[], None]) -> None:
        self._inbox: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._outbox: queue.Queue[tuple[bool, object]] = queue.Queue()
        self._on_exit = on_exit
        self._thread = threading.Thread(target=self._main, name=f"trace-{name}", daemon=True)
        self._thread.start()
        self.native_id: int = self.call(threading.get_native_id)  # type: ignore[assignment]

    def _main(self) -> None:
        while (job := self._inbox.get()) is not None:
            try:
                self._outbox.put((True, job()))
            except BaseException as exc:  # handed back to the caller, re-raised there
                self._outbox.put((False, exc))
        self._on_exit()

    def call(self, job: Callable[[], object]) -> object:
        self._inbox.put(job)
        ok, value = self._outbox.get()
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread and wait until the kernel has reaped it.

        ``Thread.join`` returns before the OS thread has run its
        thread-specific-data destructors, where GLib's exit cleanup lives; so
        wait for ``/proc/self/task/<tid>`` to vanish as well.
        """
        self._inbox.put(None)
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while os.path.exists(f"/proc/self/task/{self.native_id}"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"thread {self._thread.name} did not exit")
            time.sleep(0.0005)


def execute_trace(
    trace: Sequence[Op], backend: SliceBackend, geometry: SlabGeometry = X86_64
) -> Observation:
    """Run ``trace`` on ``backend``; ``"main"`` operations run on the calling thread."""
    sizes = check_trace(trace)
    addresses: list[int] = []
    routes: list[Route] = []
    threads: dict[str, _TraceThread] = {}

    def on(thread: str, job: Callable[[], object]) -> object:
        return job() if thread == MAIN else threads[thread].call(job)

    try:
        for op in trace:
            if isinstance(op, ThreadStart):
                threads[op.thread] = _TraceThread(op.thread, backend.thread_exiting)
            elif isinstance(op, ThreadExit):
                threads.pop(op.thread).stop()
            elif isinstance(op, Alloc):
                address = on(op.thread, partial(backend.alloc, op.size))
                assert isinstance(address, int)
                addresses.append(address)
                # Probe now, while the block is live and its slab certainly exists.
                routes.append(probe_route(address, op.size, geometry))
            elif isinstance(op, Free):
                on(op.thread, partial(backend.free1, sizes[op.block], addresses[op.block]))
            else:
                chain = [addresses[b] for b in op.blocks]
                size, offset = sizes[op.blocks[0]], op.next_offset
                for here, there in zip(chain, [*chain[1:], 0], strict=True):
                    backend.write_pointer(here + offset, there)
                on(op.thread, partial(backend.free_chain_with_offset, size, chain[0], offset))
    finally:
        for worker in threads.values():
            worker.stop()
    return Observation(tuple(addresses), tuple(routes))


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True, slots=True)
class NormBlock:
    """A block's placement with everything glibc decides removed.

    ``route`` is observed (:func:`probe_route`).  For slab blocks, ``chunk`` is
    the class's chunk size, ``slab`` the slab's number among this class's
    slabs in order of first appearance in the trace, and ``offset`` the
    address modulo the slab page size.  Malloc and null blocks keep only
    their route and size.
    """

    size: int
    route: Route
    chunk: int | None = None
    slab: int | None = None
    offset: int | None = None


def normalise(
    trace: Sequence[Op], observation: Observation, geometry: SlabGeometry = X86_64
) -> tuple[NormBlock, ...]:
    """Map an observation to per-block placements that do not depend on glibc.

    Malloc blocks keep only their route: where glibc puts them (32 bytes
    apart for 8-byte blocks under always-malloc, where slabs give 16) is the
    C library's business, not the slice allocator's (LARGE-004), and a model
    with its own heap neither can nor should reproduce it.

    Slab identity is the page address: a slab page that is released and later
    re-created at the same address counts as the same slab.  In the traces
    used here slabs are released only by thread exit (EXIT-002), and the
    tests that exercise it say so.
    """
    sizes = check_trace(trace)
    slab_ids: dict[tuple[int, int], int] = {}
    per_class: dict[int, int] = {}
    out: list[NormBlock] = []
    for size, address, route in zip(sizes, observation.addresses, observation.routes, strict=True):
        chunk = geometry.chunk_size(size)
        if route != "slab" or chunk is None:
            out.append(NormBlock(size, route))
            continue
        page_size = geometry.page_size(chunk)
        key = (chunk, address & ~(page_size - 1))
        if key not in slab_ids:
            slab_ids[key] = per_class.get(chunk, 0)
            per_class[chunk] = slab_ids[key] + 1
        out.append(NormBlock(size, route, chunk, slab_ids[key], address % page_size))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ClassFigures:
    """Figures of one size class derived from a normalised layout.

    ``colours`` lists each slab's colour (offset of chunk 0, i.e. any chunk's
    offset modulo the chunk size) in slab order; ``chunks_seen`` how many
    distinct chunks of each slab the trace touched; ``strides`` the address
    deltas between consecutive allocations within one slab; ``reuses`` the
    positions (index among this class's allocations) that returned a chunk
    handed out before; ``new_slabs`` the positions that first touched a slab.
    """

    chunk: int
    colours: tuple[int, ...]
    chunks_seen: tuple[int, ...]
    strides: tuple[int, ...]
    reuses: tuple[int, ...]
    new_slabs: tuple[int, ...]


def class_figures(layout: Sequence[NormBlock]) -> dict[int, ClassFigures]:
    """Per chunk size, the figures that the fidelity clauses talk about."""
    by_class: dict[int, list[NormBlock]] = {}
    for block in layout:
        if block.chunk is not None:
            by_class.setdefault(block.chunk, []).append(block)
    figures = {}
    for chunk, blocks in sorted(by_class.items()):
        colours: dict[int, int] = {}
        seen: dict[int, set[int]] = {}
        strides, reuses, new_slabs = [], [], []
        previous: NormBlock | None = None
        for position, block in enumerate(blocks):
            assert block.slab is not None and block.offset is not None
            if block.slab not in seen:
                new_slabs.append(position)
                colours[block.slab] = block.offset % chunk
                seen[block.slab] = set()
            if block.offset in seen[block.slab]:
                reuses.append(position)
            seen[block.slab].add(block.offset)
            if previous is not None and previous.slab == block.slab:
                assert previous.offset is not None
                strides.append(block.offset - previous.offset)
            previous = block
        figures[chunk] = ClassFigures(
            chunk=chunk,
            colours=tuple(colours[s] for s in sorted(colours)),
            chunks_seen=tuple(len(seen[s]) for s in sorted(seen)),
            strides=tuple(strides),
            reuses=tuple(reuses),
            new_slabs=tuple(new_slabs),
        )
    return figures


def compare(
    expected: Sequence[NormBlock],
    actual: Sequence[NormBlock],
    names: tuple[str, str] = ("expected", "actual"),
) -> list[str]:
    """Human-readable differences between two normalised layouts; empty iff equal."""
    problems: list[str] = []
    if len(expected) != len(actual):
        problems.append(f"block counts differ: {len(expected)} vs {len(actual)}")
    for block, (left, right) in enumerate(zip(expected, actual, strict=False)):
        if left != right:
            problems.append(
                f"first difference at block {block}: {names[0]}={left} {names[1]}={right}"
            )
            break
    left_figures, right_figures = class_figures(expected), class_figures(actual)
    for chunk in sorted(set(left_figures) | set(right_figures)):
        one, two = left_figures.get(chunk), right_figures.get(chunk)
        if one is None or two is None:
            problems.append(f"class {chunk}: used only by {names[0] if two is None else names[1]}")
            continue
        for field in dataclasses.fields(ClassFigures):
            a, b = getattr(one, field.name), getattr(two, field.name)
            if a != b:
                problems.append(f"class {chunk} {field.name}: {names[0]}={a} {names[1]}={b}")
    return problems


# --------------------------------------------------------------------------- configuration


class _ConfigReader(Protocol):
    def get_config(self, key: int) -> int: ...

    def get_config_state(self, key: int, address: int) -> list[int] | None: ...


@dataclass(frozen=True, slots=True)
class ConfigObservation:
    """``get_config(k)`` for keys 0..7 and ``get_config_state`` answers (CONF-006, CONF-010).

    ``contention`` holds ``get_config_state(CONTENTION_COUNTER, ix)`` for every
    class index, or is None where it was not asked (GLib segfaults under
    always-malloc); ``other_states`` holds ``get_config_state(key, 0)`` for the
    other keys 0..7 (None means NULL).
    """

    values: tuple[int, ...]
    contention: tuple[tuple[int, ...] | None, ...] | None
    other_states: Mapping[int, tuple[int, ...] | None]


CONFIG_KEYS: Final = tuple(range(8))
CONTENTION_COUNTER: Final = 6


def observe_config(
    reader: _ConfigReader, n_classes: int, ask_contention: bool = True
) -> ConfigObservation:
    """Ask every configuration question the fidelity tests compare."""

    def state(key: int, address: int) -> tuple[int, ...] | None:
        answer = reader.get_config_state(key, address)
        return None if answer is None else tuple(answer)

    contention = (
        tuple(state(CONTENTION_COUNTER, ix) for ix in range(n_classes)) if ask_contention else None
    )
    others = {key: state(key, 0) for key in CONFIG_KEYS if key != CONTENTION_COUNTER}
    return ConfigObservation(
        values=tuple(reader.get_config(key) for key in CONFIG_KEYS),
        contention=contention,
        other_states=others,
    )


def config_to_json(observation: ConfigObservation) -> dict[str, object]:
    """A JSON-ready form of a :class:`ConfigObservation`."""
    return {
        "values": list(observation.values),
        "contention": None
        if observation.contention is None
        else [None if s is None else list(s) for s in observation.contention],
        "other_states": {
            str(k): None if v is None else list(v) for k, v in observation.other_states.items()
        },
    }


def config_from_json(data: Mapping[str, object]) -> ConfigObservation:
    """Inverse of :func:`config_to_json`."""

    def ints(value: object) -> tuple[int, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise TypeError(f"expected a list of integers, got {value!r}")
        return tuple(int(v) for v in value)

    values, contention, others = data["values"], data["contention"], data["other_states"]
    if not isinstance(values, list) or not isinstance(others, dict):
        raise TypeError("malformed configuration observation")
    if contention is not None and not isinstance(contention, list):
        raise TypeError("malformed contention list")
    return ConfigObservation(
        values=tuple(int(v) for v in values),
        contention=None if contention is None else tuple(ints(s) for s in contention),
        other_states={int(k): ints(v) for k, v in others.items()},
    )
