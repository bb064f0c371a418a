"""Cache colouring: where the first chunk of a new slab starts.

Rules and theory of operation
-----------------------------
A slab page rarely divides evenly into chunks; the bytes left over (the
*padding*) would sit unused at the end.  Bonwick's idea, kept by GLib, is to
spend them at the *start* instead, shifting successive slabs by one more
alignment unit each, so that the first chunks of different slabs fall on
different cache lines (COLOR-001)::

    slab 0: |c0 |c1 |...|c7 |  pad 80  |SlabInfo|     colour  0
    slab 1: |16|c0 |c1 |...|c7 | pad 64 |SlabInfo|     colour 16
    slab 2: | 32 |c0 |c1 |...|c7 | p 48 |SlabInfo|     colour 32  ... (chunk 112)

GLib keeps **one** accumulator for the whole allocator, shared by every size
class (COLOR-003).  A new slab with ``padding != 0`` gets colour
``(accu * P2ALIGNMENT) % padding`` and *then* the accumulator grows by the
configured increment, wrapping as a 32-bit ``guint`` (COLOR-002).  A slab with
no padding gets colour 0 and leaves the accumulator alone (COLOR-004).

Invariant: a colour is a multiple of ``P2ALIGNMENT`` in ``[0, padding)``, so
chunks stay aligned and the last chunk still ends before the SlabInfo.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:
    from typing import Final


__all__ = ["ColourAccumulator"]

_GUINT_MASK: Final = 0xFFFFFFFF


class ColourAccumulator:
    """GLib's global ``color_accu`` (COLOR-002, COLOR-003)."""

    __slots__ = ("increment", "p2alignment", "value")

    def __init__(self, p2alignment: int, increment: int) -> None:
        self.p2alignment = p2alignment
        self.increment = increment & _GUINT_MASK
        self.value = 0

    def next_colour(self, padding: int) -> int:
        """The colour offset for a new slab with ``padding`` spare bytes."""
        if not padding:
            return 0  # COLOR-004: nothing to spread, accumulator untouched
        colour = (self.value * self.p2alignment) % padding
        self.value = (self.value + self.increment) & _GUINT_MASK
        return colour
