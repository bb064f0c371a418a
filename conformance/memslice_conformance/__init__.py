"""memslice_conformance: the executable conformance suite for slice allocators.

Rules and theory of operation
-----------------------------
A library first; the CLI (``memslice-conformance``) and the pytest plugin
(``pytest --memslice-impl=IMPL``) are thin layers over it::

    run_conformance(impl) ─► profiles ─► checks ─► Checker ─► Session ─► implementation
          │                  (core)     (sweeps,   (model of   (in-process threads,
          ▼                             machine,    live        or a worker speaking
        Report (per clause: pass/fail/  threads)    blocks)     memslice-jsonl v1)
                not-checked/not-claimed)

The folders are the layers; a module imports only from lower layers
(``tests/test_layering.py`` enforces it)::

    cli.py, pytest_plugin.py   front ends: arguments, exit statuses, pytest items
    runner.py                  run_conformance: select checks, deadlines, shrink, verdicts
    reporting/                 results (the Report records), verdicts (evidence ->
                               clause status), trace (save, load, replay), shrink
                               (delta debugging), blame (which earlier step), emit_c
                               (a trace as a C program), report (JSON, JUnit, table)
    profiles/                  registry (profiles and their checks) and the custom
                               checks of each profile: config, contention_triple,
                               concurrency, layout (glib-2.74), debug_blocks, reuse,
                               scale, failure_paths
    checks/                    model (the Checker), machine, sweeps, threads,
                               stress (native driver), layout (traces on two
                               allocators), coverage (evidence of what ran)
    impl/                      protocol (SliceAllocator), jsonl (wire protocol),
                               executor (named threads), native (ctypes), bulk
                               (batched programs), worker (process + client), impls
                               (--impl strings), session, validate (validate-protocol)
    spec.py, failures.py,      the spec as data; failures typed by cause; default
    limits.py                  examples, deadlines and budgets

Names are exported lazily so that a worker process starts without importing
Hypothesis or the checks it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memslice_conformance.impl.protocol import SliceAllocator
    from memslice_conformance.runner import Report, run_conformance

__all__ = ["Report", "SliceAllocator", "run_conformance"]

_EXPORTS = {
    "SliceAllocator": "impl.protocol",
    "Report": "runner",
    "run_conformance": "runner",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'memslice_conformance' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
