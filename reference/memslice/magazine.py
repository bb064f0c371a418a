"""The magazine layer: two per-thread magazines per size class, and thread-exit cleanup.

Rules and theory of operation
-----------------------------
Every thread that uses the allocator owns, for every size class, two
*magazines* -- stacks of free chunks -- so that most allocations and frees
touch no lock at all (MAG-001)::

    thread T, class ix
      loaded  (GLib's magazine1): alloc pops here   [c9 c8 c7 ... ]◀─ pop
      freeing (GLib's magazine2): free pushes here  [c2 c5 ...     ]◀─ push
                     │ both empty: swap, then reload from the depot │
                     │ both full:  swap, then unload to the depot   │

* **Allocate** (MAG-005): if ``loaded`` is empty, swap the two; if it is still
  empty, *reload* it with a full magazine from the depot (which may build one
  from the slabs); pop.
* **Free** (MAG-006): if ``freeing`` holds ``threshold`` chunks or more, swap
  the two; if the new ``freeing`` is full too, *unload* it to the depot; then
  (gc-friendly only: zero the chunk, GC-001) push.
* Consequences (MAG-007): reuse is LIFO once ``loaded`` runs dry; a chunk
  just freed is not handed out again while ``loaded`` still has chunks; an
  alloc/free ping-pong never takes a lock.

A magazine is a Python list used as a stack (its end is the head), and each
pushed chunk also gets GLib's ``ChunkLink`` written into its first two words
(``next`` = the previous head, ``data`` = NULL), so a freed block's first 16
bytes change exactly as in GLib and 16 bytes is a real minimum (MAG-002).
The list is what makes the allocator's fast path a single ``pop``/``append``.

**Thread exit** (EXIT-001..EXIT-004, PY-015): when a thread that used the allocator
ends, each of its magazines with at least ``MIN_MAGAZINE_SIZE`` chunks goes to
the depot (where other threads can reuse it); smaller ones go chunk by chunk
back to the slab layer.  Python has no pthread-key destructor, so a small
*reaper* object stored in the thread's ``threading.local`` state runs the
cleanup when the interpreter discards that state; ``Allocator.thread_exit()``
runs it on demand.  As in GLib, the main thread is not cleaned up at exit.
"""

from __future__ import annotations

import ctypes
import threading

from .depot import Depot
from .sizeclass import Geometry
from .slab import SlabLayer
from .tunables import MIN_MAGAZINE_SIZE

__all__ = ["ClassMagazines", "MagazineLayer", "ThreadMemory"]


class ClassMagazines:
    """A thread's two magazines for one size class."""

    __slots__ = ("freeing", "index", "loaded", "tag")

    def __init__(self, index: int) -> None:
        self.index = index
        self.tag = index + 1  # the class's byte in the slab layer's chunk map (PY-004)
        self.loaded: list[int] = []
        self.freeing: list[int] = []


class ThreadMemory:
    """GLib's ``ThreadMemory``: one thread's magazines for every class (MAG-001)."""

    __slots__ = ("by_size", "classes", "name", "retired", "thread_id")

    def __init__(self, geometry: Geometry) -> None:
        self.classes = [ClassMagazines(c.index) for c in geometry.classes]
        # by_size[n] is the class serving an n-byte request: the fast path's
        # one-lookup replacement for P2ALIGN + SLAB_INDEX.  by_size[0] is None
        # and larger sizes fall off the end (IndexError); the fast path checks
        # n > 0 itself, since Python would read a negative index from the end.
        shift = geometry.p2alignment.bit_length() - 1
        self.by_size: list[ClassMagazines | None] = [None] + [
            self.classes[(size - 1) >> shift]
            for size in range(1, geometry.largest_slab_request + 1)
        ]
        current = threading.current_thread()
        self.thread_id = threading.get_ident()
        self.name = current.name
        self.retired = False


class MagazineLayer:
    """Swap, reload, unload and thread-exit rules over a :class:`Depot` (MAG-*, EXIT-*)."""

    def __init__(
        self, geometry: Geometry, slabs: SlabLayer, slab_lock: threading.Lock, depot: Depot
    ) -> None:
        self.geometry = geometry
        self.slabs = slabs
        self.slab_lock = slab_lock
        self.depot = depot
        self._word_shift = geometry.tunables.pointer_size.bit_length() - 1  # bytes to words
        self._words, self._origin = slabs.words, slabs.map_origin  # chunk memory, as words

    def alloc(self, memory: ThreadMemory, index: int) -> int:
        """Pop a chunk, swapping or reloading first if needed (MAG-005)."""
        return self.alloc_from(memory.classes[index])

    def alloc_from(self, magazines: ClassMagazines) -> int:
        """:meth:`alloc` on a thread's magazines of one class (the allocator's fast path
        calls this directly when both magazines are empty)."""
        if not magazines.loaded:
            magazines.loaded, magazines.freeing = magazines.freeing, magazines.loaded
            if not magazines.loaded:
                magazines.loaded = self.depot.pop(magazines.index)
        return magazines.loaded.pop()

    def free(self, memory: ThreadMemory, index: int, chunk: int, gc_friendly: bool) -> None:
        """Push a chunk, swapping or unloading first if needed (MAG-006)."""
        self.free_into(memory.classes[index], chunk, gc_friendly)

    def free_into(self, magazines: ClassMagazines, chunk: int, gc_friendly: bool = False) -> None:
        """:meth:`free` on a thread's magazines of one class (the allocator's fast path
        calls this directly when both magazines are full)."""
        index = magazines.index
        threshold = self.depot.thresholds[index]
        if len(magazines.freeing) >= threshold:
            magazines.loaded, magazines.freeing = magazines.freeing, magazines.loaded
            if len(magazines.freeing) >= threshold:
                full, magazines.freeing = magazines.freeing, []
                self.depot.push(index, full)
        if gc_friendly:
            ctypes.memset(chunk, 0, self.geometry.classes[index].chunk_size)  # GC-001
        # MAG-002: write the ChunkLink {next = the previous head, data = NULL}, then stack it.
        freeing = magazines.freeing
        word = (chunk - self._origin) >> self._word_shift
        words = self._words
        words[word] = freeing[-1] if freeing else 0
        words[word + 1] = 0
        freeing.append(chunk)

    def retire(self, memory: ThreadMemory) -> None:
        """Thread-exit cleanup: big magazines to the depot, small ones to the slabs (EXIT-002)."""
        if memory.retired:
            return
        memory.retired = True
        for magazines in memory.classes:
            for magazine in (magazines.loaded, magazines.freeing):
                if len(magazine) >= MIN_MAGAZINE_SIZE:
                    self.depot.push(magazines.index, magazine[:])
                else:
                    with self.slab_lock:
                        self.slabs.free_chunks(magazines.index, reversed(magazine))
                magazine.clear()
