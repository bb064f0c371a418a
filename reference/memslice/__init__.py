"""memslice: a readable, mmap-backed reference of GLib 2.74's slice allocator.

Rules and theory of operation
-----------------------------
Two ways in, one implementation:

* :class:`Allocator` instances: isolated state (own arena, threads' magazines,
  depot), for tests, teaching and side-by-side comparisons.
* Module functions (``memslice.alloc``, ``free1``, ``new``, ...): GLib's global
  API over one default allocator, created on first use with the GLib 2.74
  profile and the process environment's ``G_SLICE``/``G_DEBUG`` (PY-009).

Addresses are plain ints naming real memory: hand them to ctypes, C code or
``Allocator.view``.  See ``spec/`` for the clauses cited throughout.
"""

from __future__ import annotations

import os
import threading

from . import typed
from .allocator import Allocator
from .config import ConfigWarning, SliceConfig
from .errors import (
    ConsistencyError,
    ForeignPointerError,
    InvalidSizeError,
    MemCheckError,
    NonAllocatedBlockError,
    SliceAssertionError,
    SliceError,
    SliceMemoryError,
    SliceTypeError,
    SliceUsageError,
    SliceValueError,
)
from .tunables import GLIB_2_74, MINIMAL, Tunables

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:
    from _ctypes import _CData
    from typing import TypeVar

    T = TypeVar("T", bound="_CData")

__all__ = [
    "GLIB_2_74",
    "MINIMAL",
    "Allocator",
    "ConfigWarning",
    "ConsistencyError",
    "ForeignPointerError",
    "InvalidSizeError",
    "MemCheckError",
    "NonAllocatedBlockError",
    "SliceAssertionError",
    "SliceConfig",
    "SliceError",
    "SliceMemoryError",
    "SliceTypeError",
    "SliceUsageError",
    "SliceValueError",
    "Tunables",
    "alloc",
    "alloc0",
    "copy",
    "default_allocator",
    "dup",
    "free",
    "free1",
    "free_chain",
    "free_chain_with_offset",
    "get_config",
    "get_config_state",
    "new",
    "new0",
    "set_config",
]

__version__ = "0.1.0"

_default: Allocator | None = None
_default_lock = threading.Lock()


def _reset_default_lock() -> None:
    """A fork child starts with the default allocator's creation lock free (PY-025)."""
    global _default_lock
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_default_lock)


def default_allocator() -> Allocator:
    """The process-wide allocator behind the module functions (PY-009)."""
    global _default
    allocator = _default
    if allocator is None:
        with _default_lock:
            if _default is None:
                _default = Allocator(GLIB_2_74)
            allocator = _default
    return allocator


def alloc(mem_size: int) -> int:
    """``g_slice_alloc`` on the default allocator (API-001)."""
    return default_allocator().alloc(mem_size)


def alloc0(mem_size: int) -> int:
    """``g_slice_alloc0`` on the default allocator (API-002)."""
    return default_allocator().alloc0(mem_size)


def copy(mem_size: int, mem_block: int | bytes) -> int:
    """``g_slice_copy`` on the default allocator (API-003)."""
    return default_allocator().copy(mem_size, mem_block)


def free1(mem_size: int, mem_block: int) -> None:
    """``g_slice_free1`` on the default allocator (API-013)."""
    default_allocator().free1(mem_size, mem_block)


def free_chain_with_offset(mem_size: int, mem_chain: int, next_offset: int) -> None:
    """``g_slice_free_chain_with_offset`` on the default allocator (API-008)."""
    default_allocator().free_chain_with_offset(mem_size, mem_chain, next_offset)


def set_config(ckey: SliceConfig | int, value: int) -> None:
    """``g_slice_set_config`` on the default allocator (CONF-003)."""
    default_allocator().set_config(ckey, value)


def get_config(ckey: SliceConfig | int) -> int:
    """``g_slice_get_config`` on the default allocator (CONF-006)."""
    return default_allocator().get_config(ckey)


def get_config_state(ckey: SliceConfig | int, address: int) -> list[int] | None:
    """``g_slice_get_config_state`` on the default allocator (CONF-010)."""
    return default_allocator().get_config_state(ckey, address)


def new(ctype: type[T]) -> T | None:
    """``g_slice_new(T)`` on the default allocator (PY-008)."""
    return typed.new(default_allocator(), ctype)


def new0(ctype: type[T]) -> T | None:
    """``g_slice_new0(T)`` on the default allocator (PY-008)."""
    return typed.new0(default_allocator(), ctype)


def dup(ctype: type[T], obj: T) -> T | None:
    """``g_slice_dup(T, obj)`` on the default allocator (PY-008)."""
    return typed.dup(default_allocator(), ctype, obj)


def free(ctype: type[T], obj: T | None) -> None:
    """``g_slice_free(T, obj)`` on the default allocator (PY-008)."""
    typed.free(default_allocator(), ctype, obj)


def free_chain(ctype: type[T], head: T | None, field: str) -> None:
    """``g_slice_free_chain(T, head, field)`` on the default allocator (PY-008)."""
    typed.free_chain(default_allocator(), ctype, head, field)
