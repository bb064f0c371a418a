"""The depot: full magazines kept per size class for a working set, then trimmed.

Rules and theory of operation
-----------------------------
When a thread's two magazines are both full it hands one to the depot; when
both are empty it takes one back (MAG-005, MAG-006).  The depot is, per size
class, a circular ring of full magazines, newest at the head (DEPOT-001)::

    head (newest)                                           tail (oldest)
      ┌───────┐   ┌───────┐   ┌───────┐        ┌───────┐
      │ mag C │──▶│ mag B │──▶│ mag A │── ... ─│ mag Z │──┐
      └───────┘   └───────┘   └───────┘        └───────┘  │
          ▲_______________________________________________│  (prev of head = tail)

A magazine's bookkeeping is stored *inside its own first four chunks*, in the
spare ``data`` word of each ``ChunkLink`` (DEPOT-002); that is why a magazine
holds at least 4 chunks (MAG-003)::

    c1.data = prev magazine   c2.data = stamp   c3.data = next magazine   c4.data = count

When a magazine joins or leaves a ring, its neighbours keep their stamp and
count: only the neighbour's ``prev`` (c1) or ``next`` (c3) word is stored again.

* **Push** (DEPOT-003): prepare the four fields, lock, insert at the head,
  stamp it with the (possibly stale) global ``last_stamp``, then trim.
* **Stamps** (DEPOT-006): the clock is read only on every 8th push; the
  others reuse ``last_stamp``.  The stamp is milliseconds truncated to 32 bits.
* **Trim** (DEPOT-007): from the tail, release magazines whose stamp is not
  within ``working_set_msecs`` of the pushing stamp; their chunks go back to
  the slab layer, which releases slabs that empty.  There is no timer: an idle
  class keeps its depot forever, and ``working_set_msecs == 0`` trims every
  magazine at once (eager freeing).
* **Pop** (DEPOT-004): take the head (newest, LIFO) magazine; if the class's
  ring is empty, build a fresh magazine of ``threshold`` chunks straight from
  the slab layer, in allocation order (DEPOT-005).  The depot lock is taken
  here with contention counting (CONT-001).

The Python ``DepotMagazine`` objects are the reference's handles; the link
and metadata words are also written into chunk memory, as GLib keeps them.
Lock order: depot lock, then (never while holding it) the slab lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import chain

from .contention import ContendedLock
from .rings import walk
from .sizeclass import Geometry
from .slab import SlabLayer
from .tunables import MAX_STAMP_COUNTER

__all__ = ["Depot", "DepotMagazine"]

_GUINT_MASK = 0xFFFFFFFF


class DepotMagazine:
    """A full magazine resting in the depot; ``chunks[-1]`` is its head chunk (c1)."""

    __slots__ = ("chunks", "next", "prev", "stamp")

    def __init__(self, chunks: list[int]) -> None:
        self.chunks = chunks
        self.stamp = 0
        self.next: DepotMagazine = self
        self.prev: DepotMagazine = self

    @property
    def head_chunk(self) -> int:
        """Address of c1, the chunk GLib uses as the magazine's identity."""
        return self.chunks[-1]


