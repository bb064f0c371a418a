"""GMemChunk and GAllocator compatibility: the API GLib 2.10+ kept on top of slices.

Rules and theory of operation
-----------------------------
GLib 2.8's GMemChunk kept per-type pools of malloc'd areas (see
``benchmarks/memslice_bench/peers/gmemchunk.py`` for a model of it).  GLib 2.10
replaced the implementation with wrappers over slices and kept the API for
binary compatibility; GLib 2.74 still exports all of it.  This module is that
layer over a :class:`memslice.Allocator` (API-021..API-023)::

    MemChunk ── header: a 4-byte slice holding alloc_size (a guint), unrounded
      alloc()   = allocator.alloc(alloc_size)            any type, even ALLOC_ONLY
      alloc0()  = allocator.alloc0(alloc_size)           zeroes exactly alloc_size bytes
      free(mem) = allocator.free1(alloc_size, mem)       0 is a silent no-op
      destroy() = allocator.free1(4, header)             live atoms stay allocated
    clean, reset, print, info, blow_chunks, allocator_free, push/pop: nothing
    allocator_new(...) -> 1                              a token, never dereferenced

Differences from GLib 2.8 (the facts' §2.3), all deliberate and tested:
``name``, ``area_size`` and ``type`` are ignored, so an area smaller than the
atom is accepted and nothing is rounded; ``free`` on an ``ALLOC_ONLY`` chunk
really frees; ``destroy`` leaks live atoms instead of freeing every area;
``reset`` frees nothing; atoms share size classes with plain slices and with
other chunks and are aligned like slices (16 bytes on x86_64, 8 in 2.8);
chunks are thread-safe because slices are.

Where GLib logs a CRITICAL and returns NULL (``atom_size <= 0``, a NULL
chunk), the binding raises :class:`~memslice.errors.SliceValueError` whose
message is GLib's assertion text.  Using a chunk after ``destroy`` (a
use-after-free in C) raises :class:`~memslice.errors.SliceUsageError`.
"""

from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING, Final, TypeVar

from .errors import SliceTypeError, SliceUsageError, SliceValueError

if TYPE_CHECKING:
    from _ctypes import _CData

    from .allocator import Allocator

__all__ = [
    "ALLOCATOR_TOKEN",
    "G_ALLOCATOR_LIST",
    "G_ALLOCATOR_NODE",
    "G_ALLOCATOR_SLIST",
    "G_ALLOC_AND_FREE",
    "G_ALLOC_ONLY",
    "MemChunk",
    "allocator_free",
    "allocator_new",
    "blow_chunks",
    "chunk_free",
    "chunk_new",
    "chunk_new0",
    "list_pop_allocator",
    "list_push_allocator",
    "mem_chunk_alloc",
    "mem_chunk_alloc0",
    "mem_chunk_clean",
    "mem_chunk_create",
    "mem_chunk_destroy",
    "mem_chunk_free",
    "mem_chunk_info",
    "mem_chunk_new",
    "mem_chunk_print",
    "mem_chunk_reset",
    "node_pop_allocator",
    "node_push_allocator",
    "slist_pop_allocator",
    "slist_push_allocator",
]

G_ALLOC_ONLY: Final = 1
G_ALLOC_AND_FREE: Final = 2
G_ALLOCATOR_LIST: Final = 1
G_ALLOCATOR_SLIST: Final = 2
G_ALLOCATOR_NODE: Final = 3
ALLOCATOR_TOKEN: Final = 1  # (GAllocator*) 1 since GLib 2.31 (API-023)
_HEADER_SIZE: Final = 4  # struct { guint alloc_size; } (API-021)
_NULL_CHUNK: Final = "assertion 'mem_chunk != NULL' failed"

T = TypeVar("T", bound="_CData")


def _int_arg(value: object, what: str) -> int:
    if value.__class__ is not int:  # bool is an int subclass but never a size (PY-001)
        raise SliceTypeError(f"{what} must be an int, not {type(value).__name__} (PY-001)")
    assert isinstance(value, int)
    return value


