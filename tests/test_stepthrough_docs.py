"""The docs' step-through page, built by Sphinx and stepped in headless Chromium from file://.

A small Sphinx project with the docs' own extension and the real spec renders
the ``{memslice-stepper}`` directive on the shipped example's trace, at the
depth the real page has (``explanation/``), so its clause links are checked
against the rendered spec; then Chromium opens the built page from
``file://``, clicks "next" and the slider's neighbour "previous", and sees
the frame and its picture change (INTRO-007).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from chromium import Chromium

from memslice.calltrace import load_call_trace

pytestmark = pytest.mark.slow  # a Sphinx build (~30 s); the same page from `show` runs by default

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TRACE = DOCS / "howto" / "examples" / "shopping.trace.json"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import myst_parser  # noqa: F401 -- fail loudly when the docs extra is missing

    root = tmp_path_factory.mktemp("stepper")
    (root / "spec").symlink_to(ROOT / "spec", target_is_directory=True)
    src = root / "docs"
    (src / "explanation").mkdir(parents=True)
    (src / "howto" / "examples").mkdir(parents=True)
    shutil.copy(TRACE, src / "howto" / "examples" / TRACE.name)
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['myst_parser', 'memslice_docs']\nnitpicky = True\n"
        "suppress_warnings = ['myst.header', 'toc.not_included']\n",
        encoding="utf-8",
    )
    (src / "index.md").write_text(
        "# Home\n\n```{toctree}\nstart-here\nexplanation/step-through\nreference/spec/index\n```\n",
        encoding="utf-8",
    )
    # The glossary the extension renders from spec/00-terms.md links the real start page.
    (src / "start-here.md").write_text("# Start here\n", encoding="utf-8")
    (src / "explanation" / "step-through.md").write_text(
        f"# Step through\n\n```{{memslice-stepper}} howto/examples/{TRACE.name}\n```\n",
        encoding="utf-8",
    )
    out = root / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-n", "-E", "-q", "-b", "html", str(src), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stdout}\n{done.stderr}"
    return out / "explanation" / "step-through.html"


def test_every_call_has_a_frame_and_clause_links_resolve(built: Path) -> None:
    text = built.read_text(encoding="utf-8")
    calls = len(load_call_trace(TRACE).calls)
    assert text.count('<section class="frame"') == calls + 1
    links = set(re.findall(r'href="(\.\./reference/spec/[^"#]+)#([a-z]+-\d{3})"', text))
    assert links, "no clause is linked"
    for target, anchor in links:
        chapter = (built.parent / target).resolve()
        assert chapter.exists(), target
        assert f'id="{anchor}"' in chapter.read_text(encoding="utf-8"), f"{target}#{anchor}"


def test_next_changes_the_picture_in_headless_chromium(built: Path) -> None:
    shown = "document.querySelector('section.frame:not([hidden])')"
    with Chromium() as browser:
        browser.open(built.as_uri() + "#step=5")
        assert browser.evaluate(f"{shown}.dataset.step") == "5"
        before = browser.evaluate(f"{shown}.querySelector('.pictures').innerHTML")
        browser.click("button.next")
        assert browser.evaluate(f"{shown}.dataset.step") == "6"
        assert browser.evaluate(f"{shown}.querySelector('.pictures').innerHTML") != before
        assert (
            browser.evaluate("document.querySelectorAll('section.frame:not([hidden])').length") == 1
        )
        assert browser.evaluate("document.querySelector('input.slider').value") == "6"
