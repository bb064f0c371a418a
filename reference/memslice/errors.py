"""Typed errors of the slice allocator, grouped by cause.

Rules and theory of operation
-----------------------------
Every error the reference raises says *who* is at fault, because the remedy
differs (spec clauses PY-001..PY-006)::

    SliceError
     ├── SliceUsageError        the caller broke the contract
     │    ├── (also TypeError)  SliceTypeError: a size/address/offset is not an int
     │    ├── (also ValueError) SliceValueError: negative size, bad offset, bad key
     │    ├── ForeignPointerError: the address was never in this allocator's memory
     │    └── MemCheckError      debug-blocks caught a bad release (DEBUG-003..006)
     │         ├── NonAllocatedBlockError  double free, unknown or interior pointer
     │         └── InvalidSizeError        released with a size other than allocated
     ├── SliceMemoryError (also MemoryError)  the OS refused memory (PY-005)
     └── SliceAssertionError    an internal invariant broke (GLib's ``mem_assert``);
          └── ConsistencyError  the consistency checker found lost or doubled chunks

Callers keep catching the builtin they expect (``TypeError``, ``ValueError``,
``MemoryError``) while tests and tools can tell the causes apart.  Messages that
GLib prints are reproduced to the letter in ``glib_message`` (DEBUG-007).
"""

from __future__ import annotations

__all__ = [
    "ConsistencyError",
    "ForeignPointerError",
    "InvalidSizeError",
    "MemCheckError",
    "NonAllocatedBlockError",
    "SliceAssertionError",
    "SliceError",
    "SliceMemoryError",
    "SliceTypeError",
    "SliceUsageError",
    "SliceValueError",
]


class SliceError(Exception):
    """Base class of every error raised by memslice."""


class SliceUsageError(SliceError):
    """The caller broke the allocator's contract (wrong type, size or pointer)."""


class SliceTypeError(SliceUsageError, TypeError):
    """An argument has the wrong type, e.g. a float size (PY-001)."""


class SliceValueError(SliceUsageError, ValueError):
    """An argument has the right type but an impossible value (PY-002)."""


class ForeignPointerError(SliceUsageError, ValueError):
    """An address that this allocator never handed out memory near (PY-004)."""


class MemCheckError(SliceUsageError):
    """debug-blocks detected a bad release; ``glib_message`` is GLib's stderr line.

    GLib aborts the process after printing the message (DEBUG-008); the reference
    raises instead, before any allocator state has changed.
    """

    def __init__(self, glib_message: str, address: int, size: int) -> None:
        super().__init__(glib_message)
        self.glib_message = glib_message
        self.address = address
        self.size = size


class NonAllocatedBlockError(MemCheckError):
    """Release of an address the checker has no record of (DEBUG-004)."""


class InvalidSizeError(MemCheckError):
    """Release with a size other than the one allocated (DEBUG-005)."""

    def __init__(self, glib_message: str, address: int, size: int, recorded_size: int) -> None:
        super().__init__(glib_message, address, size)
        self.recorded_size = recorded_size


class SliceMemoryError(SliceError, MemoryError):
    """The operating system (page source or system malloc) refused memory (PY-005)."""


class SliceAssertionError(SliceError, AssertionError):
    """An internal invariant failed, as GLib's ``mem_assert`` would report.

    In GLib this prints ``***MEMORY-ERROR***`` and aborts; it can only happen
    after earlier misuse (e.g. a double free without debug-blocks), never in a
    correct program (SLAB-012, FATAL-003).
    """


class ConsistencyError(SliceAssertionError):
    """The consistency checker found a chunk lost, doubled, or miscounted."""