class MemChunk:
    """A GLib 2.10+ ``GMemChunk``: a 4-byte header naming the slice size of its atoms."""

    __slots__ = ("_allocator", "_header")

    def __init__(self, allocator: Allocator, atom_size: int) -> None:
        """Use :func:`mem_chunk_new`; this only builds the header (API-021)."""
        self._allocator = allocator
        header = allocator.alloc(_HEADER_SIZE)
        allocator.write(header, struct.pack("=I", atom_size))
        self._header = header

    def _live_header(self) -> int:
        if not self._header:
            raise SliceUsageError("the GMemChunk was destroyed (use after free in C)")
        return self._header

    @property
    def header(self) -> int:
        """The address of the chunk's 4-byte header slice (what C code sees as the chunk)."""
        return self._live_header()

    @property
    def atom_size(self) -> int:
        """``alloc_size`` as stored in the header: the atom size exactly as given."""
        size: int = struct.unpack("=I", self._allocator.read(self._live_header(), 4))[0]
        return size

    @property
    def allocator(self) -> Allocator:
        return self._allocator

    def alloc(self) -> int:
        """``g_mem_chunk_alloc``: ``g_slice_alloc(alloc_size)`` (API-021)."""
        return self._allocator.alloc(self.atom_size)

    def alloc0(self) -> int:
        """``g_mem_chunk_alloc0``: ``g_slice_alloc0(alloc_size)`` (API-021)."""
        return self._allocator.alloc0(self.atom_size)

    def free(self, mem: int) -> None:
        """``g_mem_chunk_free``: ``g_slice_free1(alloc_size, mem)``; 0 is a no-op (API-021)."""
        self._allocator.free1(self.atom_size, _int_arg(mem, "mem"))

    def destroy(self) -> None:
        """``g_mem_chunk_destroy``: frees the header only; live atoms stay allocated (API-022)."""
        header = self._live_header()
        self._header = 0
        self._allocator.free1(_HEADER_SIZE, header)

    @property
    def destroyed(self) -> bool:
        return not self._header

    def clean(self) -> None:
        """``g_mem_chunk_clean``: nothing since GLib 2.10 (API-023)."""

    def reset(self) -> None:
        """``g_mem_chunk_reset``: nothing since GLib 2.10; no atom is freed (API-023)."""

    def print(self) -> None:
        """``g_mem_chunk_print``: prints nothing since GLib 2.10 (API-023)."""

    def __repr__(self) -> str:
        state = "destroyed" if self.destroyed else f"atom_size={self.atom_size}"
        return f"<MemChunk {state}>"


def _default_allocator() -> Allocator:
    from . import default_allocator

    return default_allocator()


def mem_chunk_new(
    name: str | None,
    atom_size: int,
    area_size: int = 0,
    type: int = G_ALLOC_ONLY,  # GLib's parameter name
    *,
    allocator: Allocator | None = None,
) -> MemChunk:
    """``g_mem_chunk_new``: only ``atom_size > 0`` is checked (API-021).

    ``name``, ``area_size`` and ``type`` are accepted and ignored, as in GLib
    2.10+; GLib's CRITICAL for ``atom_size <= 0`` becomes a
    :class:`SliceValueError`.  ``allocator`` defaults to memslice's default
    allocator (the one ``memslice.alloc`` uses).
    """
    size = _int_arg(atom_size, "atom_size")
    _int_arg(area_size, "area_size")
    _int_arg(type, "type")
    if name is not None and not isinstance(name, str):
        raise SliceTypeError(f"name must be a str or None, not {name.__class__.__name__}")
    if size <= 0:
        raise SliceValueError("assertion 'atom_size > 0' failed (API-021)")
    if size > 0xFFFFFFFF:  # the header is a guint
        raise SliceValueError(f"atom_size {size} does not fit GMemChunk's guint header (API-021)")
    return MemChunk(allocator or _default_allocator(), size)


