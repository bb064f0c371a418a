"""The contract an implementation under test must satisfy: ``SliceAllocator``.

Rules and theory of operation
-----------------------------
The conformance suite drives an allocator only through the five allocation
entry points of GLib's slice ABI plus two accessors for the bytes of a block
(:class:`SliceAllocator`); the three functions of the configuration API are
optional (:class:`Configurable`, the ``config`` profile).  Anything
that satisfies :class:`SliceAllocator` (a Python object, a ctypes wrapper
around a shared library, a worker process speaking ``memslice-jsonl``) can
be checked::

    check (machine, threads, sweeps)
        │  symbolic ops: alloc "b3", write "b3", free1 "b3", ...
        ▼
    Session  ── in-process ──► SliceAllocator (Python object)
             └─ worker pipe ─► worker.py ─► SliceAllocator (ctypes / libc)
                             └─ cmd: any program speaking memslice-jsonl

Terms.  An *address* is a plain ``int``; 0 is NULL.  A *block* is the byte
range ``[addr, addr + size)`` handed out by ``alloc``/``alloc0``/``copy``;
it is *live* from the call that returned it until the ``free1`` or chain
free that releases it.

Invariants the suite checks (core profile), each with its clause IDs:

* ``alloc(n)`` is NULL iff ``n == 0`` (API-001); same for ``alloc0`` and
  ``copy`` (API-002, API-003).
* live blocks are pairwise disjoint (API-004), and every byte written to a
  live block reads back unchanged until the block is freed (API-005);
* ``alloc0`` memory reads zero however dirty the recycled chunk was
  (API-002); ``copy`` is byte-equal and distinct (API-003);
* every block is aligned to at least ``sizeof(void*)`` (API-006);
* NULL frees and NULL chains do nothing (API-007);
* a chain linked at any ``next_offset`` is freed node by node, each node's
  link read before the node is released (API-008);
* any thread may free any live block (API-009); blocks outlive the thread
  that allocated them (EXIT-001).

What the suite never asserts (the spec leaves it open): exact addresses, the
order in which freed memory comes back, strides, and the contents of memory
that ``alloc`` returned before anybody wrote it.

An implementation that also offers ``get_config``, ``set_config`` and
``get_config_state`` (:class:`Configurable`) claims the ``config`` profile:
CONF-002, CONF-004, CONF-010 and CONF-011 bind it there, never in ``core``.

Implementations may additionally expose ``name`` (a display name),
``profiles`` (the conformance profiles they claim, see
:mod:`memslice_conformance.profiles.registry`) and ``thread_exit()`` (run the calling
thread's exit cleanup now); see :class:`ThreadAware` and :class:`Described`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Configurable", "Described", "SliceAllocator", "ThreadAware"]


@runtime_checkable
class SliceAllocator(Protocol):
    """GLib's ``g_slice_*`` ABI as seen by the conformance suite.

    Every method may be called from any thread; the suite serialises nothing
    beyond what a C caller would (API-009).
    """

    def alloc(self, size: int, /) -> int:
        """Allocate ``size`` bytes and return the block's address.

        Pre: ``size >= 0``.  Post: the result is 0 iff ``size == 0`` (API-001);
        otherwise ``[result, result + size)`` overlaps no live block (API-004)
        and ``result % sizeof(void*) == 0`` (API-006).  Contents unspecified.
        """
        ...

    def alloc0(self, size: int, /) -> int:
        """As :meth:`alloc`, and the ``size`` bytes read zero (API-002)."""
        ...

    def copy(self, size: int, src: int, /) -> int:
        """As :meth:`alloc`, and the block holds ``src``'s first ``size`` bytes.

        Pre: ``src`` is a live block of at least ``size`` bytes, or 0 when
        ``size == 0``.  Post: a new distinct block, byte-equal (API-003).
        """
        ...

    def free1(self, size: int, addr: int, /) -> None:
        """Release the live block ``addr`` allocated with ``size`` bytes.

        Pre: ``addr`` is live and was allocated with ``size``, or ``addr`` is
        0 (then this is a no-op whatever ``size`` is: API-007).  Post: no
        other live block's bytes changed (API-005).
        """
        ...

    def free_chain_with_offset(self, size: int, head: int, next_offset: int, /) -> None:
        """Release every block of the list starting at ``head``.

        Pre: each node is live, allocated with ``size``, and holds at byte
        ``next_offset`` a native pointer to the next node (0 ends the list).
        Post: every node released; each node's link is read before that node
        is released (API-008); a 0 head is a no-op (API-007).
        """
        ...

    def read(self, addr: int, size: int, /) -> bytes:
        """Return the ``size`` bytes at ``addr`` (any readable memory)."""
        ...

    def write(self, addr: int, data: bytes, /) -> None:
        """Store ``data`` at ``addr`` (the suite writes only inside live blocks)."""
        ...


@runtime_checkable
class Configurable(Protocol):
    """The optional configuration API (the ``config`` profile).

    An implementation with all three methods claims ``config``; one without
    them is checked on ``core`` only.
    """

    def get_config(self, key: int, /) -> int:
        """``g_slice_get_config``: 0 for keys outside 1..6 (CONF-010)."""
        ...

    def set_config(self, key: int, value: int, /) -> None:
        """``g_slice_set_config``: ignored once the allocator is in use (CONF-004)."""
        ...

    def get_config_state(self, key: int, address: int, /) -> list[int] | None:
        """``g_slice_get_config_state``: ``None`` for every key but 6 (CONF-011)."""
        ...


@runtime_checkable
class ThreadAware(Protocol):
    """An implementation with per-thread caches that wants an exit hook.

    ``thread_exit()`` is called on a thread just before the suite lets that
    thread end (EXIT-001); implementations that clean up automatically at
    thread end need not provide it.
    """

    def thread_exit(self) -> None:
        """Run the calling thread's exit cleanup now."""
        ...


@runtime_checkable
class Described(Protocol):
    """Optional self-description: a display name and the profiles claimed."""

    @property
    def name(self) -> str:
        """A short display name for reports."""
        ...

    @property
    def profiles(self) -> frozenset[str]:
        """The conformance profiles this implementation claims (``core`` always)."""
        ...
