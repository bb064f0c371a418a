"""The ``reuse`` profile: freed memory comes back, and expired memory goes back.

Rules and theory of operation
-----------------------------
Two checks, modelled on GLib's own ``slice-known-pages`` test and on the
measured depot behaviour (DEPOT-009)::

    reuse   per probe size, fresh session:
              same thread   "a": pin, x = alloc(s) x 2; free1(s, x);
                                 alloc(s) x 1031                         -> x among them
              after exit    "a": pin, x = alloc(s) x 2; free1(s, x); exit "a";
                            "b": alloc(s) x 1031                         -> x among them

The pin stays live so that the slab holding ``x`` is not released to the
system when it empties (SLAB-007): memory that went back to the system need
not come back at the same address.
    trim    reference only (its clock is injectable):
              holder thread keeps 400 blocks of 40 bytes live; a churn thread
              allocates and frees 5000 and exits (its magazines go to the depot);
              then a third thread frees the 400 blocks (pushes to the depot):
                clock unchanged            -> memory stays mapped (DEPOT-009)
                clock + working set + 1 s  -> mapped memory drops (DEPOT-010)

The 1031 bound is GLib's ``MAX_PROBE_TRIALS``: at least the largest magazine
(MAG-010).  Probe sizes 97, 265 and 347 are the known-pages test's
"hopefully unused" classes, plus 24 and 1000.  Anything but the reference
cannot be made to expire its working set in bounded time (GLib would need
15 s sleeps per probe), so ``trim`` reports such implementations as
``not-checked`` with that reason, never as passed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

from memslice_conformance.failures import Violation
from memslice_conformance.impl.impls import Implementation
from memslice_conformance.impl.jsonl import Request
from memslice_conformance.impl.session import Session, SessionFactory
from memslice_conformance.profiles.layout import wait_for_worker_threads, worker_tasks
from memslice_conformance.profiles.registry import (
    CheckInfo,
    NotChecked,
    register_check,
    untraced,
)

__all__ = [
    "MAX_PROBE_TRIALS",
    "PROBE_SIZES",
    "REUSE",
    "TRIM",
    "check_reuse",
    "check_trim",
    "trim_scenario",
]

#: GLib's known-pages bound: at least the largest magazine (1024 chunks).
MAX_PROBE_TRIALS: Final = 1031
PROBE_SIZES: Final = (24, 97, 265, 347, 1000)

REUSE: Final = CheckInfo(
    "reuse",
    "reuse",
    ("MAG-010",),
    "custom",
    "a freed block returns within 1031 allocations, also to a thread started after an exit",
)
TRIM: Final = CheckInfo(
    "trim",
    "reuse",
    ("DEPOT-009", "DEPOT-010"),
    "custom",
    "expired depot memory is released by a later push; unexpired memory is retained",
)


def _call(session: Session, request: Request) -> int:
    [response] = session.run([request])
    result = response.get("result")
    if not response.get("ok") or not isinstance(result, int):
        raise Violation(("MAG-010",), f"{request} answered {response}")
    return result


def _probe(session: Session, size: int, freeing: str, probing: str, exit_first: bool) -> int:
    """Index (1-based) at which the freed block came back, or 0 if it did not."""
    # The pin keeps the block's slab alive: an allocator may return a slab
    # that became empty to the system (SLAB-007), and then nothing comes back.
    _call(session, {"op": "alloc", "size": size, "thread": freeing})
    block = _call(session, {"op": "alloc", "size": size, "thread": freeing})
    session.run([{"op": "free1", "size": size, "addr": block, "thread": freeing}])
    if exit_first:
        before = worker_tasks(session)
        session.run([{"op": "thread_exit", "thread": freeing}])
        # GLib's exit cleanup runs after the join, in a pthread key destructor.
        wait_for_worker_threads(session, before, departed=True)
    answers = session.run([{"op": "alloc", "size": size, "thread": probing}] * MAX_PROBE_TRIALS)
    for index, answer in enumerate(answers, 1):
        if answer.get("result") == block:
            return index
    return 0


def _calls(size: int, exit_first: bool) -> str:
    """The probe's calls as C-like lines (RUN-014)."""
    calls = (f"pin = g_slice_alloc({size}); x = g_slice_alloc({size}); "
             f"g_slice_free1({size}, x);")
    if exit_first:
        return (f"on thread a: {calls} pthread_exit(); on thread b: "
                f"{MAX_PROBE_TRIALS} x g_slice_alloc({size}), none returned x")
    return f"{calls} {MAX_PROBE_TRIALS} x g_slice_alloc({size}), none returned x"


