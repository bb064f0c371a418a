"""Typed helpers: ``g_slice_new`` and friends over ctypes structure types.

Rules and theory of operation
-----------------------------
GLib's macros take a C type and use ``sizeof``; the Python equivalents take a
ctypes type (a ``Structure``, ``Union``, array or simple type) and return an
instance that *lives in slice memory*: its fields are the block's bytes, and
``ctypes.addressof(obj)`` is the address the allocator handed out (PY-008)::

    node = new(GList)          # g_slice_new (GList)      -> GList at a slab chunk
    node.data = 42             # writes the chunk's bytes
    free(GList, node)          # g_slice_free (GList, node)
    free_chain(GList, head, "next")   # g_slice_free_chain (GList, head, next)

A type of size 0 gives ``None``, as GLib 2.74's ``g_slice_new`` returns NULL
for an empty struct (API-011).  ``free_chain`` reads the named field's offset
from the type, as ``G_STRUCT_OFFSET`` does; the field must be pointer-sized.
"""

from __future__ import annotations

import ctypes

from .errors import SliceTypeError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:
    from _ctypes import _CData
    from typing import TypeVar

    from .allocator import Allocator

    T = TypeVar("T", bound="_CData")

__all__ = ["dup", "free", "free_chain", "new", "new0"]


def _size_of(ctype: type[T]) -> int:
    if not isinstance(ctype, type):
        raise SliceTypeError(f"expected a ctypes type, not {ctype!r} (PY-008)")
    try:
        return ctypes.sizeof(ctype)
    except TypeError:
        raise SliceTypeError(f"expected a ctypes type, not {ctype!r} (PY-008)") from None


def _address_of(ctype: type[T], obj: object) -> int:
    if obj is None:
        return 0
    if not isinstance(obj, ctype):
        raise SliceTypeError(
            f"expected a {ctype.__name__} instance, not {type(obj).__name__} (PY-008)"
        )
    return ctypes.addressof(obj)


def _at(ctype: type[T], address: int) -> T:
    """The ``ctype`` instance whose memory is the block at ``address``."""
    return ctypes.cast(address, ctypes.POINTER(ctype)).contents


def new(allocator: Allocator, ctype: type[T]) -> T | None:
    """``g_slice_new``: an uninitialised ``ctype`` in slice memory (PY-008)."""
    address = allocator.alloc(_size_of(ctype))
    return _at(ctype, address) if address else None


def new0(allocator: Allocator, ctype: type[T]) -> T | None:
    """``g_slice_new0``: a zeroed ``ctype`` in slice memory (PY-008)."""
    address = allocator.alloc0(_size_of(ctype))
    return _at(ctype, address) if address else None


def dup(allocator: Allocator, ctype: type[T], obj: T) -> T | None:
    """``g_slice_dup``: a copy of ``obj`` in slice memory (PY-008)."""
    size = _size_of(ctype)
    source = _address_of(ctype, obj)
    address = allocator.copy(size, source)
    return _at(ctype, address) if address else None


def free(allocator: Allocator, ctype: type[T], obj: T | None) -> None:
    """``g_slice_free``: release ``obj``, which ``new``/``new0``/``dup`` returned (PY-008)."""
    allocator.free1(_size_of(ctype), _address_of(ctype, obj))


def free_chain(allocator: Allocator, ctype: type[T], head: T | None, field: str) -> None:
    """``g_slice_free_chain``: release a list linked through pointer field ``field`` (PY-008)."""
    size = _size_of(ctype)
    if not isinstance(field, str):
        raise SliceTypeError(f"the field name must be a str, not {type(field).__name__} (PY-001)")
    descriptor = getattr(ctype, field, None)
    offset = getattr(descriptor, "offset", None)
    field_size = getattr(descriptor, "size", None)
    if offset is None or field_size != ctypes.sizeof(ctypes.c_void_p):
        raise SliceTypeError(
            f"{ctype.__name__} has no pointer-sized field {field!r} to chain through (PY-008)"
        )
    allocator.free_chain_with_offset(size, _address_of(ctype, head), offset)
