"""The allocator: GLib's ``g_slice_*`` API over the layers below.

Rules and theory of operation
-----------------------------
Layers, lowest first; each module imports only the ones beneath it::

    allocator   API, routing, validation, fast path, snapshot, consistency check
    ├── magazine    per-thread magazines, swap/reload/unload, thread exit
    │   └── depot       per-class rings of full magazines, stamps, trim
    │       ├── contention  counted depot lock, contention counters
    │       └── slab        slab rings, free lists in chunk memory
    │           ├── colour      the global colour accumulator
    │           └── pages       mmap arena, buddy page source, libc malloc
    ├── large       system-malloc blocks (size 0, > max slab chunk, always-malloc)
    ├── memcheck    debug-blocks table
    └── config / sizeclass / tunables / records / errors / snapshot   (pure data)

A request takes one of three routes, chosen from its chunk size and the mode
(SIZE-009): *magazines*, *slab only* (``bypass_magazines``) or *system
malloc*.  Initialisation is lazy, on the first allocation or free in any
thread (API-010, CONF-013), as GLib's ``thread_memory_from_self``: only then are
``G_SLICE`` and ``G_DEBUG`` read and the defaults copied (CONF-007), so
``set_config`` works until then and never after (CONF-004).

Fast path.  ``alloc`` and ``free1`` first try a few lines that serve the
magazine route without computing anything else: a per-thread table
(``ThreadMemory.by_size``) maps the request size straight to that thread's
magazines for the class, and a magazine is a Python list.  A hit is a
``pop`` or an ``append`` (plus, for a free, the chunk-map check of PY-004 and
the two link words of MAG-002); a swap of the two magazines is done in line;
a trip to the depot (both empty, both full) goes straight to the magazine
layer, since size and route are already known.  Everything else -- first use
in a thread, other routes, debug-blocks, gc-friendly, bad arguments, a closed
allocator (the tables are emptied) -- falls through to the full path, which
follows GLib's order of operations step by step.  The fast path is taken only
when it is observably identical to the full path (the conformance suite and
the fidelity tests check both).

What a hit costs, and why it is not cheaper.  The allocator's attributes are
slots and the link words are ``unsigned long`` items (``pages.Arena.words``),
the cheapest attribute load and integer store CPython offers.  What remains
is required: the per-thread lookup (``threading.local``; a dict keyed by
``threading.get_ident()`` measured slower), the PY-004 chunk-map check and
the two MAG-002 stores each cost about as many instructions as two bare
method calls (the "floor"; two to three floors of CPU time), on top of
about three floors of instructions (four to five of CPU time) for the
calls, the size checks and the list operations.  ``benchmarks/README.md``
("Issue 14") has the ablation.
Start-up loads only the layers (PY-026): no ``dataclasses`` or ``typing``
at run time; ``records`` stands in for the frozen dataclasses.

Bad input (PY-001..PY-006) is rejected before any state changes: wrong types
raise ``SliceTypeError``, impossible values ``SliceValueError``, addresses
outside every block of this allocator ``ForeignPointerError``.  Misuse that
GLib cannot see without debug-blocks (a double free, a chunk freed with a
size of another class) is undefined in GLib; the reference stays memory-safe
(it never writes outside its arena) and the consistency checker reports the
damage (PY-007).

fork (PY-025).  Every allocator registers with ``os.register_at_fork``:
before a fork the forking thread takes all of the allocator's locks, in the
order the code always takes them (init, threads, depot, slab, large blocks,
debug-blocks), so no other thread is half-way through a locked step; both
parent and child release them afterwards.  In the child only the forking
thread survives: its magazines stay as they were, and every other thread's
magazines are retired as at that thread's exit (EXIT-002), so their cached
chunks are reusable and ``check()`` is sound.  Blocks those threads held are
leaked in the child, as they would be in C.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping

from .colour import ColourAccumulator
from .config import (
    ConfigWarning,
    Route,
    Settings,
    SliceConfig,
    check_environment,
    defaults_from_tunables,
    settings_from_environment,
)
from .contention import ContendedLock, ContentionProbe
from .depot import Depot
from .errors import (
    ConsistencyError,
    ForeignPointerError,
    SliceAssertionError,
    SliceMemoryError,
    SliceTypeError,
    SliceUsageError,
    SliceValueError,
)
from .large import LargeBlocks
from .magazine import MagazineLayer, ThreadMemory
from .memcheck import MemChecker
from .pages import (
    Arena,
    BuddyPageSource,
    MallocSource,
    PageSource,
    SystemMalloc,
    require_readable,
)
from .records import replace
from .sizeclass import Geometry, geometry_for
from .slab import Slab, SlabLayer
from .tunables import GLIB_2_74, Tunables

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:  # imported when used: start-up pays only for the allocating layers
    from typing import Final

    from .snapshot import AllocatorSnapshot, SlabSnapshot, ThreadSnapshot

__all__ = ["Allocator"]

_GINT64_MIN = -(1 << 63)
_GINT64_MAX = (1 << 63) - 1
_GSIZE_MASK = (1 << 64) - 1
_GUINT_MASK = 0xFFFFFFFF
_ADDRESS_LIMIT = 1 << 64
# The fast path's constants: a chunk-map granule is 2 * sizeof(void*) (the size
# classes' alignment, SIZE-002) and link words are sizeof(void*) wide.
_WORD_SHIFT: Final = ctypes.sizeof(ctypes.c_void_p).bit_length() - 1
_GRANULE_SHIFT: Final = _WORD_SHIFT + 1
_GRANULE_MASK: Final = (1 << _GRANULE_SHIFT) - 1
_SIGN_OR_GRANULE: Final = _GRANULE_MASK | (1 << 63)  # a negative int has bit 63 set


def _real_time_msecs() -> int:
    """``g_get_real_time() / 1000``: wall-clock milliseconds (DEPOT-006)."""
    import time

    return time.time_ns() // 1_000_000


def _require_int(value: object, what: str) -> int:
    if value.__class__ is not int:  # bool is an int subclass but never a size
        raise SliceTypeError(f"{what} must be an int, not {type(value).__name__} (PY-001)")
    assert isinstance(value, int)
    return value


def _check_size(value: object) -> int:
    size = _require_int(value, "size")
    if size < 0:
        raise SliceValueError(f"size must be >= 0, got {size} (PY-002)")
    if size > sys.maxsize:
        raise SliceMemoryError(f"size {size} exceeds the address space (PY-003)")
    return size


def _check_address(value: object, what: str = "address") -> int:
    address = _require_int(value, what)
    if not 0 <= address < _ADDRESS_LIMIT:
        raise SliceValueError(f"{what} {address} is not a 64-bit address (PY-002)")
    return address


# Every open allocator, for the fork handlers (PY-025); weak, so closing or
# dropping an allocator is enough to forget it.
_ALLOCATORS: weakref.WeakSet[Allocator] = weakref.WeakSet()
_FORK_HELD: list[Allocator] = []


def _before_fork() -> None:
    held = sorted(_ALLOCATORS, key=id)  # a fixed order: never two forks' orders crossing
    for allocator in held:
        allocator._fork_prepare()
    _FORK_HELD[:] = held


def _after_fork_in_parent() -> None:
    for allocator in reversed(_FORK_HELD):
        allocator._fork_release()
    _FORK_HELD.clear()


def _after_fork_in_child() -> None:
    for allocator in reversed(_FORK_HELD):
        allocator._fork_child()
    _FORK_HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


class _ThreadReaper:
    """Lives in a thread's ``threading.local`` state; its death is the thread's exit (PY-015)."""

    __slots__ = ("allocator", "memory")

    def __init__(self, allocator: Allocator, memory: ThreadMemory) -> None:
        self.allocator = weakref.ref(allocator)
        self.memory = memory

    def __del__(self) -> None:
        allocator = self.allocator()
        if allocator is not None and not sys.is_finalizing():
            allocator._retire(self.memory)


class Allocator:
    """One slice allocator with its own memory, threads' magazines and depot.

    ``tunables`` picks the geometry (default: GLib 2.74 on x86_64).
    ``environ`` is where ``G_SLICE`` and ``G_DEBUG`` are read at
    initialisation (default ``os.environ``).  The keyword-only injectables
    replace the OS-facing pieces: ``page_source`` (slab pages), ``system_malloc``
    (large blocks), ``clock`` (milliseconds for depot stamps) and ``contention``
    (a probe that can declare depot-lock acquisitions contended).
    """

    # Slots, not a __dict__: the fast paths read five of these per call, and a
    # slot read is the cheapest attribute load CPython has (an instance dict
    # this size is not key-shared, so each load would be a hashed lookup).
    __slots__ = (
        "__weakref__",  # _ALLOCATORS and the thread reapers hold allocators weakly
        "_arena",
        "_base",
        "_carved_words",
        "_chunk_map",
        "_clock",
        "_closed",
        "_colour",
        "_defaults",
        "_depot",
        "_depot_lock",
        "_environ",
        "_fork_locks",
        "_forked_from",
        "_init_lock",
        "_large",
        "_magazine_chunk_limit",
        "_magazine_limit",
        "_magazines",
        "_map_origin",
        "_memcheck",
        "_page_source",
        "_probe",
        "_settings",
        "_slab_lock",
        "_slabs",
        "_system_malloc",
        "_threads",
        "_threads_lock",
        "_threshold_by_size",
        "_tls",
        "geometry",
        "tunables",
    )

    def __init__(
        self,
        tunables: Tunables = GLIB_2_74,
        *,
        environ: Mapping[str, str] | None = None,
        page_source: PageSource | None = None,
        system_malloc: MallocSource | None = None,
        clock: Callable[[], int] | None = None,
        contention: ContentionProbe | None = None,
    ) -> None:
        if tunables.pointer_size != ctypes.sizeof(ctypes.c_void_p):
            raise SliceValueError(
                f"profile {tunables.name!r} has {tunables.pointer_size}-byte pointers; this "
                f"process has {ctypes.sizeof(ctypes.c_void_p)}-byte pointers: its geometry is "
                "available from memslice.sizeclass, but it cannot hand out real addresses"
            )
        if environ is not None:
            if not isinstance(environ, Mapping):
                raise SliceTypeError(
                    f"environ must be a mapping, not {type(environ).__name__} (PY-024)"
                )
            check_environment(environ)  # PY-024: early, with the caller still in sight
        self.tunables = tunables
        self.geometry: Geometry = geometry_for(tunables)
        self._environ = environ
        self._defaults = defaults_from_tunables(tunables)
        self._settings: Settings | None = None
        self._init_lock = threading.Lock()
        self._closed = False
        self._page_source = page_source or BuddyPageSource(Arena(tunables.arena_bytes))
        self._arena = self._page_source.arena
        self._system_malloc = system_malloc or SystemMalloc()
        self._clock = clock or _real_time_msecs
        self._probe = contention
        self._slab_lock = threading.Lock()
        self._tls = threading.local()
        self._threads: dict[int, ThreadMemory] = {}
        self._threads_lock = threading.Lock()
        self._large = LargeBlocks(self._system_malloc)
        self._memcheck = MemChecker()
        # Fast-path state; _magazine_limit stays 0 (everything takes the full
        # path) until initialisation decides the fast path is faithful.
        self._magazine_limit = 0
        self._base = self._arena.base
        self._fork_locks: list[threading.Lock] = []
        self._forked_from = 0  # pid of the parent while a fork is in progress (PY-025)
        _ALLOCATORS.add(self)

    # ------------------------------------------------------------------ set-up
    @property
    def initialised(self) -> bool:
        """Whether the first allocation or free has happened (CONF-004)."""
        return self._settings is not None

    @property
    def settings(self) -> Settings:
        """The effective settings (initialises the allocator) (CONF-007)."""
        return self._ensure_initialised()

    def _ensure_initialised(self) -> Settings:
        settings = self._settings
        if settings is not None:
            return settings
        with self._init_lock:
            if self._settings is None:
                self._initialise()
            assert self._settings is not None
            return self._settings

    def _initialise(self) -> None:
        environ = os.environ if self._environ is None else self._environ
        settings = settings_from_environment(self._defaults, environ)
        geometry = self.geometry
        self._colour = ColourAccumulator(geometry.p2alignment, settings.color_increment)
        self._slabs = SlabLayer(geometry, self._arena, self._page_source, self._colour)
        self._depot_lock = ContendedLock(geometry.n_classes, self._probe)
        # GLib stores working_set_msecs in a gsize: a negative value wraps (CONF-005).
        self._depot = Depot(
            geometry,
            self._slabs,
            self._slab_lock,
            self._depot_lock,
            self._clock,
            settings.working_set_msecs & _GSIZE_MASK,
        )
        self._magazines = MagazineLayer(geometry, self._slabs, self._slab_lock, self._depot)
        self._threshold_by_size = self._depot.threshold_by_size
        self._chunk_map = self._slabs.chunk_map
        self._map_origin = self._slabs.map_origin
        if self._slabs.granule_shift != _GRANULE_SHIFT:  # pragma: no cover - by construction
            raise SliceAssertionError("the chunk map's granule is not 2 * sizeof(void*)")
        self._carved_words = self._arena.carved_words  # word 0 is at map_origin
        # max_slab_chunk_size_for_magazine_cache (SIZE-009)
        self._magazine_chunk_limit = (
            0
            if settings.always_malloc or settings.bypass_magazines
            else geometry.max_slab_chunk_size
        )
        fast = self._magazine_chunk_limit and not settings.debug_blocks and not settings.gc_friendly
        self._settings = settings
        self._magazine_limit = geometry.largest_slab_request if fast else 0

    def _require_open(self) -> None:
        if self._closed:
            raise SliceUsageError("the allocator is closed (PY-022)")

    def _thread_memory(self) -> ThreadMemory:
        """``thread_memory_from_self``: initialise if needed, then this thread's magazines."""
        self._require_open()
        try:
            memory: ThreadMemory = self._tls.memory
            return memory
        except AttributeError:
            pass
        self._ensure_initialised()
        memory = ThreadMemory(self.geometry)
        self._tls.memory = memory
        # The fast path's table; empty (so every call takes the full path) when the
        # fast path would not be faithful: other routes, debug-blocks, gc-friendly.
        self._tls.by_size = memory.by_size if self._magazine_limit else []
        self._tls.reaper = _ThreadReaper(self, memory)
        with self._threads_lock:
            self._threads[id(memory)] = memory
        return memory

    def _route(self, chunk_size: int) -> Route:
        """``allocator_categorize`` (SIZE-009)."""
        settings = self._ensure_initialised()
        if 0 < chunk_size <= self._magazine_chunk_limit:
            return Route.MAGAZINES
        if not settings.always_malloc and 0 < chunk_size <= self.geometry.max_slab_chunk_size:
            return Route.SLAB_ONLY if settings.bypass_magazines else Route.MAGAZINES
        return Route.SYSTEM_MALLOC

    # --------------------------------------------------------------- allocation
    def alloc(self, mem_size: int) -> int:
        """Allocate ``mem_size`` bytes; 0 (NULL) iff ``mem_size`` is 0 (API-001).

        The block is aligned to at least ``2 * sizeof(void*)`` on the slab
        routes (API-012) and its contents are unspecified (API-015).
        """
        # Fast path (see the module header and ThreadMemory.by_size): the thread's
        # table maps the size to its class's magazines.  Size 0 finds None there
        # (AttributeError), sizes past the largest class fall off the table
        # (IndexError), a thread's first call has no table yet (AttributeError):
        # all of them take the full path.  A bool is never a size (PY-001), and a
        # negative size must not reach the table: Python indexes from the end.
        if mem_size.__class__ is int and mem_size > 0:
            try:
                magazines = self._tls.by_size[mem_size]
                loaded = magazines.loaded
                if loaded:  # magazine hit (MAG-005)
                    return loaded.pop()  # type: ignore[no-any-return]
                freeing = magazines.freeing
                if freeing:  # MAG-005: loaded is empty, so swap the two, then pop
                    magazines.loaded, magazines.freeing = freeing, loaded
                    return freeing.pop()  # type: ignore[no-any-return]
            except (AttributeError, IndexError):
                pass
            else:  # both empty: the size and route are known, go straight to the depot
                return self._magazines.alloc_from(magazines)
        return self._alloc(mem_size)

    def _alloc(self, mem_size: object) -> int:
        """The full ``g_slice_alloc`` in GLib's order (API-016, SIZE-009)."""
        size = _check_size(mem_size)
        memory = self._thread_memory()
        chunk_size = self.geometry.p2align(size)
        route = self._route(chunk_size)
        if route is Route.MAGAZINES:
            address = self._magazines.alloc(memory, self.geometry.class_index(chunk_size))
        elif route is Route.SLAB_ONLY:
            with self._slab_lock:
                address = self._slabs.alloc_chunk(self.geometry.class_index(chunk_size))
        else:
            address = self._large.alloc(size)
        if self._settings is not None and self._settings.debug_blocks:
            self._memcheck.notify_alloc(address, size)  # DEBUG-001
        return address

    def alloc0(self, mem_size: int) -> int:
        """Allocate and zero exactly ``mem_size`` bytes (API-002)."""
        address = self.alloc(mem_size)
        if address:
            ctypes.memset(address, 0, mem_size)
        return address

    def copy(self, mem_size: int, mem_block: int | bytes) -> int:
        """Allocate ``mem_size`` bytes and copy them from ``mem_block`` (API-003).

        ``mem_block`` is an address (any readable memory, as in GLib) or a
        bytes-like object of at least ``mem_size`` bytes.  It may be 0 only
        when ``mem_size`` is 0.
        """
        size = _check_size(mem_size)
        if isinstance(mem_block, (bytes, bytearray)):
            if len(mem_block) < size:
                raise SliceValueError(
                    f"copy source holds {len(mem_block)} bytes, fewer than {size} (PY-002)"
                )
            source: int | bytes = bytes(mem_block[:size])
        else:
            address = _check_address(mem_block, "mem_block")
            if size and not address:
                raise SliceValueError("copy of a NULL block with a nonzero size (API-003)")
            if size:
                require_readable(address, size)  # PY-023: never dereference blindly
            source = address
        block = self.alloc(size)
        if block:
            ctypes.memmove(block, source, size)
        return block

    # -------------------------------------------------------------------- freeing
    def free1(self, mem_size: int, mem_block: int) -> None:
        """Release a block allocated with a size of the same class (API-013).

        Freeing 0 (NULL) is a no-op for any size (API-007).
        """
        # Fast path: as in alloc.  Then PY-004 before any write: the block must
        # start a chunk of this class in a live slab, by the chunk map.  One mask
        # test rejects both a negative offset (its sign bit) and an address
        # inside a granule; an offset past the map raises IndexError, a non-int
        # block TypeError; all take the full path, which raises the right error.
        # Shape: every "not served here" exit is a short forward jump to a
        # return of the full path, so CPython 3.11 specialises each comparison
        # (it cannot when a comparison's jump needs an EXTENDED_ARG); the try
        # covers only the lookups, never the full path or the depot.
        if mem_size.__class__ is not int or mem_size <= 0:
            return self._free1(mem_size, mem_block)
        try:
            magazines = self._tls.by_size[mem_size]
            offset = mem_block - self._map_origin
            tag = -1 if offset & _SIGN_OR_GRANULE else self._chunk_map[offset >> _GRANULE_SHIFT]
        except (AttributeError, IndexError, TypeError):
            magazines = None  # the full path runs outside the handler: no chained error
        if magazines is None or tag != magazines.tag:
            return self._free1(mem_size, mem_block)
        freeing = magazines.freeing
        threshold = self._threshold_by_size[mem_size]
        if len(freeing) >= threshold:  # MAG-006: full, so swap first
            loaded = magazines.loaded
            if len(loaded) >= threshold:  # both full: unload to the depot
                return self._magazines.free_into(magazines, mem_block)
            magazines.loaded, magazines.freeing = freeing, loaded
            freeing = loaded
        # MAG-002: ChunkLink {next = previous head, data = NULL}, then push.
        words = self._carved_words
        word = offset >> _WORD_SHIFT
        words[word] = freeing[-1] if freeing else 0
        words[word + 1] = 0
        freeing.append(mem_block)
        return None

    def _free1(self, mem_size: object, mem_block: object) -> None:
        """The full ``g_slice_free1`` in GLib's order (API-017, MAG-006)."""
        self._require_open()
        size = _check_size(mem_size)
        block = _check_address(mem_block, "mem_block")
        if not block:
            return  # API-007
        chunk_size = self.geometry.p2align(size)
        route = self._route(chunk_size)
        settings = self._ensure_initialised()
        if settings.debug_blocks:
            self._memcheck.claim(block, size)  # DEBUG-002: first, before any change
            try:
                self._release(block, size, chunk_size, route, settings)
            except BaseException:
                self._memcheck.restore(block, size)  # refused: the block is still live
                raise
        else:
            self._release(block, size, chunk_size, route, settings)

    def _release(
        self, block: int, size: int, chunk_size: int, route: Route, settings: Settings
    ) -> None:
        """Hand one validated block to its route's layer (API-017)."""
        if route is not Route.SYSTEM_MALLOC:  # PY-004: before any memory is touched
            self._slabs.require_chunk(self.geometry.class_index(chunk_size), block)
        if route is Route.MAGAZINES:
            memory = self._thread_memory()
            index = self.geometry.class_index(chunk_size)
            self._magazines.free(memory, index, block, settings.gc_friendly)
        elif route is Route.SLAB_ONLY:
            index = self.geometry.class_index(chunk_size)
            with self._slab_lock:
                if settings.gc_friendly:
                    ctypes.memset(block, 0, chunk_size)  # GC-001
                self._slabs.free_chunk(index, block)
        else:
            self._large.free(block, settings.gc_friendly)

    def free_chain_with_offset(self, mem_size: int, mem_chain: int, next_offset: int) -> None:
        """Free a linked list whose next pointer sits ``next_offset`` bytes into each block.

        Each node's next pointer is read before the node is freed (API-008).
        The whole chain is validated first, so a bad node (foreign, cyclic,
        or, with debug-blocks, not allocated with this size) raises before
        any node is freed (PY-006, DEBUG-002).
        """
        self._require_open()
        size = _check_size(mem_size)
        head = _check_address(mem_chain, "mem_chain")
        offset = _require_int(next_offset, "next_offset")
        pointer = self.tunables.pointer_size
        # A negative offset is refused before the chain is looked at, even for an
        # empty chain (PY-002); one past the block only matters once there is a
        # node to read (a NULL chain is a no-op at any offset, API-007).
        if offset < 0 or (head and offset + pointer > size):
            raise SliceValueError(
                f"next_offset {offset} leaves no room for a pointer in a {size}-byte block (PY-002)"
            )
        if not head:
            return  # API-007
        settings = self._ensure_initialised()
        chunk_size = self.geometry.p2align(size)
        route = self._route(chunk_size)
        nodes = self._walk_chain(head, offset, size, chunk_size, route, settings.debug_blocks)
        if settings.debug_blocks:
            self._memcheck.claim_all(nodes, size)  # all or none, in one locked step
        if route is Route.MAGAZINES:
            memory = self._thread_memory()
            index = self.geometry.class_index(chunk_size)
            for node in nodes:
                self._magazines.free(memory, index, node, settings.gc_friendly)
        elif route is Route.SLAB_ONLY:
            index = self.geometry.class_index(chunk_size)
            with self._slab_lock:
                for node in nodes:
                    if settings.gc_friendly:
                        ctypes.memset(node, 0, chunk_size)
                    self._slabs.free_chunk(index, node)
        else:
            for node in nodes:
                self._large.free(node, settings.gc_friendly)

    def _walk_chain(
        self, head: int, offset: int, size: int, chunk_size: int, route: Route, debug: bool
    ) -> list[int]:
        """Every node of a chain, validated, before any is freed (API-008, PY-006)."""
        nodes: list[int] = []
        seen: set[int] = set()
        node = head
        while node:
            if debug:  # GLib checks each node as it goes; the reference checks all first
                self._memcheck.verify_free(node, size)
            if node in seen:
                raise SliceValueError(f"chain loops back to {node:#x} (PY-002)")
            if route is Route.SYSTEM_MALLOC:
                if self._large.size_of(node) < offset + self.tunables.pointer_size:
                    raise SliceValueError(f"chain node {node:#x} is smaller than next_offset")
                following = ctypes.c_void_p.from_address(node + offset).value or 0
            else:
                self._slabs.require_chunk(self.geometry.class_index(chunk_size), node)  # PY-004
                start = node + offset - self._base
                following = int.from_bytes(
                    self._arena.bytes[start : start + self.tunables.pointer_size], sys.byteorder
                )
            seen.add(node)
            nodes.append(node)
            node = following
        return nodes

    # --------------------------------------------------------------- configuration
    def set_config(self, ckey: SliceConfig | int, value: int) -> None:
        """``g_slice_set_config``: only before initialisation (CONF-003, CONF-004)."""
        key = _require_int(int(ckey) if isinstance(ckey, SliceConfig) else ckey, "ckey")
        value = _require_int(value, "value")
        if not _GINT64_MIN <= value <= _GINT64_MAX:
            raise SliceValueError(f"value {value} does not fit in a gint64 (PY-002)")
        if self.initialised:
            warnings.warn(
                "g_slice_set_config: assertion 'sys_page_size == 0' failed (CONF-004)",
                ConfigWarning,
                stacklevel=2,
            )
            return
        defaults = self._defaults
        if key == SliceConfig.ALWAYS_MALLOC:
            defaults = replace(defaults, always_malloc=value != 0)
        elif key == SliceConfig.BYPASS_MAGAZINES:
            defaults = replace(defaults, bypass_magazines=value != 0)
        elif key == SliceConfig.WORKING_SET_MSECS:
            defaults = replace(defaults, working_set_msecs=value & _GSIZE_MASK)
        elif key == SliceConfig.COLOR_INCREMENT:
            defaults = replace(defaults, color_increment=value & _GUINT_MASK)
        self._defaults = defaults  # CHUNK_SIZES, CONTENTION_COUNTER, unknown: ignored

    def get_config(self, ckey: SliceConfig | int) -> int:
        """``g_slice_get_config``: reads the defaults, not ``G_SLICE`` (CONF-006)."""
        key = _require_int(int(ckey) if isinstance(ckey, SliceConfig) else ckey, "ckey")
        defaults = self._defaults
        if key == SliceConfig.ALWAYS_MALLOC:
            return int(defaults.always_malloc)
        if key == SliceConfig.BYPASS_MAGAZINES:
            return int(defaults.bypass_magazines)
        if key == SliceConfig.WORKING_SET_MSECS:
            return defaults.working_set_msecs
        if key == SliceConfig.COLOR_INCREMENT:
            return defaults.color_increment
        if key == SliceConfig.CHUNK_SIZES:
            return self.geometry.n_classes
        return 0

    def get_config_state(self, ckey: SliceConfig | int, address: int) -> list[int] | None:
        """``g_slice_get_config_state``: ``[chunk, contention, threshold]`` (CONF-010, CONT-006).

        Only CONTENTION_COUNTER answers; any other key gives None.  GLib does
        not bounds-check ``address`` and crashes under always-malloc; the
        reference raises ``SliceValueError`` in both cases instead (CONF-012, PY-017).
        """
        key = _require_int(int(ckey) if isinstance(ckey, SliceConfig) else ckey, "ckey")
        index = _require_int(address, "address")
        if key != SliceConfig.CONTENTION_COUNTER:
            return None
        settings = self._ensure_initialised()
        if settings.always_malloc:
            raise SliceValueError(
                "get_config_state(CONTENTION_COUNTER) under always-malloc: GLib 2.74 reads a "
                "NULL array and crashes (CONF-012, PY-017)"
            )
        if not 0 <= index < self.geometry.n_classes:
            raise SliceValueError(
                f"size-class index {index} is outside 0..{self.geometry.n_classes - 1} (PY-017)"
            )
        counter = self._depot_lock.counters[index]
        return [
            self.geometry.classes[index].chunk_size,
            counter,
            self.geometry.threshold(index, counter),
        ]

    # -------------------------------------------------------------- block access
    def view(self, address: int, size: int) -> memoryview:
        """A writable view of ``size`` bytes at ``address`` inside this allocator's memory."""
        self._require_open()
        start = _check_address(address)
        length = _check_size(size)
        if self._arena.contains(start, length):
            offset = start - self._base
            return self._arena.bytes[offset : offset + length]
        if start and self._large.owning_block(start, length) is not None:
            return memoryview((ctypes.c_char * length).from_address(start)).cast("B")
        raise ForeignPointerError(
            f"[{start:#x}, +{length}) is not inside memory of this allocator (PY-004)"
        )

    def read(self, address: int, size: int) -> bytes:
        """Copy ``size`` bytes out of a block (or of freed slab memory)."""
        # Inline for the common case, arena memory of an open allocator: the
        # conformance suite reads every live block after every step, and this
        # is view()'s arena branch without its calls.  Anything else (large
        # blocks, bad arguments, a closed allocator) takes view()'s checks.
        arena = self._arena
        if type(address) is int and type(size) is int and size >= 0 and not self._closed:
            offset = address - arena.base
            if offset >= 0 and offset + size <= arena.size:
                return arena.bytes[offset : offset + size].tobytes()
        return bytes(self.view(address, size))

    def write(self, address: int, data: bytes) -> None:
        """Copy ``data`` into memory of this allocator at ``address``."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise SliceTypeError(f"data must be bytes-like, not {type(data).__name__} (PY-001)")
        self.view(address, len(data))[:] = data

    # ---------------------------------------------------------------- threads
    def thread_exit(self) -> None:
        """Run the calling thread's exit cleanup now (EXIT-002, EXIT-004)."""
        memory = getattr(self._tls, "memory", None)
        if memory is None:
            return
        reaper: _ThreadReaper = self._tls.reaper
        reaper.allocator = weakref.ref(self)
        del self._tls.memory, self._tls.by_size, self._tls.reaper
        self._retire(memory)

    def _retire(self, memory: ThreadMemory) -> None:
        if self._closed:
            return
        if self._forked_from and os.getpid() != self._forked_from:
            return  # a dead parent thread's state, cleared in a fork child: _fork_child retires it
        with self._threads_lock:
            self._threads.pop(id(memory), None)
        self._magazines.retire(memory)

    # ---------------------------------------------------------------- fork
    def _fork_prepare(self) -> None:
        """Take every lock in the code's own order, so the state is quiescent (PY-025)."""
        locks = [self._init_lock, self._threads_lock]
        for lock in locks:
            lock.acquire()
        later = [self._depot_lock.lock, self._slab_lock] if self._settings is not None else []
        later += [self._large._lock, self._memcheck._lock]
        for lock in later:  # initialisation cannot start now: the init lock is ours
            lock.acquire()
        self._fork_locks = locks + later
        self._forked_from = os.getpid()

    def _fork_release(self) -> None:
        self._forked_from = 0
        locks, self._fork_locks = self._fork_locks, []
        for lock in reversed(locks):
            lock.release()

    def _fork_child(self) -> None:
        """In the child: unlock, then retire every thread that did not survive (PY-025)."""
        self._fork_release()
        me = threading.get_ident()
        with self._threads_lock:
            dead = [m for m in self._threads.values() if m.thread_id != me]
            for memory in dead:
                del self._threads[id(memory)]
        if self._closed:
            return
        for memory in dead:
            self._magazines.retire(memory)  # EXIT-002: as if each had exited

    def close(self) -> None:
        """Release the arena; the allocator refuses every later call (PY-022)."""
        _ALLOCATORS.discard(self)
        self._closed = True
        self._magazine_limit = 0
        with self._threads_lock:  # every thread's fast path now falls through (PY-022)
            for memory in self._threads.values():
                memory.by_size.clear()
        self._arena.close()

    def __enter__(self) -> Allocator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------- introspection
    def _all_magazines(self) -> Iterable[tuple[int, list[int]]]:
        with self._threads_lock:
            memories = list(self._threads.values())
        for memory in memories:
            for magazines in memory.classes:
                yield magazines.index, magazines.loaded
                yield magazines.index, magazines.freeing

    def snapshot(self) -> AllocatorSnapshot:
        """A consistent copy of every layer's state (INTRO-001, INTRO-002)."""
        from .snapshot import AllocatorSnapshot, MagazineSnapshot, SizeClassSnapshot, Totals

        self._require_open()
        settings = self._ensure_initialised()
        with self._depot_lock.lock, self._slab_lock:
            classes = []
            in_slabs = free_in_slabs = handed_out = overhead = in_depot = 0
            for size_class in self.geometry.classes:
                slabs = []
                for slab in self._slabs.ring(size_class.index):
                    free_chunks = tuple(self._slabs.free_list(slab))
                    slabs.append(self._slab_snapshot(slab, free_chunks))
                    in_slabs += slab.page_size
                    free_in_slabs += len(free_chunks) * slab.chunk_size
                    handed_out += slab.n_allocated * slab.chunk_size
                    overhead += slab.page_size - slab.n_chunks * slab.chunk_size
                depot = tuple(
                    MagazineSnapshot(tuple(reversed(m.chunks)), m.stamp)
                    for m in self._depot.ring(size_class.index)
                )
                in_depot += sum(m.count for m in depot) * size_class.chunk_size
                counter = self._depot_lock.counters[size_class.index]
                classes.append(
                    SizeClassSnapshot(
                        index=size_class.index,
                        chunk_size=size_class.chunk_size,
                        page_size=size_class.page_size,
                        chunks_per_slab=size_class.chunks_per_slab,
                        padding=size_class.padding,
                        threshold=self.geometry.threshold(size_class.index, counter),
                        contention_counter=counter,
                        slabs=tuple(slabs),
                        depot=depot,
                    )
                )
            threads, in_magazines = self._thread_snapshots()
            large = dict(self._large.sizes)
            return AllocatorSnapshot(
                profile=self.tunables.name,
                settings=settings,
                initialised=True,
                color_accu=self._colour.value,
                stamp_counter=self._depot.stamp_counter,
                last_stamp=self._depot.last_stamp,
                mutex_counter=self._depot_lock.mutex_counter,
                classes=tuple(classes),
                threads=threads,
                totals=Totals(
                    mapped=self._page_source.mapped_bytes,
                    in_slabs=in_slabs,
                    handed_out=handed_out - in_magazines - in_depot,
                    in_magazines=in_magazines,
                    in_depot=in_depot,
                    free_in_slabs=free_in_slabs,
                    slab_overhead=overhead,
                    large_live=sum(large.values()),
                    large_blocks=len(large),
                ),
            )

    def _slab_snapshot(self, slab: Slab, free_chunks: tuple[int, ...]) -> SlabSnapshot:
        from .snapshot import SlabSnapshot

        return SlabSnapshot(
            page=slab.page,
            page_size=slab.page_size,
            chunk_size=slab.chunk_size,
            colour=slab.colour,
            n_chunks=slab.n_chunks,
            n_allocated=slab.n_allocated,
            free_chunks=free_chunks,
            slab_info=slab.info,
        )

    def _thread_snapshots(self) -> tuple[tuple[ThreadSnapshot, ...], int]:
        from .snapshot import MagazineSnapshot, ThreadSnapshot

        with self._threads_lock:
            memories = list(self._threads.values())
        threads = []
        in_magazines = 0
        for memory in memories:
            magazines = {}
            for pair in memory.classes:
                loaded, freeing = tuple(reversed(pair.loaded)), tuple(reversed(pair.freeing))
                if loaded or freeing:
                    magazines[pair.index] = (MagazineSnapshot(loaded), MagazineSnapshot(freeing))
                    in_magazines += (len(loaded) + len(freeing)) * (
                        self.geometry.classes[pair.index].chunk_size
                    )
            threads.append(ThreadSnapshot(memory.thread_id, memory.name, magazines))
        return tuple(threads), in_magazines

    def check(self, live: Iterable[tuple[int, int]] | None = None) -> None:
        """Walk every structure; raise :class:`ConsistencyError` on any inconsistency.

        Without ``live`` it proves that no chunk is in two places, that every
        cached chunk is a real chunk of a live slab of its class, that every
        slab's counts agree with its free list and its in-memory SlabInfo, and
        that rings and in-memory link words are well formed.  With ``live``
        (the ``(address, size)`` pairs the caller holds) it also proves that
        no chunk is lost: every allocated chunk is either cached or held
        (INTRO-003).
        """
        self._require_open()
        if not self.initialised:
            return
        settings = self._ensure_initialised()
        from .consistency import Layers, verify  # the checker loads on first use

        layers = Layers(
            geometry=self.geometry,
            arena=self._arena,
            page_source=self._page_source,
            slabs=self._slabs,
            slab_lock=self._slab_lock,
            depot=self._depot,
            thread_magazines=self._all_magazines,
            large=self._large,
            memcheck=self._memcheck if settings.debug_blocks else None,
            route=self._route,
        )
        problems = verify(layers, live)
        if problems:
            raise ConsistencyError(
                "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else "")
            )

    def __repr__(self) -> str:
        state = "initialised" if self.initialised else "not initialised"
        return f"<memslice.Allocator profile={self.tunables.name!r} {state}>"
