"""ctypes adapters: a shared library's slice ABI, or libc malloc, as ``SliceAllocator``.

Rules and theory of operation
-----------------------------
These adapters run only inside the worker process (never in the suite's own
process), because the code behind them can crash or hang::

    LibSliceAllocator(path)   g_slice_alloc ... g_slice_get_config_state
    MallocSliceAllocator()    malloc / calloc / free with the slice ABI's rules

Block bytes are read and written directly at the returned addresses with
``ctypes.string_at`` / ``ctypes.memmove``: the suite only touches bytes of
blocks it believes live, so a bad read means the implementation handed out
memory it does not own, and the resulting crash is the finding.

The ``malloc`` adapter is a correct slice allocator with no slab layout at
all, as GLib 2.76 ships: size 0 gives NULL (API-001), a NULL free is a no-op
(API-007), a chain is walked reading each node's link before freeing the
node (API-008), ``get_config`` is 0 for every key and ``get_config_state``
is NULL for every key (CONF-010, CONF-011), ``set_config`` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Final

__all__ = ["GLIB_SONAME", "LibSliceAllocator", "LoadError", "MallocSliceAllocator", "load_library"]

GLIB_SONAME: Final = "libglib-2.0.so.0"

_SIZE_T = ctypes.c_size_t
_PTR = ctypes.c_void_p
_GINT64 = ctypes.c_int64
_GUINT = ctypes.c_uint


class LoadError(Exception):
    """The library or one of its symbols could not be loaded."""


def load_library(path: str) -> ctypes.CDLL:
    """Load a shared library by path or soname, with a readable error."""
    try:
        return ctypes.CDLL(path)
    except OSError as exc:
        raise LoadError(f"cannot load {path!r}: {exc}") from exc


def _pointer(value: int | None) -> int:
    return 0 if value is None else int(value)


class _Memory:
    """Raw byte access shared by both adapters."""

    def read(self, addr: int, size: int, /) -> bytes:
        return ctypes.string_at(addr, size) if size else b""

    def write(self, addr: int, data: bytes, /) -> None:
        if data:
            ctypes.memmove(addr, data, len(data))


class LibSliceAllocator(_Memory):
    """Any shared library exporting GLib's ``g_slice_*`` functions."""

    def __init__(self, path: str, name: str | None = None) -> None:
        self.name = name or f"lib:{path}"
        self.profiles = frozenset({"core"})
        lib = load_library(path)
        try:
            self._alloc = lib.g_slice_alloc
            self._alloc0 = lib.g_slice_alloc0
            self._copy = lib.g_slice_copy
            self._free1 = lib.g_slice_free1
            self._chain = lib.g_slice_free_chain_with_offset
            self._set = lib.g_slice_set_config
            self._get = lib.g_slice_get_config
            self._state = lib.g_slice_get_config_state
        except AttributeError as exc:
            raise LoadError(f"{path}: missing slice ABI symbol: {exc}") from exc
        for fn in (self._alloc, self._alloc0):
            fn.argtypes, fn.restype = [_SIZE_T], _PTR
        self._copy.argtypes, self._copy.restype = [_SIZE_T, _PTR], _PTR
        self._free1.argtypes, self._free1.restype = [_SIZE_T, _PTR], None
        self._chain.argtypes, self._chain.restype = [_SIZE_T, _PTR, _SIZE_T], None
        self._set.argtypes, self._set.restype = [ctypes.c_int, _GINT64], None
        self._get.argtypes, self._get.restype = [ctypes.c_int], _GINT64
        self._state.argtypes = [ctypes.c_int, _GINT64, ctypes.POINTER(_GUINT)]
        self._state.restype = ctypes.POINTER(_GINT64)
        # The state array is g_memdup2'ed in GLib; release it with the
        # library's own g_free when it has one, else leave it (a few bytes).
        self._g_free = getattr(lib, "g_free", None)
        if self._g_free is not None:
            self._g_free.argtypes, self._g_free.restype = [_PTR], None

    def alloc(self, size: int, /) -> int:
        return _pointer(self._alloc(size))

    def alloc0(self, size: int, /) -> int:
        return _pointer(self._alloc0(size))

    def copy(self, size: int, src: int, /) -> int:
        return _pointer(self._copy(size, src or None))

    def free1(self, size: int, addr: int, /) -> None:
        self._free1(size, addr or None)

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        self._chain(size, head or None, next_offset)

    def set_config(self, key: int, value: int, /) -> None:
        self._set(key, value)

    def get_config(self, key: int, /) -> int:
        return int(self._get(key))

    def get_config_state(self, key: int, address: int, /) -> list[int] | None:
        count = _GUINT(0)
        array = self._state(key, address, ctypes.byref(count))
        if not array:
            return None
        values = [int(array[i]) for i in range(count.value)]
        if self._g_free is not None:
            self._g_free(ctypes.cast(array, _PTR))
        return values


class MallocSliceAllocator(_Memory):
    """libc malloc/calloc/free behind the slice ABI's semantics (GLib 2.76 style)."""

    name = "malloc"

    def __init__(self) -> None:
        self.profiles = frozenset({"core"})
        libc = load_library(ctypes.util.find_library("c") or "libc.so.6")
        self._malloc = libc.malloc
        self._malloc.argtypes, self._malloc.restype = [_SIZE_T], _PTR
        self._calloc = libc.calloc
        self._calloc.argtypes, self._calloc.restype = [_SIZE_T, _SIZE_T], _PTR
        self._free = libc.free
        self._free.argtypes, self._free.restype = [_PTR], None

    def _checked(self, addr: int | None, size: int) -> int:
        if not addr:
            # The slice ABI never returns NULL for a nonzero size; it aborts.
            os.abort()
        return int(addr)

    def alloc(self, size: int, /) -> int:
        return 0 if size == 0 else self._checked(self._malloc(size), size)

    def alloc0(self, size: int, /) -> int:
        return 0 if size == 0 else self._checked(self._calloc(1, size), size)

    def copy(self, size: int, src: int, /) -> int:
        if size == 0:
            return 0
        addr = self._checked(self._malloc(size), size)
        ctypes.memmove(addr, src, size)
        return addr

    def free1(self, size: int, addr: int, /) -> None:
        if addr:
            self._free(addr)

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        node = head
        while node:
            # Read the link before the node is released (API-008).
            following = ctypes.c_void_p.from_address(node + next_offset).value
            self._free(node)
            node = following or 0

    def set_config(self, key: int, value: int, /) -> None:
        return None

    def get_config(self, key: int, /) -> int:
        return 0

    def get_config_state(self, key: int, address: int, /) -> list[int] | None:
        return None
