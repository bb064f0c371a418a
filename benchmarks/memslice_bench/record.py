"""W8's traces: real GLib programs' g_slice calls, as the benchmark replays them.

Rules and theory of operation
-----------------------------
Recording is the reference's job (:mod:`memslice.recorder`: an LD_PRELOAD shim
compiled on first use, INTRO-006); this module only turns a recorded
:class:`~memslice.calltrace.CallTrace` into the benchmark's compact JSON Lines
and records the four programs whose traces ship in ``traces/``::

    memslice.recorder.record(argv) ──▶ CallTrace ──▶ convert() ──▶ traces/NAME.jsonl

The JSON Lines: a header (command, counts), then ``["a"|"f", size, id]`` per
event, where ``id`` numbers blocks in order of allocation (addresses are
reused, ids are not); a chain free becomes one ``f`` per node.  Thread exits
move no block and are left out.  What the recorder cannot see (libglib's calls
to itself) is said in the header's ``note``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from memslice.calltrace import CallTrace
from memslice.recorder import NOT_SEEN
from memslice.recorder import record as record_calls

__all__ = ["convert", "record"]


def convert(trace: CallTrace, command: str) -> list[str]:
    """A call trace as the benchmark's JSON Lines (header first)."""
    ids: dict[str, int] = {}
    events: list[str] = []
    allocations = 0
    for call in trace.calls:
        if call.op in ("alloc", "alloc0", "copy"):
            ids[call.handle] = allocations
            allocations += 1
            events.append(json.dumps(["a", call.size, ids[call.handle]], separators=(",", ":")))
        elif call.op in ("free1", "free_chain"):
            events += [
                json.dumps(["f", call.size, ids.pop(b)], separators=(",", ":")) for b in call.blocks
            ]
    header = {
        "command": command,
        "glib": "2.74.6 (Debian), recorded with an LD_PRELOAD shim",
        "events": len(events),
        "allocations": allocations,
        "unmatched_frees_dropped": trace.recorded.get("unmatched_frees_dropped", 0),
        "threads": trace.recorded.get("threads", 1),
        "note": NOT_SEEN,
    }
    return [json.dumps(header), *events]


def record(command: str, out: Path, max_events: int = 20_000) -> int:
    """Run ``command`` under the recorder and write its trace to ``out``; returns the events."""
    recording = record_calls(shlex.split(command), quiet=True, timeout=120)
    lines = convert(recording.trace, command)
    header, events = lines[0], lines[1 : 1 + max_events]
    if len(lines) - 1 > max_events:
        meta = json.loads(header)
        meta["truncated_to"] = max_events
        header = json.dumps(meta)
    out.write_text("\n".join([header, *events]) + "\n")
    return len(events)


if __name__ == "__main__":
    import sys

    here = Path(__file__).resolve().parent / "traces"
    for name, cmd in (
        ("gsettings-list-recursively", "gsettings list-recursively"),
        ("glib-compile-schemas", "glib-compile-schemas --dry-run /usr/share/glib-2.0/schemas"),
        ("gio-list-libdir", "gio list -l -a standard::*,unix::* /usr/lib/x86_64-linux-gnu"),
        ("gio-tree-share-doc", "gio tree /usr/share/doc"),
    ):
        print(name, record(cmd, here / f"{name}.jsonl"), file=sys.stderr)
