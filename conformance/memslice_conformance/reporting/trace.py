"""Replayable traces: a failure as plain JSON, re-run without Hypothesis.

Rules and theory of operation
-----------------------------
A trace is the list of *steps* (batches of symbolic ops) a check executed,
exactly as the :class:`~memslice_conformance.checks.model.Checker` received them::

    {"format": "memslice-conformance-trace", "version": 1,
     "check": "machine", "impl": "lib:./libbad.so", "seed": 0,
     "failure": {"clauses": ["API-004"], "kind": "violation", "message": "...",
                 "call": 3, "call_text": "b3 = g_slice_alloc(40);"},
     "shrink": {"from_ops": 61, "to_ops": 3, "replays": 40, "seconds": 2.1, ...},
     "steps": [[{"op": "alloc", "size": 40, "as": "b1", "thread": "main",
                 "expect": "non-NULL, pointer-aligned, disjoint from live blocks"}],
               [{"op": "write", "block": "b1", "offset": 0, "data": "9f..."}], ...]}

Blocks are named by handle, never by address, so a trace replays against any
implementation.  The expected observations are those of the model (each
``expect`` string says which in words; replay recomputes them): fresh
blocks disjoint and aligned, written bytes read back unchanged while live,
``alloc0`` zero, ``copy`` equal, size 0 NULL, unknown config keys 0.

Reading a trace is reading data, never running it (RUN-002)::

    path ─► regular file? ─► at most MAX_TRACE_BYTES ─► JSON ─► schema
         (FIFO, device:        (/dev/zero, 1 GB:         (trace-v1.json)
          TraceError)           TraceError)                    │
                                         handles live, offsets in bounds ◄┘
                                         (check_steps: TraceError)

Every refusal is a :class:`TraceError` (a ``ValueError``) naming the file
and the place in it; the CLI turns it into exit status 2.  The trace's
``impl`` is shown as information and nothing else: the implementation a
trace replays on is always the caller's choice (``replay --impl``).

Calls are numbered from 1 over the flattened ops, in trace order, and
:func:`call_lines` renders each as one C-like line (``b3 =
g_slice_alloc(40);``), the form the FAIL line, ``replay --print`` and the C
emitter (:mod:`memslice_conformance.reporting.emit_c`) share.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, Protocol, cast

from memslice_conformance.checks.model import Checker, Op, StepFailure, failure_of
from memslice_conformance.failures import ImplFailure, Violation
from memslice_conformance.impl.jsonl import JSONValue
from memslice_conformance.impl.session import Session

__all__ = [
    "MAX_TRACE_BYTES",
    "TRACE_FORMAT",
    "ReplayOutcome",
    "SessionOpener",
    "Trace",
    "TraceError",
    "call_lines",
    "check_steps",
    "load_trace",
    "parse_trace",
    "replay",
    "replay_outcome",
    "save_trace",
]

TRACE_FORMAT: Final = "memslice-conformance-trace"
#: The largest trace file read (bytes).  Shrunk traces are a few kB; an
#: unshrunk hammer trace is about 8 MB.
MAX_TRACE_BYTES: Final = 16 << 20

_EXPECT: Final[dict[str, str]] = {
    "alloc": "non-NULL, pointer-aligned, disjoint from every live block",
    "alloc0": "as alloc, and every byte reads 0",
    "copy": "as alloc, at a new address, bytes equal to the source's",
    "alloc_zero": "alloc(0), alloc0(0) and copy(0, NULL) are NULL",
    "write": "afterwards the bytes read back as written while the block is live",
    "check": "the block reads back as last written",
    "free1": "succeeds; no other live block changes",
    "free_null": "no-op",
    "chain_null": "no-op",
    "free_chain": "links written at next_offset, then every node freed; others unchanged",
    "thread_exit": "the thread ends; its blocks stay live and intact",
    "get_config": "0 (unknown key)",
    "get_config_known": "an integer",
    "get_config_state": "NULL (only key 6 has state)",
    "set_config_late": "get_config(key) is unchanged by a set_config after first use",
}


class TraceError(ValueError):
    """A file that is not a well-formed trace (RUN-002); the message says where."""


@dataclass(frozen=True, slots=True)
class Trace:
    """A recorded failing run of one check."""

    check: str
    impl: str
    seed: int
    failure: StepFailure | None
    steps: tuple[tuple[Op, ...], ...]
    #: What the shrinker did (see :mod:`memslice_conformance.reporting.shrink`), if it ran.
    shrink: dict[str, JSONValue] | None = None
    #: The failing call, numbered from 1 over the flattened ops (0: unknown);
    #: when the failing step ran several calls as one batch, the last of them.
    call: int = 0
    #: The first call of the failing step (== call when the step is one call).
    call_first: int = 0

    @property
    def op_count(self) -> int:
        return sum(len(step) for step in self.steps)

    def to_json(self) -> dict[str, JSONValue]:
        failure: JSONValue = None
        lines = call_lines(self.steps)
        if self.failure is not None:
            failure = {
                "clauses": list(self.failure.clauses),
                "kind": self.failure.kind,
                "message": self.failure.message,
                "call": self.call or None,
                "call_first": (self.call_first or self.call) or None,
                "call_text": lines[self.call - 1] if 0 < self.call <= len(lines) else None,
            }
        steps: list[JSONValue] = []
        for step in self.steps:
            annotated: list[JSONValue] = []
            for op in step:
                annotated.append({**op, "expect": _EXPECT.get(str(op.get("op")), "")})
            steps.append(annotated)
        out: dict[str, JSONValue] = {
            "format": TRACE_FORMAT,
            "version": 1,
            "check": self.check,
            "impl": self.impl,
            "seed": self.seed,
            "failure": failure,
        }
        if self.shrink is not None:
            out["shrink"] = self.shrink
        out["steps"] = steps
        return out


def save_trace(trace: Trace, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trace.to_json(), indent=1) + "\n")
    return path


# -- reading: bounded, schema-checked, never executed


def _read_bounded(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file; anything else is a TraceError.

    ``O_NONBLOCK`` makes opening a FIFO return at once (no writer needed), so
    the type check below sees it; devices such as ``/dev/zero`` are refused
    before a byte is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise TraceError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TraceError(f"{path}: not a regular file (a trace is a JSON file)")
        if info.st_size > limit:
            raise TraceError(
                f"{path}: {info.st_size} bytes, more than the {limit}-byte limit for a trace"
            )
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise TraceError(f"{path}: more than the {limit}-byte limit for a trace")
        return b"".join(chunks)
    finally:
        os.close(fd)


@cache
def _jsonschema() -> Any:
    # Imported by name: jsonschema ships no type stubs, and loading it only
    # when a trace is read keeps the CLI's start-up small.
    return importlib.import_module("jsonschema")


@cache
def _validator() -> Any:
    schema = json.loads(
        files("memslice_conformance").joinpath("schema/trace-v1.json").read_text()
    )
    return _jsonschema().Draft202012Validator(schema)


def _where(path: Sequence[object]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "(top level)"


def parse_trace(raw: object, source: str = "trace") -> Trace:
    """Check a decoded JSON value against the trace schema and the block rules."""
    if not isinstance(raw, dict) or raw.get("format") != TRACE_FORMAT:
        raise TraceError(f"{source}: not a {TRACE_FORMAT} file (no \"format\" field naming it)")
    error = _jsonschema().exceptions.best_match(_validator().iter_errors(raw))
    if error is not None:
        raise TraceError(f"{source}: {_where(error.absolute_path)}: {error.message[:300]}")
    steps = tuple(
        tuple(cast(Op, {k: v for k, v in op.items() if k != "expect"}) for op in step)
        for step in raw["steps"]
    )
    check_steps(steps, source)
    failure = None
    recorded = raw.get("failure")
    call = call_first = 0
    if isinstance(recorded, dict):
        failure = StepFailure(
            tuple(recorded.get("clauses", ())),
            str(recorded.get("message", "")),
            str(recorded.get("kind", "")),
        )
        call = int(recorded.get("call") or 0)
        call_first = int(recorded.get("call_first") or call)
    shrink = raw.get("shrink")
    return Trace(
        str(raw.get("check", "?")),
        str(raw.get("impl", "?")),
        int(raw.get("seed", 0)),
        failure,
        steps,
        shrink if isinstance(shrink, dict) else None,
        call,
        call_first,
    )


def load_trace(path: Path, limit: int = MAX_TRACE_BYTES) -> Trace:
    """Read a trace file; anything that is not a well-formed trace raises TraceError."""
    data = _read_bounded(path, limit)
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise TraceError(f"{path}: not JSON: {str(exc)[:200]}") from None
    return parse_trace(raw, str(path))


def check_steps(steps: Sequence[Sequence[Op]], source: str = "trace") -> None:
    """The rules a schema cannot state: every handle named is live, every access in bounds.

    Walks the trace as the model would, knowing only handles and sizes;
    raises :class:`TraceError` naming the step and op.  The shrinker uses
    it to discard candidates before replaying them.
    """
    sizes: dict[str, int] = {}

    def fail(i: int, j: int, why: str) -> TraceError:
        return TraceError(f"{source}: steps[{i}][{j}]: {why}")

    for i, step in enumerate(steps):
        for j, op in enumerate(step):
            kind = op["op"]

            def live(key: str, i: int = i, j: int = j, op: Op = op) -> int:
                handle = str(op[key])
                if handle not in sizes:
                    raise fail(i, j, f"{key} names block {handle!r}, which is not live there")
                return sizes[handle]

            if kind in ("alloc", "alloc0", "copy"):
                size = cast(int, op["size"])
                if kind == "copy" and size > live("src"):
                    raise fail(i, j, "copy reads past the end of its source")
                if str(op["as"]) in sizes:
                    raise fail(i, j, f"handle {op['as']!r} is already live")
                if size:
                    sizes[str(op["as"])] = size
            elif kind == "write":
                size = live("block")
                end = cast(int, op.get("offset", 0)) + len(cast(str, op["data"])) // 2
                if end > size:
                    raise fail(i, j, f"write ends at byte {end}, past the block's {size} bytes")
            elif kind == "check":
                live("block")
            elif kind == "free1":
                live("block")
                del sizes[str(op["block"])]
            elif kind == "free_chain":
                handles = [str(h) for h in cast(list[JSONValue], op["blocks"])]
                if len(set(handles)) != len(handles):
                    raise fail(i, j, "a chain names one block twice")
                chain_sizes = set()
                for handle in handles:
                    if handle not in sizes:
                        raise fail(i, j, f"chain names block {handle!r}, which is not live there")
                    chain_sizes.add(sizes[handle])
                if len(chain_sizes) != 1:
                    raise fail(i, j, "a chain's blocks must all have one size")
                if cast(int, op["next_offset"]) + 8 > chain_sizes.pop():
                    raise fail(i, j, "next_offset leaves no room for the link word")
                for handle in handles:
                    del sizes[handle]


# -- C-like lines


def _size_of(sizes: dict[str, int], handle: JSONValue) -> int:
    return sizes.get(str(handle), 0)


def call_lines(steps: Sequence[Sequence[Op]]) -> list[str]:
    """One C-like line per op, in trace order (call N is ``lines[N - 1]``)."""
    sizes: dict[str, int] = {}
    lines: list[str] = []
    for step in steps:
        for op in step:
            kind = str(op.get("op"))
            thread = str(op.get("thread", "main"))
            where = "" if thread == "main" else f"  // on thread {thread}"
            if kind in ("alloc", "alloc0"):
                text = f"{op['as']} = g_slice_{kind}({op['size']});"
                sizes[str(op["as"])] = cast(int, op["size"])
            elif kind == "copy":
                text = f"{op['as']} = g_slice_copy({op['size']}, {op['src']});"
                sizes[str(op["as"])] = cast(int, op["size"])
            elif kind == "alloc_zero":
                text = "g_slice_alloc(0); g_slice_alloc0(0); g_slice_copy(0, NULL);  // all NULL"
            elif kind == "write":
                data = cast(str, op["data"])
                shown = data[:16] + ("..." if len(data) > 16 else "")
                text = (f"memcpy((char *){op['block']} + {op.get('offset', 0)}, "
                        f"\"{shown}\", {len(data) // 2});")
            elif kind == "check":
                text = f"check({op['block']});  // reads back as last written"
            elif kind == "free1":
                text = f"g_slice_free1({_size_of(sizes, op['block'])}, {op['block']});"
                sizes.pop(str(op["block"]), None)
            elif kind == "free_null":
                text = f"g_slice_free1({op['size']}, NULL);"
            elif kind == "chain_null":
                text = f"g_slice_free_chain_with_offset({op['size']}, NULL, {op['next_offset']});"
            elif kind == "free_chain":
                nodes = [str(h) for h in cast(list[JSONValue], op["blocks"])]
                size = _size_of(sizes, nodes[0]) if nodes else 0
                link = " -> ".join([*nodes, "NULL"])
                text = (f"g_slice_free_chain_with_offset({size}, {nodes[0] if nodes else 'NULL'}, "
                        f"{op['next_offset']});  // chain {link}")
                for node in nodes:
                    sizes.pop(node, None)
            elif kind == "thread_exit":
                text = "pthread_exit();"
            elif kind in ("get_config", "get_config_known"):
                text = f"g_slice_get_config({op['key']});"
            elif kind == "get_config_state":
                text = f"g_slice_get_config_state({op['key']}, {op['address']}, &n);"
            elif kind == "set_config_late":
                text = f"g_slice_set_config({op['key']}, {op['value']});  // after first use"
            else:
                text = f"// unknown op {kind}"
            lines.append(text + where)
    return lines


# -- replay


class SessionOpener(Protocol):
    """Anything that opens fresh sessions, such as a ``SessionFactory``."""

    def open(self) -> Session:
        """A fresh instance of the implementation."""
        ...


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What a replay showed: the failure (or None) and the calls it came at."""

    failure: StepFailure | None
    #: The last call of the step that failed, numbered from 1 (0: no failure).
    call: int
    #: The first call of that step (== call for a step of one call).
    first: int = 0
    #: Found by the one check after the last step (``verify_each_step=False``).
    at_end: bool = False


def replay_outcome(
    trace: Trace, factory: SessionOpener, *, verify_each_step: bool = True
) -> ReplayOutcome:
    """Re-run ``trace`` on a fresh session; what it shows, and where.

    ``verify_each_step=False`` re-reads the live blocks once, after the last
    step, instead of after every step (the shrinker's quick test of a
    candidate: half the round trips); a corruption found then is reported at
    the last call with ``at_end`` set, since its step is not known.
    """
    session = factory.open()
    checker = Checker(session, verify_all=verify_each_step)
    done = 0
    try:
        for step in trace.steps:
            done += len(step)
            checker.step(list(step))
        if not verify_each_step:
            try:
                checker.verify()
            except (Violation, ImplFailure) as exc:
                return ReplayOutcome(failure_of(exc), done, done, at_end=True)
    except (Violation, ImplFailure) as exc:
        return ReplayOutcome(failure_of(exc), done, done - len(step) + 1)
    finally:
        session.close()
    return ReplayOutcome(None, 0)


def replay(trace: Trace, factory: SessionOpener) -> StepFailure | None:
    """Re-run ``trace`` on a fresh session; the failure it shows, or None."""
    return replay_outcome(trace, factory).failure
