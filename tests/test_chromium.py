"""The browser driver (docs/_ext/chromium.py) itself: typed errors, never a hang or a skip.

One real headless Chromium opens small ``file://`` pages: a click really runs
the page's handler, a move to another ``#fragment`` returns without waiting
for a load that never comes, a screenshot is a PNG as wide as the window, and
each failure (no such file, a script that throws, a selector that matches
nothing, no browser on PATH) raises its own error.  The layout checks built on
the driver are tested in tests/test_docs.py.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from chromium import (
    Chromium,
    ChromiumError,
    ChromiumMissing,
    NavigationFailed,
    PageScriptFailed,
)

PAGE = """<!doctype html><html><body>
<p id="count">0</p>
<button style="margin-top:2000px" onclick="count.textContent = +count.textContent + 1">
  add</button>
</body></html>"""


def test_a_missing_browser_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ChromiumMissing, match="apt-get install -y chromium"):
        Chromium()


def test_pages_clicks_fragments_screenshots_and_typed_errors(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    with Chromium(timeout=30) as browser:
        browser.open(page, width=800, height=600)
        assert browser.evaluate("[innerWidth, innerHeight]") == [800, 600]
        browser.click("button")  # below the window: scrolled into view first
        browser.click("button")
        assert browser.evaluate("count.textContent") == "2"
        assert browser.evaluate("Promise.resolve(6 * 7)") == 42  # promises are awaited

        browser.open(page.as_uri() + "#later")  # same document: no load event comes
        assert browser.evaluate("location.hash") == "#later"
        assert browser.evaluate("count.textContent") == "2", "the page was reloaded"

        png = tmp_path / "page.png"
        browser.screenshot(png)
        header = png.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", header[16:24])
        assert width == 1280 and height > 2000  # the default window, the whole page

        with pytest.raises(PageScriptFailed, match="no element matches"):
            browser.click("button.missing")
        with pytest.raises(PageScriptFailed, match="nope"):
            browser.evaluate("(() => { throw new Error('nope'); })()")
        with pytest.raises(NavigationFailed, match="ERR_FILE_NOT_FOUND"):
            browser.open(tmp_path / "missing.html")
        browser.open(page)  # still usable after each error
        assert browser.evaluate("count.textContent") == "0"
    with pytest.raises(ChromiumError):  # closed: no command gets through
        browser.evaluate("1")
