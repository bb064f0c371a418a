"""The model of live blocks, and the checker that holds an implementation to it.

Rules and theory of operation
-----------------------------
Every check (the Hypothesis state machine, the sweeps, the thread programs,
``replay``) speaks to the implementation through one :class:`Checker`.  A check
emits *symbolic* operations that name blocks by handle ("b7"), never by
address; the checker turns them into ``memslice-jsonl`` requests, runs them
as one batch on a :class:`~memslice_conformance.impl.session.Session`, and compares
every answer with the model::

    symbolic step [alloc b7 40, write b3 ...] ──► Checker.step
        ├── requests  [{"op":"alloc","size":40}, {"op":"write","addr":..}]
        ├── Session.run(batch) ──► responses
        ├── per-op checks      NULL iff 0, alignment, disjointness, errors
        └── verify batch       every live block against the model: one
                               ``digests`` request when the session offers
                               it (a full ``read`` only of a block whose
                               digest differs, or whose bytes are partly
                               unknown), else one ``read`` per block

The model: for each live handle, its address, size, allocating thread and
expected bytes (with a mask of bytes never written: fresh ``alloc`` memory
may hold anything, API-015).  Invariants checked after every step:

* live blocks are pairwise disjoint (API-004) and aligned to at least
  ``sizeof(void*)`` (API-006);
* every known byte of every live block reads back as last written (API-005);
* a block from ``alloc0`` reads all zero (API-002); one from ``copy`` equals
  the source's bytes as read just before the copy, at another address
  (API-003).

Batch semantics follow the session: ops for one thread run in order, ops for
different threads may overlap.  Check generators therefore never let two
threads touch one block within a step; a block freed within a step may be
reused by an allocation in the same step (the order across threads is not
known), and every other pair of blocks live in the step must be disjoint.

The steps executed so far form the *trace*: plain JSON that ``replay`` feeds
to a fresh checker without Hypothesis (see :mod:`memslice_conformance.reporting.trace`).
"""

from __future__ import annotations

import bisect
import ctypes
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias, cast

from memslice_conformance.checks import coverage
from memslice_conformance.failures import ImplCrash, ImplError, ImplFailure, ImplHang, Violation
from memslice_conformance.impl.executor import MAIN_THREAD
from memslice_conformance.impl.jsonl import JSONValue, Request, block_digest
from memslice_conformance.impl.session import Response, Session

__all__ = [
    "ALIGNMENT",
    "CLAUSES",
    "Checker",
    "Op",
    "StepFailure",
    "pattern",
]

#: The guaranteed alignment: sizeof(void*) on the suite's platform (API-006).
ALIGNMENT: Final = ctypes.sizeof(ctypes.c_void_p)
_WORD: Final = ctypes.sizeof(ctypes.c_void_p)

Op: TypeAlias = dict[str, JSONValue]

#: The clause IDs each kind of symbolic op exercises.
CLAUSES: Final[dict[str, tuple[str, ...]]] = {
    "alloc": ("API-001", "API-004", "API-006"),
    "alloc0": ("API-002", "API-004", "API-006"),
    "copy": ("API-003", "API-004", "API-006"),
    "alloc_zero": ("API-001", "API-002", "API-003"),
    "write": ("API-005",),
    "check": ("API-005",),
    "free1": ("API-005",),
    "free_null": ("API-007",),
    "free_chain": ("API-008",),
    "chain_null": ("API-007",),
    "thread_exit": ("EXIT-001",),
    "get_config": ("CONF-010",),
    "get_config_known": ("CONF-002",),
    "get_config_state": ("CONF-011",),
    "get_config_contention": ("CONF-010",),
    "set_config_late": ("CONF-004",),
    # Added dynamically: a free from another thread than the allocating one,
    # and any op on a block whose allocating thread has exited.
    "cross_thread": ("API-009",),
    "after_exit": ("EXIT-001",),
    "integrity": ("API-005",),
}


