"""Contention adaptation: magazines grow for size classes whose depot lock is fought over.

Rules and theory of operation
-----------------------------
Only one lock acquisition counts: the depot lock taken when a thread's
magazine runs dry and it asks the depot for a full one (CONT-001).  The lock
is first *tried*; if that fails the thread blocks and the acquisition counts as
contended.  One global counter (``mutex_counter``), shared by all classes and
changed only under the lock, turns the stream of outcomes into per-class
adjustments (CONT-002)::

    contended:    mutex_counter += 1; if it reaches >= 1:  reset, cc[ix] = min(cc + 1, 256)
    uncontended:  mutex_counter -= 1; if it drops < -11:   reset, cc[ix] = max(cc, 1) - 1

So one contended refill raises the class's counter ``cc`` at once ("adapt
quickly") and twelve quiet ones in a row lower it by one ("recover
moderately").  ``cc`` raises the magazine threshold to ``cc * 64 // chunk``
(CONT-004), capped through ``cc <= MAX_MAGAZINE_SIZE`` (CONT-003), so a
magazine never holds much more than 16 KiB.

Whether an acquisition is contended depends on real thread timing; tests
inject it deterministically with a *contention probe*, a callable that is
asked before each try and may declare the acquisition contended (CONT-005, PY-014).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .tunables import MAX_MAGAZINE_SIZE

__all__ = ["ContendedLock", "ContentionProbe"]

ContentionProbe = Callable[[int], bool]
"""Asked with the class index before each counted acquisition; True forces contention."""


class ContendedLock:
    """GLib's ``magazine_mutex`` with ``g_mutex_lock_a`` counting (CONT-001..CONT-005)."""

    def __init__(self, n_classes: int, probe: ContentionProbe | None = None) -> None:
        self.lock = threading.Lock()
        self.counters = [0] * n_classes
        self.mutex_counter = 0
        self.probe = probe

    def acquire_counted(self, index: int) -> bool:
        """Acquire, update the counters for class ``index``; return whether it was contended."""
        forced = self.probe is not None and self.probe(index)
        if not forced and self.lock.acquire(blocking=False):
            contended = False
        else:
            self.lock.acquire()
            contended = True
        counters = self.counters
        if contended:
            self.mutex_counter += 1
            if self.mutex_counter >= 1:
                self.mutex_counter = 0
                counters[index] = min(counters[index] + 1, MAX_MAGAZINE_SIZE)
        else:
            self.mutex_counter -= 1
            if self.mutex_counter < -11:
                self.mutex_counter = 0
                counters[index] = max(counters[index], 1) - 1
        return contended
