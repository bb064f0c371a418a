"""Call traces: a program's slice calls as plain JSON, in the conformance suite's shape.

Rules and theory of operation
-----------------------------
A call trace is the list of slice calls one program made, in the order they
happened, with blocks named by handle (``b1``, ``b2`` ...) instead of address,
so it can be replayed on any allocator (INTRO-007).  The file is the
conformance suite's trace format (``memslice-conformance-trace`` version 1,
written by ``memslice_conformance.reporting.trace``), with exactly one op per step, so
``memslice-conformance replay FILE --impl IMPL`` runs a recorded program on any
implementation.  This module writes the same JSON shape without importing the
suite (the reference sits below it)::

    {"format": "memslice-conformance-trace", "version": 1,
     "check": "record", "impl": "glib", "seed": 0, "failure": null,
     "recorded": {"command": [...], "exit_status": 0, "calls": 31, ...},
     "steps": [[{"op": "alloc0", "size": 24, "as": "b1", "thread": "main",
                 "call": "g_slice_alloc0"}],
               [{"op": "free1", "block": "b1", "thread": "main", "call": "g_slice_free1"}],
               [{"op": "free_chain", "blocks": ["b3", "b2"], "next_offset": 0, ...}],
               [{"op": "thread_exit", "thread": "t1"}], ...]}

Ops the reference replays: ``alloc``, ``alloc0``, ``copy`` (its source named
by ``src``; a recorded ``g_slice_copy`` of memory that is not a slice block is
written as ``alloc`` with ``"call": "g_slice_copy"``, which moves the allocator
exactly as the copy did), ``free1``, ``free_chain``, ``thread_exit``.  Ops
that read or write bytes or configuration (``write``, ``check``,
``get_config`` ...) do not move chunks; :func:`load_call_trace` keeps them out
of the call list and counts them.  The optional ``call`` key names the GLib
function for readers; the suite ignores keys it does not know.

Invariants: every handle a free names was allocated earlier in the trace and
not freed since; a thread named in an op after its ``thread_exit`` is a new
thread (the suite starts it again).  :func:`load_call_trace` checks both and
raises :class:`TraceError` naming the step, never a ``KeyError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = [
    "MOVING_OPS",
    "TRACE_FORMAT",
    "Call",
    "CallTrace",
    "TraceError",
    "load_call_trace",
    "save_call_trace",
]

TRACE_FORMAT: Final = "memslice-conformance-trace"
"""The ``format`` value of the conformance suite's traces (shared, not imported)."""

MOVING_OPS: Final = frozenset({"alloc", "alloc0", "copy", "free1", "free_chain", "thread_exit"})
"""Ops that move chunks, and so are replayed and drawn."""

_GLIB_NAMES: Final = {
    "alloc": "g_slice_alloc",
    "alloc0": "g_slice_alloc0",
    "copy": "g_slice_copy",
    "free1": "g_slice_free1",
    "free_chain": "g_slice_free_chain_with_offset",
    "thread_exit": "thread exit",
}


class TraceError(ValueError):
    """A trace file that is not a call trace, or names a block it never allocated."""


@dataclass(frozen=True, slots=True)
class Call:
    """One slice call: ``op`` is one of :data:`MOVING_OPS`.

    ``size`` is the block size (for ``free1`` and ``free_chain`` the size the
    matching allocation asked for); ``handle`` the block an allocation
    creates; ``blocks`` the blocks a free releases, in chain order.
    """

    op: str
    thread: str
    size: int = 0
    handle: str = ""
    blocks: tuple[str, ...] = ()
    next_offset: int = 0
    src: str | None = None
    call: str = ""

    @property
    def glib_name(self) -> str:
        """The GLib function the program called (``thread exit`` for exits)."""
        return self.call or _GLIB_NAMES[self.op]

    def to_op(self) -> dict[str, object]:
        """The suite's op dictionary for this call."""
        op: dict[str, object] = {"op": self.op, "thread": self.thread}
        if self.op in ("alloc", "alloc0", "copy"):
            op.update(size=self.size, **{"as": self.handle})
            if self.op == "copy":
                op["src"] = self.src
        elif self.op == "free1":
            op["block"] = self.blocks[0]
        elif self.op == "free_chain":
            op.update(blocks=list(self.blocks), next_offset=self.next_offset)
        if self.call and self.call != _GLIB_NAMES[self.op]:
            op["call"] = self.call
        elif self.op != "thread_exit":
            op["call"] = _GLIB_NAMES[self.op]
        return op

    def describe(self) -> str:
        """The call as C a reader recognises: ``b3 = g_slice_alloc0 (24)``."""
        if self.op in ("alloc", "alloc0", "copy"):
            return f"{self.handle} = {self.glib_name} ({self.size})  [thread {self.thread}]"
        if self.op == "free1":
            return f"{self.glib_name} ({self.size}, {self.blocks[0]})  [thread {self.thread}]"
        if self.op == "free_chain":
            return (
                f"{self.glib_name} ({self.size}, {' -> '.join(self.blocks)}, "
                f"{self.next_offset})  [thread {self.thread}]"
            )
        return f"thread {self.thread} ends"


