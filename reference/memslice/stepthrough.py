"""Step through a program's slice calls, one call at a time, on the reference.

Rules and theory of operation
-----------------------------
:func:`replay` runs a :class:`~memslice.calltrace.CallTrace` on a fresh
reference allocator, one call at a time, each on its own named thread (one
real Python thread per trace thread, so magazines are per thread exactly as
in the program), and snapshots the allocator after every call.
:func:`stepper_html` turns the frames into one self-contained HTML block:
one ``<section>`` per call with the call as C, what each layer did
(:func:`memslice.visualise.explain`), the clauses that say why, and the
pictures of every size class the trace uses, drawn with names that follow
each chunk from frame to frame (:class:`~memslice.visualise.ChunkNames`)::

    CallTrace ──▶ replay() ──▶ [Frame(call, snapshot, narration, clauses)...]
                                        │
                                        ▼
                 stepper_html() ──▶ <div class="memslice-stepper">
                                      controls: previous | slider | next
                                      <section data-step="0" data-pictures="0 1 2">
                                          call, words, clauses
                                      <section data-step="1" hidden> ...
                                      <template id="...-pic-0"> SVG  (each drawing once)
                                    <script> a few lines: show one section, and
                                             put its pictures in from the templates </script>

The page needs no server: it works from ``file://`` (INTRO-007).  The
script reads ``#step=N`` from the URL so a link can open any call, and writes
it back as the reader moves.

Invariants: frame 0 is the empty allocator before the first call; frame
``i`` is the state after call ``i``; replay only uses the allocator's public
API and leaves its behaviour unchanged.
"""

from __future__ import annotations

import html
import queue
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from .allocator import Allocator
from .calltrace import Call, CallTrace
from .snapshot import AllocatorSnapshot
from .tunables import GLIB_2_74, Tunables
from .visualise import (
    ChunkNames,
    chunk_states,
    explain,
    magazines_svg,
    ring_svg,
    totals_svg,
)

__all__ = ["Frame", "ThreadLane", "clauses_for", "replay", "stepper_html", "stepper_page"]

_WORD: Final = 8
_MARKER_ID: Final = re.compile(r"arrow-\d+")


@dataclass(frozen=True, slots=True)
class Frame:
    """The allocator after one call (``call`` is None for the state before any)."""

    call: Call | None
    snapshot: AllocatorSnapshot
    narration: tuple[str, ...]
    clauses: tuple[str, ...]
    touched: tuple[int, ...]


class ThreadLane:
    """One named thread that runs the calls given to it, in order."""

    def __init__(self, name: str, allocator: Allocator) -> None:
        self._allocator = allocator
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            work = self._work.get()
            if work is None:
                # The thread's exit cleanup, on the thread itself (EXIT-002).
                self._allocator.thread_exit()
                self._done.put(None)
                return
            try:
                work()
            except BaseException as exc:  # handed to the caller, re-raised there
                self._done.put(exc)
            else:
                self._done.put(None)

    def run(self, work: Callable[[], None] | None) -> None:
        """Run ``work`` on the thread and wait for it; ``None`` ends the thread
        after its exit cleanup (EXIT-002).  An exception in ``work`` is re-raised here."""
        self._work.put(work)
        failure = self._done.get()
        if failure is not None:
            raise failure
        if work is None:
            self.thread.join()


def clauses_for(call: Call, narration: Sequence[str]) -> tuple[str, ...]:
    """The clauses that explain what one call did, from the call and its narration."""
    found: list[str] = []
    words = " | ".join(narration)
    if call.op in ("alloc", "alloc0", "copy"):
        found.append({"alloc": "API-001", "alloc0": "API-002", "copy": "API-003"}[call.op])
        if "loaded" in words:
            found.append("MAG-005")
    elif call.op == "free1":
        found += ["MAG-006"] if "magazine:" in words else []
    elif call.op == "free_chain":
        found += ["API-008", "MAG-006"]
    else:
        found.append("EXIT-002")
    table = (
        ("got its magazines", "MAG-001"),
        ("new slab page", "SLAB-009"),
        ("new slab pages", "SLAB-009"),
        ("colour:", "COLOR-002"),
        ("left slab free lists", "SLAB-005"),
        ("came back to surviving slabs", "SLAB-006"),
        ("released", "SLAB-007"),
        ("magazine(s) pushed", "DEPOT-003"),
        ("left the depot", "DEPOT-004"),
        ("large:", "LARGE-001"),
    )
    found += [clause for phrase, clause in table if phrase in words]
    if "left slab free lists" in words and call.op in ("alloc", "alloc0", "copy"):
        found.append("DEPOT-005")  # an empty depot refills from the slabs
    return tuple(dict.fromkeys(found))


def _magazine_chunks(snapshot: AllocatorSnapshot, thread: str) -> tuple[int, ...]:
    return tuple(
        address
        for t in snapshot.threads
        if t.name == thread
        for loaded, freeing in t.magazines.values()
        for address in (*loaded.chunks, *freeing.chunks)
    )