def mem_chunk_create(
    ctype: type[T],
    pre_alloc: int = 0,
    alloc_type: int = G_ALLOC_ONLY,
    *,
    allocator: Allocator | None = None,
) -> MemChunk:
    """``g_mem_chunk_create(type, x, y)``: ``g_mem_chunk_new(NULL, sizeof(type), 0, 0)``."""
    _int_arg(pre_alloc, "pre_alloc")
    _int_arg(alloc_type, "alloc_type")
    return mem_chunk_new(None, ctypes.sizeof(ctype), 0, 0, allocator=allocator)


def _require(chunk: MemChunk | None) -> MemChunk:
    if chunk is None:
        raise SliceValueError(f"{_NULL_CHUNK} (API-022)")
    if not isinstance(chunk, MemChunk):
        raise SliceTypeError(f"expected a MemChunk, not {chunk.__class__.__name__}")
    return chunk


def chunk_new(ctype: type[T], chunk: MemChunk | None) -> T:
    """``g_chunk_new(type, chunk)``: an instance of ``ctype`` living in a fresh atom."""
    return ctypes.cast(_require(chunk).alloc(), ctypes.POINTER(ctype)).contents


def chunk_new0(ctype: type[T], chunk: MemChunk | None) -> T:
    """``g_chunk_new0(type, chunk)``: as :func:`chunk_new`, zeroed."""
    return ctypes.cast(_require(chunk).alloc0(), ctypes.POINTER(ctype)).contents


def chunk_free(mem: _CData | int | None, chunk: MemChunk | None) -> None:
    """``g_chunk_free(mem, chunk)``: note GLib's argument order, memory first."""
    live = _require(chunk)
    if mem is None:
        return
    live.free(mem if isinstance(mem, int) else ctypes.addressof(mem))


def mem_chunk_alloc(chunk: MemChunk | None) -> int:
    """``g_mem_chunk_alloc(chunk)`` (API-021); a NULL chunk is rejected (API-022)."""
    return _require(chunk).alloc()


def mem_chunk_alloc0(chunk: MemChunk | None) -> int:
    """``g_mem_chunk_alloc0(chunk)`` (API-021); a NULL chunk is rejected (API-022)."""
    return _require(chunk).alloc0()


def mem_chunk_free(chunk: MemChunk | None, mem: int) -> None:
    """``g_mem_chunk_free(chunk, mem)`` (API-021); a NULL chunk is rejected (API-022)."""
    _require(chunk).free(mem)


def mem_chunk_destroy(chunk: MemChunk | None) -> None:
    """``g_mem_chunk_destroy(chunk)``: the header only (API-022)."""
    _require(chunk).destroy()


def mem_chunk_clean(chunk: MemChunk | None) -> None:
    """``g_mem_chunk_clean``: nothing, not even a NULL check (API-023)."""


def mem_chunk_reset(chunk: MemChunk | None) -> None:
    """``g_mem_chunk_reset``: nothing; no atom is freed (API-023)."""


def mem_chunk_print(chunk: MemChunk | None) -> None:
    """``g_mem_chunk_print``: prints nothing (API-023)."""


def mem_chunk_info() -> None:
    """``g_mem_chunk_info``: nothing since GLib 2.10 (API-023)."""


def blow_chunks() -> None:
    """``g_blow_chunks``: nothing since GLib 2.10 (API-023)."""


def allocator_new(name: str | None, n_preallocs: int) -> int:
    """``g_allocator_new``: the token 1, never dereferenced (API-023)."""
    _int_arg(n_preallocs, "n_preallocs")
    return ALLOCATOR_TOKEN


def allocator_free(allocator: int) -> None:
    """``g_allocator_free``: nothing (API-023)."""


def list_push_allocator(allocator: int) -> None:
    """``g_list_push_allocator``: nothing, binary compatibility only (API-023)."""


def list_pop_allocator() -> None:
    """``g_list_pop_allocator``: nothing (API-023)."""


def slist_push_allocator(allocator: int) -> None:
    """``g_slist_push_allocator``: nothing (API-023)."""


def slist_pop_allocator() -> None:
    """``g_slist_pop_allocator``: nothing (API-023)."""


def node_push_allocator(allocator: int) -> None:
    """``g_node_push_allocator``: nothing (API-023)."""


def node_pop_allocator() -> None:
    """``g_node_pop_allocator``: nothing (API-023)."""
