"""Replayable traces: a failure as plain JSON, re-run without Hypothesis.

Rules and theory of operation
-----------------------------
A trace is the list of *steps* (batches of symbolic ops) a check executed,
exactly as the :class:`~memslice_conformance.model.Checker` received them::

    {"format": "memslice-conformance-trace", "version": 1,
     "check": "machine", "impl": "lib:./libbad.so", "seed": 0,
     "failure": {"clauses": ["API-004"], "kind": "violation", "message": "..."},
     "steps": [[{"op": "alloc", "size": 40, "as": "b1", "thread": "main",
                 "expect": "non-NULL, pointer-aligned, disjoint from live blocks"}],
               [{"op": "write", "block": "b1", "offset": 0, "data": "9f..."}], ...]}

Blocks are named by handle, never by address, so a trace replays against any
implementation.  The expected observations are those of the model (each
``expect`` string says which in words; replay recomputes them): fresh
blocks disjoint and aligned, written bytes read back unchanged while live,
``alloc0`` zero, ``copy`` equal, size 0 NULL, unknown config keys 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

from .failures import ImplFailure, Violation
from .jsonl import JSONValue
from .model import Checker, Op, StepFailure, failure_of
from .session import SessionFactory

__all__ = ["TRACE_FORMAT", "Trace", "load_trace", "replay", "save_trace"]

TRACE_FORMAT: Final = "memslice-conformance-trace"

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
    "get_config_state": "NULL (only key 6 has state)",
    "set_config_late": "get_config(key) is unchanged by a set_config after first use",
}


@dataclass(frozen=True, slots=True)
class Trace:
    """A recorded failing run of one check."""

    check: str
    impl: str
    seed: int
    failure: StepFailure | None
    steps: tuple[tuple[Op, ...], ...]

    def to_json(self) -> dict[str, JSONValue]:
        failure: JSONValue = None
        if self.failure is not None:
            failure = {
                "clauses": list(self.failure.clauses),
                "kind": self.failure.kind,
                "message": self.failure.message,
            }
        steps: list[JSONValue] = []
        for step in self.steps:
            annotated: list[JSONValue] = []
            for op in step:
                annotated.append({**op, "expect": _EXPECT.get(str(op.get("op")), "")})
            steps.append(annotated)
        return {
            "format": TRACE_FORMAT,
            "version": 1,
            "check": self.check,
            "impl": self.impl,
            "seed": self.seed,
            "failure": failure,
            "steps": steps,
        }


def save_trace(trace: Trace, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trace.to_json(), indent=1) + "\n")
    return path


def load_trace(path: Path) -> Trace:
    """Read a trace file; a wrong format raises ``ValueError``."""
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict) or raw.get("format") != TRACE_FORMAT:
        raise ValueError(f"{path}: not a {TRACE_FORMAT} file")
    steps = []
    for step in raw.get("steps", []):
        ops = []
        for op in step:
            clean = {k: v for k, v in op.items() if k != "expect"}
            ops.append(cast(Op, clean))
        steps.append(tuple(ops))
    failure = None
    if isinstance(raw.get("failure"), dict):
        f = raw["failure"]
        failure = StepFailure(tuple(f.get("clauses", ())), str(f.get("message", "")),
                              str(f.get("kind", "")))
    return Trace(str(raw.get("check", "?")), str(raw.get("impl", "?")), int(raw.get("seed", 0)),
                 failure, tuple(steps))


def replay(trace: Trace, factory: SessionFactory) -> StepFailure | None:
    """Re-run ``trace`` on a fresh session; the failure it shows, or None."""
    session = factory.open()
    checker = Checker(session)
    try:
        for step in trace.steps:
            checker.step(list(step))
    except (Violation, ImplFailure) as exc:
        return failure_of(exc)
    finally:
        session.close()
    return None
