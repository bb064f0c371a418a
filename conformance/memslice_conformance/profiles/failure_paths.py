"""The ``failure_paths`` check: allocations that really fail (API-001).

Rules and theory of operation
-----------------------------
API-001 says a nonzero request never gets NULL: an allocation that cannot
be satisfied stops the program or raises an error.  No other check makes an
allocation fail, so this one does, each scenario in a fresh session because
the right answer may be the end of the process::

    huge       alloc(2**62): more than any machine has (and alloc0(2**62) for
               in-process implementations, where a try costs no process)
    exhausted  (worker processes only) the worker lowers its own address-space
               cap to what it maps now + 64 MiB, then allocates 1000-byte
               blocks until the allocator runs out (slab pages that cannot
               be mapped); blocks are kept so nothing can be reused

    answer                                       verdict
    the process stops (signal or exit status)    the failure path ran: fine
    an error answer from a Python allocator      fine (a clean error, PY-005)
    NULL handed back as a success                API-001 fails
    an address (the request was satisfied)       the path did not run
    no answer within 5 s                         the path did not run (a program
                                                 that doubles its arena is slow to
                                                 run out); alloc0 is then skipped

An error answer from a native library during ``exhausted`` is the worker's
own Python running out first, not the library's answer: that scenario then
counts as not reached.  When no scenario made an allocation fail, API-001's
failure path stays unexercised: the check is ``not-checked`` with what each
scenario did, and so is the clause.
"""

from __future__ import annotations

from typing import Final

from memslice_conformance.checks import coverage
from memslice_conformance.failures import ImplCrash, ImplHang, Violation
from memslice_conformance.impl.impls import Implementation
from memslice_conformance.impl.jsonl import JSONValue, Request
from memslice_conformance.impl.session import SessionFactory
from memslice_conformance.profiles.registry import (
    CheckInfo,
    NotChecked,
    register_check,
    untraced,
)

__all__ = ["HUGE", "INFO", "check_failure_paths"]

#: A request no machine can satisfy (and under the worker's cap, never).
HUGE: Final = 1 << 62
_HEADROOM: Final = 64 << 20
_EXHAUST_SIZE: Final = 1000
#: A real allocator refuses 2**62 bytes at once; past this the path counts as not reached.
_DEADLINE: Final = 5.0
#: Enough 1000-byte blocks to use the headroom twice over.
_EXHAUST_COUNT: Final = 2 * _HEADROOM // _EXHAUST_SIZE

INFO: Final = CheckInfo(
    "failure_paths",
    "core",
    ("API-001",),
    "custom",
    "allocations that cannot be satisfied (2**62 bytes; slab pages under a lowered "
    "address-space cap) must stop the program or raise, never return NULL",
)


_WHY_HUGE: Final = ("a correct allocator answers this call by stopping the process, which "
                    "a replay would report as a crash")
_WHY_CAPPED: Final = "it needs the worker's lowered address-space cap (RLIMIT_AS)"


def _scenarios(impl: Implementation) -> list[tuple[str, list[Request]]]:
    out: list[tuple[str, list[Request]]] = [(f"alloc({HUGE})", [{"op": "alloc", "size": HUGE}])]
    if impl.kind == "in-process":
        # Free to try here; in a worker each scenario costs a process.
        out.append((f"alloc0({HUGE})", [{"op": "alloc0", "size": HUGE}]))
        return out
    steps: list[JSONValue] = [
        {"do": "cap_memory", "headroom": _HEADROOM},
        {"do": "exhaust", "size": _EXHAUST_SIZE, "count": _EXHAUST_COUNT},
    ]
    out.append((
        f"{_EXHAUST_SIZE}-byte blocks under a memory cap 64 MiB above the worker's size",
        [{"op": "bulk", "steps": steps}],
    ))
    return out


def check_failure_paths(impl: Implementation, seed: int, max_examples: int) -> None:
    """The ``failure_paths`` check (see the module doc)."""
    native = impl.spec.split(":")[0] in ("lib", "glib", "malloc")
    factory = SessionFactory(impl, deadline=_DEADLINE)
    unreached: list[str] = []
    reached = huge_hung = False
    try:
        for label, requests in _scenarios(impl):
            bulk = requests[0]["op"] == "bulk"
            if not bulk and huge_hung:
                continue
            session = factory.open()
            try:
                answers = session.run(requests)
            except ImplCrash:
                # The process stopped: the allowed outcome of a failed allocation.
                reached = True
                continue
            except ImplHang:
                # Still trying after the deadline (a program that grows its arena by
                # doubling it takes long to run out): the failure was not reached.
                unreached.append(f"{label} still unanswered after {_DEADLINE:.0f} s")
                huge_hung = huge_hung or not bulk
                continue
            finally:
                session.close()
            [answer] = answers
            if not answer.get("ok"):
                if bulk and (native or "bulk" in str(answer.get("error"))):
                    # Our own Python ran out first, or the program has no bulk op.
                    unreached.append(f"{label}: {answer.get('error')}")
                    continue
                reached = True  # a clean error
                continue
            result = answer.get("result")
            if bulk:
                found = result.get("violation") if isinstance(result, dict) else None
                if isinstance(found, dict):
                    raise Violation(("API-001",), untraced(
                        f"{label}: {found.get('detail')}", impl.spec, INFO.name, seed,
                        _WHY_CAPPED))
                unreached.append(f"{label}: the allocator never ran out")
                continue
            if result in (0, None):
                raise Violation(("API-001",), untraced(
                    f"call 1: g_slice_{label} returned NULL for a nonzero size as a success",
                    impl.spec, INFO.name, seed, _WHY_HUGE))
            unreached.append(f"{label} returned an address")
    finally:
        factory.close()
    if not reached:
        raise NotChecked("no allocation could be made to fail: " + "; ".join(unreached))
    coverage.exercised("API-001", "failure")


register_check(INFO, check_failure_paths)
