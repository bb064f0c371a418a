"""ctypes adapters: a shared library's slice ABI, or libc malloc, as ``SliceAllocator``.

Rules and theory of operation
-----------------------------
These adapters run only inside the worker process (never in the suite's own
process), because the code behind them can crash or hang::

    LibSliceAllocator(path)   the five allocation functions (required) and
                              the three config functions (optional, all or none)
    MallocSliceAllocator()    malloc / calloc / free with the slice ABI's rules

What a library must export is :data:`REQUIRED_SYMBOLS` (LOAD-002); the
configuration API (:data:`CONFIG_SYMBOLS`) is optional: a library exporting
all three claims the ``config`` profile (LOAD-003).  Every missing required
symbol is named at once, with its C prototype, in one :class:`LoadError`.
A load that fails for lack of static TLS space is a :class:`StaticTLSError`
so the worker can retry with more (LOAD-005).

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

__all__ = [
    "CONFIG_SYMBOLS",
    "GLIB_SONAME",
    "REQUIRED_SYMBOLS",
    "ConfigurableLibSliceAllocator",
    "LibSliceAllocator",
    "LoadError",
    "MallocSliceAllocator",
    "StaticTLSError",
    "load_library",
    "open_library",
    "static_tls_size",
]

GLIB_SONAME: Final = "libglib-2.0.so.0"

_SIZE_T = ctypes.c_size_t
_PTR = ctypes.c_void_p
_GINT64 = ctypes.c_int64
_GUINT = ctypes.c_uint


#: The slice ABI every library must export: name -> C prototype (LOAD-002).
REQUIRED_SYMBOLS: Final = {
    "g_slice_alloc": "void *g_slice_alloc(size_t block_size);",
    "g_slice_alloc0": "void *g_slice_alloc0(size_t block_size);",
    "g_slice_copy": "void *g_slice_copy(size_t block_size, const void *mem_block);",
    "g_slice_free1": "void g_slice_free1(size_t block_size, void *mem_block);",
    "g_slice_free_chain_with_offset": (
        "void g_slice_free_chain_with_offset(size_t block_size, void *mem_chain, "
        "size_t next_offset);"
    ),
}

#: The optional configuration API, all three or none (LOAD-003).
CONFIG_SYMBOLS: Final = {
    "g_slice_set_config": "void g_slice_set_config(int ckey, int64_t value);",
    "g_slice_get_config": "int64_t g_slice_get_config(int ckey);",
    "g_slice_get_config_state": (
        "int64_t *g_slice_get_config_state(int ckey, int64_t address, unsigned int *n_values);"
    ),
}

_STATIC_TLS_MESSAGE: Final = "cannot allocate memory in static TLS block"


class LoadError(Exception):
    """The library or one of its symbols could not be loaded."""


class StaticTLSError(LoadError):
    """dlopen refused the library: its initial-exec TLS does not fit (LOAD-005)."""


def load_library(path: str) -> ctypes.CDLL:
    """Load a shared library by path or soname, with a readable error.

    A name without a slash is looked for in the current directory first, then
    on the library search path (LOAD-004).
    """
    target = path
    if "/" not in path and os.path.exists(path):
        target = os.path.join(".", path)
    try:
        return ctypes.CDLL(target)
    except OSError as exc:
        if _STATIC_TLS_MESSAGE in str(exc):
            raise StaticTLSError(f"cannot load {path!r}: {exc}") from exc
        hint = ""
        if "/" not in path:
            hint = (
                f"; no file {path!r} in the current directory ({os.getcwd()}) and none on "
                f"the library search path: name a file as lib:./{path} or lib:/full/path/{path}"
            )
        raise LoadError(f"cannot load {path!r}: {exc}{hint}") from exc


def static_tls_size(path: str) -> int:
    """Bytes of thread-local storage ``path`` declares (its ``PT_TLS`` segment), or 0.

    Read from the ELF program headers without loading the file: enough to
    size the ``glibc.rtld.optional_static_tls`` retry (LOAD-005).
    """
    import struct

    try:
        with open(path if "/" in path or os.path.exists(path) else "/nonexistent", "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
                return 0
            endian = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(endian + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return 0
    total = 0
    for index in range(phnum):
        p_type, = struct.unpack_from(endian + "I", table, index * phentsize)
        if p_type == 7:  # PT_TLS
            memsz, = struct.unpack_from(endian + "Q", table, index * phentsize + 40)
            total += memsz
    return total


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
        missing = [proto for sym, proto in REQUIRED_SYMBOLS.items() if not hasattr(lib, sym)]
        if missing:
            raise LoadError(
                f"{path} does not export {len(missing)} of the {len(REQUIRED_SYMBOLS)} "
                "functions every slice allocator must provide (LOAD-002):\n  "
                + "\n  ".join(missing)
            )
        self._alloc = lib.g_slice_alloc
        self._alloc0 = lib.g_slice_alloc0
        self._copy = lib.g_slice_copy
        self._free1 = lib.g_slice_free1
        self._chain = lib.g_slice_free_chain_with_offset
        self._lib = lib
        for fn in (self._alloc, self._alloc0):
            fn.argtypes, fn.restype = [_SIZE_T], _PTR
        self._copy.argtypes, self._copy.restype = [_SIZE_T, _PTR], _PTR
        self._free1.argtypes, self._free1.restype = [_SIZE_T, _PTR], None
        self._chain.argtypes, self._chain.restype = [_SIZE_T, _PTR, _SIZE_T], None

    def config_symbols(self) -> tuple[str, ...]:
        """The configuration functions the library exports (LOAD-003)."""
        return tuple(sym for sym in CONFIG_SYMBOLS if hasattr(self._lib, sym))

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


class ConfigurableLibSliceAllocator(LibSliceAllocator):
    """A library that also exports all three configuration functions (LOAD-003)."""

    def __init__(self, path: str, name: str | None = None) -> None:
        super().__init__(path, name)
        lib = self._lib
        self._set = lib.g_slice_set_config
        self._get = lib.g_slice_get_config
        self._state = lib.g_slice_get_config_state
        self._set.argtypes, self._set.restype = [ctypes.c_int, _GINT64], None
        self._get.argtypes, self._get.restype = [ctypes.c_int], _GINT64
        self._state.argtypes = [ctypes.c_int, _GINT64, ctypes.POINTER(_GUINT)]
        self._state.restype = ctypes.POINTER(_GINT64)
        # The state array is g_memdup2'ed in GLib; release it with the
        # library's own g_free when it has one, else leave it (a few bytes).
        self._g_free = getattr(lib, "g_free", None)
        if self._g_free is not None:
            self._g_free.argtypes, self._g_free.restype = [_PTR], None

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


def open_library(path: str, name: str | None = None) -> LibSliceAllocator:
    """The library as an allocator: configurable iff it exports all three config functions."""
    plain = LibSliceAllocator(path, name)
    if len(plain.config_symbols()) == len(CONFIG_SYMBOLS):
        return ConfigurableLibSliceAllocator(path, name)
    return plain


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
