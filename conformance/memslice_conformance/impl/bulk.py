"""Batched scale work run next to the allocator: the optional ``bulk`` op.

Rules and theory of operation
-----------------------------
Bugs hide at scale: a counter that wraps after 4096 chunks of one class, a
chain walk that slips at its 1024th node.  Reaching them takes tens of
thousands of live blocks, which one JSON line per call cannot afford.  So
the suite sends a *bulk program*: a list of steps that the worker (or, for
in-process implementations, the suite's own thread) runs right beside the
allocator, keeping the blocks in named *pools*::

    {"op": "bulk", "steps": [
        {"do": "alloc", "pool": "p", "sizes": [96], "count": 65537},
        {"do": "verify"},
        {"do": "chain", "pool": "p", "offset": 8},
        ...]}
    ──► {"violation": null | {"kind", "step", "detail", "address", "size"},
         "calls": n, "live": n}

Steps (all sizes nonzero; pools live until freed or ``reset``):

``alloc``    ``count`` blocks, cycling through ``sizes``; ``zero`` uses
             ``alloc0`` and checks the zeros; every block gets a stamp unique
             to it (an 8-byte tag repeated), or only its first word when
             ``tag_only``, or none when ``stamp`` is false (then only its
             place is checked: the cheapest way to reach many blocks)
``verify``   every live block of every pool is pairwise disjoint and still
             holds its stamp
``free``     verify, then free a pool's blocks, ``every`` k-th one (default
             all) from ``start``, in order or reversed (``reverse``)
``chain``    verify, link the pool's blocks through ``offset`` (all one size)
             and hand the chain to ``free_chain_with_offset`` in one call
``reset``    forget every pool (the blocks are not freed)
``cap_memory``  (worker processes only) lower this process's address-space
             cap to what it maps now plus ``headroom`` bytes
``exhaust``  allocate ``size`` bytes up to ``count`` times, keeping every
             block: under a cap, the allocator must run out; a NULL answer
             is the violation

The first violation stops the program and is the answer (``kind`` is
``null``, ``misaligned``, ``overlap``, ``changed``, ``not-zero``); a crash
or a hang is seen by the client as usual.  ``bulk`` is optional for ``cmd:``
programs: one that answers it with an error gets the scale checks reported
``not-checked`` with that reason.
"""

from __future__ import annotations

import ctypes
import itertools
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

from memslice_conformance.impl.protocol import SliceAllocator

__all__ = [
    "BulkError", "allow_memory_cap", "forget", "memory_capped", "run_bulk", "stamp_bytes",
]

_WORD: Final = ctypes.sizeof(ctypes.c_void_p)
_GOLDEN: Final = 0x9E3779B97F4A7C15
_MASK: Final = (1 << 64) - 1


class BulkError(ValueError):
    """A malformed bulk program (the caller's mistake, not the allocator's)."""


@dataclass(slots=True)
class _Pool:
    addrs: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)
    tag_only: list[bool] = field(default_factory=list)
    #: n for the n-th block of its size allocated into this pool (for messages).
    ordinals: list[int] = field(default_factory=list)
    per_size: dict[int, int] = field(default_factory=dict)


class _Violation(Exception):
    def __init__(self, kind: str, detail: str, address: int = 0, size: int = 0) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.address, self.size = kind, detail, address, size


@dataclass(slots=True)
class _State:
    pools: dict[str, _Pool] = field(default_factory=dict)
    serial: int = 0
    calls: int = 0
    #: Blocks from ``exhaust``, kept so the allocator cannot reuse them.
    hoard: list[int] = field(default_factory=list)


#: Per implementation object: bulk programs of one session share pools.
_STATES: dict[int, tuple[object, _State]] = {}
_MEMORY_CAP_ALLOWED = False
_MEMORY_CAPPED = False


def allow_memory_cap() -> None:
    """Let ``cap_memory`` lower this process's RLIMIT_AS (the worker calls this)."""
    global _MEMORY_CAP_ALLOWED
    _MEMORY_CAP_ALLOWED = True


def forget() -> None:
    """Drop every pool (a worker that resets its implementation calls this)."""
    _STATES.clear()


def memory_capped() -> bool:
    """True once ``cap_memory`` ran: this process must not serve another session."""
    return _MEMORY_CAPPED


