"""The ``debug-blocks`` profile: six bad releases, each caught with GLib's exact text.

Rules and theory of operation
-----------------------------
Every case runs in a fresh session (a fresh worker process for native code,
because GLib answers by aborting).  The implementation runs in its
debug-blocks mode: ``glib`` and ``reference`` are switched to
``G_SLICE=debug-blocks``, a ``lib:`` library gets ``G_SLICE=debug-blocks`` in
its environment, anything else is taken as it is::

    case               setup, then the bad release       expected text (DEBUG-007)
    double-free        a = alloc(24); free1(24, a);      non-allocated block: a size=24
                       free1(24, a)
    never-handed-out   b = alloc(2000); free1(24, b+1024) non-allocated block: b+1024 size=24
    interior           a = alloc(24); free1(24, a+8)     non-allocated block: a+8 size=24
    wrong-size-slab    a = alloc(24); free1(17, a)       invalid size: a size=24
                                                         invalid-size=17
    wrong-size-malloc  a = alloc(5000); free1(4999, a)   invalid size: a size=5000
                                                         invalid-size=4999
    chain-wrong-size   a = alloc(24); *a = NULL;         invalid size: a size=24
                       free_chain_with_offset(17, a, 0)  invalid-size=17

The never-handed-out address lies inside memory the implementation owns
(the middle of a large block), so an implementation that lets it through
cannot crash the suite's own process.  Accepted outcomes: the process dies
of SIGABRT with the line on stderr (DEBUG-008), or the op answers with an
error whose message is exactly the line (PY-level typed exception).  Any
other outcome, including a silent success, fails the case's clauses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from memslice_conformance.failures import ImplCrash, ImplFailure, Violation
from memslice_conformance.impl.impls import Implementation, resolve
from memslice_conformance.impl.jsonl import JSONValue, Request
from memslice_conformance.impl.session import Session, SessionFactory
from memslice_conformance.profiles.registry import CheckInfo, register_check, untraced

__all__ = [
    "CASES",
    "INFO",
    "Case",
    "calls_of",
    "check_debug_blocks",
    "debug_variant",
    "invalid_size",
    "non_allocated",
]


def non_allocated(address: int, size: int) -> str:
    """GLib's text for a release of an address it does not have on record (DEBUG-007)."""
    return f"GSlice: MemChecker: attempt to release non-allocated block: {address:#x} size={size}"


def invalid_size(address: int, recorded: int, passed: int) -> str:
    """GLib's text for a release with the wrong size (DEBUG-005, DEBUG-007)."""
    return (
        "GSlice: MemChecker: attempt to release block with invalid size: "
        f"{address:#x} size={recorded} invalid-size={passed}"
    )


@dataclass(frozen=True, slots=True)
class Case:
    """One bad release: allocate ``setup_size``, then release as ``bad`` says."""

    name: str
    clauses: tuple[str, ...]
    setup_size: int
    #: (block address) -> (free1 size, free1 address, expected message)
    bad: Callable[[int], tuple[int, int, str]]
    free_first: bool = False
    #: Release through ``free_chain_with_offset`` (a one-node chain) instead of free1.
    chain: bool = False


CASES: Final = (
    Case("double-free", ("DEBUG-003",), 24, lambda a: (24, a, non_allocated(a, 24)), True),
    Case(
        "never-handed-out",
        ("DEBUG-004",),
        2000,
        lambda b: (24, b + 1024, non_allocated(b + 1024, 24)),
    ),
    Case("interior", ("DEBUG-004",), 24, lambda a: (24, a + 8, non_allocated(a + 8, 24))),
    Case("wrong-size-slab", ("DEBUG-005",), 24, lambda a: (17, a, invalid_size(a, 24, 17))),
    Case(
        "wrong-size-malloc",
        ("DEBUG-005", "DEBUG-006"),
        5000,
        lambda a: (4999, a, invalid_size(a, 5000, 4999)),
    ),
    Case(
        "chain-wrong-size",
        ("DEBUG-002", "DEBUG-005"),
        24,
        lambda a: (17, a, invalid_size(a, 24, 17)),
        chain=True,
    ),
)

_ALL_CLAUSES: Final = (
    "DEBUG-002",
    "DEBUG-003",
    "DEBUG-004",
    "DEBUG-005",
    "DEBUG-006",
    "DEBUG-007",
    "DEBUG-008",
)

