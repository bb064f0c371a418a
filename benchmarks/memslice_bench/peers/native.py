"""Native peers through ctypes: GLib 2.74's slice allocator, libc malloc, a bare call.

Rules and theory of operation
-----------------------------
These peers cross into C for every operation, exactly as a Python program
using the C libraries would::

    GLibPeer        g_slice_alloc / g_slice_free1 / g_slice_free_chain_with_offset
    MallocPeer      malloc / free
    BareCtypesPeer  g_atomic_int_get on a static int, once per alloc and once per free:
                    the price of the ctypes crossing alone, so the C allocator's own
                    cost is GLibPeer - BareCtypesPeer

GLib reads ``G_SLICE`` once per process, at its first use, so the in-process
GLib peer runs in whatever mode the process environment selects (the default
mode unless the caller set ``G_SLICE`` before starting Python).

Space figures come from glibc's ``mallinfo2``: GLib's slab pages and large
blocks both come from malloc (PAGE-001, LARGE-001).  Each peer records the
figures at creation and reports deltas, which also contain whatever the
interpreter itself allocated from malloc meanwhile: ``Space.source`` says so.
``mapped`` is the delta of in-use bytes (``uordblks + hblkhd``) plus the
delta of free bytes inside the heap (``fordblks``): memory glibc holds.
Trimming (``expire``) calls ``malloc_trim(0)``; GLib's own working-set
expiry runs on the real clock (15 s by default, DEPOT-007) and is not forced.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Final

from . import Space, walk_chain

__all__ = ["BareCtypesPeer", "GLibPeer", "MallInfo", "MallocPeer", "libc", "libglib", "mallinfo"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


class MallInfo:
    """The figures of ``mallinfo2`` the benchmarks use, in bytes."""

    __slots__ = ("free_in_heap", "heap", "in_use", "mmapped")

    def __init__(self, raw: _MallInfo2) -> None:
        self.heap: int = raw.arena
        self.mmapped: int = raw.hblkhd
        self.in_use: int = raw.uordblks + raw.hblkhd
        self.free_in_heap: int = raw.fordblks


_LIBC: ctypes.CDLL | None = None
_GLIB: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    """The C library, with the prototypes the peers use."""
    global _LIBC
    if _LIBC is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.malloc.argtypes = [ctypes.c_size_t]
        lib.malloc.restype = ctypes.c_void_p
        lib.free.argtypes = [ctypes.c_void_p]
        lib.free.restype = None
        lib.mallinfo2.argtypes = []
        lib.mallinfo2.restype = _MallInfo2
        lib.malloc_trim.argtypes = [ctypes.c_size_t]
        lib.malloc_trim.restype = ctypes.c_int
        _LIBC = lib
    return _LIBC


def libglib() -> ctypes.CDLL:
    """``libglib-2.0.so.0`` with the slice prototypes; fails loudly if it is absent."""
    global _GLIB
    if _GLIB is None:
        lib = ctypes.CDLL("libglib-2.0.so.0")
        lib.g_slice_alloc.argtypes = [ctypes.c_size_t]
        lib.g_slice_alloc.restype = ctypes.c_void_p
        lib.g_slice_free1.argtypes = [ctypes.c_size_t, ctypes.c_void_p]
        lib.g_slice_free1.restype = None
        lib.g_slice_free_chain_with_offset.argtypes = [
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
        ]
        lib.g_slice_free_chain_with_offset.restype = None
        lib.g_atomic_int_get.argtypes = [ctypes.c_void_p]
        lib.g_atomic_int_get.restype = ctypes.c_int
        lib.glib_check_version.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
        lib.glib_check_version.restype = ctypes.c_char_p
        _GLIB = lib
    return _GLIB


def mallinfo() -> MallInfo:
    """glibc's ``mallinfo2`` now."""
    return MallInfo(libc().mallinfo2())


class _MallocBacked:
    """Space accounting shared by the two peers that live on glibc's heap."""

    name: str
    allocates: bool = True
    threadsafe: bool = True

    def __init__(self) -> None:
        self._start = mallinfo()

    def space(self) -> Space:
        now = mallinfo()
        in_use = now.in_use - self._start.in_use
        held_free = max(0, now.free_in_heap - self._start.free_in_heap)
        return Space(
            mapped=max(1, in_use + held_free),
            source="mallinfo2 delta (includes the interpreter's own malloc traffic)",
            breakdown={"in_use": in_use, "free_in_heap": held_free},
        )

    def expire(self) -> None:
        libc().malloc_trim(0)

    def close(self) -> None:
        return None


class GLibPeer(_MallocBacked):
    """The system GLib's slice allocator (2.74.x), one ctypes call per operation."""

    name = "glib"
    alloc: Callable[[int], int]
    free: Callable[[int, int], None]

    def __init__(self) -> None:
        lib = libglib()
        mismatch = lib.glib_check_version(2, 74, 0)
        if mismatch is not None:
            raise RuntimeError(f"libglib-2.0.so.0 is not GLib >= 2.74: {mismatch.decode()}")
        super().__init__()
        # The C functions themselves: no Python frame between the caller and GLib.
        self.alloc = lib.g_slice_alloc
        self.free = lib.g_slice_free1
        self._chain = lib.g_slice_free_chain_with_offset

    def free_chain(self, size: int, head: int, next_offset: int) -> None:
        self._chain(size, head, next_offset)


class MallocPeer(_MallocBacked):
    """libc ``malloc``/``free`` through ctypes: what ``G_SLICE=always-malloc`` reduces to."""

    name = "malloc"

    def __init__(self) -> None:
        lib = libc()
        super().__init__()
        malloc, free = lib.malloc, lib.free
        self._malloc, self._free = malloc, free

    def alloc(self, size: int) -> int:
        # g_slice_alloc(0) is NULL; keep that contract so workloads need no special case.
        return (self._malloc(size) or 0) if size else 0

    def free(self, size: int, address: int) -> None:
        self._free(address)

    def free_chain(self, size: int, head: int, next_offset: int) -> None:
        walk_chain(self.free, size, head, next_offset)


class BareCtypesPeer:
    """Two ctypes calls into a C function that does nothing of interest: the crossing's cost.

    ``alloc`` returns a fixed non-zero token; no memory is handed out, so only
    timing workloads (W1) run on this peer.
    """

    name = "bare-ctypes"
    allocates = False
    threadsafe = True
    TOKEN: Final = 0x1000

    def __init__(self) -> None:
        self._cell = ctypes.c_int(self.TOKEN)
        self._addr = ctypes.addressof(self._cell)
        self._get = libglib().g_atomic_int_get

    def alloc(self, size: int) -> int:
        return self._get(self._addr)  # type: ignore[no-any-return]

    def free(self, size: int, address: int) -> None:
        self._get(self._addr)

    def free_chain(self, size: int, head: int, next_offset: int) -> None:
        self._get(self._addr)

    def space(self) -> Space:
        return Space(mapped=0, source="none: this peer allocates nothing")

    def expire(self) -> None:
        return None

    def close(self) -> None:
        return None
