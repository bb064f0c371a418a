"""Drive Debian's headless Chromium over the DevTools protocol on a pipe.

The one browser driver of the project: ``docs/screenshots.py`` measures and
photographs the built docs with it, and the tests (tests/test_docs.py,
tests/test_record.py, tests/test_stepthrough_docs.py) open ``file://`` pages,
click and read the DOM with it.  Standard library only: no port, no server,
no browser-automation package.

Rules and theory of operation
-----------------------------
``chromium --remote-debugging-pipe`` reads commands from its file descriptor 3
and writes answers and events to 4, each a JSON object ended by a NUL byte.
:class:`Chromium` starts one browser with a throw-away profile, opens one tab
and attaches to it (a *flat* session: page commands carry its ``sessionId``)::

    Chromium() ──Target.createTarget / attachToTarget──▶ one tab, Page.enable
    open(url)  ──Emulation.setDeviceMetricsOverride──▶ width x height window
               ──Page.navigate, wait for Page.loadEventFired──▶ the page
    evaluate   ──Runtime.evaluate (promises awaited)──▶ a JSON value
    click      ──Input.dispatchMouseEvent press + release──▶ a real click
    screenshot ──Page.captureScreenshot──▶ PNG of the whole page

A command's answer is the message with its ``id``; events read while waiting
for it are kept for :meth:`Chromium.open` to wait on.  Every wait has a
deadline (``timeout``), so a hung browser fails the caller, never hangs it.
Errors are typed by cause (:class:`ChromiumMissing`, :class:`ChromiumExited`,
:class:`ChromiumTimedOut`, :class:`CommandFailed`, :class:`NavigationFailed`,
:class:`PageScriptFailed`), all :class:`ChromiumError`.  A missing browser is an
error, never a skip: ``apt-get install -y chromium`` (``.ci/run`` does).

Why this file lives in ``docs/_ext``
------------------------------------
``docs/_ext`` is the folder of the docs' own Python modules, and the driver is
docs tooling first (``tox -e screenshots``).  Every user reaches it by its
plain name ``chromium`` with no per-file path trick: Sphinx builds through
docs/conf.py's path line, pytest through ``pythonpath`` in pyproject.toml, and
``docs/screenshots.py`` through the same one line conf.py has.  Keeping it in
``tests/`` would have made a docs command import from the test folder.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Final

#: Flags that make a headless chromium start quickly, touch no network and
#: read local pages (file:// pages may load their neighbours).
FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
    "--remote-debugging-pipe",
)
#: The window :meth:`Chromium.open` gives a page unless told otherwise.
DEFAULT_WIDTH: Final = 1280
DEFAULT_HEIGHT: Final = 900


class ChromiumError(RuntimeError):
    """The browser could not do what was asked; the subclass says why."""


class ChromiumMissing(ChromiumError):
    """No ``chromium`` executable on PATH."""


class ChromiumExited(ChromiumError):
    """The browser is gone: it died, or :meth:`Chromium.close` stopped it."""


class ChromiumTimedOut(ChromiumError):
    """The browser did not answer, or a page did not load, within the timeout."""


class CommandFailed(ChromiumError):
    """The browser answered a DevTools command with an error."""


class NavigationFailed(ChromiumError):
    """A page could not be opened (a missing file, a refused address)."""


class PageScriptFailed(ChromiumError):
    """JavaScript run in the page threw, or found no element to act on."""


def executable() -> str:
    """The chromium executable; raises :class:`ChromiumMissing` with the fix."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumMissing(
        "headless Chromium is required: apt-get update && apt-get install -y chromium"
    )


