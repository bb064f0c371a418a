"""The built docs in a real headless browser: layout checks and screenshots.

Usage: ``python docs/screenshots.py HTML_DIR OUT_DIR`` (``tox -e screenshots``
builds the docs first) saves a full-page PNG of every page in :data:`PAGES`,
and prints each page's layout check.  ``tests/test_docs.py`` imports this
module to run the same checks on every build.

Rules and theory of operation
-----------------------------
The browser is the project's one driver, ``docs/_ext/chromium.py`` (headless
Chromium over the DevTools protocol on a pipe; read its header).  This module
adds what the docs ask of a page: :func:`measure` opens it in a
:data:`WIDTH` px window and runs :data:`LAYOUT_PROBE` in it::

    Chromium.open(page, WIDTH) ──▶ evaluate(LAYOUT_PROBE) ──▶ Layout ──▶ problems()
                               ──▶ screenshot(png)  (the command line only)

A page *fits* iff ``document.documentElement.scrollWidth <= innerWidth`` and
no element of its article reaches past the window's right edge outside a box
that scrolls: a wide table or code block must scroll inside its own box,
never widen the page or be cut off (Furo hides the page's own overflow).
An image is *broken* iff it finished loading with ``naturalWidth == 0``.  A
clause ID is *broken* iff its ``.clause`` element spans two lines.  A
missing browser is an error, never a skip: install it with
``apt-get install -y chromium`` (``.ci/run`` does).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# What docs/conf.py does too: put the docs' own modules, the driver among them, on the path.
EXT = str(Path(__file__).resolve().parent / "_ext")
if EXT not in sys.path:
    sys.path.insert(0, EXT)
from chromium import Chromium, ChromiumError  # noqa: E402

PAGES: dict[str, str] = {
    # page (relative to the HTML root): screenshot name
    "index.html": "index",
    "start-here.html": "start-here",
    "reference/spec/00-terms.html": "glossary",
    "tutorial/index.html": "tutorial-index",
    "tutorial/first-example.html": "tutorial-first-example",
    "tutorial/second-example.html": "tutorial-second-example",
    "tutorial/threads-and-time.html": "tutorial-threads-and-time",
    "explanation/index.html": "explanation-index",
    "explanation/slab.html": "explanation-slab",
    "explanation/colour.html": "explanation-colour",
    "explanation/magazines.html": "explanation-magazines",
    "explanation/depot.html": "explanation-depot",
    "explanation/contention.html": "explanation-contention",
    "explanation/thread-exit.html": "explanation-thread-exit",
    "explanation/large-blocks.html": "explanation-large-blocks",
    "explanation/debug-blocks.html": "explanation-debug-blocks",
    "explanation/gmemchunk.html": "explanation-gmemchunk",
    "explanation/why-dropped.html": "explanation-why-dropped",
    "explanation/quirks.html": "explanation-quirks",
    "howto/check-an-allocator.html": "howto-check-an-allocator",
    "howto/any-language.html": "howto-any-language",
    "howto/draw-your-allocator.html": "howto-draw-your-allocator",
    "howto/build-the-docs.html": "howto-build-the-docs",
    "reference/api.html": "reference-api",
    "reference/cli.html": "reference-cli",
    "reference/plugin.html": "reference-plugin",
    "reference/size-classes.html": "reference-size-classes",
    "reference/spec/04-slab.html": "spec-slab",
    "reference/spec/index.html": "spec-index",
    "reference/conformance.html": "reference-conformance",
    "reference/benchmarks.html": "reference-benchmarks",
    "reference/spec/traceability.html": "spec-traceability",
}
#: The window every page must fit (a common laptop screen).
WIDTH: Final = 1280
# Runs inside the page; returns a JSON-able summary of its layout.
LAYOUT_PROBE = r"""
(async () => {
  await Promise.all(Array.from(document.images, img => img.complete ? null :
      new Promise(done => { img.onload = img.onerror = done; })));
  const root = document.documentElement;
  const name = el => el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined
      ? '.' + String(el.className).trim().replace(/\s+/g, '.') : '');
  // Content that reaches past the window without a scrolling box around it is
  // cut off (the theme hides the page's own horizontal overflow).
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const main = document.querySelector('article') || document.body;
  const cut = [];
  for (const el of main.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= innerWidth + 1) continue;
    let inside = false;
    for (let up = el.parentElement; up && up !== main.parentElement; up = up.parentElement) {
      if (scrolls(up) && up.getBoundingClientRect().right <= innerWidth + 1) {
        inside = true;
        break;
      }
    }
    if (!inside) cut.push(name(el) + ' right=' + Math.round(box.right));
  }
  return {
    scrollWidth: root.scrollWidth,
    innerWidth: innerWidth,
    scrollHeight: root.scrollHeight,
    images: document.images.length,
    broken: Array.from(document.images).filter(i => i.naturalWidth === 0)
                 .map(i => i.getAttribute('src')),
    brokenClauses: Array.from(document.querySelectorAll('.clause'))
                 .filter(c => c.getClientRects().length > 1).map(c => c.textContent),
    cut: cut.slice(0, 8),
    cutCount: cut.length,
  };
})()
"""


@dataclass(frozen=True, slots=True)
class Layout:
    """What :data:`LAYOUT_PROBE` measured on one page."""

    page: str
    scroll_width: int
    inner_width: int
    scroll_height: int
    images: int
    broken_images: tuple[str, ...]
    broken_clauses: tuple[str, ...]
    cut_elements: tuple[str, ...]

    @property
    def fits(self) -> bool:
        """The page is no wider than the window, and nothing in it reaches past the
        window's right edge except inside a box that scrolls."""
        return self.scroll_width <= self.inner_width and not self.cut_elements

    def problems(self) -> list[str]:
        """Human-readable failures; empty iff the page is fine."""
        found = []
        if not self.fits:
            found.append(
                f"{self.page}: {self.scroll_width} px wide in a {self.inner_width} px window; "
                f"cut off on the right: {', '.join(self.cut_elements) or 'nothing'}"
            )
        if self.broken_images:
            found.append(f"{self.page}: broken images {', '.join(self.broken_images)}")
        if self.broken_clauses:
            found.append(f"{self.page}: clause IDs broken over lines {self.broken_clauses}")
        return found


def measure(browser: Chromium, page: Path, name: str) -> Layout:
    """Open ``page`` in a :data:`WIDTH` px window and measure it with :data:`LAYOUT_PROBE`."""
    browser.open(page, width=WIDTH)
    found = browser.evaluate(LAYOUT_PROBE)
    return Layout(
        page=name,
        scroll_width=int(found["scrollWidth"]),
        inner_width=int(found["innerWidth"]),
        scroll_height=int(found["scrollHeight"]),
        images=int(found["images"]),
        broken_images=tuple(found["broken"]),
        broken_clauses=tuple(found["brokenClauses"]),
        cut_elements=tuple(found["cut"]),
    )


def main(argv: list[str]) -> int:
    """Screenshot every page of :data:`PAGES`; exit 1 if a page does not fit or the
    browser is missing or fails."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    html, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    try:
        with Chromium() as browser:
            for relative, name in PAGES.items():
                page = html / relative
                if not page.exists():
                    raise SystemExit(f"{page} is missing: build the docs first")
                layout = measure(browser, page, relative)
                failures += layout.problems()
                png = out / f"{name}.png"
                browser.screenshot(png)
                print(f"{png}: {layout.scroll_width} px wide, {layout.images} images")
    except ChromiumError as error:  # no browser, or it failed: say which, exit non-zero
        print(f"screenshots: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    for failure in failures:
        print("PROBLEM:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