#: Pseudo-random bytes that writes are cut from (see :func:`pattern`).
_POOL_SPAN: Final = 1 << 20
_POOL_WINDOW: Final = 1 << 13
_POOL: Final = random.Random(0x9E3779B1).randbytes(_POOL_SPAN + _POOL_WINDOW)


def pattern(serial: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes: unique per write, pointer-like garbage.

    Random words make an implementation that misreads a link word follow a
    wild pointer, which crashes instead of silently leaking.  Writes of up to
    8 KiB (nearly all) are a window of one fixed random pool at an offset
    spread by the serial: as random as a fresh generator, at the cost of a
    slice rather than seeding a generator per write (the sweeps make tens of
    thousands of writes).
    """
    if size <= _POOL_WINDOW:
        start = (serial * 0x9E3779B1 + size) % _POOL_SPAN
        return _POOL[start : start + size]
    return random.Random(serial * 0x9E3779B1 + size).randbytes(size)


@dataclass(slots=True)
class Block:
    """One live block as the model knows it."""

    handle: str
    addr: int
    size: int
    thread: str
    data: bytearray
    #: None when every byte is known; else 1 for known bytes, 0 for unknown.
    known: bytearray | None
    origin: str
    #: The bytes this block must hold right after a copy/alloc0 (checked once).
    expect_fresh: bytes | None = None
    exited_owner: bool = False
    #: ``block_digest`` of ``data`` while it is unchanged (None: recompute).
    digest: str | None = None

    def expected_digest(self) -> str:
        if self.digest is None:
            self.digest = block_digest(
                bytes(self.data) if self.expect_fresh is None else self.expect_fresh
            )
        return self.digest

    def expected(self) -> tuple[bytes, bytes | None]:
        return bytes(self.data), None if self.known is None else bytes(self.known)


@dataclass(frozen=True, slots=True)
class StepFailure:
    """What went wrong in a step, for reports and traces."""

    clauses: tuple[str, ...]
    message: str
    kind: str  # "violation" | "error" | "crash" | "hang"


def _describe(op: Op) -> str:
    return " ".join(f"{k}={v}" for k, v in op.items() if k != "data")


@dataclass
class Checker:
    """Executes symbolic steps on a session and checks them against the model."""

    session: Session
    #: Re-read every live block after each step (else only fresh blocks).
    verify_all: bool = True
    blocks: dict[str, Block] = field(default_factory=dict)
    trace: list[list[Op]] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _by_start: dict[int, Block] = field(default_factory=dict)
    _exited: set[str] = field(default_factory=set)
    _serial: int = 0

    # -- generator helpers

    def new_handle(self) -> str:
        self._serial += 1
        return f"b{self._serial}"

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def fill_op(self, handle: str, thread: str = MAIN_THREAD) -> Op:
        """A write of fresh pattern bytes over the whole of live block ``handle`` (API-005).

        Every check fills its blocks this way, so each write is unique and
        pointer-like (see :func:`pattern`).
        """
        block = self.blocks[handle]
        data = pattern(self.next_serial(), block.size).hex()
        return {"op": "write", "block": handle, "offset": 0, "data": data, "thread": thread}

    def live(self) -> list[Block]:
        return list(self.blocks.values())

    # -- the interval set

    def _overlapping(self, addr: int, size: int) -> Block | None:
        index = bisect.bisect_right(self._starts, addr)
        if index > 0:
            below = self._by_start[self._starts[index - 1]]
            if below.addr + below.size > addr:
                return below
        if index < len(self._starts) and self._starts[index] < addr + size:
            return self._by_start[self._starts[index]]
        return None

    def _insert(self, block: Block) -> None:
        bisect.insort(self._starts, block.addr)
        self._by_start[block.addr] = block
        self.blocks[block.handle] = block

    def _remove(self, block: Block) -> None:
        index = bisect.bisect_left(self._starts, block.addr)
        del self._starts[index]
        del self._by_start[block.addr]
        del self.blocks[block.handle]

    # -- running a step

    def _block(self, op: Op, key: str = "block") -> Block:
        handle = op.get(key)
        block = self.blocks.get(str(handle))
        if block is None:
            raise ValueError(f"trace names block {handle!r}, which is not live")
        return block

    def op_clauses(self, op: Op) -> tuple[str, ...]:
        kind = str(op["op"])
        base = CLAUSES.get(kind, ())
        if "block" not in op and "src" not in op and "blocks" not in op:
            return base  # no block named: nothing to add (the common case)
        clauses = list(base)
        thread = str(op.get("thread", MAIN_THREAD))
        handles: list[str] = []
        if "block" in op:
            handles.append(str(op["block"]))
        if "src" in op and op["src"] is not None:
            handles.append(str(op["src"]))
        if isinstance(op.get("blocks"), list):
            handles.extend(str(h) for h in cast(list[JSONValue], op["blocks"]))
        for handle in handles:
            block = self.blocks.get(handle)
            if block is None:
                continue
            if block.thread != thread and kind in ("free1", "free_chain"):
                clauses.extend(CLAUSES["cross_thread"])
            if block.exited_owner:
                clauses.extend(CLAUSES["after_exit"])
        return base if len(clauses) == len(base) else tuple(dict.fromkeys(clauses))

    def _requests(self, op: Op) -> list[Request]:
        """The protocol requests that implement one symbolic op, in order."""
        kind = op["op"]
        thread = str(op.get("thread", MAIN_THREAD))
        base: Request = {"thread": thread}
        if kind in ("alloc", "alloc0"):
            return [{**base, "op": kind, "size": op["size"]}]
        if kind == "alloc_zero":
            return [
                {**base, "op": "alloc", "size": 0},
                {**base, "op": "alloc0", "size": 0},
                {**base, "op": "copy", "size": 0, "src": 0},
            ]
        if kind == "copy":
            src = self._block(op, "src")
            size = cast(int, op["size"])
            return [
                {**base, "op": "read", "addr": src.addr, "size": size},
                {**base, "op": "copy", "size": size, "src": src.addr},
            ]
        if kind == "write":
            block = self._block(op)
            offset = cast(int, op.get("offset", 0))
            return [{**base, "op": "write", "addr": block.addr + offset, "data": op["data"]}]
        if kind == "check":
            block = self._block(op)
            return [{**base, "op": "read", "addr": block.addr, "size": block.size}]
        if kind == "free1":
            block = self._block(op)
            return [{**base, "op": "free1", "size": block.size, "addr": block.addr}]
        if kind == "free_null":
            return [{**base, "op": "free1", "size": op["size"], "addr": 0}]
        if kind == "chain_null":
            return [
                {
                    **base,
                    "op": "free_chain_with_offset",
                    "size": op["size"],
                    "head": 0,
                    "next_offset": op["next_offset"],
                }
            ]
        if kind == "free_chain":
            nodes = [self.blocks[str(h)] for h in cast(list[JSONValue], op["blocks"])]
            offset = cast(int, op["next_offset"])
            requests: list[Request] = []
            for node, following in zip(nodes, [*nodes[1:], None], strict=True):
                link = (following.addr if following else 0).to_bytes(_WORD, "little")
                requests.append(
                    {**base, "op": "write", "addr": node.addr + offset, "data": link.hex()}
                )
            requests.append(
                {
                    **base,
                    "op": "free_chain_with_offset",
                    "size": nodes[0].size,
                    "head": nodes[0].addr,
                    "next_offset": offset,
                }
            )
            return requests
        if kind == "thread_exit":
            return [{**base, "op": "thread_exit"}]
        if kind in ("get_config", "get_config_known"):
            return [{**base, "op": "get_config", "key": op["key"]}]
        if kind == "get_config_state":
            return [{**base, "op": "get_config_state", "key": op["key"], "address": op["address"]}]
        if kind == "get_config_contention":
            return [{**base, "op": "get_config_state", "key": 6, "address": op["address"]}]
        if kind == "set_config_late":
            return [
                {**base, "op": "get_config", "key": op["key"]},
                {**base, "op": "set_config", "key": op["key"], "value": op["value"]},
                {**base, "op": "get_config", "key": op["key"]},
            ]
        raise ValueError(f"unknown symbolic op {kind!r}")

    def step(self, ops: Sequence[Op]) -> None:
        """Run one batch of symbolic ops and check it; raises on any failure.

        Raises :class:`Violation` for a wrong observation, and re-raises
        :class:`ImplFailure` (error answer, crash, hang) with the clauses of
        the ops that were running attached as ``clauses``.
        """
        ops = [dict(op) for op in ops]
        self.trace.append(ops)
        plan: list[tuple[Op, int, int]] = []
        requests: list[Request] = []
        for op in ops:
            reqs = self._requests(op)
            plan.append((op, len(requests), len(reqs)))
            requests.extend(reqs)
        # Once per op, before the step changes the model (the clauses of an
        # op depend on the blocks it names as they were when it was issued).
        per_op = [self.op_clauses(op) for op in ops]
        running = tuple(dict.fromkeys(c for clauses in per_op for c in clauses))
        integrity = tuple(dict.fromkeys((*CLAUSES["integrity"], *running)))
        survivors = self._piggyback(ops)
        checks: list[Request] = []
        if survivors is not None:
            checks = self._verify_requests(survivors, str(ops[0].get("thread", MAIN_THREAD)))
        try:
            responses = self.session.run(requests + checks)
        except ImplFailure as exc:
            # Answers for every op came back: it died re-reading the blocks.
            in_checks = checks and getattr(exc, "answered", 0) >= len(requests)
            exc.clauses = integrity if in_checks else running  # type: ignore[attr-defined]
            raise
        # First every op's own answers; errors are failures of that op.
        results: list[list[JSONValue]] = []
        for (op, first, count), op_clauses in zip(plan, per_op, strict=True):
            answers = responses[first : first + count]
            for request, answer in zip(requests[first : first + count], answers, strict=True):
                if not answer.get("ok"):
                    error = answer.get("error")
                    etype = message = ""
                    if isinstance(error, dict):
                        etype = str(error.get("type", ""))
                        message = str(error.get("message", ""))
                    failure = ImplError(str(request["op"]), etype, message)
                    failure.clauses = op_clauses  # type: ignore[attr-defined]
                    failure.args = (f"{_describe(op)}: {failure.args[0]}",)
                    raise failure
            results.append([a.get("result") for a in answers])
        self._apply(plan, results, per_op)
        if survivors is None:
            self.verify(extra_clauses=running, everything=self.verify_all)
        else:
            self._check_answers(survivors, responses[len(requests) :], integrity)
            # Blocks this step made (alloc0, copy) still need their fresh check.
            self.verify(extra_clauses=running, everything=False)
        coverage.note_step(self, ops, running)

    def _piggyback(self, ops: Sequence[Op]) -> list[Block] | None:
        """The live blocks to re-check in the step's own batch, or None.

        When every op of a step runs on one thread, the re-reading of the
        blocks that were live before it and survive it can follow the ops
        on that same thread in the same batch: one exchange instead of two,
        and the bytes are read at the same moment as by a separate batch.
        Blocks made by the step are checked afterwards (their addresses are
        not known yet).  Not for thread exits (the read would start the
        thread) nor when only fresh blocks are to be checked.
        """
        if not self.verify_all or "digests" not in self.session.optional_ops:
            return None
        threads = {str(op.get("thread", MAIN_THREAD)) for op in ops}
        if len(threads) != 1 or any(op["op"] == "thread_exit" for op in ops):
            return None
        freed: set[str] = set()
        for op in ops:
            if op["op"] == "free1":
                freed.add(str(op["block"]))
            elif op["op"] == "free_chain":
                freed.update(str(h) for h in cast(list[JSONValue], op["blocks"]))
        return [
            b
            for b in self.blocks.values()
            if b.handle not in freed
            and (b.expect_fresh is not None or b.known is None or any(b.known))
        ]

    def _verify_requests(self, blocks: list[Block], thread: str) -> list[Request]:
        """One ``digests`` request for the fully known blocks, a ``read`` per other."""
        whole = [b for b in blocks if b.known is None or b.expect_fresh is not None]
        requests: list[Request] = []
        if whole:
            requests.append(
                {"op": "digests", "thread": thread, "blocks": [[b.addr, b.size] for b in whole]}
            )
        requests += [
            {"op": "read", "thread": thread, "addr": b.addr, "size": b.size}
            for b in blocks
            if not (b.known is None or b.expect_fresh is not None)
        ]
        return requests

    def _check_answers(
        self, blocks: list[Block], answers: list[Response], integrity: tuple[str, ...]
    ) -> None:
        """Compare the answers of :meth:`_verify_requests` with the model."""
        whole = [b for b in blocks if b.known is None or b.expect_fresh is not None]
        partial = [b for b in blocks if not (b.known is None or b.expect_fresh is not None)]
        reads = answers
        differing: list[Block] = []
        if whole:
            answer, reads = answers[0], answers[1:]
            digests = answer.get("result")
            if not answer.get("ok") or not isinstance(digests, list) or len(digests) != len(
                whole
            ):
                raise Violation(integrity, f"digests of the live blocks failed: {answer!r}")
            for block, digest in zip(whole, digests, strict=True):
                if digest != block.expected_digest():
                    differing.append(block)
                elif block.expect_fresh is not None:
                    block.expect_fresh = None
                    block.digest = None  # it was the digest of expect_fresh
        for block, answer in zip(partial, reads, strict=True):
            if not answer.get("ok"):
                raise Violation(
                    integrity, f"reading live block {block.handle} failed: {answer.get('error')}"
                )
            self._compare(block, bytes.fromhex(cast(str, answer.get("result"))), 0, integrity)
        if differing:
            # Read what differs in full, so the message names the byte.
            self._explain(differing, integrity)

    def _apply(
        self,
        plan: list[tuple[Op, int, int]],
        results: list[list[JSONValue]],
        per_op: list[tuple[str, ...]],
    ) -> None:
        # Frees first: memory released in this step may legitimately be
        # handed out again by an allocation in the same step.
        for op, _, _ in plan:
            kind = op["op"]
            if kind == "free1":
                self._remove(self._block(op))
            elif kind == "free_chain":
                for handle in cast(list[JSONValue], op["blocks"]):
                    self._remove(self.blocks[str(handle)])
        for (op, _, _), answers, clauses in zip(plan, results, per_op, strict=True):
            kind = str(op["op"])
            thread = str(op.get("thread", MAIN_THREAD))
            if kind in ("alloc", "alloc0", "copy"):
                size = cast(int, op["size"])
                addr = answers[-1]
                src_bytes = None
                if kind == "copy":
                    read = answers[0]
                    src_bytes = bytes.fromhex(read) if isinstance(read, str) else b""
                    self._compare(self._block(op, "src"), src_bytes, 0, clauses)
                self._new_block(op, kind, thread, size, addr, src_bytes, clauses)
            elif kind == "alloc_zero":
                for name, value in zip(
                    ("alloc(0)", "alloc0(0)", "copy(0, NULL)"), answers, strict=True
                ):
                    if value not in (0, None):
                        raise Violation(clauses, f"{name} returned {value!r}, not NULL")
            elif kind == "write":
                block = self._block(op)
                data = bytes.fromhex(cast(str, op["data"]))
                offset = cast(int, op.get("offset", 0))
                block.data[offset : offset + len(data)] = data
                block.digest = None
                if block.known is not None:
                    block.known[offset : offset + len(data)] = b"\x01" * len(data)
                    if all(block.known):
                        block.known = None
            elif kind == "check":
                block = self._block(op)
                got = answers[0]
                self._compare(block, bytes.fromhex(cast(str, got)), 0, clauses)
            elif kind == "thread_exit":
                self._exited.add(thread)
                for block in self.blocks.values():
                    if block.thread == thread:
                        block.exited_owner = True
            elif kind == "get_config":
                if answers[0] != 0:
                    raise Violation(
                        clauses, f"get_config({op['key']}) returned {answers[0]!r}, expected 0"
                    )
            elif kind == "get_config_known":
                if not isinstance(answers[0], int) or isinstance(answers[0], bool):
                    raise Violation(
                        clauses, f"get_config({op['key']}) returned {answers[0]!r}, not an integer"
                    )
            elif kind == "get_config_state":
                if answers[0] is not None:
                    raise Violation(
                        clauses,
                        f"get_config_state({op['key']}, {op['address']}) returned "
                        f"{answers[0]!r}, expected NULL",
                    )
            elif kind == "get_config_contention":
                answer = answers[0]
                if answer is not None and not (
                    isinstance(answer, list)
                    and len(answer) == 3
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in answer)
                ):
                    raise Violation(
                        clauses,
                        f"get_config_state(CONTENTION_COUNTER, {op['address']}) returned "
                        f"{answer!r}, expected NULL or three values",
                    )
            elif kind == "set_config_late":
                before, _, after = answers
                if before != after:
                    raise Violation(
                        clauses,
                        f"set_config({op['key']}, {op['value']}) after first use changed "
                        f"get_config({op['key']}) from {before!r} to {after!r}",
                    )

    def _new_block(
        self,
        op: Op,
        kind: str,
        thread: str,
        size: int,
        addr: JSONValue,
        src_bytes: bytes | None,
        clauses: tuple[str, ...],
    ) -> None:
        label = f"{kind}({size}) on thread {thread}"
        # Cite the clause broken, plus the thread context that led there.
        context = tuple(c for c in clauses if not c.startswith("API-00"))
        if not isinstance(addr, int) or isinstance(addr, bool):
            raise Violation(("API-001", *context), f"{label} returned {addr!r}, not an address")
        if size == 0:
            if addr != 0:
                raise Violation(("API-001", *context), f"{label} returned {addr:#x}, not NULL")
            return
        if addr == 0:
            raise Violation(("API-001", *context), f"{label} returned NULL for a nonzero size")
        if addr % ALIGNMENT:
            raise Violation(
                ("API-006", *context),
                f"{label} returned {addr:#x}, not aligned to sizeof(void*) = {ALIGNMENT}",
            )
        other = self._overlapping(addr, size)
        if other is not None:
            if other.exited_owner:
                context = (*context, *CLAUSES["after_exit"])
            raise Violation(
                ("API-004", *tuple(dict.fromkeys(context))),
                f"{label} returned [{addr:#x}, {addr + size:#x}), which overlaps live block "
                f"{other.handle} [{other.addr:#x}, {other.addr + other.size:#x}) "
                f"from {other.origin}",
            )
        handle = str(op["as"])
        if kind == "alloc":
            data, known, fresh = bytearray(size), bytearray(size), None
        elif kind == "alloc0":
            data, known, fresh = bytearray(size), None, bytes(size)
        else:
            assert src_bytes is not None
            data, known, fresh = bytearray(src_bytes), None, src_bytes
        self._insert(
            Block(handle, addr, size, thread, data, known, label, expect_fresh=fresh)
        )

    def _compare(self, block: Block, got: bytes, offset: int, clauses: tuple[str, ...]) -> None:
        expected = bytes(block.data[offset : offset + len(got)])
        if block.known is None:
            if got == expected:
                return
            mask = None
        else:
            mask = block.known[offset : offset + len(got)]
            if all(g == e or not m for g, e, m in zip(got, expected, mask, strict=True)):
                return
        first = next(
            i
            for i, (g, e) in enumerate(zip(got, expected, strict=True))
            if g != e and (mask is None or mask[i])
        )
        raise Violation(
            clauses,
            f"block {block.handle} ({block.origin}, {block.size} bytes at {block.addr:#x}) "
            f"changed while live: byte {first + offset} is {got[first]:#04x}, "
            f"expected {expected[first]:#04x} "
            f"(got {got[first : first + 16].hex()}, expected {expected[first : first + 16].hex()})",
        )

    def verify(self, extra_clauses: Iterable[str] = (), everything: bool = True) -> None:
        """Read live blocks with known bytes and compare them with the model.

        ``everything=False`` reads only blocks whose fresh contents
        (``alloc0``, ``copy``) are still unchecked.  Fully known blocks are
        compared by digest when the session offers ``digests``; only a
        block whose digest differs is then read in full, for the message.
        """
        targets = [
            b
            for b in self.blocks.values()
            if b.expect_fresh is not None or (everything and (b.known is None or any(b.known)))
        ]
        if not targets:
            return
        extra = tuple(extra_clauses)
        integrity = tuple(dict.fromkeys((*CLAUSES["integrity"], *extra)))
        if "digests" in self.session.optional_ops:
            requests = self._verify_requests(targets, MAIN_THREAD)
            self._check_answers(targets, self._run_verify(requests, integrity), integrity)
            return
        self._explain(targets, integrity, digested=False)

    def _explain(
        self, targets: list[Block], integrity: tuple[str, ...], digested: bool = True
    ) -> None:
        """Read ``targets`` in full and compare them byte by byte with the model.

        ``digested``: their digests already differed, so reading back the
        expected bytes is itself a finding (the block changed between reads).
        """
        requests: list[Request] = [
            {"op": "read", "thread": MAIN_THREAD, "addr": b.addr, "size": b.size} for b in targets
        ]
        responses = self._run_verify(requests, integrity)
        for block, answer in zip(targets, responses, strict=True):
            if not answer.get("ok"):
                raise Violation(
                    integrity,
                    f"reading live block {block.handle} failed: {answer.get('error')}",
                )
            got = bytes.fromhex(cast(str, answer.get("result")))
            if block.expect_fresh is not None:
                self._check_fresh(block, got)
            else:
                self._compare(block, got, 0, integrity)
            if digested:
                # The digest differed, yet the bytes read back as expected:
                # the block changed between the two reads, which no correct
                # allocator does to a live block.
                raise Violation(
                    integrity,
                    f"block {block.handle} ({block.origin}, {block.size} bytes at "
                    f"{block.addr:#x}) changed while live: its digest differed from the "
                    "model's, then it read back as expected",
                )

    def _run_verify(self, requests: list[Request], clauses: tuple[str, ...]) -> list[Response]:
        try:
            return self.session.run(requests)
        except ImplFailure as exc:
            exc.clauses = clauses  # type: ignore[attr-defined]
            raise

    def _check_fresh(self, block: Block, got: bytes) -> None:
        """alloc0 memory reads zero, a copy equals its source (API-002, API-003)."""
        assert block.expect_fresh is not None
        if got != block.expect_fresh:
            zeroed = block.origin.startswith("alloc0")
            what = "zero" if zeroed else "a copy of its source"
            pairs = zip(got, block.expect_fresh, strict=False)
            first = next(i for i, (g, e) in enumerate(pairs) if g != e)
            raise Violation(
                ("API-002",) if zeroed else ("API-003",),
                f"{block.origin} at {block.addr:#x} is not {what}: byte {first} is "
                f"{got[first]:#04x}, expected {block.expect_fresh[first]:#04x}",
            )
        block.expect_fresh = None
        block.digest = None


def failure_of(exc: BaseException) -> StepFailure:
    """Classify an exception raised by :meth:`Checker.step`.

    Hypothesis wraps failures that did not reproduce identically (a race in
    a thread program, say) in an exception group; the first real finding
    inside it is reported, marked as flaky.
    """
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, tuple):
        for candidate in inner:
            found = failure_of(candidate)
            if found.clauses:
                return StepFailure(found.clauses, f"(flaky) {found.message}", found.kind)
    if isinstance(exc, Violation):
        return StepFailure(exc.clauses, exc.message, "violation")
    clauses = tuple(getattr(exc, "clauses", ()))
    if isinstance(exc, ImplCrash):
        return StepFailure(clauses, str(exc), "crash")
    if isinstance(exc, ImplHang):
        return StepFailure(clauses, str(exc), "hang")
    if isinstance(exc, ImplError):
        return StepFailure(clauses, str(exc), "error")
    return StepFailure(clauses, f"{type(exc).__name__}: {exc}", "error")