INFO: Final = CheckInfo(
    "debug_blocks",
    "debug-blocks",
    _ALL_CLAUSES,
    "custom",
    "double free, unknown and interior pointers, wrong sizes (slab, malloc, chain)",
)


def calls_of(case: Case) -> str:
    """The case's calls as C-like lines, the block named ``a`` (RUN-014)."""
    probe = 1 << 20  # any address: only the offset of the bad release matters
    size, target, _ = case.bad(probe)
    where = "a" if target == probe else f"(char *)a + {target - probe}"
    lines = [f"a = g_slice_alloc({case.setup_size});"]
    if case.free_first:
        lines.append(f"g_slice_free1({case.setup_size}, a);")
    if case.chain:
        lines += [f"*(void **)({where}) = NULL;",
                  f"g_slice_free_chain_with_offset({size}, {where}, 0);"]
    else:
        lines.append(f"g_slice_free1({size}, {where});")
    return " ".join(lines) + "  // the last call must be refused with GLib's text"


_WHY: Final = ("its last call releases a block that is not live, which a trace refuses "
               "(RUN-002), and must abort with GLib's text")


def debug_variant(impl: Implementation) -> Implementation:
    """``impl`` in its debug-blocks mode, keeping its claims."""
    head, _, _ = impl.spec.partition(":")
    if head in ("glib", "reference"):
        return replace(resolve(f"{head}:debug-blocks"), profiles=impl.profiles)
    if head == "lib":
        return replace(impl, env={**impl.env, "G_SLICE": "debug-blocks"})
    return impl


def _one(session: Session, request: Request) -> JSONValue:
    [response] = session.run([request])
    if not response.get("ok"):
        raise _Answered(response.get("error"))
    return response.get("result")


class _Answered(Exception):
    """The op answered with an error (the outcome a Python implementation gives)."""

    def __init__(self, error: JSONValue) -> None:
        message = error.get("message", "") if isinstance(error, dict) else error
        etype = error.get("type", "?") if isinstance(error, dict) else "?"
        super().__init__(f"{etype}: {message}")
        self.message = str(message)


def _run_case(factory: SessionFactory, case: Case) -> str | None:
    """None if the case was caught as GLib catches it, else what went wrong."""
    session = factory.open()
    expected = "?"
    try:
        address = _one(session, {"op": "alloc", "size": case.setup_size})
        if not isinstance(address, int) or address == 0:
            return f"setup alloc({case.setup_size}) returned {address!r}"
        if case.free_first:
            _one(session, {"op": "free1", "size": case.setup_size, "addr": address})
        size, target, expected = case.bad(address)
        if case.chain:
            _one(session, {"op": "write", "addr": target, "data": bytes(8).hex()})
            _one(
                session,
                {"op": "free_chain_with_offset", "size": size, "head": target, "next_offset": 0},
            )
            return (
                f"free_chain_with_offset({size}, {target:#x}, 0) went through; "
                f"expected {expected!r}"
            )
        _one(session, {"op": "free1", "size": size, "addr": target})
        return f"free1({size}, {target:#x}) went through; expected {expected!r}"
    except _Answered as answered:
        if answered.message.strip() == expected:
            return None
        return f"expected {expected!r}, the implementation raised {answered}"
    except ImplCrash as crash:
        lines = [line.strip() for line in crash.stderr_tail.splitlines()]
        if crash.signal_name == "SIGABRT" and expected in lines:
            return None
        return f"expected SIGABRT with {expected!r} on stderr; got: {crash}"
    except ImplFailure as failure:
        return f"expected {expected!r}; got: {failure}"
    finally:
        session.close()


def check_debug_blocks(impl: Implementation, seed: int, max_examples: int) -> None:
    """The ``debug_blocks`` check (see the module doc); the budget is unused.

    A failure names each case's calls and how to rerun the check: no trace
    can hold a release of a block that is not live (RUN-014).
    """
    del max_examples
    factory = SessionFactory(debug_variant(impl))
    problems: list[tuple[Case, str]] = []
    try:
        for case in CASES:
            problem = _run_case(factory, case)
            if problem is not None:
                problems.append((case, problem))
    finally:
        factory.close()
    if problems:
        clauses = tuple(sorted({c for case, _ in problems for c in case.clauses}))
        message = "; ".join(f"{case.name} ({calls_of(case)}): {problem}"
                            for case, problem in problems)
        raise Violation((*clauses, "DEBUG-007"),
                        untraced(message, impl.spec, INFO.name, seed, _WHY))


register_check(INFO, check_debug_blocks)