def _addresses(call: Call, where: dict[str, int]) -> tuple[int, ...]:
    if call.op in ("alloc", "alloc0", "copy"):
        return (where[call.handle],)
    return tuple(where[b] for b in call.blocks if b in where)


def replay(
    trace: CallTrace,
    tunables: Tunables = GLIB_2_74,
    *,
    clock: Callable[[], int] | None = None,
) -> list[Frame]:
    """Run every call of ``trace`` on a fresh allocator; one frame per call, after it.

    The allocator ignores the caller's ``G_SLICE`` (empty environment) and, by
    default, reads a clock that stands still, so depot stamps and trims are
    reproducible.
    """
    allocator = Allocator(tunables, environ={}, clock=clock or (lambda: 1_000))
    lanes: dict[str, ThreadLane] = {}
    where: dict[str, int] = {}
    before = allocator.snapshot()
    frames = [Frame(None, before, (), (), ())]
    try:
        for call in trace.calls:
            lane = lanes.get(call.thread)
            if lane is None:
                lane = lanes[call.thread] = ThreadLane(call.thread, allocator)
            freed = _addresses(call, where) if call.op in ("free1", "free_chain") else ()
            if call.op == "thread_exit":  # the chunks its magazines held move
                freed = _magazine_chunks(before, call.thread)
            if call.op == "thread_exit":
                lanes.pop(call.thread).run(None)
            else:
                lane.run(_work(allocator, call, where))
            after = allocator.snapshot()
            narration = tuple(explain(before, after))
            touched = freed or _addresses(call, where)
            frames.append(Frame(call, after, narration, clauses_for(call, narration), touched))
            before = after
    finally:
        for lane in lanes.values():
            lane.run(None)
        allocator.close()
    return frames


def _work(allocator: Allocator, call: Call, where: dict[str, int]) -> Callable[[], None]:
    def work() -> None:
        if call.op == "alloc":
            where[call.handle] = allocator.alloc(call.size)
        elif call.op == "alloc0":
            where[call.handle] = allocator.alloc0(call.size)
        elif call.op == "copy":
            assert call.src is not None
            where[call.handle] = allocator.copy(call.size, where[call.src])
        elif call.op == "free1":
            allocator.free1(call.size, where.pop(call.blocks[0]))
        else:  # free_chain: write the links the program had written, then free
            nodes = [where.pop(b) for b in call.blocks]
            for node, following in zip(nodes, [*nodes[1:], 0], strict=True):
                allocator.write(node + call.next_offset, following.to_bytes(_WORD, "little"))
            allocator.free_chain_with_offset(call.size, nodes[0], call.next_offset)

    return work


# ----------------------------------------------------------------------- the page
_STYLE: Final = """
.memslice-stepper{border:1px solid #ccc;border-radius:6px;padding:0.6em 0.8em;margin:1em 0}
.memslice-stepper .controls{display:flex;gap:0.6em;align-items:center;flex-wrap:wrap;
 position:sticky;top:0;background:var(--color-background-primary,#fff);padding:0.3em 0;z-index:1}
.memslice-stepper .controls input{flex:1;min-width:8em}
.memslice-stepper button{font-size:1em;padding:0.2em 0.8em;cursor:pointer}
.memslice-stepper .call{font-family:monospace;font-size:1.05em;font-weight:bold}
.memslice-stepper .pictures{overflow-x:auto}
.memslice-stepper .pictures svg{display:block;margin:0.4em 0;max-width:none}
.memslice-stepper section[hidden]{display:none}
"""

_SCRIPT: Final = """
(function () {
  var root = document.getElementById(%(id)s);
  var frames = root.querySelectorAll("section.frame");
  var slider = root.querySelector("input.slider");
  var counter = root.querySelector(".counter");
  var current = -1;
  function show(i) {
    i = Math.max(0, Math.min(frames.length - 1, i));
    if (i === current) return;
    for (var k = 0; k < frames.length; k++) {
      frames[k].hidden = (k !== i);
      var box = frames[k].querySelector(".pictures");
      box.textContent = "";  // only the frame on show holds its pictures
      if (k !== i) continue;
      frames[k].getAttribute("data-pictures").split(" ").forEach(function (n) {
        box.appendChild(document.getElementById(root.id + "-pic-" + n).content.cloneNode(true));
      });
    }
    current = i;
    root.setAttribute("data-current", String(i));
    slider.value = String(i);
    counter.textContent = "call " + i + " of " + (frames.length - 1);
    if (window.location.hash !== "#step=" + i) history.replaceState(null, "", "#step=" + i);
  }
  root.querySelector("button.prev").addEventListener("click", function () { show(current - 1); });
  root.querySelector("button.next").addEventListener("click", function () { show(current + 1); });
  slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
  root.addEventListener("keydown", function (e) {
    if (e.key === "ArrowRight") show(current + 1);
    if (e.key === "ArrowLeft") show(current - 1);
  });
  var m = /step=(\\d+)/.exec(window.location.hash);
  show(m ? parseInt(m[1], 10) : 0);
})();
"""


