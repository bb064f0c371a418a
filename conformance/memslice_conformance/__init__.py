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

Modules, lowest first: ``protocol`` (the ``SliceAllocator`` contract),
``jsonl`` (wire protocol), ``executor`` (named OS threads), ``native``
(ctypes adapters), ``worker`` (process + client), ``impls`` (``--impl``
strings), ``session``, ``model`` (the checker), ``machine`` / ``sweeps`` /
``threads`` (the checks), ``profiles``, ``trace``, ``shrink`` (delta
debugging of failing traces), ``emit_c`` (traces as C programs), ``runner``,
``report``, ``cli``, ``pytest_plugin``, ``validate``; ``spec`` parses
``spec/``; ``limits`` holds the default examples, deadlines and budgets.

Names are exported lazily so that a worker process starts without importing
Hypothesis or the checks it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .protocol import SliceAllocator
    from .runner import Report, run_conformance

__all__ = ["Report", "SliceAllocator", "run_conformance"]

_EXPORTS = {
    "SliceAllocator": "protocol",
    "Report": "runner",
    "run_conformance": "runner",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'memslice_conformance' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
