"""``memslice-jsonl`` v1: the language-neutral wire protocol of the suite.

Rules and theory of operation
-----------------------------
An implementation in any language plugs in as a child process that reads
requests from stdin and writes responses to stdout, one JSON object per line
(UTF-8, ``\\n``-terminated).  The Python worker that hosts ``lib:``, ``glib``,
``malloc`` and ``py:`` implementations speaks exactly this protocol too, so
there is one mechanism for every out-of-process implementation::

    suite ──{"id":7,"op":"alloc","thread":"t1","size":40}──► implementation
          ◄─{"id":7,"ok":true,"result":140737353916432}────

Requests: ``{"id": int, "op": str, "thread": str (default "main"), ...}``.
Responses: ``{"id": int, "ok": true, "result": ...}`` or
``{"id": int, "ok": false, "error": {"type": str, "message": str}}``.

Rules (the JSON Schema in ``schema/protocol-v1.json`` is normative for shape):

1. ``thread`` names an OS thread inside the implementation that executes the
   op; a name not seen before (or seen before its ``thread_exit``) starts a
   new thread.  Ops for one thread run in the order sent.  Ops for different
   threads may run concurrently; the suite pipelines requests only when it
   wants that.
2. Responses are written in request order (the implementation buffers the
   answers of threads that finish early).
3. ``thread_exit`` runs the thread's exit cleanup and ends that OS thread
   (EXIT-001); the name may then be reused for a fresh thread.  ``main``
   cannot exit.
4. Bytes travel as lowercase hex strings (``write.data``, ``read`` result).
5. An error response means the op raised; the suite treats it as a failure
   of the clause that op exercises.  A crash or a hang is detected by the
   client (exit status, signal, deadline), never reported by the process.

Ops (arguments beyond ``id``/``op``/``thread``) and results:

=====================  ===========================  ==================
op                     arguments                    result
=====================  ===========================  ==================
hello                  --                           Hello object
alloc / alloc0         size                         address (int)
copy                   size, src                    address (int)
free1                  size, addr                   null
free_chain_with_offset size, head, next_offset      null
write                  addr, data (hex)             null
read                   addr, size                   hex string
set_config             key, value                   null
get_config             key                          int
get_config_state       key, address                 list of int, or null
thread_exit            --                           null
shutdown               --                           null (then exit 0)
digests  (optional)    blocks: [[addr, size], ...]  list of hex digests
reset    (optional)    --                           {"pid": int}
bulk     (optional)    steps (list)                 see :mod:`memslice_conformance.impl.bulk`
=====================  ===========================  ==================

Optional ops.  A program need not know ``digests`` or ``reset``; the suite
sends them only to an implementation whose ``hello`` lists them in
``optional_ops``, and otherwise falls back to what every program speaks
(one ``read`` per block; a fresh process per example):

* ``digests`` reads each block and answers :func:`block_digest` of its
  bytes (BLAKE2b, 8-byte digest, lowercase hex), so the suite re-checks
  every live block after every step with one request instead of one
  ``read`` per block.  A mismatch is then read in full, for the message.
* ``reset`` throws the allocator state away and answers once a fresh
  instance serves the same stream, as if the process had been restarted:
  the Python worker forks a new child from a pristine parent that loaded
  the library but never called it (see :mod:`memslice_conformance.impl.worker`).
  ``pid`` is the process that now serves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias, cast

from memslice_conformance.impl.protocol import Configurable, SliceAllocator

__all__ = [
    "CONFIG_OPS",
    "OPS",
    "OPTIONAL_OPS",
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "Hello",
    "JSONValue",
    "ProtocolError",
    "Request",
    "block_digest",
    "call_allocator",
    "decode_line",
    "encode",
    "validate_request",
]

PROTOCOL_NAME: Final = "memslice-jsonl"
PROTOCOL_VERSION: Final = 1

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
Request: TypeAlias = dict[str, JSONValue]

#: op -> the integer arguments it takes (``write`` also takes ``data``).
OPS: Final[Mapping[str, tuple[str, ...]]] = {
    "hello": (),
    "alloc": ("size",),
    "alloc0": ("size",),
    "copy": ("size", "src"),
    "free1": ("size", "addr"),
    "free_chain_with_offset": ("size", "head", "next_offset"),
    "write": ("addr",),
    "read": ("addr", "size"),
    "set_config": ("key", "value"),
    "get_config": ("key",),
    "get_config_state": ("key", "address"),
    "thread_exit": (),
    "shutdown": (),
    # -- optional ops: a cmd: program need not know them (see OPTIONAL_OPS)
    "digests": (),
    "reset": (),
    # bulk: a program that answers it with an error gets the scale checks
    # reported "not-checked" (COVER-003), never failed.
    "bulk": (),
}

#: The configuration API's ops: only for implementations that claim ``config``.
CONFIG_OPS: Final = frozenset({"set_config", "get_config", "get_config_state"})

#: Ops an implementation may leave out; it announces those it serves in
#: ``hello.optional_ops``.  New ops for the suite's own speed go here too.
OPTIONAL_OPS: Final = frozenset({"digests", "reset", "bulk"})


def block_digest(data: bytes) -> str:
    """The ``digests`` answer for one block's bytes (BLAKE2b, 8 bytes, hex)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