@dataclass(frozen=True, slots=True)
class CallTrace:
    """A program's slice calls in order, and what the recording knows about it."""

    calls: tuple[Call, ...]
    source: str = "glib"
    """The ``impl`` field: for a recording, the system GLib the calls ran on
    (so ``memslice-conformance replay`` without ``--impl`` replays it there)."""
    recorded: Mapping[str, object] = field(default_factory=dict)
    skipped_ops: int = 0

    def to_json(self) -> dict[str, object]:
        """The suite's trace document (one op per step)."""
        return {
            "format": TRACE_FORMAT,
            "version": 1,
            "check": "record",
            "impl": self.source,
            "seed": 0,
            "failure": None,
            "recorded": dict(self.recorded),
            "steps": [[call.to_op()] for call in self.calls],
        }


def save_call_trace(trace: CallTrace, path: Path) -> Path:
    """Write ``trace`` as JSON (one step per line, so diffs stay readable)."""
    document = trace.to_json()
    steps = document.pop("steps")
    assert isinstance(steps, list)
    head = json.dumps(document, indent=1)[:-2]  # reopen the object to append the steps
    lines = ",\n".join("  " + json.dumps(step, separators=(",", ":")) for step in steps)
    path.write_text(f'{head},\n "steps": [\n{lines}\n ]\n}}\n', encoding="utf-8")
    return path


def _int(op: Mapping[str, object], key: str, where: str) -> int:
    value = op.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TraceError(f"{where}: {key!r} must be a non-negative integer, not {value!r}")
    return value


def _calls_of(steps: Sequence[object], path: str) -> tuple[list[Call], int]:
    live: dict[str, int] = {}
    calls: list[Call] = []
    skipped = 0
    for number, step in enumerate(steps, 1):
        if not isinstance(step, list):
            raise TraceError(f"{path}: step {number} is not a list of ops")
        for op in step:
            where = f"{path}: step {number}"
            if not isinstance(op, dict) or not isinstance(op.get("op"), str):
                raise TraceError(f"{where}: an op must be an object with an 'op' name")
            kind, thread = op["op"], str(op.get("thread", "main"))
            call = str(op.get("call", ""))
            if kind not in MOVING_OPS:
                skipped += 1
                continue
            if call == _GLIB_NAMES[kind]:
                call = ""  # the default name, implied by the op
            if kind in ("alloc", "alloc0", "copy"):
                size, handle = _int(op, "size", where), op.get("as")
                if not isinstance(handle, str) or handle in live:
                    raise TraceError(f"{where}: {kind} needs a new handle in 'as', got {handle!r}")
                src = op.get("src")
                if kind == "copy" and src not in live:
                    raise TraceError(f"{where}: copy of {src!r}, which is not a live block")
                if size == 0:
                    skipped += 1  # NULL, nothing to draw (API-001)
                    continue
                live[handle] = size
                calls.append(Call(kind, thread, size, handle, src=op.get("src"), call=call))
            elif kind in ("free1", "free_chain"):
                names = [op.get("block")] if kind == "free1" else op.get("blocks")
                if not isinstance(names, list) or not names:
                    raise TraceError(f"{where}: {kind} names no block")
                for name in names:
                    if name not in live:
                        raise TraceError(f"{where}: {kind} of {name!r}, which is not live")
                sizes = {live.pop(str(name)) for name in names}
                if len(sizes) != 1:
                    raise TraceError(f"{where}: a chain's blocks must share one size")
                offset = _int(op, "next_offset", where) if kind == "free_chain" else 0
                calls.append(
                    Call(
                        kind,
                        thread,
                        sizes.pop(),
                        blocks=tuple(map(str, names)),
                        next_offset=offset,
                        call=call,
                    )
                )
            else:
                calls.append(Call("thread_exit", thread))
    return calls, skipped


def load_call_trace(path: Path) -> CallTrace:
    """Read a recorded trace, or any conformance-suite trace, as its moving calls.

    Raises :class:`TraceError` for a file that is not JSON, not in the
    suite's trace format, or that frees a block it never allocated.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TraceError(f"{path}: cannot read a JSON trace: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != TRACE_FORMAT:
        raise TraceError(f"{path}: not a {TRACE_FORMAT} file")
    if raw.get("version") != 1:
        raise TraceError(f"{path}: trace version {raw.get('version')!r}, this reader knows 1")
    steps = raw.get("steps")
    if not isinstance(steps, list):
        raise TraceError(f"{path}: 'steps' must be a list")
    calls, skipped = _calls_of(steps, str(path))
    recorded = raw.get("recorded")
    return CallTrace(
        tuple(calls),
        str(raw.get("impl", "?")),
        recorded if isinstance(recorded, dict) else {},
        skipped,
    )
