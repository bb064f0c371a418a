"""Implementations that misbehave at the protocol level, for the suite's robustness.

Rules and theory of operation
-----------------------------
Issue 5 asks that an implementation returning garbage be *reported*, never
crash or stall the runner.  Each class here answers every call, but with
something no slice allocator may return::

    ReturnsText       alloc returns a string instead of an address
    SameAddress       every alloc returns the same (real) address
    NegativeAddress   alloc returns the same negative number every time

They reuse the correct ``ArenaAllocator`` for everything else.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pyimpls import ArenaAllocator


class ReturnsText(ArenaAllocator):
    name = "returns-text"
    BREAKS: ClassVar[tuple[str, ...]] = ("API-001",)

    def alloc(self, size: int) -> Any:
        return "0xdeadbeef" if size else 0


class SameAddress(ArenaAllocator):
    name = "same-address"
    BREAKS: ClassVar[tuple[str, ...]] = ("API-004",)

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self._only = super().alloc(8192)

    def alloc(self, size: int) -> int:
        return self._only if size else 0

    def alloc0(self, size: int) -> int:
        address = self.alloc(size)
        if address:
            self.write(address, bytes(size))
        return address

    def free1(self, size: int, address: int) -> None:
        return None


class NegativeAddress(ArenaAllocator):
    name = "negative-address"
    BREAKS: ClassVar[tuple[str, ...]] = ("API-004",)

    def alloc(self, size: int) -> int:
        return -16 if size else 0


MISBEHAVING = (ReturnsText, SameAddress, NegativeAddress)