class ProtocolError(Exception):
    """A malformed line or message (not an error of the implementation)."""


@dataclass(frozen=True, slots=True)
class Hello:
    """What an implementation says about itself in answer to ``hello``."""

    protocol: str
    version: int
    implementation: str
    profiles: tuple[str, ...]
    #: The optional ops (:data:`OPTIONAL_OPS`) the implementation serves.
    optional_ops: frozenset[str] = frozenset()
    #: The process serving the stream, when it says (the worker does).
    pid: int | None = None
    #: Things the user should know about how it was loaded (e.g. a retry).
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {
            "protocol": self.protocol,
            "version": self.version,
            "implementation": self.implementation,
            "profiles": list(self.profiles),
        }
        if self.optional_ops:
            out["optional_ops"] = list[JSONValue](sorted(self.optional_ops))
        if self.pid is not None:
            out["pid"] = self.pid
        if self.notes:
            out["notes"] = list[JSONValue](self.notes)
        return out

    @classmethod
    def from_json(cls, value: JSONValue) -> Hello:
        if not isinstance(value, dict):
            raise ProtocolError(f"hello result must be an object, got {value!r}")
        protocol = value.get("protocol")
        version = value.get("version")
        name = value.get("implementation", "?")
        profiles = value.get("profiles", ["core"])
        if protocol != PROTOCOL_NAME or version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"implementation speaks {protocol!r} v{version!r}, "
                f"the suite speaks {PROTOCOL_NAME!r} v{PROTOCOL_VERSION}"
            )
        if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
            raise ProtocolError(f"hello.profiles must be a list of strings, got {profiles!r}")
        optional = value.get("optional_ops", [])
        if not isinstance(optional, list) or not all(isinstance(o, str) for o in optional):
            raise ProtocolError(f"hello.optional_ops must be a list of strings, got {optional!r}")
        notes = value.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise ProtocolError(f"hello.notes must be a list of strings, got {notes!r}")
        pid = value.get("pid")
        return cls(
            PROTOCOL_NAME,
            PROTOCOL_VERSION,
            str(name),
            tuple(cast(list[str], profiles)),
            # Unknown names are ignored: a newer program may offer more.
            frozenset(cast(list[str], optional)) & OPTIONAL_OPS,
            pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            tuple(cast(list[str], notes)),
        )


#: One encoder for every line (``json.dumps`` with options builds one per call).
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))


def encode(message: Mapping[str, JSONValue]) -> bytes:
    """One protocol line: compact JSON plus ``\\n``."""
    return _ENCODER.encode(message).encode() + b"\n"


