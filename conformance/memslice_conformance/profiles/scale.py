"""The ``scale`` check: single classes past every power of two, long chains,
alternation across every class edge.

Rules and theory of operation
-----------------------------
Real allocators keep counters, bitfields and batches that only overflow once
a class holds thousands of chunks, or a chain walk crosses its 1024th node.
The other core checks keep a class under ~600 live blocks and chains under
300 nodes; this one goes far past, in a few bulk programs run beside the
allocator (:mod:`memslice_conformance.impl.bulk`), so it costs seconds::

    deep     sizes 16 and 1000 (a small and a large slab class): 2**16 + 1
             live blocks each (disjointness)
    wide     every class 16..1024 in steps of 16: 2**12 + 1 live blocks each
             (disjointness only: the cheapest way to reach ~260,000 blocks)
    chains   10,000-node chains at the first word, the last word (96 bytes)
             and the first and an inner word (1000 bytes); the freed nodes are
             allocated again and must come back pairwise disjoint
    edges    for each class edge b (16, 32, ..., 1024) blocks alternating
             b and b + 1, fully stamped; every other one freed and replaced

In-process Python implementations (the reference, ``py:``) run the same
phases at a smaller scale (:data:`IN_PROCESS`: 2**14 + 1 deep blocks, 2**8 + 1
per class, 2,000-node chains): a Python allocator's integers do not wrap,
and an allocation in Python costs some 20 microseconds, so the full scale
would take over ten seconds.

Every program ends with ``verify`` (pairwise disjoint, stamps intact).  A
violation's clauses: NULL -> API-001, overlap -> API-004, changed bytes ->
API-005, misaligned -> API-006, plus API-008 in the chain phase.  An
implementation that does not answer ``bulk`` (a ``cmd:`` program may not)
gets the check reported ``not-checked`` with the program's answer.

A failing phase (a violation or a crash) is not reported as the bulk
program saw it but as a trace of single calls (RUN-012,
:mod:`~memslice_conformance.profiles.bulk_trace`): reduced, translated and
confirmed through a Checker, whose trace the runner shrinks and saves like a
core check's::

    phase fails ─► reduce the program ─► translate ─► Checker on a fresh session
                                                        │ same failure: raise its
                                                        │   error, with the checker
                                                        └ else: the bulk finding and
                                                            the rerun command (RUN-014)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Final, cast

from memslice_conformance.checks import coverage
from memslice_conformance.failures import ImplCrash, ImplFailure, Violation
from memslice_conformance.impl.impls import Implementation
from memslice_conformance.impl.jsonl import JSONValue
from memslice_conformance.impl.session import Session, SessionFactory
from memslice_conformance.profiles.bulk_trace import (
    KIND_CLAUSES,
    REDUCE_SECONDS,
    BulkOutcome,
    reduce_program,
    reproduce,
    run_program,
)
from memslice_conformance.profiles.registry import (
    CheckInfo,
    NotChecked,
    register_check,
    rerun_command,
)

__all__ = ["FULL", "INFO", "IN_PROCESS", "Scale", "check_scale", "programs"]


@dataclass(frozen=True, slots=True)
class Scale:
    """How far each phase goes."""

    deep: int
    deep_sizes: tuple[int, ...]
    wide: int
    chain_nodes: int
    edge_blocks: int


#: Native and out-of-process implementations: past 2**16 and 2**12.
FULL: Final = Scale((1 << 16) + 1, (16, 1000), (1 << 12) + 1, 10000, 128)
#: In-process Python implementations (see the module doc).
IN_PROCESS: Final = Scale((1 << 14) + 1, (16,), (1 << 8) + 1, 2000, 32)
_CLASS_EDGES: Final = tuple(range(16, 1025, 16))
_CHAIN_SIZES: Final = (96, 1000)
#: Seconds one bulk program may take before the implementation counts as hung.
_PROGRAM_DEADLINE: Final = 60.0

INFO: Final = CheckInfo(
    "scale",
    "core",
    ("API-004", "API-005", "API-006", "API-008"),
    "custom",
    "2**16 live blocks in one class, every class past 2**12, 10,000-node chains, "
    "alternation across every class edge (batched in the worker)",
)

Step = dict[str, JSONValue]


def _chain_offsets(size: int) -> tuple[int, ...]:
    last = (size - 8) // 8 * 8
    return (0, last) if size < 512 else (0, last // 2 // 8 * 8)


def programs(scale: Scale = FULL) -> list[tuple[str, list[Step]]]:
    """(phase, bulk program) in the order they run."""
    out: list[tuple[str, list[Step]]] = []
    for size in scale.deep_sizes:
        out.append((
            f"deep: {scale.deep} live blocks of {size} bytes",
            [{"do": "alloc", "pool": "deep", "sizes": [size], "count": scale.deep,
              "stamp": False},
             {"do": "verify"}, {"do": "reset"}],
        ))
    out.append((
        f"wide: {scale.wide} live blocks in every class 16..1024",
        [{"do": "alloc", "pool": "wide", "sizes": list[JSONValue](_CLASS_EDGES),
          "count": scale.wide * len(_CLASS_EDGES), "stamp": False},
         {"do": "verify"}, {"do": "reset"}],
    ))
    for size in _CHAIN_SIZES:
        for offset in _chain_offsets(size):
            out.append((
                f"chains: {scale.chain_nodes} nodes of {size} bytes linked at offset {offset}",
                [{"do": "alloc", "pool": "chain", "sizes": [size], "count": scale.chain_nodes,
                  "tag_only": True},
                 {"do": "chain", "pool": "chain", "offset": offset},
                 {"do": "alloc", "pool": "again", "sizes": [size], "count": scale.chain_nodes,
                  "stamp": False},
                 {"do": "verify"}, {"do": "free", "pool": "again"}],
            ))
    edge_steps: list[Step] = []
    for edge in _CLASS_EDGES:
        pool = f"edge{edge}"
        edge_steps += [
            {"do": "alloc", "pool": pool, "sizes": [edge, edge + 1], "count": scale.edge_blocks},
        ]
    edge_steps.append({"do": "verify"})
    for edge in _CLASS_EDGES:
        pool = f"edge{edge}"
        edge_steps += [
            {"do": "free", "pool": pool, "every": 2},
            {"do": "alloc", "pool": pool, "sizes": [edge + 1, edge],
             "count": scale.edge_blocks // 2, "zero": True},
        ]
    edge_steps += [{"do": "verify"}, {"do": "reset"}]
    out.append(("edges: blocks alternating across every class edge", edge_steps))
    return out


def _run(session: Session, phase: str, steps: list[Step]) -> BulkOutcome:
    """Run one phase's program on the check's session; a violation or crash is returned."""
    if "bulk" not in session.optional_ops:
        # LOAD-011: an optional op is sent only to an implementation that offers it.
        raise NotChecked(
            "the implementation does not offer the optional 'bulk' op in hello.optional_ops; "
            "the scale check needs it (schema/protocol-v1.json)"
        )
    # Each phase starts from no pools, whatever a reused worker held before.
    program: list[JSONValue] = [{"do": "reset"}, *steps]
    try:
        [answer] = session.run([{"op": "bulk", "steps": program}])
    except ImplCrash as exc:
        return BulkOutcome("crash", exc.signal_name or f"exit status {exc.returncode}",
                           message=f"{phase}: {exc}")
    except ImplFailure as exc:
        exc.clauses = _phase_clauses(phase, ("API-004", "API-005"))  # type: ignore[attr-defined]
        exc.args = (f"{phase}: {exc}",)
        raise
    if not answer.get("ok"):
        error = answer.get("error")
        etype = str(error.get("type")) if isinstance(error, dict) else ""
        if etype in ("ProtocolError", "BulkError", "") or "unknown op" in str(error):
            raise NotChecked(
                f"the implementation does not run bulk programs ({error}); "
                "the scale check needs the optional 'bulk' op (schema/protocol-v1.json)"
            )
        raise NotChecked(
            f"{phase}: the implementation raised {etype} ({error}), which API-001 allows "
            "for an allocation it cannot satisfy; this scale was not reached"
        )
    result = cast(dict[str, JSONValue], answer.get("result"))
    found = result.get("violation")
    if not isinstance(found, dict):
        return BulkOutcome("pass")
    return BulkOutcome(
        "violation", str(found.get("kind")), cast(int, found.get("step", 0)) - 1,
        cast(int, found.get("size", 0)),
        f"{found.get('kind')}: {found.get('detail')} (after {result.get('calls')} calls)",
    )


def _phase_clauses(phase: str, clauses: tuple[str, ...]) -> tuple[str, ...]:
    return (*clauses, "API-008") if phase.startswith("chains") else clauses


def _as_trace(
    impl: Implementation, seed: int, phases: list[tuple[str, list[Step]]], found: BulkOutcome
) -> BaseException:
    """The exception to fail with: a Checker's, carrying its trace, when one reproduces.

    RUN-012: the failing phase (alone, or after the phases before it) is
    reduced and translated into single calls (:mod:`bulk_trace`); the runner
    shrinks and saves the Checker's trace as for any core check.  When no
    trace reproduces the failure, the bulk finding is reported with the
    command that reruns the check (RUN-014).
    """
    phase = phases[-1][0]
    factory = SessionFactory(impl, deadline=_PROGRAM_DEADLINE)
    # Candidates are smaller than a program that finished: one that hangs
    # is cut off after the reduction's whole budget, not a program's.
    candidates = SessionFactory(impl, deadline=REDUCE_SECONDS)
    reproduced = None
    try:
        run = partial(run_program, factory)
        program = phases[-1][1]
        target = run(program)
        if not target.same(found):
            reset: Step = {"do": "reset"}
            program = [s for number, (_, steps) in enumerate(phases)
                       for s in ([reset] if number else []) + steps]
            target = run(program)
        if target.same(found):
            stop_at = time.monotonic() + REDUCE_SECONDS
            reduced = reduce_program(partial(run_program, candidates), program, target, stop_at)
            reproduced = reproduce(factory, reduced, target)
    finally:
        candidates.close()
        factory.close()
    if reproduced is not None:
        error = reproduced.error
        error.checker = reproduced.checker  # type: ignore[attr-defined]
        if isinstance(error, Violation):
            error.message = f"scale {phase}: {error.message}"
            error.args = (error.message,)
        return error
    rerun = rerun_command(impl.spec, "scale", seed)
    why = ("it did not reproduce as a trace of single calls (RUN-012); rerun this check "
           f"alone: {rerun}")
    if found.kind == "crash":
        crash = ImplCrash(None, found.what, "")
        crash.args = (f"scale {found.message}; {why}",)
        crash.clauses = _phase_clauses(phase, ("API-004", "API-005"))  # type: ignore[attr-defined]
        return crash
    clauses = _phase_clauses(phase, (KIND_CLAUSES.get(found.what, "API-005"),))
    return Violation(clauses, f"scale {phase}: {found.message}; {why}")


def check_scale(impl: Implementation, seed: int, max_examples: int) -> None:
    """The ``scale`` check (see the module doc); the seed does not matter."""
    factory = SessionFactory(impl, deadline=_PROGRAM_DEADLINE)
    session = factory.open()
    scale = IN_PROCESS if impl.kind == "in-process" else FULL
    phases = programs(scale)
    failure: BaseException | None = None
    try:
        for number, (phase, steps) in enumerate(phases):
            found = _run(session, phase, steps)
            if found.kind != "pass":
                failure = _as_trace(impl, seed, phases[: number + 1], found)
                break
            if phase.startswith("chains"):
                coverage.exercised("API-008")
    finally:
        session.close()
        factory.close()
    if failure is not None:
        raise failure
    for clause in ("API-004", "API-005", "API-006"):
        coverage.exercised(clause)
    coverage.exercised("API-001", "nonzero")


register_check(INFO, check_scale)
