"""Regenerate the conformance reports that the docs' matrix is drawn from.

Usage, from the checkout's root::

    python docs/_data/regenerate.py            # every implementation below
    python docs/_data/regenerate.py glib malloc

Theory of operation
-------------------
A full conformance run takes minutes per implementation, too long for every
docs build, so the docs draw the conformance matrix and the traceability
page's result columns from committed report files::

    memslice-conformance run --impl X --profile all --report docs/_data/conformance/<slug>.json
        (full default budget, seed 0)  ──►  _ext/memslice_docs.py reads every *.json at build time

Each report records the spec digest it was run against; the docs print it
next to the current spec's digest, so a stale report is visible, never
silently presented as current.  The reports are exactly what the suite's
``--report`` writes: nothing here edits a result.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "conformance"

#: The implementations the docs show, in column order.
IMPLS: tuple[str, ...] = (
    "reference",
    "reference:always-malloc",
    "reference:debug-blocks",
    "glib",
    "glib:always-malloc",
    "glib:debug-blocks",
    "malloc",
    "cmd:node docs/howto/examples/slice.js",
    "cmd:perl conformance/memslice_conformance/examples/slice_impl.pl",
)


def slug(impl: str) -> str:
    """A file name for an implementation: ``cmd:node docs/x/slice.js`` -> ``cmd-node-slice-js``."""
    words = [w.rsplit("/", 1)[-1] for w in impl.split()]
    return re.sub(r"[^a-z0-9]+", "-", " ".join(words).lower()).strip("-")


def main(argv: list[str]) -> int:
    """Run each implementation (all, or those named) and write its report."""
    exe = shutil.which("memslice-conformance")
    if exe is None:
        raise SystemExit("memslice-conformance not found: pip install -e '.[test]' first")
    wanted = [i for i in IMPLS if not argv or i in argv or slug(i) in argv]
    if argv and not wanted:
        raise SystemExit(f"none of {argv} is one of: {', '.join(IMPLS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    failed = 0
    for impl in wanted:
        target = OUT / f"{slug(impl)}.json"
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="memslice-traces-") as traces:
            result = subprocess.run(
                [
                    exe,
                    "run",
                    "--impl",
                    impl,
                    "--profile",
                    "all",
                    "--quiet",
                    "--report",
                    str(target),
                    "--trace-dir",
                    traces,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
        # Exit status 1 is a non-conforming implementation: still a report to show.
        if result.returncode not in (0, 1) or not target.exists():
            failed += 1
            print(f"{impl}: the run failed ({result.returncode})\n{result.stderr}", file=sys.stderr)
            continue
        print(f"{impl}: {target.relative_to(ROOT)} in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
