"""The ``contention_triple`` check: CONF-010's triple against the real classes.

Rules and theory of operation
-----------------------------
``get_config_state(CONTENTION_COUNTER, ix)`` answers NULL or exactly three
values: the chunk size of class ``ix``, its contention counter and its
magazine threshold (CONF-010).  Class ``ix`` has chunk size
``(ix + 1) * P2ALIGNMENT`` (the glossary, SIZE-005), P2ALIGNMENT being two
pointers.  So the check asks for every ``ix`` in 0..63 and, for each
non-NULL answer, requires::

    three integers, counter >= 0, threshold >= 1
    triple[0] == (ix + 1) * 2 * sizeof(void*)       the class index is real
    64 fresh blocks of triple[0] bytes include two   the allocator really
    exactly triple[0] bytes apart                    carves chunks that size
    (for ix 0, 1, 2, 7, 31 and 62: x86_64's classes run to 62; GLib answers
    past its last class without a bounds check, CONF-012)

A crash on the first query is what GLib 2.74 does under always-malloc
(CONF-012: the counters do not exist); the path then counts as not reached
and the check as not checked, with that reason.

An implementation that answers NULL everywhere (GLib 2.76, malloc) meets
the clause; the path still ran.  The check belongs to the ``config``
profile, beside the ``config`` check: only an implementation that offers
the configuration API is asked (LOAD-003, CONF-021).
"""

from __future__ import annotations

import ctypes
import itertools
from typing import Final, cast

from memslice_conformance.checks import coverage
from memslice_conformance.failures import ImplCrash, ImplFailure, Violation
from memslice_conformance.impl.impls import Implementation
from memslice_conformance.impl.jsonl import Request
from memslice_conformance.impl.session import SessionFactory
from memslice_conformance.profiles.registry import (
    CheckInfo,
    NotChecked,
    register_check,
    untraced,
)

__all__ = ["CONTENTION_COUNTER", "INFO", "check_contention_triple"]

CONTENTION_COUNTER: Final = 6
P2ALIGNMENT: Final = 2 * ctypes.sizeof(ctypes.c_void_p)
_CLASSES: Final = 64
_BLOCKS: Final = 64
#: Classes whose strides are measured (every 64-bit GLib has them).
_STRIDE_CLASSES: Final = (0, 1, 2, 7, 31, 62)

INFO: Final = CheckInfo(
    "contention_triple",
    "config",
    ("CONF-010",),
    "custom",
    "get_config_state(CONTENTION_COUNTER, ix) for every ix, against (ix + 1) * P2ALIGNMENT "
    "and the strides of real blocks",
)


_WHY: Final = ("CONF-010's triple is checked against the class table and real strides, "
               "which a trace's checker does not state")


def check_contention_triple(impl: Implementation, seed: int, max_examples: int) -> None:
    """The ``contention_triple`` check (see the module doc)."""
    factory = SessionFactory(impl)
    session = factory.open()
    try:
        queries: list[Request] = [
            {"op": "get_config_state", "key": CONTENTION_COUNTER, "address": ix}
            for ix in range(_CLASSES)
        ]
        try:
            answers = session.run(queries)
        except ImplCrash as exc:
            raise NotChecked(
                f"get_config_state(CONTENTION_COUNTER, ix) crashed the implementation ({exc}); "
                "GLib 2.74 does so under always-malloc (CONF-012)"
            ) from exc
        except ImplFailure as exc:
            exc.clauses = ("CONF-010",)  # type: ignore[attr-defined]
            raise
        triples: dict[int, list[int]] = {}
        if not any(answer.get("ok") for answer in answers):
            raise NotChecked(
                "every get_config_state(CONTENTION_COUNTER, ix) was answered with an error: "
                f"{answers[0].get('error')}"
            )
        for ix, answer in enumerate(answers):
            label = f"get_config_state(CONTENTION_COUNTER, {ix})"
            if not answer.get("ok"):
                # An index past the last class may be refused (CONF-012, PY-017).
                continue
            value = answer.get("result")
            if value is None:
                continue
            if (
                not isinstance(value, list)
                or len(value) != 3
                or not all(isinstance(v, int) for v in value)
            ):
                raise Violation(("CONF-010",), untraced(
                    f"{label} returned {value!r}, not NULL or 3 values", impl.spec, INFO.name,
                    seed, _WHY))
            chunk, counter, threshold = (cast(int, v) for v in value)
            if chunk != (ix + 1) * P2ALIGNMENT or counter < 0 or threshold < 1:
                raise Violation(("CONF-010",), untraced(
                    f"call {ix + 1}: g_slice_{label} returned {value!r}: class {ix} has chunk "
                    f"size {(ix + 1) * P2ALIGNMENT} (SIZE-005), a counter >= 0 and a "
                    "threshold >= 1", impl.spec, INFO.name, seed, _WHY))
            triples[ix] = [chunk, counter, threshold]
        for ix, (chunk, _, _) in sorted(triples.items()):
            if ix not in _STRIDE_CLASSES:
                continue
            allocs: list[Request] = [{"op": "alloc", "size": chunk} for _ in range(_BLOCKS)]
            addrs = sorted(cast(int, a.get("result") or 0) for a in session.run(allocs))
            strides = {b - a for a, b in itertools.pairwise(addrs)}
            if chunk not in strides:
                raise Violation(("CONF-010",), untraced(
                    f"get_config_state(CONTENTION_COUNTER, {ix}) says class {ix} has chunks of "
                    f"{chunk} bytes, but no two of {_BLOCKS} blocks of {chunk} bytes are "
                    f"{chunk} bytes apart (smallest stride {min(strides, default=0)})",
                    impl.spec, INFO.name, seed, _WHY))
        coverage.exercised("CONF-010", "triple")
    finally:
        session.close()
        factory.close()


register_check(INFO, check_contention_triple)
