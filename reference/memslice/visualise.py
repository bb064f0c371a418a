"""Pictures of an allocator's state: SVG drawn from snapshots and geometry tables.

Rules and theory of operation
-----------------------------
Every picture is computed, never drawn by hand: the input is an
:class:`~memslice.snapshot.AllocatorSnapshot` (or one of its records) or a
:class:`~memslice.sizeclass.Geometry`, the output is SVG text built from plain
strings (no external tool, so ``python -m memslice show`` works anywhere and the
Sphinx build draws the same pictures as users do, INTRO-001)::

    Allocator.snapshot() ──▶ AllocatorSnapshot ──▶ chunk_states() ──▶ {address: ChunkState}
                                   │                                        │
                                   ├──▶ slab_svg(slab, states)   one page to scale
                                   ├──▶ ring_svg(class, states)  a class's slab ring
                                   ├──▶ magazines_svg(snap, ix)  threads' magazines + depot
                                   ├──▶ totals_svg(snap)         where the bytes are
                                   └──▶ snapshot_html(snap)      all of it, one page
    two snapshots ─────────────────────▶ explain(before, after)  what each layer did, in words
    Geometry ──────────────────────────▶ size_class_table_svg()  the size-class table

Terms.  A chunk of a slab is in exactly one of four places (the states of
:class:`ChunkState`): on its slab's free list, cached in a thread's magazine,
cached in a depot magazine, or in use by the program (handed out, or held by
something the snapshot cannot see).  The classification is total: every chunk
of every slab gets exactly one state.

Drawing rules.  Lengths along a slab are proportional to byte offsets
(``x = left + offset * scale``), so the colour offset, the unused tail and the
SlabInfo record (SLAB-003, COLOR-002) are seen at their true relative sizes.
Chunks are labelled ``<slab letter><chunk number>`` (``B3`` is the fourth
chunk of the class's second slab to be carved, :class:`ChunkNames`), the same
label wherever the chunk appears and for its whole life: in a slab, in a
magazine or in the depot, in this picture and the next.  Colours come from
one palette (:data:`PALETTE`, the Okabe-Ito colour-blind-safe set), keyed by
state, so a reader can follow a chunk from picture to picture.

Every element a test or a reader may want to find carries a ``class`` and
``data-*`` attributes (``class="chunk in-magazine" data-offset="48"``).

Invariants: every function returns a well-formed, self-contained SVG document
(or HTML page) whose text is XML-escaped; nothing here reads or changes an
allocator, only records.
"""

from __future__ import annotations

import enum
import html
import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from .sizeclass import Geometry
from .snapshot import AllocatorSnapshot, MagazineSnapshot, SizeClassSnapshot, SlabSnapshot

__all__ = [
    "PALETTE",
    "ChunkNames",
    "ChunkState",
    "Svg",
    "cache_sets",
    "cache_sets_svg",
    "chunk_labels",
    "chunk_states",
    "colour_zoom_svg",
    "explain",
    "magazines_svg",
    "ring_svg",
    "size_class_table_svg",
    "slab_names",
    "slab_svg",
    "snapshot_html",
    "totals_svg",
]


class ChunkState(enum.Enum):
    """Where a slab chunk is (the four places of INTRO-002's byte accounting)."""

    FREE = "free"
    """On its slab's free list."""
    MAGAZINE = "in-magazine"
    """Cached in a live thread's loaded or freeing magazine (MAG-001)."""
    DEPOT = "in-depot"
    """Cached in a magazine parked in the depot (DEPOT-001)."""
    IN_USE = "in-use"
    """Handed out: the program holds it."""


PALETTE: Final[Mapping[str, str]] = {
    ChunkState.FREE.value: "#f2f2f2",
    ChunkState.MAGAZINE.value: "#56b4e9",
    ChunkState.DEPOT.value: "#009e73",
    ChunkState.IN_USE.value: "#e69f00",
    "colour": "#cc79a7",
    "tail": "#bdbdbd",
    "slab-info": "#0072b2",
    "ink": "#222222",
    "faint": "#777777",
    "paper": "#ffffff",
    "large": "#d55e00",
    "unmapped": "#fafafa",
    "touched": "#c0003c",
}
"""Fill colours by chunk state and page region; one palette for every picture."""

_LEGEND: Final = (
    (ChunkState.IN_USE.value, "in use (held by the program)"),
    (ChunkState.MAGAZINE.value, "cached in a thread magazine"),
    (ChunkState.DEPOT.value, "cached in the depot"),
    (ChunkState.FREE.value, "free in its slab"),
    ("colour", "colour offset"),
    ("tail", "unused tail"),
    ("slab-info", "SlabInfo"),
)

_DOCUMENT_IDS: Final = itertools.count(1)
_FONT: Final = "DejaVu Sans, Verdana, Arial, sans-serif"
_MONO: Final = "DejaVu Sans Mono, Menlo, Consolas, monospace"


def _num(value: float) -> str:
    """Coordinates with at most two decimals, so output is stable and compact."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class Svg:
    """A tiny SVG document builder: elements are appended as escaped strings.

    ``Svg(width, height, title)``; call the element methods; ``str()`` gives
    the document.  Coordinates are user units (pixels at 100 % zoom).
    """

    def __init__(self, width: float, height: float, title: str, desc: str = "") -> None:
        self.width = width
        self.height = height
        # Unique per document, so several pictures inlined in one HTML page do not
        # share (and fight over) one element id.
        self.marker_id = f"arrow-{next(_DOCUMENT_IDS)}"
        self.arrow = f"url(#{self.marker_id})"
        """Value for ``marker_end=`` that draws an arrow head."""
        self._parts: list[str] = [f"<title>{escape(title)}</title>"]
        if desc:
            self._parts.append(f"<desc>{escape(desc)}</desc>")
        self._parts.append(
            f'<rect class="background" x="0" y="0" width="{_num(width)}" '
            f'height="{_num(height)}" fill="{PALETTE["paper"]}"/>'
        )

    @staticmethod
    def _attrs(attrs: Mapping[str, object]) -> str:
        return "".join(
            f" {key.rstrip('_').replace('_', '-')}={quoteattr(_attr(value))}"
            for key, value in attrs.items()
            if value is not None
        )

    def rect(self, x: float, y: float, w: float, h: float, **attrs: object) -> None:
        """A rectangle; ``class_=...`` and ``data_x=...`` become attributes."""
        self._parts.append(
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0))}" '
            f'height="{_num(max(h, 0))}"{self._attrs(attrs)}/>'
        )

    def text(self, x: float, y: float, content: str, size: float = 12, **attrs: object) -> None:
        """A text run at ``(x, y)`` (baseline), ``anchor`` start/middle/end."""
        anchor = attrs.pop("anchor", "start")
        self._parts.append(
            f'<text x="{_num(x)}" y="{_num(y)}" font-size="{_num(size)}" '
            f'text-anchor="{anchor}"{self._attrs(attrs)}>{escape(content)}</text>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: object) -> None:
        """A straight line."""
        attrs.setdefault("stroke", PALETTE["ink"])
        self._parts.append(
            f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}"'
            f"{self._attrs(attrs)}/>"
        )

    def path(self, d: str, **attrs: object) -> None:
        """A path with SVG path data ``d``."""
        attrs.setdefault("fill", "none")
        attrs.setdefault("stroke", PALETTE["ink"])
        self._parts.append(f"<path d={quoteattr(d)}{self._attrs(attrs)}/>")

    def raw_group_open(self, **attrs: object) -> None:
        """Open a ``<g>`` group (close it with :meth:`group_close`)."""
        self._parts.append(f"<g{self._attrs(attrs)}>")

    def group_close(self) -> None:
        """Close the innermost open group."""
        self._parts.append("</g>")

    def legend(self, x: float, y: float, keys: Sequence[tuple[str, str]] = _LEGEND) -> float:
        """Colour swatches with captions in one row; returns the row's height."""
        cursor = x
        for key, caption in keys:
            width = 14 + 7 * len(caption) + 18
            if cursor + width > self.width - 8 and cursor > x:
                cursor = x
                y += 18
            self.rect(
                cursor,
                y,
                12,
                12,
                fill=PALETTE[key],
                stroke=PALETTE["faint"],
                class_=f"legend {key}",
            )
            self.text(cursor + 16, y + 10.5, caption, size=11, fill=PALETTE["ink"])
            cursor += width
        return y + 18

    def __str__(self) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" role="img" '
            f'width="{_num(self.width)}" height="{_num(self.height)}" '
            f'viewBox="0 0 {_num(self.width)} {_num(self.height)}" '
            f'font-family="{_FONT}">'
        )
        arrow = (
            f'<defs><marker id="{self.marker_id}" viewBox="0 0 10 10" refX="9" refY="5" '
            'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{PALETTE["ink"]}"/></marker></defs>'
        )
        return head + arrow + "".join(self._parts) + "</svg>\n"


