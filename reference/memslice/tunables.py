"""Tunables: the platform and policy numbers every layer derives its geometry from.

Rules and theory of operation
-----------------------------
GLib fixes a handful of constants at compile time and derives everything else
at start-up from two platform facts, the pointer size and the system page size
(SIZE-001..SIZE-010).  The reference keeps the same split::

    constants (Final, from the spec's tables)        Tunables (one frozen record)
      P2ALIGNMENT = 2 * pointer_size                   pointer_size, sys_page_size,
      SLAB_INFO_SIZE, MIN/MAX_MAGAZINE_SIZE, ...       have_memalign, working_set_msecs,
                 \\                                     color_increment, arena_bytes
                  \\______________  ______________________/
                                 \\/
                     sizeclass.Geometry (derived, cached)

Two profiles are provided:

* ``GLIB_2_74`` -- x86_64, 4096-byte pages, posix_memalign available: 63 size
  classes (16..1008 bytes), slab pages 256..8192 bytes, magazines of 51..4.
* ``MINIMAL`` -- GLib's own formulas on a legal but tiny platform (512-byte
  system pages, no memalign): 3 size classes (16, 32, 48), every slab 512
  bytes, every magazine threshold 4, a 50 ms working set and a 16 MiB arena.
  Property tests reach slab creation, magazine reloads and unloads, depot
  trims and slab release within a handful of operations.

Invariants: ``sys_page_size`` is a power of two >= 512 (GLib asserts both);
``pointer_size`` is 4 or 8; ``arena_bytes`` is a multiple of the largest slab
page.  ``Tunables`` validates these in ``__post_init__``.  It is a frozen record
(:mod:`memslice.records`): ``records.replace(GLIB_2_74, arena_bytes=...)`` derives
a variant.
"""

from __future__ import annotations

from .errors import SliceValueError
from .records import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "GLIB_2_74",
    "LARGEALIGNMENT",
    "MAX_MAGAZINE_SIZE",
    "MAX_STAMP_COUNTER",
    "MINIMAL",
    "MIN_MAGAZINE_SIZE",
    "PROFILES",
    "Tunables",
]

# Compile-time constants of gslice.c 2.74 (spec table "constants" in 02-sizes.md).
LARGEALIGNMENT: Final = 256
"""Only used to assert ``sys_page_size >= 2 * LARGEALIGNMENT`` (SIZE-002)."""
MIN_MAGAZINE_SIZE: Final = 4
"""Floor of every magazine threshold; the depot keeps 4 metadata words (MAG-003)."""
MAX_MAGAZINE_SIZE: Final = 256
"""Cap of a contention counter (CONT-003)."""
MAX_STAMP_COUNTER: Final = 7
"""The depot re-reads the clock on every 8th push (DEPOT-006)."""
DEFAULT_WORKING_SET_MSECS: Final = 15000
"""How long the depot keeps a magazine before a later push may trim it (DEPOT-007)."""
DEFAULT_COLOR_INCREMENT: Final = 1
"""Added to the colour accumulator per coloured slab (COLOR-002)."""


@record
class Tunables:
    """The numbers an :class:`~memslice.Allocator` is built from.

    ``pointer_size`` and ``sys_page_size`` select the platform; ``have_memalign``
    chooses GLib's page-size rule (SIZE-004); ``working_set_msecs`` and
    ``color_increment`` are the compiled-in defaults that ``get_config`` reports
    (CONF-006); ``arena_bytes`` is how much address space the reference reserves
    for slab pages (the reference's stand-in for the process heap, PAGE-001).
    """

    name: str
    pointer_size: int = 8
    sys_page_size: int = 4096
    have_memalign: bool = True
    working_set_msecs: int = DEFAULT_WORKING_SET_MSECS
    color_increment: int = DEFAULT_COLOR_INCREMENT
    arena_bytes: int = 64 << 30

    def __post_init__(self) -> None:
        if self.pointer_size not in (4, 8):
            raise SliceValueError(f"pointer_size must be 4 or 8, not {self.pointer_size}")
        page = self.sys_page_size
        if page < 2 * LARGEALIGNMENT or page & (page - 1):
            raise SliceValueError(
                f"sys_page_size must be a power of two >= {2 * LARGEALIGNMENT}, not {page}"
            )
        if self.working_set_msecs < 0 or self.color_increment < 0:
            raise SliceValueError("working_set_msecs and color_increment must be >= 0")
        if self.arena_bytes <= 0 or self.arena_bytes % 65536:
            raise SliceValueError(
                f"arena_bytes must be a positive multiple of 64 KiB, not {self.arena_bytes}"
            )


GLIB_2_74: Final = Tunables(name="glib-2.74")
"""GLib 2.74 on x86_64 Linux with 4 KiB pages: the fidelity profile."""

MINIMAL: Final = Tunables(
    name="minimal",
    sys_page_size=512,
    have_memalign=False,
    working_set_msecs=50,
    arena_bytes=16 << 20,
)
"""Tiny slabs, 4-chunk magazines, 50 ms working set: reaches deep states fast."""

PROFILES: Final = {p.name: p for p in (GLIB_2_74, MINIMAL)}
