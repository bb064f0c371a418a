"""Shared helpers for the issue 4 profile tests: test-only implementations.

Each class here plants one departure from a profile, so each profile's test
can show that the suite rejects it and names the right clause.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

from pyimpls import ArenaAllocator

import memslice
from memslice import records
from memslice.tunables import GLIB_2_74
from memslice_conformance.impl.impls import ALL_PROFILES, Implementation, python_impl
from memslice_conformance.runner import Report, run_conformance


def claiming(impl: Implementation, *profiles: str) -> Implementation:
    """``impl`` with extra claimed profiles (a test shim: it does not change behaviour)."""
    return dataclasses.replace(impl, profiles=impl.profiles | frozenset(profiles))


def failed_clauses(report: Report, check: str) -> tuple[str, ...]:
    """The clauses a failed check named (empty if it passed)."""
    [result] = [c for c in report.checks if c.name == check]
    return () if result.failure is None else result.failure.clauses


def run_check(impl: str | Implementation, profile: str, check: str) -> Report:
    return run_conformance(impl, profiles=[profile], checks=[check], max_examples=20)


class ClaimsAll(ArenaAllocator):
    """A correct allocator that claims every profile without being GLib."""

    name = "claims-all"
    profiles = ALL_PROFILES


class IgnoresBadFrees(ArenaAllocator):
    """Claims debug-blocks but lets double, foreign and interior frees through."""

    name = "ignores-bad-frees"
    profiles = ALL_PROFILES

    def free1(self, size: int, addr: int, /) -> None:
        with contextlib.suppress(ValueError):
            super().free1(size, addr)


class Racy(ArenaAllocator):
    """No lock, and a free list read-then-pop that Python threads interleave."""

    name = "racy"
    profiles = frozenset({"core", "concurrency"})

    def __init__(self) -> None:
        super().__init__()
        self._lock = contextlib.nullcontext()  # type: ignore[assignment]

    def _take(self, chunk: int) -> int:
        free = self._free.get(chunk)
        if free:
            addr = free[-1]
            time.sleep(0.0002)  # lets another thread take the same block
            with contextlib.suppress(ValueError):
                free.remove(addr)
            return addr
        return self._carve(chunk)


class NeverReuses(ArenaAllocator):
    """Freed blocks are forgotten: nothing ever comes back (breaks MAG-010)."""

    name = "never-reuses"
    profiles = ALL_PROFILES

    def _give(self, chunk: int, addr: int) -> None:
        del chunk, addr


def reference_variant(name: str, **tunables: int) -> Implementation:
    """The reference with changed tunables, claiming everything (e.g. colour increment 0)."""
    changed = records.replace(GLIB_2_74, **tunables)

    def make() -> memslice.Allocator:
        return memslice.Allocator(changed, environ={})

    return claiming(python_impl(make, name), *ALL_PROFILES)