class Chromium:
    """One headless browser with one tab; use as a context manager.

    ``timeout`` bounds every wait: one command's answer, one page's load.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._width = DEFAULT_WIDTH
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._session = ""
        self._closed = False
        binary = executable()  # before any resource, so a missing browser leaks nothing
        self._profile = tempfile.TemporaryDirectory(prefix="memslice-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def onto_fds_3_and_4() -> None:  # in the child, before exec
            # Copy both ends above 10 first: an end may itself sit on 3 or 4, where a
            # direct dup2 would overwrite it or be a no-op that leaves it close-on-exec.
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        try:
            self._process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=onto_fds_3_and_4,  # the only way to place fds; starts no thread
                pass_fds=(3, 4),  # the four pipe ends make sure 3 and 4 exist in this process
            )
        except BaseException:
            for fd in (to_browser_r, self._to_browser, self._from_browser, from_browser_w):
                os.close(fd)
            self._profile.cleanup()
            raise
        os.close(to_browser_r)
        os.close(from_browser_w)
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
            self._session = attached["sessionId"]
            self.call("Page.enable", session=True)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the browser and remove its throw-away profile (safe to repeat)."""
        if self._closed:  # the fd numbers may belong to someone else by now
            return
        with contextlib.suppress(ChromiumError, OSError):  # already gone is fine
            self.call("Browser.close")
        self._closed = True
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    # ---------------------------------------------------------------- protocol
    def _read_message(self, deadline: float) -> dict[str, Any]:
        """The next message from the browser, or a typed error by ``deadline``."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise ChromiumTimedOut(f"chromium did not answer within {self.timeout} s")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise ChromiumExited(f"chromium closed the DevTools pipe ({self._exit_status()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def _exit_status(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return f"exit status {self._process.wait(timeout=1)}"
        return "still running"

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one DevTools command (to the tab iff ``session``); return its result.

        Events read while waiting are kept for :meth:`open`.  Raises
        :class:`CommandFailed` when the browser answers with an error.
        """
        if self._closed:
            raise ChromiumExited(f"{method}: this browser was closed")
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError as gone:
            raise ChromiumExited(f"chromium is gone ({self._exit_status()})") from gone
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise CommandFailed(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self._events.append(answer)

    def _wait_for(self, event: str) -> None:
        """Consume events up to and including the first ``event``."""
        deadline = time.monotonic() + self.timeout
        while True:
            for i, seen in enumerate(self._events):
                if seen.get("method") == event:
                    del self._events[: i + 1]
                    return
            self._events.append(self._read_message(deadline))

    def _window(self, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    # ---------------------------------------------------------------- pages
    def open(
        self, page: str | Path, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT
    ) -> None:
        """Load ``page`` (a URL, or a file's path) in a ``width`` x ``height`` window.

        Returns once the page's load event has fired (at once for a move to
        another ``#fragment`` of the page already open, which loads nothing).
        Raises :class:`NavigationFailed` when the page cannot be opened.
        """
        url = page.resolve().as_uri() if isinstance(page, Path) else page
        self._width = width
        self._window(width, height)
        self._events.clear()
        navigated = self.call("Page.navigate", session=True, url=url)
        if "errorText" in navigated:
            raise NavigationFailed(f"{url}: {navigated['errorText']}")
        if "loaderId" in navigated:  # absent for a same-document (fragment) navigation
            try:
                self._wait_for("Page.loadEventFired")
            except ChromiumTimedOut as slow:
                raise ChromiumTimedOut(f"{url} did not load within {self.timeout} s") from slow

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page, as JSON (a promise is awaited).

        Raises :class:`PageScriptFailed` when the expression throws.
        """
        result = self.call(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            thrown = details.get("exception", {}).get("description") or details.get("text")
            raise PageScriptFailed(f"{expression}: {thrown}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real left click (press, release) at the centre of the first match.

        The element is scrolled into view first; raises :class:`PageScriptFailed`
        when nothing matches ``selector``.
        """
        centre = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView(); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        if centre is None:
            raise PageScriptFailed(f"no element matches {selector!r}")
        x, y = centre
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                session=True,
                type=kind,
                x=x,
                y=y,
                button="left",
                clickCount=1,
            )

    def screenshot(self, png: Path, max_height: int = 16000) -> None:
        """Save the whole page open now (up to ``max_height`` px tall) as a PNG.

        The window grows to the page's height for the picture and keeps that
        height afterwards (the next :meth:`open` sets it again).
        """
        height = min(int(self.evaluate("document.documentElement.scrollHeight")), max_height)
        self._window(self._width, height)
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        png.write_bytes(base64.b64decode(data))
