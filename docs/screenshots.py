"""Screenshots of the built docs' main pages with a real headless browser.

Usage: ``python docs/screenshots.py HTML_DIR OUT_DIR`` (``tox -e screenshots``
builds the docs first).  Each page in :data:`PAGES` is opened by Debian's
``chromium`` in headless mode and saved as a PNG, tall enough to show its
pictures, so a person can look at what a reader sees.  A missing browser is
an error, never a skip: install it with ``apt-get install chromium``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PAGES: dict[str, tuple[str, int]] = {
    # page (relative to the HTML root): (screenshot name, window height in px)
    "index.html": ("index", 1200),
    "tutorial/first-example.html": ("tutorial-first-example", 6200),
    "tutorial/second-example.html": ("tutorial-second-example", 3000),
    "tutorial/threads-and-time.html": ("tutorial-threads-and-time", 4200),
    "explanation/slab.html": ("explanation-slab", 2200),
    "explanation/magazines.html": ("explanation-magazines", 2000),
    "explanation/depot.html": ("explanation-depot", 2000),
    "reference/size-classes.html": ("reference-size-classes", 2400),
    "reference/spec/04-slab.html": ("spec-slab", 2600),
    "reference/conformance.html": ("reference-conformance", 2000),
    "reference/benchmarks.html": ("reference-benchmarks", 7600),
    "reference/spec/traceability.html": ("spec-traceability", 2400),
    "howto/any-language.html": ("howto-any-language", 2400),
}
WIDTH = 1280


def browser() -> str:
    """The chromium executable; raises SystemExit with the fix when it is absent."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("chromium not found: install it with `apt-get install -y chromium`")


def shoot(exe: str, page: Path, png: Path, height: int) -> None:
    """Render ``page`` at WIDTH x ``height`` into ``png`` with a throw-away profile."""
    with tempfile.TemporaryDirectory(prefix="memslice-chromium-") as profile:
        subprocess.run(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={WIDTH},{height}",
                f"--screenshot={png}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    if not png.exists() or png.stat().st_size == 0:
        raise SystemExit(f"chromium wrote no screenshot for {page}")


def main(argv: list[str]) -> int:
    """Take every screenshot; print where each went."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    html, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    exe = browser()
    for relative, (name, height) in PAGES.items():
        page = html / relative
        if not page.exists():
            raise SystemExit(f"{page} is missing: build the docs first")
        png = out / f"{name}.png"
        shoot(exe, page, png, height)
        print(f"{png} ({png.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
