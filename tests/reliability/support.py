"""Shared pieces of the reliability tests: snapshot comparison, fault tallies, RSS, the LCG.

* :func:`comparable` strips from a snapshot the records PY-020 allows a
  refused allocation to change (contention bookkeeping, a thread's fresh empty
  magazines), so "the allocator is unchanged" becomes one ``==``.
* :data:`TALLY` counts injected faults by point of failure across every test
  of the session; the slow summary test and the soak print it.
* :data:`FIGURES` gathers, by heading, the lines of the reliability summary
  that ``tox -e soak`` prints at the end of the session (``conftest.py``):
  load held, faults survived, bad inputs tried, orphans left, peak memory.
* :func:`rss_bytes` reads the process's resident set from ``/proc/self/statm``;
  :func:`peak_rss_bytes` the runner's high-water mark (``ru_maxrss``).
* :class:`Lcg` is GLib's memory-hammer generator (API-020):
  ``rand = 1664525 * rand + 1013904223`` modulo 2**32.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from collections import Counter, defaultdict
from typing import Final

from memslice.snapshot import AllocatorSnapshot

TALLY: Final[Counter[str]] = Counter()
"""Faults injected and survived in this session, by point of failure."""

FIGURE_HEADINGS: Final = (
    "load held",
    "faults injected and survived",
    "bad inputs tried",
    "orphans left",
    "peak runner memory",
)
"""The summary's sections, in the order the issue names them."""

FIGURES: Final[defaultdict[str, list[str]]] = defaultdict(list)
"""Lines of the end-of-session reliability summary, by heading (one of FIGURE_HEADINGS)."""


def record(heading: str, line: str) -> None:
    """Add ``line`` under ``heading`` to the summary printed when the session ends."""
    assert heading in FIGURE_HEADINGS, heading
    FIGURES[heading].append(line)


def comparable(snapshot: AllocatorSnapshot) -> AllocatorSnapshot:
    """``snapshot`` without the records a refused call may change (PY-020).

    The depot lock's contention counting (CONT-002: ``mutex_counter``, each
    class's counter and the threshold derived from it) records an acquisition
    that did happen; a thread that never held a chunk has nothing to compare.
    """
    return dataclasses.replace(
        snapshot,
        mutex_counter=0,
        threads=tuple(thread for thread in snapshot.threads if thread.magazines),
        classes=tuple(
            dataclasses.replace(size_class, contention_counter=0, threshold=0)
            for size_class in snapshot.classes
        ),
    )


def rss_bytes() -> int:
    """The process's resident set size in bytes (``/proc/self/statm``, field 2)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The runner process's peak resident set in bytes (``ru_maxrss`` of RUSAGE_SELF, KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Lcg:
    """GLib's memory-hammer random numbers (32-bit LCG, API-020)."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFF

    def next(self) -> int:
        """The next 32-bit value."""
        self.state = (1664525 * self.state + 1013904223) & 0xFFFFFFFF
        return self.state