def _attr(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------- classification
def chunk_states(snapshot: AllocatorSnapshot) -> dict[int, ChunkState]:
    """Every slab chunk's address mapped to where it is (total over all slabs).

    Chunks on a slab free list are FREE; chunks in a live thread's magazine
    MAGAZINE; chunks in a depot magazine DEPOT; every other chunk IN_USE.
    """
    states: dict[int, ChunkState] = {}
    for cls in snapshot.classes:
        for slab in cls.slabs:
            for k in range(slab.n_chunks):
                states[slab.page + slab.colour + k * slab.chunk_size] = ChunkState.IN_USE
            for address in slab.free_chunks:
                states[address] = ChunkState.FREE
        for magazine in cls.depot:
            for address in magazine.chunks:
                states[address] = ChunkState.DEPOT
    for thread in snapshot.threads:
        for loaded, freeing in thread.magazines.values():
            for address in (*loaded.chunks, *freeing.chunks):
                states[address] = ChunkState.MAGAZINE
    return states


def _letters(n: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: spreadsheet-style slab names."""
    name = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


class ChunkNames:
    """Names for slabs and chunks that last a chunk's whole life.

    A slab gets the next letter of its class (``A``, ``B`` ... ``Z``, ``AA``)
    the first time :meth:`see` finds it in a snapshot, so letters follow the
    order in which slabs were carved, not page addresses; a chunk is its slab's
    letter and its position (``B3`` is the fourth chunk of the class's second
    slab).  A page that is released and later carved again is a new slab with
    new chunks: it gets a new letter, never a released slab's letter.  Feed
    every snapshot of a run, in order, for names that follow the chunks.

    Slabs first seen in the same snapshot are lettered in the order a ring
    that only fills up carves them: a new slab is pushed at the head, and the
    head moves on when it fills (SLAB-004, SLAB-009), so the newest slab is the
    head while it has free chunks and the oldest is the head's successor; when
    the head is full, the ring from the head is already oldest first.
    """

    def __init__(self) -> None:
        self._letters: dict[tuple[int, int], str] = {}
        self._carved: dict[int, int] = {}

    def see(self, snapshot: AllocatorSnapshot) -> ChunkNames:
        """Name the slabs new in ``snapshot``; forget released ones.  Returns self."""
        for cls in snapshot.classes:
            self.see_class(cls)
        return self

    def see_class(self, cls: SizeClassSnapshot) -> ChunkNames:
        """:meth:`see` for one class.  Returns self."""
        present = {s.page for s in cls.slabs}
        for key in [k for k in self._letters if k[0] == cls.index and k[1] not in present]:
            del self._letters[key]  # released: its page may come back as a new slab
        ring = list(cls.slabs)
        if ring and ring[0].free_chunks:
            ring = ring[1:] + ring[:1]  # the head is the newest slab
        for slab in ring:
            key = (cls.index, slab.page)
            if key not in self._letters:
                ordinal = self._carved.get(cls.index, 0)
                self._carved[cls.index] = ordinal + 1
                self._letters[key] = _letters(ordinal)
        return self

    def slab(self, class_index: int, page: int) -> str:
        """The letter of the slab at ``page`` (``?`` for a slab never seen)."""
        return self._letters.get((class_index, page), "?")

    def slabs(self, cls: SizeClassSnapshot) -> dict[int, str]:
        """``{page address: letter}`` for the class's slabs."""
        return {s.page: self.slab(cls.index, s.page) for s in cls.slabs}

    def chunks(self, cls: SizeClassSnapshot) -> dict[int, str]:
        """``{chunk address: "B3"}`` for every chunk of the class's slabs."""
        labels: dict[int, str] = {}
        for slab in cls.slabs:
            letter = self.slab(cls.index, slab.page)
            for k in range(slab.n_chunks):
                labels[slab.page + slab.colour + k * slab.chunk_size] = f"{letter}{k}"
        return labels


def chunk_labels(cls: SizeClassSnapshot, names: ChunkNames | None = None) -> dict[int, str]:
    """``{address: "B3"}`` for every chunk of the class's slabs (see :class:`ChunkNames`).

    Without ``names`` the class's slabs are named from this snapshot alone.
    """
    return (names or _names_of(cls)).chunks(cls)


def slab_names(cls: SizeClassSnapshot, names: ChunkNames | None = None) -> dict[int, str]:
    """``{page address: "B"}`` for the class's slabs (see :class:`ChunkNames`)."""
    return (names or _names_of(cls)).slabs(cls)


def _names_of(cls: SizeClassSnapshot) -> ChunkNames:
    return ChunkNames().see_class(cls)


# --------------------------------------------------------------------- a slab page
def _draw_slab_bar(
    svg: Svg,
    slab: SlabSnapshot,
    states: Mapping[int, ChunkState],
    x: float,
    y: float,
    width: float,
    height: float,
    letter: str = "",
    highlight: Collection[int] = (),
) -> float:
    """Draw one slab page to scale at ``(x, y)``; returns the scale (px per byte).

    Chunks whose address is in ``highlight`` get a thick outline.
    """
    scale = width / slab.page_size
    svg.raw_group_open(class_="slab", data_page=hex(slab.page), data_page_size=slab.page_size)
    svg.rect(
        x, y, width, height, fill=PALETTE["paper"], stroke=PALETTE["ink"], class_="page-outline"
    )
    if slab.colour:
        svg.rect(
            x,
            y,
            slab.colour * scale,
            height,
            fill=PALETTE["colour"],
            class_="colour-offset",
            data_bytes=slab.colour,
        )
    label_chunks = slab.chunk_size * scale >= 18
    for k in range(slab.n_chunks):
        offset = slab.colour + k * slab.chunk_size
        address = slab.page + offset
        state = states.get(address, ChunkState.IN_USE)
        svg.rect(
            x + offset * scale,
            y,
            slab.chunk_size * scale,
            height,
            fill=PALETTE[state.value],
            stroke=PALETTE["ink"],
            stroke_width="0.6",
            class_=f"chunk {state.value}" + (" touched" if address in highlight else ""),
            data_offset=offset,
            data_address=hex(address),
            data_index=k,
            data_label=f"{letter}{k}" if letter else None,
        )
        if label_chunks:
            svg.text(
                x + (offset + slab.chunk_size / 2) * scale,
                y + height / 2 + 4,
                f"{letter}{k}",
                size=10 if slab.chunk_size * scale >= 26 else 8,
                anchor="middle",
                fill=PALETTE["ink"],
                font_family=_MONO,
            )
    tail_start = slab.slab_info - slab.page - slab.tail_bytes
    if slab.tail_bytes:
        svg.rect(
            x + tail_start * scale,
            y,
            slab.tail_bytes * scale,
            height,
            fill=PALETTE["tail"],
            class_="tail",
            data_bytes=slab.tail_bytes,
        )
    info_offset = slab.slab_info - slab.page
    svg.rect(
        x + info_offset * scale,
        y,
        (slab.page_size - info_offset) * scale,
        height,
        fill=PALETTE["slab-info"],
        class_="slab-info",
        data_offset=info_offset,
    )
    for k in range(slab.n_chunks):
        offset = slab.colour + k * slab.chunk_size
        if slab.page + offset in highlight:
            svg.rect(
                x + offset * scale,
                y - 2,
                max(slab.chunk_size * scale, 3),
                height + 4,
                fill="none",
                stroke=PALETTE["touched"],
                stroke_width="2.5",
                class_="touched-outline",
            )
    svg.group_close()
    return scale


def _draw_free_list(
    svg: Svg, slab: SlabSnapshot, left: float, bar_top: float, scale: float, max_links: int
) -> None:
    """Arrows above a slab bar: the free list's head, then chunk to chunk in pop order."""
    centre = [left + (a - slab.page + slab.chunk_size / 2) * scale for a in slab.free_chunks]
    svg.raw_group_open(class_="free-list", data_length=len(slab.free_chunks))
    svg.text(left, bar_top - 40, "free list head", size=10, fill=PALETTE["faint"])
    svg.path(
        f"M {_num(left + 40)} {_num(bar_top - 36)} Q {_num(left + 40)} {_num(bar_top - 4)} "
        f"{_num(centre[0])} {_num(bar_top - 1)}",
        marker_end=svg.arrow,
        class_="free-link head",
        stroke_width="1.1",
        data_to=hex(slab.free_chunks[0]),
    )
    links = list(itertools.pairwise(slab.free_chunks))[:max_links]
    for (here, there), (x1, x2) in zip(links, itertools.pairwise(centre), strict=False):
        rise = min(8 + abs(x2 - x1) * 0.25, 34)
        svg.path(
            f"M {_num(x1)} {_num(bar_top - 1)} Q {_num((x1 + x2) / 2)} {_num(bar_top - 2 * rise)} "
            f"{_num(x2)} {_num(bar_top - 1)}",
            marker_end=svg.arrow,
            class_="free-link",
            stroke_width="1.1",
            data_from=hex(here),
            data_to=hex(there),
        )
    if len(slab.free_chunks) - 1 > max_links:
        svg.text(
            left + 120,
            bar_top - 40,
            f"(first {max_links} links drawn)",
            size=10,
            fill=PALETTE["faint"],
        )
    svg.text(centre[-1], bar_top - 4, "end", size=8, anchor="middle", fill=PALETTE["faint"])
    svg.group_close()


def slab_svg(
    slab: SlabSnapshot,
    states: Mapping[int, ChunkState] | None = None,
    *,
    width: float = 760,
    title: str | None = None,
    letter: str = "",
    max_links: int = 64,
) -> str:
    """One slab page drawn to scale: colour offset, chunks, unused tail, SlabInfo.

    ``states`` (from :func:`chunk_states`) colours each chunk; without it
    chunks on the free list are FREE and the others IN_USE.  The ruler under
    the page marks the byte offsets where each region starts (SLAB-003,
    COLOR-002).  Above the page, arrows follow the slab's free list in pop
    order, through the free chunks themselves, where its links live
    (SLAB-010); the first ``max_links`` links are drawn.
    """
    if states is None:
        states = {a: ChunkState.FREE for a in slab.free_chunks}
    arcs = 56.0 if slab.free_chunks else 0.0
    left, bar_width, bar_top, bar_height = 16.0, width - 32, 34.0 + arcs, 46.0
    heading = title or (
        f"Slab page {slab.page:#x}: {slab.page_size} bytes, {slab.n_chunks} chunks of "
        f"{slab.chunk_size}, colour {slab.colour}, {slab.n_allocated} allocated"
    )
    svg = Svg(
        width, 200 + arcs, heading, "One slab page drawn to scale; x is proportional to offset."
    )
    svg.text(left, 20, heading, size=13, fill=PALETTE["ink"], font_weight="bold")
    scale = _draw_slab_bar(svg, slab, states, left, bar_top, bar_width, bar_height, letter)
    if slab.free_chunks:
        _draw_free_list(svg, slab, left, bar_top, scale, max_links)

    # Ruler: region boundaries with their offsets, staggered so labels never collide.
    marks: list[tuple[int, str]] = [(0, "0")]
    if slab.colour:
        marks.append((slab.colour, f"{slab.colour}"))
    chunks_end = slab.colour + slab.n_chunks * slab.chunk_size
    marks.append((chunks_end, f"{chunks_end}"))
    info = slab.slab_info - slab.page
    if info != chunks_end:
        marks.append((info, f"{info}"))
    marks.append((slab.page_size, f"{slab.page_size}"))
    ruler_y = bar_top + bar_height
    last_x = -100.0
    row = 0
    for offset, text in marks:
        px = left + offset * scale
        row = row + 1 if px - last_x < 40 else 0
        svg.line(
            px,
            ruler_y,
            px,
            ruler_y + 8 + 13 * row,
            stroke=PALETTE["faint"],
            class_="tick",
            data_offset=offset,
        )
        svg.text(
            px,
            ruler_y + 19 + 13 * row,
            text,
            size=10,
            anchor="middle",
            fill=PALETTE["faint"],
            font_family=_MONO,
        )
        last_x = px
    notes = [
        f"colour offset {slab.colour} B",
        f"{slab.n_chunks} x {slab.chunk_size} B chunks",
        f"unused tail {slab.tail_bytes} B",
        f"SlabInfo at +{info} ({slab.page_size - info} B incl. malloc padding)",
        f"free list: {len(slab.free_chunks)} chunk(s)",
    ]
    svg.text(left, ruler_y + 58, "   |   ".join(notes), size=11, fill=PALETTE["ink"])
    svg.legend(left, ruler_y + 72)
    return str(svg)


# --------------------------------------------------------------------- a class's ring
_PLACE_WORDS: Final = (
    (ChunkState.IN_USE, "used"),
    (ChunkState.MAGAZINE, "mag"),
    (ChunkState.DEPOT, "depot"),
    (ChunkState.FREE, "free"),
)


def _places(slab: SlabSnapshot, states: Mapping[int, ChunkState]) -> str:
    """Where a slab's chunks are, in words: ``2 used, 6 depot`` (zeros left out)."""
    counts = {state: 0 for state, _ in _PLACE_WORDS}
    for k in range(slab.n_chunks):
        counts[states.get(slab.page + slab.colour + k * slab.chunk_size, ChunkState.IN_USE)] += 1
    words = [f"{counts[state]} {word}" for state, word in _PLACE_WORDS if counts[state]]
    return ", ".join(words)


def ring_svg(
    cls: SizeClassSnapshot,
    states: Mapping[int, ChunkState] | None = None,
    *,
    width: float = 760,
    title: str | None = None,
    max_slabs: int = 10,
    names: ChunkNames | None = None,
    highlight: Collection[int] = (),
) -> str:
    """A size class's ring of slabs, head first, each page to the same scale.

    Under each slab's name, where its chunks are: ``2 used, 3 mag, 3 depot,
    0 free`` (the slab's own count of allocated chunks counts all but the
    free ones, wherever they sit), and its colour offset ``c=16``.

    The head is where allocation looks first; slabs with free chunks form a
    run from the head and full slabs sit behind them (SLAB-008).  The arrow on
    the right closes the ring: the last slab's ``next`` is the head.  Rings
    longer than ``max_slabs`` show their first ``max_slabs - 2`` slabs, a
    row saying how many are left out, and the last slab.
    """
    if states is None:
        states = {a: ChunkState.FREE for s in cls.slabs for a in s.free_chunks}
    letters = slab_names(cls, names)
    rows: list[SlabSnapshot | None] = list(cls.slabs)
    if len(rows) > max_slabs:
        rows = [*cls.slabs[: max(max_slabs - 2, 1)], None, cls.slabs[-1]]
    row_h, bar_h, top, left = 40.0, 24.0, 44.0, 176.0
    bar_w = width - left - 60
    height = top + max(len(rows), 1) * row_h + 50
    heading = title or (
        f"Class {cls.index} ({cls.chunk_size}-byte chunks): ring of {len(cls.slabs)} slab(s) "
        f"of {cls.page_size} bytes, head first"
    )
    svg = Svg(width, height, heading, "A size class's slab ring in ring order.")
    svg.text(16, 20, heading, size=13, fill=PALETTE["ink"], font_weight="bold")
    if not cls.slabs:
        svg.text(16, top + 16, "(no slabs: the ring is empty)", size=12, fill=PALETTE["faint"])
    for i, slab in enumerate(rows):
        y = top + i * row_h
        if slab is None:
            svg.text(
                left + bar_w / 2,
                y + 16,
                f"... {len(cls.slabs) - len(rows) + 1} more slabs ...",
                size=11,
                anchor="middle",
                fill=PALETTE["faint"],
                class_="elided",
            )
            svg.line(
                left + bar_w / 2,
                y + 22,
                left + bar_w / 2,
                y + row_h,
                marker_end=svg.arrow,
                class_="next",
                stroke_width="1.2",
            )
            continue
        letter = letters[slab.page]
        caption = f"{'head -> ' if i == 0 else ''}slab {letter}"
        svg.text(
            left - 8,
            y + 11,
            caption,
            size=12,
            anchor="end",
            fill=PALETTE["ink"],
            font_weight="bold" if i == 0 else "normal",
        )
        svg.text(
            left - 8,
            y + 24,
            f"{_places(slab, states)}, c={slab.colour}",
            size=10,
            anchor="end",
            fill=PALETTE["faint"],
            class_="places",
        )
        _draw_slab_bar(svg, slab, states, left, y, bar_w, bar_h, letter, highlight)
        if i + 1 < len(rows):
            svg.line(
                left + bar_w / 2,
                y + bar_h,
                left + bar_w / 2,
                y + row_h,
                marker_end=svg.arrow,
                class_="next",
                stroke_width="1.2",
            )
    if len(rows) > 1:
        last_y = top + (len(rows) - 1) * row_h + bar_h / 2
        right = left + bar_w
        svg.path(
            f"M {_num(right)} {_num(last_y)} H {_num(right + 30)} V {_num(top + bar_h / 2)} "
            f"H {_num(right + 4)}",
            marker_end=svg.arrow,
            class_="ring-back",
            stroke_width="1.2",
        )
        svg.text(right + 34, (top + last_y) / 2, "next", size=10, fill=PALETTE["faint"])
    svg.legend(16, height - 40)
    return str(svg)


# --------------------------------------------------------------------- magazines and depot
def _draw_magazine(
    svg: Svg,
    magazine: MagazineSnapshot,
    labels: Mapping[int, str],
    x: float,
    y: float,
    state: ChunkState,
    caption: str,
    capacity: int,
    max_cells: int,
    highlight: Collection[int] = (),
) -> None:
    """A magazine as a column of cells, head (next to pop) at the top."""
    cell_w, cell_h = 46.0, 16.0
    svg.text(
        x + cell_w / 2,
        y - 20,
        caption,
        size=11,
        anchor="middle",
        fill=PALETTE["ink"],
        font_weight="bold",
    )
    svg.text(
        x + cell_w / 2,
        y - 6,
        f"{magazine.count}/{capacity}",
        size=10,
        anchor="middle",
        fill=PALETTE["faint"],
    )
    svg.raw_group_open(class_=f"magazine {state.value}", data_count=magazine.count)
    shown = magazine.chunks[:max_cells]
    for i, address in enumerate(shown):
        svg.rect(
            x,
            y + i * cell_h,
            cell_w,
            cell_h,
            fill=PALETTE[state.value],
            stroke=PALETTE["touched"] if address in highlight else PALETTE["ink"],
            stroke_width="2.5" if address in highlight else "0.6",
            class_="cell touched" if address in highlight else "cell",
            data_address=hex(address),
            data_label=labels.get(address, "?"),
        )
        svg.text(
            x + cell_w / 2,
            y + i * cell_h + 12,
            labels.get(address, "?"),
            size=10,
            anchor="middle",
            fill=PALETTE["ink"],
            font_family=_MONO,
        )
    if len(magazine.chunks) > max_cells:
        svg.text(
            x + cell_w / 2,
            y + max_cells * cell_h + 12,
            f"+{len(magazine.chunks) - max_cells} more",
            size=10,
            anchor="middle",
            fill=PALETTE["faint"],
        )
    if not magazine.chunks:
        svg.rect(
            x,
            y,
            cell_w,
            cell_h,
            fill="none",
            stroke=PALETTE["faint"],
            stroke_dasharray="3 2",
            class_="empty",
        )
        svg.text(x + cell_w / 2, y + 12, "empty", size=9, anchor="middle", fill=PALETTE["faint"])
    svg.group_close()


def magazines_svg(
    snapshot: AllocatorSnapshot,
    class_index: int,
    *,
    max_cells: int = 12,
    max_depot: int = 8,
    width: float | None = None,
    title: str | None = None,
    names: ChunkNames | None = None,
    highlight: Collection[int] = (),
) -> str:
    """Every live thread's two magazines for one class, and that class's depot ring.

    A thread's *loaded* magazine (GLib's magazine1) is what allocations pop
    from; its *freeing* magazine (magazine2) is what frees push onto
    (MAG-001).  The depot ring is drawn newest (head) first, each magazine
    with its stamp; trimming starts from the oldest, at the right (DEPOT-007).
    Cells are chunk labels (see :func:`chunk_labels`), head of the chain on top;
    at most ``max_cells`` per magazine and ``max_depot`` depot magazines are drawn.
    """
    cls = snapshot.classes[class_index]
    labels = chunk_labels(cls, names)
    # Every live thread is drawn, with empty magazines for a class it holds nothing of.
    threads = list(snapshot.threads)
    depot = cls.depot[:max_depot]
    n_columns = 2 * len(threads) + len(depot) + (1 if len(cls.depot) > max_depot else 0)
    depot_header = f"depot ring ({len(cls.depot)} magazine(s)): newest (head) first, stamps in ms"
    width = width or max(
        560.0, 40 + n_columns * 62 + 60, 40 + 130 * len(threads) + 7 * len(depot_header)
    )
    drawn = [m for t in threads for m in t.magazines.get(class_index, ())] + list(depot)
    rows = max([min(m.count, max_cells) + (m.count > max_cells) for m in drawn] + [1])
    height = 96 + rows * 16 + 64
    heading = title or (
        f"Class {cls.index} ({cls.chunk_size}-byte chunks): thread magazines and depot "
        f"(threshold {cls.threshold})"
    )
    width = max(width, 32 + 7.2 * len(heading))
    svg = Svg(width, height, heading, "Per-thread magazines and the depot ring of one class.")
    svg.text(16, 20, heading, size=13, fill=PALETTE["ink"], font_weight="bold")
    top = 84.0
    x = 20.0
    if not threads:
        svg.text(x, top, "(no live thread)", size=11, fill=PALETTE["faint"])
        x += 130
    for thread in threads:
        empty = MagazineSnapshot(())
        loaded, freeing = thread.magazines.get(class_index, (empty, empty))
        svg.text(x, 36, f"thread {thread.name}", size=12, fill=PALETTE["ink"])
        _draw_magazine(
            svg,
            loaded,
            labels,
            x,
            top,
            ChunkState.MAGAZINE,
            "loaded",
            cls.threshold,
            max_cells,
            highlight,
        )
        _draw_magazine(
            svg,
            freeing,
            labels,
            x + 60,
            top,
            ChunkState.MAGAZINE,
            "freeing",
            cls.threshold,
            max_cells,
            highlight,
        )
        x += 130
    svg.line(x - 6, 34, x - 6, height - 40, stroke=PALETTE["faint"], stroke_dasharray="4 3")
    svg.text(
        x + 4,
        36,
        depot_header,
        size=12,
        fill=PALETTE["ink"],
    )
    if not cls.depot:
        svg.text(x + 4, top, "(empty)", size=11, fill=PALETTE["faint"])
    if len(cls.depot) > max_depot:
        svg.text(
            x + 4 + max_depot * 62,
            top + 12,
            f"... +{len(cls.depot) - max_depot}",
            size=11,
            fill=PALETTE["faint"],
            class_="elided",
        )
    for i, magazine in enumerate(depot):
        stamp = "-" if magazine.stamp is None else str(magazine.stamp)
        _draw_magazine(
            svg,
            magazine,
            labels,
            x + 4 + i * 62,
            top,
            ChunkState.DEPOT,
            f"#{i} {'(head)' if i == 0 else ''}",
            magazine.count,
            max_cells,
            highlight,
        )
        svg.text(
            x + 4 + i * 62 + 23,
            top - 34,
            stamp,
            size=9,
            anchor="middle",
            fill=PALETTE["faint"],
            font_family=_MONO,
            class_="stamp",
        )
    svg.legend(
        16,
        height - 26,
        [
            (ChunkState.MAGAZINE.value, "cached in a thread magazine"),
            (ChunkState.DEPOT.value, "cached in the depot"),
        ],
    )
    return str(svg)


# --------------------------------------------------------------------- colour, zoomed
def _carving_order(cls: SizeClassSnapshot, names: ChunkNames) -> list[SlabSnapshot]:
    """The class's slabs in the order they were carved (by their letters)."""

    def key(slab: SlabSnapshot) -> tuple[int, str]:
        letter = names.slab(cls.index, slab.page)
        return (len(letter), letter)

    return sorted(cls.slabs, key=key)


def colour_zoom_svg(
    cls: SizeClassSnapshot,
    names: ChunkNames | None = None,
    *,
    width: float = 760,
    title: str | None = None,
    max_slabs: int = 12,
    line_size: int = 64,
) -> str:
    """The first bytes of each slab of a class, zoomed so colour offsets are to scale.

    One row per slab in carving order; x is the byte offset in the page from 0
    to the class's padding plus one cache line, so every colour offset (pink)
    and the start of chunk 0 are seen at their true sizes.  Dashed lines mark
    cache-line boundaries (``line_size``).  A row whose offset is smaller than
    the row above's is where the colour sequence wrapped (COLOR-002).
    """
    names = names or _names_of(cls)
    slabs = _carving_order(cls, names)[:max_slabs]
    step = 16
    span = -(-(cls.padding + line_size) // step) * step
    left, right, top, row_h = 170.0, 48.0, 66.0, 30.0
    scale = (width - left - right) / span
    height = top + max(len(slabs), 1) * row_h + 40
    heading = title or (
        f"Class {cls.index} ({cls.chunk_size}-byte chunks, padding {cls.padding} B): the first "
        f"{span} bytes of each slab, in carving order"
    )
    svg = Svg(width, height, heading, "Colour offsets to scale: the start of each slab page.")
    svg.text(16, 20, heading, size=13, fill=PALETTE["ink"], font_weight="bold")
    svg.raw_group_open(class_="zoom", data_span=span, data_scale=f"{scale:.6f}")
    for offset in range(0, span + 1, step):
        x = left + offset * scale
        svg.line(x, top - 12, x, top - 4, stroke=PALETTE["faint"], class_="tick")
        svg.text(
            x,
            top - 16,
            str(offset),
            size=9,
            anchor="middle",
            fill=PALETTE["faint"],
            font_family=_MONO,
        )
    for boundary in range(0, span + 1, line_size):
        x = left + boundary * scale
        svg.line(
            x,
            top - 4,
            x,
            top + len(slabs) * row_h,
            stroke=PALETTE["ink"],
            stroke_dasharray="4 3",
            class_="cache-line",
            data_offset=boundary,
        )
        if boundary < span:
            svg.text(
                x + 4, top - 30, f"cache line {boundary // line_size}", size=10, fill=PALETTE["ink"]
            )
    svg.text(16, top - 16, "byte offset in the page", size=10, fill=PALETTE["faint"])
    previous: int | None = None
    for i, slab in enumerate(slabs):
        y = top + i * row_h
        letter = names.slab(cls.index, slab.page)
        svg.text(
            left - 8,
            y + 15,
            f"slab {letter}: colour {slab.colour}",
            size=11,
            anchor="end",
            fill=PALETTE["ink"],
            font_family=_MONO,
        )
        svg.raw_group_open(class_="zoom-row", data_colour=slab.colour, data_slab=letter)
        if slab.colour:
            svg.rect(
                left,
                y + 2,
                slab.colour * scale,
                row_h - 8,
                fill=PALETTE["colour"],
                class_="colour-offset",
                data_bytes=slab.colour,
            )
        chunk_x = left + slab.colour * scale
        svg.rect(
            chunk_x,
            y + 2,
            (span - slab.colour) * scale,
            row_h - 8,
            fill=PALETTE[ChunkState.IN_USE.value],
            stroke=PALETTE["ink"],
            stroke_width="0.6",
            class_="first-chunk",
            data_offset=slab.colour,
        )
        svg.text(
            chunk_x + 6,
            y + 16,
            f"{letter}0 starts at +{slab.colour}",
            size=10,
            fill=PALETTE["ink"],
            font_family=_MONO,
        )
        svg.group_close()
        if previous is not None and slab.colour < previous:
            svg.text(
                width - right + 4,
                y + 15,
                "wrap",
                size=10,
                anchor="start",
                fill=PALETTE["touched"],
                class_="wrap",
                font_weight="bold",
            )
            svg.path(
                f"M {_num(left + previous * scale)} {_num(y - 4)} "
                f"Q {_num(left + (previous + slab.colour) / 2 * scale)} {_num(y + 4)} "
                f"{_num(chunk_x)} {_num(y + 2)}",
                stroke=PALETTE["touched"],
                stroke_width="1.6",
                marker_end=svg.arrow,
                class_="wrap-arrow",
            )
        previous = slab.colour
    svg.group_close()
    svg.legend(
        16,
        height - 26,
        [
            ("colour", "colour offset (padding used)"),
            (ChunkState.IN_USE.value, "chunk 0 of the slab"),
        ],
    )
    return str(svg)


def cache_sets(
    cls: SizeClassSnapshot, *, coloured: bool = True, line_size: int = 64, n_sets: int = 64
) -> list[int]:
    """How many chunks of the class start in each L1 cache set (index = set).

    A chunk's first byte at address ``a`` falls in set ``(a // line_size) %
    n_sets`` (64 sets of 64-byte lines: a 32 KiB, 8-way L1 data cache, the
    figure W7 measures).  With ``coloured=False`` every slab is counted as if
    its chunks started at offset 0.
    """
    counts = [0] * n_sets
    for slab in cls.slabs:
        start = slab.page + (slab.colour if coloured else 0)
        for k in range(slab.n_chunks):
            counts[(start + k * slab.chunk_size) // line_size % n_sets] += 1
    return counts


def cache_sets_svg(
    cls: SizeClassSnapshot,
    *,
    width: float = 760,
    title: str | None = None,
    line_size: int = 64,
    n_sets: int = 64,
) -> str:
    """Two strips of L1 cache sets: where the class's chunks start, uncoloured and coloured.

    Each cell is one cache set; its darkness is how many chunks of the class
    begin in it (:func:`cache_sets`).  The top strip counts as if every slab
    started its chunks at offset 0, the bottom one as the slabs are really
    coloured (COLOR-002); the more cells are hit, the less the chunks' first
    words evict each other.
    """
    rows = (
        (
            "every slab at offset 0",
            cache_sets(cls, coloured=False, line_size=line_size, n_sets=n_sets),
        ),
        ("as coloured", cache_sets(cls, line_size=line_size, n_sets=n_sets)),
    )
    left, top, row_h = 240.0, 56.0, 44.0
    cell = (width - left - 20) / n_sets
    height = top + len(rows) * row_h + 34
    heading = title or (
        f"Class {cls.index} ({cls.chunk_size} B), {len(cls.slabs)} slabs: the L1 cache sets "
        f"(of {n_sets}, {line_size}-byte lines) where chunks start"
    )
    svg = Svg(width, height, heading, "Cache sets hit by chunk starts, without and with colour.")
    svg.text(16, 20, heading, size=13, fill=PALETTE["ink"], font_weight="bold")
    peak = max(max(counts) for _, counts in rows) or 1
    for s in range(0, n_sets, 8):
        svg.text(
            left + (s + 0.5) * cell,
            top - 6,
            str(s),
            size=9,
            anchor="middle",
            fill=PALETTE["faint"],
            font_family=_MONO,
        )
    for r, (caption, counts) in enumerate(rows):
        y = top + r * row_h
        hit = sum(1 for c in counts if c)
        svg.text(left - 8, y + 13, caption, size=11, anchor="end", fill=PALETTE["ink"])
        svg.text(
            left - 8,
            y + 27,
            f"{hit} sets hit, up to {max(counts)} chunks on one",
            size=10,
            anchor="end",
            fill=PALETTE["faint"],
            class_="summary",
        )
        svg.raw_group_open(class_="cache-strip", data_coloured=r == 1, data_sets_hit=hit)
        for s, count in enumerate(counts):
            t = max(count / peak, 0.25) if count else 0.0  # a single hit stays visible
            fill = f"rgb({255 - t * 255:.0f},{255 - t * 141:.0f},{255 - t * 77:.0f})"
            svg.rect(
                left + s * cell,
                y,
                cell,
                26,
                fill=fill,
                stroke=PALETTE["faint"],
                stroke_width="0.3",
                class_="cache-set",
                data_set=s,
                data_count=count,
            )
        svg.group_close()
    svg.text(
        16,
        height - 12,
        "darker = more chunks begin in that set; white = none",
        size=10,
        fill=PALETTE["faint"],
    )
    return str(svg)


# --------------------------------------------------------------------- size-class table
def totals_svg(snapshot: AllocatorSnapshot, *, width: float = 760, title: str | None = None) -> str:
    """Where the bytes are, as one bar to scale (INTRO-002).

    The slab pages split into chunks in use, chunks cached in magazines and in
    the depot, chunks free in their slabs, and per-slab overhead (colour,
    tail, SlabInfo); then memory the OS still backs that no slab uses (released
    slab pages that share an OS page with a live slab: the OS page goes back
    only when no slab on it is left, PAGE-003) and live system-malloc blocks.
    The slab segments add up to ``in_slabs``.
    """
    t = snapshot.totals
    segments = [
        ("in-use", ChunkState.IN_USE.value, t.handed_out, "in use"),
        ("in-magazines", ChunkState.MAGAZINE.value, t.in_magazines, "magazines"),
        ("in-depot", ChunkState.DEPOT.value, t.in_depot, "depot"),
        ("free-in-slabs", ChunkState.FREE.value, t.free_in_slabs, "free in slabs"),
        ("overhead", "slab-info", t.slab_overhead, "slab overhead"),
        ("not-in-slabs", "unmapped", max(t.mapped - t.in_slabs, 0), "mapped, not in a slab"),
        ("large", "large", t.large_live, "large blocks"),
    ]
    total = sum(size for _, _, size, _ in segments)
    heading = title or (
        f"Where the bytes are: {t.in_slabs} B in slab pages, {t.large_live} B in "
        f"{t.large_blocks} large block(s)"
    )
    left, top, bar_w, bar_h = 16.0, 34.0, width - 32, 30.0
    # Lay the captions out first, so the picture is exactly as tall as its rows.
    placed: list[tuple[float, int]] = []
    cursor, row = left, 0
    for _, _, size, caption in segments:
        w = 16 + 6.6 * len(f"{caption}: {size} B") + 16
        if cursor + w > width - 8:
            cursor, row = left, row + 1
        placed.append((cursor, row))
        cursor += w
    height = top + bar_h + 18 + (row + 1) * 18
    svg = Svg(width, height, heading, "Allocator memory by where it is, to scale.")
    svg.text(16, 20, heading, size=13, fill=PALETTE["ink"], font_weight="bold")
    scale = bar_w / total if total else 0.0
    x = left
    svg.rect(
        left, top, bar_w, bar_h, fill=PALETTE["paper"], stroke=PALETTE["ink"], class_="outline"
    )
    for name, colour, size, _ in segments:
        svg.rect(
            x,
            top,
            size * scale,
            bar_h,
            fill=PALETTE[colour],
            stroke=PALETTE["ink"],
            stroke_width="0.5",
            class_=f"segment {name}",
            data_bytes=size,
        )
        x += size * scale
    for (name, colour, size, caption), (cx, r) in zip(segments, placed, strict=True):
        y = top + bar_h + 18 + r * 18
        svg.rect(
            cx,
            y - 10,
            12,
            12,
            fill=PALETTE[colour],
            stroke=PALETTE["faint"],
            class_=f"legend {name}",
        )
        svg.text(cx + 16, y, f"{caption}: {size} B", size=11, fill=PALETTE["ink"])
    return str(svg)


def size_class_table_svg(
    geometry: Geometry,
    *,
    thresholds: Sequence[int] | None = None,
    width: float = 760,
    title: str | None = None,
) -> str:
    """The size-class table with each class's slab page drawn to scale.

    Columns: index, chunk size, page size, chunks per slab, padding (the
    colour range) and magazine threshold (SIZE-005, SIZE-007, MAG-004); the bar
    shows how the class's page divides into chunks, padding and SlabInfo, all
    pages scaled to the largest.  ``thresholds`` overrides the base thresholds
    (e.g. from a snapshot under contention).
    """
    row_h, top = 14.0, 52.0
    height = top + len(geometry.classes) * row_h + 40
    heading = title or (
        f"{geometry.tunables.name}: {geometry.n_classes} size classes "
        f"({geometry.p2alignment}..{geometry.largest_slab_request} B), "
        f"pages {geometry.min_page_size}..{geometry.max_page_size} B"
    )
    svg = Svg(width, height, heading, "The size-class table; bars are pages to scale.")
    svg.text(16, 20, heading, size=13, fill=PALETTE["ink"], font_weight="bold")
    columns = (("ix", 36), ("chunk", 84), ("page", 136), ("n", 176), ("pad", 220), ("mag", 262))
    for name, cx in columns:
        svg.text(
            cx, top - 8, name, size=11, anchor="end", fill=PALETTE["faint"], font_weight="bold"
        )
    bar_left = 280.0
    bar_w = width - bar_left - 16
    scale = bar_w / geometry.max_page_size
    svg.text(
        bar_left,
        top - 8,
        f"slab page to scale (full width = {geometry.max_page_size} B)",
        size=11,
        fill=PALETTE["faint"],
    )
    for row, sc in enumerate(geometry.classes):
        y = top + row * row_h
        threshold = thresholds[row] if thresholds is not None else sc.base_threshold
        values = (sc.index, sc.chunk_size, sc.page_size, sc.chunks_per_slab, sc.padding, threshold)
        svg.raw_group_open(class_="size-class", data_index=sc.index, data_chunk=sc.chunk_size)
        for (_, cx), value in zip(columns, values, strict=True):
            svg.text(
                cx,
                y + 11,
                str(value),
                size=10,
                anchor="end",
                fill=PALETTE["ink"],
                font_family=_MONO,
            )
        used = sc.chunks_per_slab * sc.chunk_size
        svg.rect(
            bar_left,
            y + 2,
            used * scale,
            row_h - 4,
            fill=PALETTE["in-use"],
            class_="chunks",
            data_bytes=used,
        )
        svg.rect(
            bar_left + used * scale,
            y + 2,
            sc.padding * scale,
            row_h - 4,
            fill=PALETTE["colour"],
            class_="padding",
            data_bytes=sc.padding,
        )
        svg.rect(
            bar_left + (used + sc.padding) * scale,
            y + 2,
            geometry.slab_info_size * scale,
            row_h - 4,
            fill=PALETTE["slab-info"],
            class_="slab-info",
            data_bytes=geometry.slab_info_size,
        )
        svg.group_close()
    svg.legend(
        16,
        height - 26,
        [
            (ChunkState.IN_USE.value, "chunks"),
            ("colour", "padding = colour range"),
            ("slab-info", "SlabInfo + malloc padding"),
        ],
    )
    return str(svg)


# --------------------------------------------------------------------- narration
def _class_name(cls: SizeClassSnapshot) -> str:
    return f"class {cls.index} ({cls.chunk_size} B)"


def explain(before: AllocatorSnapshot, after: AllocatorSnapshot, *, detail: int = 3) -> list[str]:
    """What each layer did between two snapshots, one sentence per change.

    Lines start with the layer (``slab``, ``colour``, ``magazine``,
    ``depot``, ``contention``, ``large``) so a reader can follow the layers.
    Up to ``detail`` like events per class are listed one by one; more are
    summarised in one line.  Changes that cancel out between the snapshots
    are invisible by design.
    """
    lines: list[str] = []
    for old, new in zip(before.classes, after.classes, strict=True):
        name = _class_name(new)
        old_pages = {s.page: s for s in old.slabs}
        new_pages = {s.page: s for s in new.slabs}
        added = [new_pages[p] for p in sorted(new_pages.keys() - old_pages.keys())]
        if 0 < len(added) <= detail:
            lines += [
                f"slab: {name}: new slab page {s.page:#x} ({s.n_chunks} chunks, colour offset "
                f"{s.colour}), pushed at the ring head"
                for s in added
            ]
        elif added:
            colours = sorted({s.colour for s in added})
            lines.append(
                f"slab: {name}: {len(added)} new slab pages of {new.page_size} B "
                f"(colour offsets {', '.join(map(str, colours[:6]))}"
                f"{', ...' if len(colours) > 6 else ''})"
            )
        removed = sorted(old_pages.keys() - new_pages.keys())
        if 0 < len(removed) <= detail:
            lines += [
                f"slab: {name}: slab page {p:#x} became empty and was released" for p in removed
            ]
        elif removed:
            lines.append(f"slab: {name}: {len(removed)} slab pages became empty and were released")
        kept = sorted(old_pages.keys() & new_pages.keys())
        out = sum(max(new_pages[p].n_allocated - old_pages[p].n_allocated, 0) for p in kept)
        back = sum(max(old_pages[p].n_allocated - new_pages[p].n_allocated, 0) for p in kept)
        out += sum(s.n_allocated for s in added)
        if out:
            lines.append(f"slab: {name}: {out} chunk(s) left slab free lists")
        if back:
            lines.append(f"slab: {name}: {back} chunk(s) came back to surviving slabs")
        old_depot = {m.chunks[0]: m for m in old.depot if m.chunks}
        new_depot = {m.chunks[0]: m for m in new.depot if m.chunks}
        pushed = [new_depot[h] for h in new_depot.keys() - old_depot.keys()]
        left = [old_depot[h] for h in old_depot.keys() - new_depot.keys()]
        if pushed:
            stamps = sorted({m.stamp for m in pushed if m.stamp is not None})
            lines.append(
                f"depot: {name}: {len(pushed)} magazine(s) pushed "
                f"({sum(m.count for m in pushed)} chunks, stamp(s) "
                f"{', '.join(map(str, stamps[:3]))}{', ...' if len(stamps) > 3 else ''}); "
                f"ring now holds {len(new.depot)}"
            )
        if left:
            lines.append(
                f"depot: {name}: {len(left)} magazine(s) left the depot "
                f"({sum(m.count for m in left)} chunks; popped by a reload, or trimmed)"
            )
        if new.contention_counter != old.contention_counter:
            lines.append(
                f"contention: {name}: counter {old.contention_counter} -> "
                f"{new.contention_counter}, threshold {old.threshold} -> {new.threshold}"
            )
    if after.color_accu != before.color_accu:
        lines.append(f"colour: color_accu {before.color_accu} -> {after.color_accu}")
    old_threads = {t.thread_id: t for t in before.threads}
    empty = (MagazineSnapshot(()), MagazineSnapshot(()))
    for thread in after.threads:
        prior = old_threads.pop(thread.thread_id, None)
        before_mags = prior.magazines if prior else {}
        if prior is None:
            lines.append(f"magazine: thread {thread.name} got its magazines (first use)")
        for ix in sorted(set(thread.magazines) | set(before_mags)):
            was = before_mags.get(ix, empty)
            now = thread.magazines.get(ix, empty)
            if (was[0].count, was[1].count) != (now[0].count, now[1].count):
                lines.append(
                    f"magazine: thread {thread.name}, {_class_name(after.classes[ix])}: "
                    f"loaded {was[0].count} -> {now[0].count}, "
                    f"freeing {was[1].count} -> {now[1].count}"
                )
    for gone in old_threads.values():
        lines.append(f"magazine: thread {gone.name} exited; its magazines were handed back")
    if (before.totals.large_blocks, before.totals.large_live) != (
        after.totals.large_blocks,
        after.totals.large_live,
    ):
        lines.append(
            f"large: {after.totals.large_blocks} system-malloc block(s) live "
            f"({after.totals.large_live} B), was {before.totals.large_blocks} "
            f"({before.totals.large_live} B)"
        )
    return lines


# --------------------------------------------------------------------- one page of everything
def _totals_rows(snapshot: AllocatorSnapshot) -> Iterable[tuple[str, str]]:
    t = snapshot.totals
    yield "profile", snapshot.profile
    yield "slab pages mapped / in slabs", f"{t.mapped} / {t.in_slabs} B"
    yield "handed out (slab chunks)", f"{t.handed_out} B"
    yield "cached in magazines / depot", f"{t.in_magazines} / {t.in_depot} B"
    yield "free in slabs", f"{t.free_in_slabs} B"
    yield "slab overhead (colour, tail, SlabInfo)", f"{t.slab_overhead} B"
    yield "large blocks (system malloc)", f"{t.large_blocks} ({t.large_live} B)"
    yield (
        "color_accu / stamp / mutex counter",
        (f"{snapshot.color_accu} / {snapshot.last_stamp} / {snapshot.mutex_counter}"),
    )


def snapshot_html(
    snapshot: AllocatorSnapshot,
    geometry: Geometry | None = None,
    *,
    title: str = "memslice allocator snapshot",
    max_slabs: int = 4,
) -> str:
    """A self-contained HTML page: totals, then every non-empty class's pictures.

    For each class that has slabs or cached magazines: its slab ring, its
    first ``max_slabs`` slabs to scale, and its magazines and depot.  With
    ``geometry``, the size-class table closes the page.
    """
    states = chunk_states(snapshot)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:" + _FONT + ";max-width:1000px;margin:1em auto;"
        "color:#222} table{border-collapse:collapse} td{padding:2px 10px;"
        "border-bottom:1px solid #ddd} svg{display:block;margin:0.5em 0 1.5em}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<table>",
    ]
    parts += [
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
        for k, v in _totals_rows(snapshot)
    ]
    parts.append("</table>")
    parts.append(totals_svg(snapshot))
    busy = [
        c
        for c in snapshot.classes
        if c.slabs or c.depot or any(c.index in t.magazines for t in snapshot.threads)
    ]
    if not busy:
        parts.append("<p>No size class holds slabs or cached chunks.</p>")
    for cls in busy:
        parts.append(f'<h2 id="class-{cls.index}">{html.escape(_class_name(cls))}</h2>')
        parts.append(ring_svg(cls, states))
        letters = slab_names(cls)
        for slab in cls.slabs[:max_slabs]:
            parts.append(
                slab_svg(
                    slab,
                    states,
                    letter=letters[slab.page],
                    title=f"slab {letters[slab.page]} at {slab.page:#x}",
                )
            )
        parts.append(magazines_svg(snapshot, cls.index))
    if geometry is not None:
        parts.append("<h2>Size classes</h2>")
        parts.append(size_class_table_svg(geometry))
    parts.append("</body></html>\n")
    return "\n".join(parts)
