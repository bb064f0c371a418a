"""Fault injection: a page source, a system malloc and a clock that fail on cue.

Rules and theory of operation
-----------------------------
The allocator's OS-facing pieces are injectable (PY-014).  This module wraps
each of them so that a test decides, call by call, whether the OS says no::

    Allocator(page_source=FailingPageSource(BuddyPageSource(Arena(n)), fail_at(3)),
              system_malloc=FailingMalloc(trigger=fail_from(10)),
              clock=FailingClock(inner=my_clock))
                        │
          every call ──▶ wrapper: calls += 1 ──▶ trigger(calls)? ──yes──▶ failures += 1,
                        │                         or armed?              log it, raise
                        │                                   ──no───▶ pass to the inner object

* A **trigger** is any ``Callable[[int], bool]``, asked with the 1-based
  number of the call about to happen: :func:`fail_at` (those calls),
  :func:`fail_from` (that call and every later one), :func:`never`.
  Predicates of your own work too (e.g. "every page of 8192 bytes", by closing
  over a wrapper's ``last_argument``).
* **Arming**: ``wrapper.arm(k)`` makes the next ``k`` calls fail whatever the
  trigger says; ``wrapper.disarm()`` cancels.  State machines use this to
  inject a failure exactly where the next step will need memory.
* **Refusals**: the page source's ``allocate`` and the malloc's ``malloc``
  raise :class:`~memslice.errors.SliceMemoryError` (what a real refusal
  raises, PY-005) and touch nothing underneath.  Releases (``release``,
  ``free``) are never failed -- C's ``free`` cannot fail -- but are counted.
* **Clock failures**: :class:`FailingClock` raises :class:`ClockError`, an
  ``OSError`` like a failing ``clock_gettime``; the depot treats it as an
  unreadable clock and keeps its last stamp (PY-019).

Invariants: ``failures <= calls``; a failed call never reaches the inner
object; every failure is recorded in ``log`` as a :class:`Fault` (call
number, the wrapped operation, its argument).  Counters are guarded by a lock
because the allocator calls these objects from many threads (PY-021).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import SliceMemoryError
from .pages import Arena, MallocSource, PageSource, SystemMalloc

__all__ = [
    "ClockError",
    "FailingClock",
    "FailingMalloc",
    "FailingPageSource",
    "Fault",
    "FaultInjector",
    "Trigger",
    "fail_at",
    "fail_from",
    "never",
]

Trigger = Callable[[int], bool]
"""Asked with the 1-based number of the call about to happen; True makes it fail."""


def never(call: int) -> bool:
    """The trigger that never fails a call (the default)."""
    return False


def fail_at(*calls: int) -> Trigger:
    """A trigger failing exactly the calls numbered ``calls`` (1-based)."""
    chosen = frozenset(calls)
    return lambda call: call in chosen


def fail_from(first: int) -> Trigger:
    """A trigger failing call number ``first`` and every call after it."""
    return lambda call: call >= first


class ClockError(OSError):
    """The injected clock could not be read (a stand-in for ``clock_gettime`` failing)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure: which call, of what, with which argument (0 if none)."""

    call: int
    operation: str
    argument: int


class FaultInjector:
    """Call counting, triggers and arming shared by the three wrappers."""

    def __init__(self, trigger: Trigger = never) -> None:
        self.trigger = trigger
        self.calls = 0
        self.failures = 0
        self.armed = 0
        self.last_argument = 0
        self.log: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, count: int = 1) -> None:
        """Make the next ``count`` calls fail, whatever the trigger says."""
        with self._lock:
            self.armed = count

    def disarm(self) -> None:
        """Cancel failures armed with :meth:`arm` that have not happened yet."""
        with self._lock:
            self.armed = 0

    def _should_fail(self, operation: str, argument: int) -> bool:
        """Count one call and decide (and log) whether it fails."""
        with self._lock:
            self.calls += 1
            self.last_argument = argument
            fail = self.armed > 0 or self.trigger(self.calls)
            if self.armed > 0:
                self.armed -= 1
            if fail:
                self.failures += 1
                self.log.append(Fault(self.calls, operation, argument))
            return fail


class FailingPageSource(FaultInjector):
    """A :class:`~memslice.pages.PageSource` whose ``allocate`` refuses on cue."""

    def __init__(self, inner: PageSource, trigger: Trigger = never) -> None:
        super().__init__(trigger)
        self.inner = inner
        self.arena: Arena = inner.arena
        self.releases = 0

    @property
    def live(self) -> object:
        """The inner source's live-page table, if it has one."""
        return getattr(self.inner, "live", None)

    def is_live_block(self, address: int) -> bool:
        """The inner source's answer, if it keeps one (the checker asks it); else True."""
        ask = getattr(self.inner, "is_live_block", None)
        return True if ask is None else bool(ask(address))

    @property
    def mapped_bytes(self) -> int:
        """The inner source's mapped bytes (INTRO-002)."""
        return self.inner.mapped_bytes

    def allocate(self, page_size: int) -> int:
        """A page from the inner source, or :class:`SliceMemoryError` when told to fail."""
        if self._should_fail("allocate", page_size):
            raise SliceMemoryError(
                f"injected fault: page source refused a {page_size}-byte page (PY-021)"
            )
        return self.inner.allocate(page_size)

    def release(self, address: int) -> None:
        """Pass the release through (never failed: ``free`` cannot fail)."""
        with self._lock:
            self.releases += 1
        self.inner.release(address)


class FailingMalloc(FaultInjector):
    """A :class:`~memslice.pages.MallocSource` whose ``malloc`` refuses on cue."""

    def __init__(self, inner: MallocSource | None = None, trigger: Trigger = never) -> None:
        super().__init__(trigger)
        self.inner: MallocSource = inner if inner is not None else SystemMalloc()
        self.frees = 0

    def malloc(self, size: int) -> int:
        """A block from the inner malloc, or :class:`SliceMemoryError` when told to fail."""
        if self._should_fail("malloc", size):
            raise SliceMemoryError(f"injected fault: system malloc refused {size} bytes (PY-021)")
        return self.inner.malloc(size)

    def free(self, address: int) -> None:
        """Pass the free through (never failed)."""
        with self._lock:
            self.frees += 1
        self.inner.free(address)


class FailingClock(FaultInjector):
    """A millisecond clock that raises :class:`ClockError` on cue.

    ``inner`` is the real clock (default: a still clock at ``start``);
    ``now`` can be moved by hand when there is no inner clock.
    """

    def __init__(
        self,
        inner: Callable[[], int] | None = None,
        trigger: Trigger = never,
        *,
        start: int = 0,
    ) -> None:
        super().__init__(trigger)
        self.inner = inner
        self.now = start

    def advance(self, msecs: int) -> None:
        """Move the built-in clock on (only meaningful without ``inner``)."""
        self.now += msecs

    def __call__(self) -> int:
        """The time in milliseconds, or :class:`ClockError` when told to fail."""
        if self._should_fail("clock", 0):
            raise ClockError("injected fault: the clock cannot be read (PY-021)")
        return self.inner() if self.inner is not None else self.now