class Depot:
    """The magazine cache of one allocator (DEPOT-001..DEPOT-008)."""

    def __init__(
        self,
        geometry: Geometry,
        slabs: SlabLayer,
        slab_lock: threading.Lock,
        lock: ContendedLock,
        clock: Callable[[], int],
        working_set_msecs: int,
    ) -> None:
        self.geometry = geometry
        self.slabs = slabs
        self.slab_lock = slab_lock
        self.lock = lock
        self.clock = clock
        self.working_set_msecs = working_set_msecs
        self.heads: list[DepotMagazine | None] = [None] * geometry.n_classes
        self.thresholds = [c.base_threshold for c in geometry.classes]
        self._shift = geometry.tunables.pointer_size.bit_length() - 1  # bytes to words
        self._words, self._origin = slabs.words, slabs.map_origin  # chunk memory, as words
        self._base_thresholds = [c.base_threshold for c in geometry.classes]
        # The same thresholds indexed by request size, so the allocator's fast
        # path needs one list lookup instead of a size-to-class computation.
        self.threshold_by_size = [0] * (geometry.largest_slab_request + 1)
        for size_class in geometry.classes:
            self._fill_sizes(size_class.index, size_class.base_threshold)
        self.stamp_counter = MAX_STAMP_COUNTER  # forces a clock read now (DEPOT-006)
        self.last_stamp = 0
        self.trips = 0  # pushes plus pops: how often threads needed the depot
        self.clock_failures = 0  # clock reads that raised or gave a non-int (PY-019)
        self.last_clock_error: BaseException | None = None
        self.update_stamp()

    # -- stamps -----------------------------------------------------------------
    def update_stamp(self) -> None:
        """Re-read the clock on every 8th call only (DEPOT-006).

        A clock that raises (or answers with something that is not an int)
        leaves ``last_stamp`` as it was and the counter at its maximum, so this
        push reuses the stale stamp, as the seven pushes between reads do, and
        the next push tries the clock again (PY-019).  Why not raise: a push
        happens inside ``free1`` and inside thread-exit cleanup, after chunks
        have already left the thread's magazine; failing there would leave the
        release half done (or lose a dead thread's chunks), and GLib's clock
        cannot fail.
        """
        if self.stamp_counter >= MAX_STAMP_COUNTER:
            try:
                now = self.clock()
                stamp = now & _GUINT_MASK if now.__class__ is int else None
            except Exception as error:  # any failure of the injected clock (PY-019)
                self.last_clock_error = error
                stamp = None
            if stamp is None:
                self.clock_failures += 1
                return
            self.last_stamp = stamp
            self.stamp_counter = 0
        else:
            self.stamp_counter += 1

    def threshold(self, index: int) -> int:
        """The current magazine threshold of a class (MAG-004, CONT-004)."""
        return self.thresholds[index]

    def _refresh_threshold(self, index: int) -> None:
        threshold = self.geometry.threshold(index, self.lock.counters[index])
        if threshold != self.thresholds[index]:
            self.thresholds[index] = threshold
            self._fill_sizes(index, threshold)

    def _fill_sizes(self, index: int, threshold: int) -> None:
        step = self.geometry.p2alignment
        first = index * step + 1
        self.threshold_by_size[first : first + step] = [threshold] * step

    # -- in-memory metadata -----------------------------------------------------
    def _write_prev(self, magazine: DepotMagazine) -> None:
        """Store only ``prev`` (c1.data): all a neighbour's arrival or departure changes."""
        chunk = magazine.chunks[-1]
        at = ((chunk - self.slabs.map_origin) >> self._shift) + 1
        self.slabs.words[at] = magazine.prev.chunks[-1]

    def _write_next(self, magazine: DepotMagazine) -> None:
        """Store only ``next`` (c3.data), for the same reason."""
        chunk = magazine.chunks[-3]
        at = ((chunk - self.slabs.map_origin) >> self._shift) + 1
        self.slabs.words[at] = magazine.next.chunks[-1]

    # -- operations -------------------------------------------------------------
    def push(self, index: int, chunks: list[int]) -> None:
        """Accept a full magazine (at least 4 chunks), stamp it, then trim (DEPOT-003).

        The DEPOT-002 stores are written inline, with local names: the new
        magazine's four fields (c1 prev, c2 stamp, c3 next, c4 count), the old
        tail's ``next`` and the old head's ``prev`` (what :meth:`_write_next`
        and :meth:`_write_prev` store; the neighbours' other fields are
        already in memory).  :meth:`update_stamp` is called only when it
        reads the clock; the other seven pushes in eight just count.  A push
        that expires nothing (the tail's stamp is within the working set)
        skips :meth:`_collect_expired`, which would find nothing to unlink.
        """
        magazine = DepotMagazine(chunks)
        with_lock = self.lock.lock
        with_lock.acquire()
        try:
            self.trips += 1
            words, origin, shift = self._words, self._origin, self._shift
            head = self.heads[index]
            c1 = chunks[-1]
            if head is None:  # alone on the ring: prev and next are itself
                tail_c1 = head_c1 = c1
            else:
                tail = head.prev
                magazine.next = head
                magazine.prev = tail
                tail.next = magazine
                head.prev = magazine
                head_c1, tail_c1 = head.chunks[-1], tail.chunks[-1]
                words[((tail.chunks[-3] - origin) >> shift) + 1] = c1  # the tail's next
                words[((head_c1 - origin) >> shift) + 1] = c1  # the old head's prev
            if self.stamp_counter < MAX_STAMP_COUNTER:  # update_stamp without a clock read
                self.stamp_counter += 1
            else:
                self.update_stamp()
            magazine.stamp = stamp = self.last_stamp
            self.heads[index] = magazine
            words[((c1 - origin) >> shift) + 1] = tail_c1  # prev
            words[((chunks[-2] - origin) >> shift) + 1] = stamp
            words[((chunks[-3] - origin) >> shift) + 1] = head_c1  # next
            words[((chunks[-4] - origin) >> shift) + 1] = len(chunks)  # count
            # DEPOT-007: the oldest magazine is the new head's prev (itself when alone).
            if abs(stamp - magazine.prev.stamp) < self.working_set_msecs:
                return
            trash = self._collect_expired(index, stamp)
        finally:
            with_lock.release()
        self._release(index, trash)

    def _collect_expired(self, index: int, stamp: int) -> list[DepotMagazine]:
        """Unlink magazines from the tail whose stamps left the working set (DEPOT-007)."""
        trash: list[DepotMagazine] = []
        head = self.heads[index]
        if head is None:
            return trash
        current = head.prev
        while abs(stamp - current.stamp) >= self.working_set_msecs:
            previous = current.prev
            trash.append(current)
            if current is head:
                self.heads[index] = None
                return trash
            previous.next = head
            head.prev = previous
            current = previous
        if trash:  # the in-memory links as GLib leaves them after the last unlink
            self._write_next(head.prev)
            self._write_prev(head)
        return trash

    def _release(self, index: int, trash: list[DepotMagazine]) -> None:
        """Give every chunk of trimmed magazines back to the slab layer (DEPOT-008)."""
        if not trash:
            return
        words, origin, shift = self._words, self._origin, self._shift
        with self.slab_lock:
            for magazine in trash:  # it leaves the depot: c1..c4's data words to 0 (DEPOT-002)
                chunks = magazine.chunks
                words[((chunks[-1] - origin) >> shift) + 1] = 0
                words[((chunks[-2] - origin) >> shift) + 1] = 0
                words[((chunks[-3] - origin) >> shift) + 1] = 0
                words[((chunks[-4] - origin) >> shift) + 1] = 0
            # Magazine by magazine, each from the head chunk down as GLib walks it,
            # in one call: the slab layer then settles runs of one slab at once.
            self.slabs.free_chunks(
                index, chain.from_iterable(reversed(magazine.chunks) for magazine in trash)
            )
            for magazine in trash:
                magazine.chunks.clear()

    def pop(self, index: int) -> list[int]:
        """A full magazine for a thread whose two magazines are empty (DEPOT-004/005).

        Inline forms: :meth:`_refresh_threshold` is skipped when the class's
        contention counter is 0 and its threshold the base one (the geometry
        would answer the base threshold); the neighbours' ``next``/``prev``
        words are stored as :meth:`_write_next` and :meth:`_write_prev` do,
        and the leaving magazine's four data words are zeroed (DEPOT-002).
        """
        lock = self.lock
        lock.acquire_counted(index)
        try:
            self.trips += 1
            threshold = self.thresholds[index]
            if lock.counters[index] or threshold != self._base_thresholds[index]:
                self._refresh_threshold(index)
                threshold = self.thresholds[index]
            magazine = self.heads[index]
            if magazine is not None:
                words, origin, shift = self._words, self._origin, self._shift
                following = magazine.next
                if following is magazine:
                    self.heads[index] = None
                else:
                    previous = magazine.prev
                    self.heads[index] = following
                    previous.next = following
                    following.prev = previous
                    # previous.c3.data = following.c1; following.c1.data = previous.c1
                    following_c1 = following.chunks[-1]
                    words[((previous.chunks[-3] - origin) >> shift) + 1] = following_c1
                    words[((following_c1 - origin) >> shift) + 1] = previous.chunks[-1]
                chunks = magazine.chunks  # it leaves the depot: c1..c4's data words to 0
                words[((chunks[-1] - origin) >> shift) + 1] = 0
                words[((chunks[-2] - origin) >> shift) + 1] = 0
                words[((chunks[-3] - origin) >> shift) + 1] = 0
                words[((chunks[-4] - origin) >> shift) + 1] = 0
        finally:
            lock.lock.release()
        if magazine is not None:
            return magazine.chunks
        return self._fresh_magazine(index, threshold)

    def _fresh_magazine(self, index: int, threshold: int) -> list[int]:
        """``threshold`` chunks straight from the slabs, in allocation order (DEPOT-005).

        If the page source refuses memory half-way, the chunks taken so far go
        back to their slabs before the error propagates, so nothing is lost
        (PY-005) and the slab layer is as it was before the refill (PY-020).
        """
        taken: list[int] = []
        with self.slab_lock:
            colour_before = self.slabs.colour.value
            try:
                self.slabs.alloc_chain(index, threshold, taken)  # linked as MAG-002 asks
            except BaseException:
                # Undo in reverse: each chunk goes back on top of its free list and
                # each slab that filled up returns to the head in the order it
                # left, so free lists and ring order are as before; slabs added
                # during the refill empty and are released (PY-020).
                for chunk in reversed(taken):
                    self.slabs.free_chunk(index, chunk)
                # Those slabs advanced the colour accumulator; rewind it so the
                # failed refill leaves no trace in later slabs' colours (PY-020).
                self.slabs.colour.value = colour_before
                raise
        taken.reverse()  # the stack's end is the magazine head: first allocated pops first
        return taken

    def ring(self, index: int) -> list[DepotMagazine]:
        """The magazines of class ``index``, newest first."""
        return walk(self.heads[index], _next_magazine, self.magazine_bound(), f"depot ring {index}")

    def magazine_bound(self) -> int:
        """More magazines than this cannot exist: each holds four chunks of some slab."""
        return self.slabs.total_chunks() // 4 + 1


def _next_magazine(magazine: DepotMagazine) -> DepotMagazine:
    return magazine.next