def check_reuse(impl: Implementation, seed: int, max_examples: int) -> None:
    """The ``reuse`` check (see the module doc); deterministic: the seed only
    goes into the rerun command of a failure (RUN-014)."""
    del max_examples
    factory = SessionFactory(impl)
    problems = []
    try:
        for size in PROBE_SIZES:
            for label, freeing, probing, exit_first in (
                ("same thread", "a", "a", False),
                ("new thread after the freeing thread exited", "a", "b", True),
            ):
                session = factory.open()
                try:
                    found = _probe(session, size, freeing, probing, exit_first)
                finally:
                    session.close()
                if not found:
                    problems.append(
                        f"size {size}, {label}: the freed block did not come back within "
                        f"{MAX_PROBE_TRIALS} allocations ({_calls(size, exit_first)})"
                    )
    finally:
        factory.close()
    if problems:
        raise Violation(REUSE.clauses, untraced(
            "; ".join(problems), impl.spec, REUSE.name, seed,
            "that a freed address comes back within a bound is not a property of single "
            "calls that a trace's checker states"))


def _on_thread(name: str, job: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            job()
        except BaseException as exc:  # re-raised on the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def trim_scenario(advance_ms: int) -> tuple[int, int]:
    """Mapped bytes (before, after) the late frees, with the clock moved ``advance_ms``.

    Runs on a fresh reference allocator with an injected clock (see the module doc).
    """
    import memslice
    from memslice.tunables import GLIB_2_74

    now = [1_000_000]
    allocator = memslice.Allocator(GLIB_2_74, environ={}, clock=lambda: now[0])
    held: list[int] = []

    def holder() -> None:
        held.extend(allocator.alloc(40) for _ in range(400))

    def churn() -> None:
        blocks = [allocator.alloc(40) for _ in range(5000)]
        for block in blocks:
            allocator.free1(40, block)
        allocator.thread_exit()

    def late_frees() -> None:
        for block in held:
            allocator.free1(40, block)

    try:
        _on_thread("reuse-holder", holder)
        _on_thread("reuse-churn", churn)
        before = allocator.snapshot().totals.mapped
        now[0] += advance_ms
        _on_thread("reuse-late", late_frees)
        after = allocator.snapshot().totals.mapped
    finally:
        allocator.close()
    return before, after


_TRIM_WHY: Final = ("it needs the reference's injected clock, and what is mapped is not "
                    "something a trace's checker states")


def check_trim(impl: Implementation, seed: int, max_examples: int) -> None:
    """The ``trim`` check (see the module doc)."""
    del max_examples
    if impl.spec != "reference":
        raise NotChecked(
            "expiring the working set needs the reference's injectable clock; GLib would "
            "need a 15 s sleep per probe (DEPOT-007), so this is not checked in bounded time"
        )
    from memslice.tunables import GLIB_2_74

    kept_before, kept_after = trim_scenario(0)
    if kept_after < kept_before:
        raise Violation(
            ("DEPOT-009",),
            untraced(f"unexpired depot memory was released: mapped {kept_before} -> "
                     f"{kept_after}", impl.spec, TRIM.name, seed, _TRIM_WHY),
        )
    before, after = trim_scenario(GLIB_2_74.working_set_msecs + 1000)
    if not after < before:
        raise Violation(
            ("DEPOT-010",),
            untraced(f"expired depot memory stayed mapped after later pushes: {before} -> "
                     f"{after}", impl.spec, TRIM.name, seed, _TRIM_WHY),
        )


register_check(REUSE, check_reuse)
register_check(TRIM, check_trim)
