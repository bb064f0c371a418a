"""Python implementations that misbehave in the ways only Python code can (RUN-003, RUN-005).

Each is an :class:`~pyimpls.ArenaAllocator` (correct) with one hostile twist
the runner must report as a failure of the running check (never a pass, never
a traceback or a silent exit), or, for the sleeping factory, a load that
times out::

    ExitsOnFree        free1 raises SystemExit(0): once a false "pass"
    InterruptsOnFree   free1 raises KeyboardInterrupt (not the user's Ctrl-C)
    UnprintableError   alloc raises an exception whose __str__ raises
    RecursesOnChain    free_chain_with_offset recurses without end
    sleeping_factory   the factory never returns (resolve() must time out)
    DiesInForkedLane   kills its process with SIGKILL when called in a process
                       forked after it was imported (a parallel lane, RUN-015)
    MisalignsInForkedLane  hands out 4-aligned blocks in such a process only
"""

from __future__ import annotations

import os
import signal
import time

from pyimpls import ArenaAllocator

__all__ = [
    "DiesInForkedLane",
    "ExitsOnFree",
    "InterruptsOnFree",
    "MisalignsInForkedLane",
    "RecursesOnChain",
    "UnprintableError",
    "sleeping_factory",
]


class ExitsOnFree(ArenaAllocator):
    def free1(self, size: int, addr: int, /) -> None:
        raise SystemExit(0)


class InterruptsOnFree(ArenaAllocator):
    def free1(self, size: int, addr: int, /) -> None:
        raise KeyboardInterrupt


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no string for you")


class UnprintableError(ArenaAllocator):
    def alloc(self, size: int, /) -> int:
        if size > 0:
            raise _Unprintable
        return 0


class RecursesOnChain(ArenaAllocator):
    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        self.free_chain_with_offset(size, head, next_offset)


def sleeping_factory() -> ArenaAllocator:
    time.sleep(10_000)
    return ArenaAllocator()


_IMPORTED_IN = os.getpid()


class DiesInForkedLane(ArenaAllocator):
    def alloc(self, size: int, /) -> int:
        if os.getpid() != _IMPORTED_IN:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().alloc(size)


class MisalignsInForkedLane(ArenaAllocator):
    def alloc(self, size: int, /) -> int:
        address = super().alloc(size)
        return address + 4 if address and os.getpid() != _IMPORTED_IN else address
