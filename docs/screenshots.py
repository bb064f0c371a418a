"""The built docs in a real headless browser: layout checks and screenshots.

Usage: ``python docs/screenshots.py HTML_DIR OUT_DIR`` (``tox -e screenshots``
builds the docs first) saves a full-page PNG of every page in :data:`PAGES`,
and prints each page's layout check.  ``tests/test_docs.py`` imports this
module to run the same checks on every build.

Rules and theory of operation
-----------------------------
Debian's ``chromium`` runs headless and is driven over the Chrome DevTools
Protocol on a pipe (``--remote-debugging-pipe``: the browser reads commands
from its file descriptor 3 and writes answers to 4, each a JSON object ended
by a NUL byte), so nothing here needs a network port or a library beyond the
standard one::

    Browser ──Target.createTarget / attachToTarget──▶ one tab (flat session)
            ──Emulation.setDeviceMetricsOverride──▶ WIDTH x height window
            ──Page.navigate, wait for Page.loadEventFired──▶ the page
            ──Runtime.evaluate(LAYOUT_PROBE)──▶ widths, broken images, ...
            ──Page.captureScreenshot──▶ PNG

A page *fits* iff ``document.documentElement.scrollWidth <= innerWidth`` and
no element of its article reaches past the window's right edge outside a box
that scrolls: a wide table or code block must scroll inside its own box,
never widen the page or be cut off (Furo hides the page's own overflow).
An image is *broken* iff it finished loading with ``naturalWidth == 0``.  A
missing browser is an error, never a skip: install it with
``apt-get install -y chromium`` (``.ci/run`` does).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

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
WIDTH = 1280
#: Flags that make a headless chromium start quickly and touch no network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)

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


class BrowserError(RuntimeError):
    """The browser is missing, died, or answered a command with an error."""


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


def executable() -> str:
    """The chromium executable; raises :class:`BrowserError` with the fix when absent."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError("chromium not found: install it with `apt-get install -y chromium`")


class Browser:
    """One headless chromium, driven over the DevTools pipe; use as a context manager."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="memslice-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def onto_fds_3_and_4() -> None:  # in the child, before exec
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self._process = subprocess.Popen(
            [executable(), *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=onto_fds_3_and_4,  # runs before exec; the caller starts no threads here
            pass_fds=(3, 4),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._session = ""

    def __enter__(self) -> Browser:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the browser and remove its throw-away profile."""
        with contextlib.suppress(BrowserError, OSError):
            self.call("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._profile.cleanup()

    # ---------------------------------------------------------------- protocol
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium exited (status {self._process.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events met meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self._events.append(answer)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, seen in enumerate(self._events):
                if seen.get("method") == event:
                    del self._events[: i + 1]
                    return
            self._events.append(self._read_message(deadline))

    # ---------------------------------------------------------------- pages
    def open(self, page: Path, height: int = 900, width: int = WIDTH) -> None:
        """Load ``page`` in a ``width`` x ``height`` window and wait for its load event."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self._events.clear()
        self.call("Page.navigate", session=True, url=page.resolve().as_uri())
        self._wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self.call(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def layout(self, page: Path, name: str) -> Layout:
        """Open ``page`` and measure it with :data:`LAYOUT_PROBE`."""
        self.open(page)
        found = self.evaluate(LAYOUT_PROBE)
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

    def screenshot(self, png: Path, max_height: int = 16000) -> None:
        """Save the whole page open now (up to ``max_height`` px tall) as a PNG."""
        height = min(int(self.evaluate("document.documentElement.scrollHeight")), max_height)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=WIDTH,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        png.write_bytes(base64.b64decode(data))


def main(argv: list[str]) -> int:
    """Screenshot every page of :data:`PAGES`; exit 1 if a page does not fit."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    html, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with Browser() as browser:
        for relative, name in PAGES.items():
            page = html / relative
            if not page.exists():
                raise SystemExit(f"{page} is missing: build the docs first")
            layout = browser.layout(page, relative)
            failures += layout.problems()
            png = out / f"{name}.png"
            browser.screenshot(png)
            print(f"{png}: {layout.scroll_width} px wide, {layout.images} images")
    for failure in failures:
        print("PROBLEM:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
