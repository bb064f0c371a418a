"""The debug-blocks checker (``G_SLICE=debug-blocks``): an exact address-to-size table.

Rules and theory of operation
-----------------------------
With debug-blocks on, every successful allocation records ``address ->
requested size`` (DEBUG-001) and every release is checked against the table
*before* anything else happens (DEBUG-002)::

    alloc(24) = p  ──▶  table[p] = 24
    free1(24, p)   ──▶  table has p with 24?  yes: remove, proceed
                                            no p: "attempt to release non-allocated block"
                                            other size: "... with invalid size"

* A second release of ``p`` finds no entry: double free (DEBUG-003).
* An address never handed out, including an interior pointer, finds no entry
  (DEBUG-004).
* A size different from the recorded one -- even in the same 16-byte class --
  is an invalid size; the message prints the *recorded* size first and the
  size passed to free as ``invalid-size`` (DEBUG-005).
* It works on the system-malloc path too (DEBUG-006).
* It does not detect use-after-free, overflows or leaks.

GLib prints the message to stderr and aborts (DEBUG-008).  The reference
raises :class:`~memslice.errors.NonAllocatedBlockError` or
:class:`~memslice.errors.InvalidSizeError` carrying the exact text
(DEBUG-007), and since the check runs first, the allocator is unchanged.

GLib stores the table as a 2-level hash of sorted arrays (4093 trunks of 511
branches); only ``g_slice_debug_tree_statistics`` could see that shape, and
Debian's build does not export it, so a dict behind a lock is faithful.
"""

from __future__ import annotations

import threading

from .errors import InvalidSizeError, NonAllocatedBlockError

__all__ = ["MemChecker", "glib_pointer"]


def glib_pointer(address: int) -> str:
    """Format an address as glibc's ``%p`` does (``0x7f..``, or ``(nil)``)."""
    return f"{address:#x}" if address else "(nil)"


class MemChecker:
    """GLib's ``smc_*`` table (DEBUG-001..DEBUG-008)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.blocks: dict[int, int] = {}

    def notify_alloc(self, address: int, size: int) -> None:
        """Record a block handed out; NULL is ignored (DEBUG-001)."""
        if address:
            with self._lock:
                self.blocks[address] = size

    def verify_free(self, address: int, size: int) -> None:
        """Raise GLib's complaint if releasing ``address`` as ``size`` is wrong (DEBUG-002)."""
        if not address:
            return
        with self._lock:
            self._complain(address, size, self.blocks.get(address))

    def claim(self, address: int, size: int) -> None:
        """Check and forget a block in one locked step, as GLib's ``smc_notify_free``.

        Forgetting only after the block is released would leave a window in
        which another thread is handed the same address, records it, and then
        loses its record to this release (DEBUG-002).
        """
        self.claim_all((address,), size)

    def claim_all(self, addresses: tuple[int, ...] | list[int], size: int) -> None:
        """Check every block first, then forget them all; on a complaint forget none."""
        with self._lock:
            for address in addresses:
                if address:
                    self._complain(address, size, self.blocks.get(address))
            for address in addresses:
                if address:
                    del self.blocks[address]

    def restore(self, address: int, size: int) -> None:
        """Record a claimed block again: its release was refused after the claim."""
        self.notify_alloc(address, size)

    @staticmethod
    def _complain(address: int, size: int, recorded: int | None) -> None:
        if recorded is None:
            raise NonAllocatedBlockError(
                "GSlice: MemChecker: attempt to release non-allocated block: "
                f"{glib_pointer(address)} size={size}",
                address,
                size,
            )
        if recorded != size:
            raise InvalidSizeError(
                "GSlice: MemChecker: attempt to release block with invalid size: "
                f"{glib_pointer(address)} size={recorded} invalid-size={size}",
                address,
                size,
                recorded,
            )