def _state_of(impl: SliceAllocator) -> _State:
    held = _STATES.get(id(impl))
    if held is None or held[0] is not impl:
        held = (impl, _State())
        _STATES.clear()  # one live implementation per session
        _STATES[id(impl)] = held
    return held[1]


def _stamp(tag: int, size: int, tag_only: bool) -> bytes:
    word = tag.to_bytes(8, "little")
    if tag_only:
        return word[: min(size, 8)]
    return (word * (size // 8 + 1))[:size]


def stamp_bytes(serial: int, size: int, tag_only: bool) -> bytes:
    """The stamp of the ``serial``-th stamped block of a program (counted from 1).

    What ``alloc`` writes into a block; a trace made from a program
    (RUN-012) writes the same bytes.
    """
    return _stamp((serial * _GOLDEN) & _MASK, size, tag_only)


def _int(step: Mapping[str, object], name: str, default: int | None = None) -> int:
    value = step.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BulkError(f"bulk step {step.get('do')!r}: {name!r} must be an integer")
    return value


class _Runner:
    def __init__(self, impl: SliceAllocator, state: _State) -> None:
        self.impl = impl
        self.state = state

    def pool(self, step: Mapping[str, object]) -> _Pool:
        name = str(step.get("pool", "main"))
        return self.state.pools.setdefault(name, _Pool())

    def alloc(self, step: Mapping[str, object]) -> None:
        pool = self.pool(step)
        raw_sizes = step.get("sizes")
        if not isinstance(raw_sizes, list) or not raw_sizes:
            raise BulkError("bulk step 'alloc': 'sizes' must be a non-empty list")
        sizes = [int(s) for s in raw_sizes]
        if min(sizes) <= 0:
            raise BulkError("bulk step 'alloc': sizes must be positive")
        count = _int(step, "count")
        zero = bool(step.get("zero", False))
        tag_only = bool(step.get("tag_only", False))
        stamped = bool(step.get("stamp", True))
        allocate = self.impl.alloc0 if zero else self.impl.alloc
        read, write = self.impl.read, self.impl.write
        state = self.state
        addrs, sizes_of, tags, tag_onlys = pool.addrs, pool.sizes, pool.tags, pool.tag_only
        ordinals, per_size = pool.ordinals, pool.per_size
        cycle = len(sizes)
        before = len(addrs)
        try:
            for index in range(count):
                size = sizes[index % cycle]
                addr = allocate(size)
                if not addr:
                    raise _Violation(
                        "null", f"block {index + 1} of {count}: NULL for a nonzero size", 0, size
                    )
                if addr % _WORD:
                    raise _Violation("misaligned", f"block {index + 1} of {count}", addr, size)
                if zero and read(addr, size) != bytes(size):
                    raise _Violation("not-zero", f"alloc0 block {index + 1} of {count}", addr, size)
                tag = -1
                if stamped:
                    state.serial += 1
                    tag = (state.serial * _GOLDEN) & _MASK
                    write(addr, _stamp(tag, size, tag_only))  # == stamp_bytes(serial, ...)
                addrs.append(addr)
                sizes_of.append(size)
                tags.append(tag)
                tag_onlys.append(tag_only)
                per_size[size] = ordinal = per_size.get(size, 0) + 1
                ordinals.append(ordinal)
        finally:
            state.calls += len(addrs) - before

    def verify(self) -> None:
        spans = sorted(
            (addr, size, ordinal, name)
            for name, pool in self.state.pools.items()
            for addr, size, ordinal in zip(pool.addrs, pool.sizes, pool.ordinals, strict=True)
        )
        for low, high in itertools.pairwise(spans):
            if low[0] + low[1] > high[0]:
                first, second = sorted((low, high), key=lambda span: (span[3], span[2]))
                raise _Violation(
                    "overlap",
                    f"live block no. {second[2]} of {second[1]} bytes (pool {second[3]}) at "
                    f"[{second[0]:#x}, {second[0] + second[1]:#x}) overlaps live block "
                    f"no. {first[2]} of {first[1]} bytes (pool {first[3]}) at "
                    f"[{first[0]:#x}, {first[0] + first[1]:#x})",
                    second[0],
                    second[1],
                )
        read = self.impl.read
        for pool in self.state.pools.values():
            for addr, size, tag, tag_only in zip(
                pool.addrs, pool.sizes, pool.tags, pool.tag_only, strict=True
            ):
                if tag < 0:
                    continue
                expected = _stamp(tag, size, tag_only)
                if read(addr, len(expected)) != expected:
                    raise _Violation(
                        "changed", "a live block's bytes changed under it", addr, size
                    )

    def free(self, step: Mapping[str, object]) -> None:
        self.verify()
        pool = self.pool(step)
        every = _int(step, "every", 1)
        start = _int(step, "start", 0)
        if every < 1:
            raise BulkError("bulk step 'free': 'every' must be at least 1")
        chosen = set(range(start, len(pool.addrs), every))
        order = sorted(chosen, reverse=bool(step.get("reverse", False)))
        free1 = self.impl.free1
        for index in order:
            free1(pool.sizes[index], pool.addrs[index])
        self.state.calls += len(order)
        kept = [i for i in range(len(pool.addrs)) if i not in chosen]
        pool.addrs = [pool.addrs[i] for i in kept]
        pool.sizes = [pool.sizes[i] for i in kept]
        pool.tags = [pool.tags[i] for i in kept]
        pool.tag_only = [pool.tag_only[i] for i in kept]
        pool.ordinals = [pool.ordinals[i] for i in kept]

    def chain(self, step: Mapping[str, object]) -> None:
        self.verify()
        pool = self.pool(step)
        if not pool.addrs:
            return
        size = pool.sizes[0]
        offset = _int(step, "offset")
        if any(s != size for s in pool.sizes) or not 0 <= offset <= size - _WORD:
            raise BulkError("bulk step 'chain': one size per pool, offset inside the block")
        write = self.impl.write
        addrs = pool.addrs
        for node, following in zip(addrs, [*addrs[1:], 0], strict=True):
            write(node + offset, following.to_bytes(_WORD, "little"))
        self.impl.free_chain_with_offset(size, addrs[0], offset)
        self.state.calls += 1
        self.state.pools[str(step.get("pool", "main"))] = _Pool()

    def exhaust(self, step: Mapping[str, object]) -> None:
        size, count = _int(step, "size"), _int(step, "count")
        for index in range(count):
            addr = self.impl.alloc(size)
            self.state.calls += 1
            if not addr:
                raise _Violation(
                    "null",
                    f"allocation {index + 1} of {size} bytes under a memory cap returned NULL",
                    0,
                    size,
                )
            self.state.hoard.append(addr)

    def cap_memory(self, step: Mapping[str, object]) -> None:
        if not _MEMORY_CAP_ALLOWED:
            raise BulkError("cap_memory runs only inside a worker process")
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
        global _MEMORY_CAPPED
        _MEMORY_CAPPED = True
        limit = mapped + _int(step, "headroom")
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def run_bulk(impl: SliceAllocator, steps: object) -> dict[str, object]:
    """Run a bulk program on ``impl`` (see the module doc); the answer as JSON."""
    if not isinstance(steps, list):
        raise BulkError("bulk: 'steps' must be a list")
    state = _state_of(impl)
    runner = _Runner(impl, state)
    violation: dict[str, object] | None = None
    for number, raw in enumerate(cast(Sequence[object], steps)):
        if not isinstance(raw, dict):
            raise BulkError(f"bulk step {number} is not an object")
        step = cast(Mapping[str, object], raw)
        kind = step.get("do")
        try:
            if kind == "alloc":
                runner.alloc(step)
            elif kind == "verify":
                runner.verify()
            elif kind == "free":
                runner.free(step)
            elif kind == "chain":
                runner.chain(step)
            elif kind == "reset":
                state.pools.clear()
            elif kind == "exhaust":
                runner.exhaust(step)
            elif kind == "cap_memory":
                runner.cap_memory(step)
            else:
                raise BulkError(f"bulk step {number}: unknown 'do' {kind!r}")
        except _Violation as found:
            violation = {
                "kind": found.kind,
                "step": number,
                "detail": found.detail,
                "address": found.address,
                "size": found.size,
            }
            break
    live = sum(len(p.addrs) for p in state.pools.values())
    return {"violation": violation, "calls": state.calls, "live": live}