def decode_line(line: bytes) -> dict[str, JSONValue]:
    """Parse one line into a JSON object, or raise :class:`ProtocolError`."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {line[:200]!r}") from exc
    if not isinstance(value, dict):
        raise ProtocolError(f"not a JSON object: {line[:200]!r}")
    return cast(dict[str, JSONValue], value)


def _int(message: Mapping[str, JSONValue], field: str) -> int:
    value = message.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{message.get('op')}: field {field!r} must be an integer")
    return value


def validate_request(message: Mapping[str, JSONValue]) -> tuple[int, str, str]:
    """Check a request's shape; return ``(id, op, thread)``.

    Mirrors ``schema/protocol-v1.json`` without needing a schema library at
    run time (the tests check the two agree).
    """
    ident = _int(message, "id")
    op = message.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError(f"unknown op {op!r}")
    thread = message.get("thread", "main")
    if not isinstance(thread, str) or not thread:
        raise ProtocolError("thread must be a non-empty string")
    for field in OPS[op]:
        _int(message, field)
    if op == "bulk" and not isinstance(message.get("steps"), list):
        raise ProtocolError("bulk: field 'steps' must be a list")
    if op == "write":
        data = message.get("data")
        if not isinstance(data, str):
            raise ProtocolError("write: field 'data' must be a hex string")
        try:
            bytes.fromhex(data)
        except ValueError as exc:
            raise ProtocolError("write: field 'data' is not hex") from exc
    if op == "digests":
        _blocks(message)
    return ident, op, thread


def _blocks(message: Mapping[str, JSONValue]) -> list[tuple[int, int]]:
    """The ``blocks`` field of ``digests``: a list of ``[addr, size]`` pairs."""
    blocks = message.get("blocks")
    if not isinstance(blocks, list):
        raise ProtocolError("digests: field 'blocks' must be a list of [addr, size] pairs")
    # One exact-type test per pair: this list has every live block, every step.
    pairs: list[tuple[int, int]] = []
    for item in blocks:
        if type(item) is list and len(item) == 2:
            addr, size = item
            if type(addr) is int and type(size) is int and addr >= 0 and size >= 0:
                pairs.append((addr, size))
                continue
        raise ProtocolError(f"digests: {item!r} is not an [addr, size] pair")
    return pairs


def call_allocator(impl: SliceAllocator, message: Mapping[str, JSONValue]) -> JSONValue:
    """Execute one allocator op (not hello/thread_exit/shutdown) on ``impl``.

    Runs on the calling thread; the caller decides which thread that is.
    """
    op = message["op"]
    if op == "alloc":
        return impl.alloc(_int(message, "size"))
    if op == "alloc0":
        return impl.alloc0(_int(message, "size"))
    if op == "copy":
        return impl.copy(_int(message, "size"), _int(message, "src"))
    if op == "free1":
        impl.free1(_int(message, "size"), _int(message, "addr"))
        return None
    if op == "free_chain_with_offset":
        impl.free_chain_with_offset(
            _int(message, "size"), _int(message, "head"), _int(message, "next_offset")
        )
        return None
    if op == "write":
        impl.write(_int(message, "addr"), bytes.fromhex(cast(str, message["data"])))
        return None
    if op == "read":
        return impl.read(_int(message, "addr"), _int(message, "size")).hex()
    if op in CONFIG_OPS:
        if not isinstance(impl, Configurable):
            raise NotImplementedError(
                f"{op}: this implementation has no configuration API (the config profile)"
            )
        return _call_config(impl, message)
    if op == "digests":
        read = impl.read  # bound once: this loop runs over every live block, every step
        return [block_digest(read(addr, size)) for addr, size in _blocks(message)]
    if op == "bulk":
        from memslice_conformance.impl.bulk import (
            run_bulk,  # optional op: see memslice_conformance.impl.bulk
        )

        return cast(JSONValue, run_bulk(impl, message.get("steps")))
    raise ProtocolError(f"op {op!r} is not an allocator call")


def _call_config(impl: Configurable, message: Mapping[str, JSONValue]) -> JSONValue:
    op = message["op"]
    if op == "set_config":
        impl.set_config(_int(message, "key"), _int(message, "value"))
        return None
    if op == "get_config":
        return int(impl.get_config(_int(message, "key")))
    state = impl.get_config_state(_int(message, "key"), _int(message, "address"))
    return None if state is None else [int(v) for v in state]
