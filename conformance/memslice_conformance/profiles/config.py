"""The ``config`` profile: the optional configuration API behaves as both GLibs allow.

Rules and theory of operation
-----------------------------
The configuration API (``g_slice_set_config``, ``g_slice_get_config``,
``g_slice_get_config_state``) is optional (LOAD-003): an implementation that
offers all three claims ``config`` and is held to CONF-002, CONF-004,
CONF-010 and CONF-011 here; its ``core`` verdict never depends on them.
One deterministic program on a fresh session, through the same
:class:`~memslice_conformance.checks.model.Checker` as every core check (so a
failure is a replayable trace)::

    before any block     get_config(0, 7, 8, 99, 1000) == 0        CONF-010
                         get_config(1..6) is an integer           CONF-002
                         get_config_state(k != 6, a) is NULL      CONF-011
                         get_config_state(6, ix): NULL or 3 ints  CONF-010
    first use            alloc/alloc0 blocks of a few sizes, stamped
    late set_config      keys 1..4, values 0, 1, 7, 100000, -1:
                         get_config(key) unchanged around it      CONF-004
                         every live block unchanged               API-005
    still in use         the unknown-key and state answers again, a late
                         set_config on another thread, more blocks, free all

Both GLibs pass: 2.74 refuses a late ``set_config`` with a critical warning
and changes nothing, 2.76 ignores it.  An allocator whose ``set_config``
still changes a value after the first allocation fails CONF-004 here, and
only here.
"""

from __future__ import annotations

from typing import Final

from memslice_conformance.checks.model import Checker, Op
from memslice_conformance.impl.impls import Implementation
from memslice_conformance.impl.session import SessionFactory
from memslice_conformance.profiles.registry import CheckInfo, register_check

__all__ = ["CONFIG", "check_config", "config_program"]

CONFIG: Final = CheckInfo(
    "config",
    "config",
    ("CONF-002", "CONF-004", "CONF-010", "CONF-011"),
    "custom",
    "the optional configuration API: key values, unknown keys, state shape, late set_config",
)

_UNKNOWN_KEYS: Final = (0, 7, 8, 99, 1000)
_KNOWN_KEYS: Final = (1, 2, 3, 4, 5, 6)
_STATE_KEYS: Final = (0, 1, 2, 3, 4, 5, 7)
_CONTENTION_INDEXES: Final = (0, 1, 2, 7)
_LATE_VALUES: Final = (0, 1, 7, 100000, -1)


def _queries() -> list[Op]:
    ops: list[Op] = [{"op": "get_config", "key": k} for k in _UNKNOWN_KEYS]
    ops += [{"op": "get_config_known", "key": k} for k in _KNOWN_KEYS]
    ops += [
        {"op": "get_config_state", "key": k, "address": a}
        for k in _STATE_KEYS
        for a in (0, 1, 62)
    ]
    ops += [{"op": "get_config_contention", "address": ix} for ix in _CONTENTION_INDEXES]
    return ops


def _allocate(checker: Checker, sizes: tuple[int, ...], thread: str) -> list[str]:
    handles = [checker.new_handle() for _ in sizes]
    checker.step(
        [
            {"op": "alloc0" if i % 2 else "alloc", "size": size, "as": h, "thread": thread}
            for i, (size, h) in enumerate(zip(sizes, handles, strict=True))
        ]
    )
    checker.step([checker.fill_op(h, thread) for h in handles])
    return handles


def config_program(checker: Checker) -> None:
    """The ``config`` check's program (see the module doc)."""
    checker.step(_queries())
    live = _allocate(checker, (8, 24, 96, 1000, 1009, 5000), "main")
    checker.step(
        [{"op": "set_config_late", "key": k, "value": v} for k in (1, 2, 3, 4)
         for v in _LATE_VALUES]
    )
    checker.step(_queries())
    live += _allocate(checker, (16, 48, 200), "t1")
    checker.step(
        [{"op": "set_config_late", "key": k, "value": 1, "thread": "t1"} for k in (1, 2, 3, 4)]
    )
    checker.step([{"op": "free1", "block": h} for h in live])
    checker.step(_queries())


def check_config(impl: Implementation, seed: int, max_examples: int) -> None:
    """Run :func:`config_program` on a fresh session; deterministic, so seed is unused.

    A failure carries the checker (``exc.checker``), so the runner saves and
    replays its trace like a core check's.
    """
    del seed, max_examples
    factory = SessionFactory(impl)
    session = factory.open()
    checker = Checker(session)
    try:
        config_program(checker)
    except BaseException as exc:
        exc.checker = checker  # type: ignore[attr-defined]
        raise
    finally:
        session.close()
        factory.close()


register_check(CONFIG, check_config)