def _classes_used(frames: Sequence[Frame], limit: int) -> list[int]:
    """The size classes the trace touches, busiest ``limit`` of them, smallest first."""
    uses: dict[int, int] = {}
    final = frames[-1].snapshot
    for frame in frames[1:]:
        if frame.call is None or frame.call.op == "thread_exit":
            continue
        geometry_classes = [c for c in final.classes if c.chunk_size >= frame.call.size]
        if geometry_classes and frame.call.size <= final.classes[-1].chunk_size:
            ix = min(geometry_classes, key=lambda c: c.chunk_size).index
            uses[ix] = uses.get(ix, 0) + 1
    return sorted(sorted(uses, key=lambda ix: (-uses[ix], ix))[:limit])


def _clause_link(clause: str, href: Callable[[str], str | None] | None) -> str:
    target = href(clause) if href else None
    if target is None:
        return f"<code>{html.escape(clause)}</code>"
    return f'<a href="{html.escape(target)}"><code>{html.escape(clause)}</code></a>'


def stepper_html(
    frames: Sequence[Frame],
    *,
    element_id: str = "memslice-stepper",
    clause_href: Callable[[str], str | None] | None = None,
    max_classes: int = 3,
    max_slabs: int = 4,
) -> str:
    """The step-through as one self-contained HTML block (style, frames, script).

    Each frame shows the call, what each layer did, the clauses that explain
    it (links when ``clause_href`` gives a URL), and for the trace's busiest
    size classes the slab ring and the magazines and depot; the chunks the
    call touched are outlined in red.  Frames after the first are hidden
    until the reader steps to them.
    """
    names = ChunkNames()
    classes = _classes_used(frames, max_classes)
    sections: list[str] = []
    # A picture that does not change from one call to the next is stored once,
    # in a <template>; each frame lists the pictures it shows, and the script
    # puts only the current frame's pictures in the page.
    unique: dict[str, int] = {}
    stored: list[str] = []

    def picture_number(svg: str) -> int:
        key = _MARKER_ID.sub("arrow", svg)  # marker ids differ between equal drawings
        if key not in unique:
            unique[key] = len(stored)
            stored.append(svg)
        return unique[key]

    for number, frame in enumerate(frames):
        names.see(frame.snapshot)
        states = chunk_states(frame.snapshot)
        if frame.call is None:
            heading = "Before the first call: the allocator is empty"
        else:
            heading = f"{number}. {frame.call.describe()}"
        words = "".join(
            f"<li>{html.escape(line)}</li>" for line in frame.narration or ("no layer changed",)
        )
        clauses = ", ".join(_clause_link(c, clause_href) for c in frame.clauses)
        pictures = []
        for ix in classes:
            cls = frame.snapshot.classes[ix]
            pictures.append(
                ring_svg(cls, states, names=names, highlight=frame.touched, max_slabs=max_slabs)
            )
            pictures.append(magazines_svg(frame.snapshot, ix, names=names, highlight=frame.touched))
        pictures.append(totals_svg(frame.snapshot))
        listed = " ".join(str(picture_number(svg)) for svg in pictures)
        sections.append(
            f'<section class="frame" data-step="{number}" data-pictures="{listed}"'
            f"{' hidden' if number else ''}>"
            f'<p class="call">{html.escape(heading)}</p>'
            f'<ul class="narration">{words}</ul>'
            + (f'<p class="clauses">Why: {clauses}</p>' if clauses else "")
            + '<div class="pictures"></div></section>'
        )
    last = len(frames) - 1
    controls = (
        '<div class="controls">'
        '<button type="button" class="prev" aria-label="previous call">&#9664; previous</button>'
        f'<input type="range" class="slider" min="0" max="{last}" value="0" '
        'aria-label="call number">'
        '<button type="button" class="next" aria-label="next call">next &#9654;</button>'
        f'<span class="counter">call 0 of {last}</span></div>'
    )
    script = _SCRIPT % {"id": f'"{element_id}"'}
    templates = "".join(
        f'<template id="{html.escape(element_id)}-pic-{n}">{svg}</template>'
        for n, svg in enumerate(stored)
    )
    return (
        f"<style>{_STYLE}</style>"
        f'<div class="memslice-stepper" id="{html.escape(element_id)}" tabindex="0">'
        f"<noscript><p>The step-through needs JavaScript to show its pictures.</p></noscript>"
        f"{controls}{''.join(sections)}{templates}</div><script>{script}</script>"
    )


def stepper_page(frames: Sequence[Frame], title: str, intro: str = "") -> str:
    """A whole HTML page around :func:`stepper_html` (for ``show --trace``)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:DejaVu Sans,Verdana,sans-serif;max-width:1100px;"
        "margin:1em auto;padding:0 1em;color:#222;background:#fff}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        + (f"<p>{html.escape(intro)}</p>" if intro else "")
        + "<p>Step through the calls with the buttons, the slider or the arrow keys. "
        "Chunk names (A0, B3 ...) are given when a slab is carved and follow the chunk "
        "everywhere; the chunks a call touched are outlined in red.</p>"
        + stepper_html(frames)
        + "</body></html>\n"
    )
