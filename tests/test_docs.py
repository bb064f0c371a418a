"""The Sphinx docs build cleanly and hold every clause anchor, figure and link.

One module-scoped fixture builds the docs into a temporary folder exactly as
``tox -e docs`` does (``sphinx-build -W -n -E``: a warning, an unresolved
cross-reference or a citation of a clause the spec lacks fails the build);
the tests then read the HTML.  What the HTML must contain is computed here
from the sources, independently of the extension that generates it: clause
IDs from the ``### ID [LEVEL] Title`` headings of ``spec/*.md`` (the format
fixed by the spec's README), figure names from the directives in ``docs/``.
The build takes a few seconds, so it is part of the default run.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urldefrag, urlsplit

import pytest
from chromium import Chromium

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPEC = ROOT / "spec"
HEADING = re.compile(r"^### ([A-Z]+-\d{3}) \[", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


class _Links(HTMLParser):
    """Collects ids, and href/src targets, of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("name"):
            self.ids.add(str(values["name"]))
        for key in ("href", "src"):
            target = values.get(key)
            if target:
                self.targets.append(target)


def sphinx_strict(source: Path, out: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    """Build ``source`` as the docs env does: warnings are errors, nitpicky, fresh."""
    command = [sys.executable, "-m", "sphinx", "-W", "-n", "-E", "-q", "-b", "html"]
    return subprocess.run(
        [*command, str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import myst_parser  # noqa: F401
    import sphinx  # noqa: F401 -- fail loudly here when the docs extra is missing

    # Build from a copy, so the build's generated folders never touch the checkout
    # (two test runs at once, e.g. tox -p, cannot race on docs/_generated).
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(DOCS, root / "docs", ignore=shutil.ignore_patterns("_build", "_generated"))
    shutil.rmtree(root / "docs" / "reference" / "spec", ignore_errors=True)
    for name in ("spec", "reference", "tests", "conformance", "benchmarks"):
        (root / name).symlink_to(ROOT / name, target_is_directory=True)
    out = root / "html"
    result = sphinx_strict(root / "docs", out, timeout=600)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    return out


def spec_clauses() -> dict[str, list[str]]:
    """``{chapter stem: [clause IDs]}`` from the spec's headings, outside code fences."""
    chapters = {}
    for path in sorted(SPEC.glob("*.md")):
        if path.name == "README.md":
            continue
        text = FENCE.sub("", path.read_text(encoding="utf-8"))
        chapters[path.stem] = HEADING.findall(text)
    return chapters


def expected_figures() -> set[str]:
    """The figure files the docs' directives must produce, by the documented naming rule."""
    names: set[str] = set()
    directive = re.compile(
        r"^```\{(memslice-step|memslice-figure)\} ([^\n]*)\n(.*?)^```", re.M | re.S
    )
    for page in DOCS.rglob("*.md"):
        if "_generated" in page.parts or page.is_relative_to(DOCS / "reference" / "spec"):
            continue
        for kind, args, body in directive.findall(page.read_text(encoding="utf-8")):
            options = dict(re.findall(r"^:([\w-]+): *(.*)$", body, flags=re.M))
            size = f"-{options['size']}" if "size" in options else ""
            if kind == "memslice-step":
                workload, step = args.split()
                pictures = [p.strip() for p in options.get("pictures", "").split(",") if p.strip()]
            else:
                workload, step = options.get("workload", "seed-blocks"), options.get("step", "0")
                pictures = [args.strip()]
            for picture in pictures:
                if picture == "table":
                    names.add(f"{options.get('profile', 'glib-2.74')}-table.svg")
                else:
                    names.add(f"{workload}-step{step}-{picture}{size}.svg")
    return names


def test_spec_chapters_are_rendered_with_every_clause_anchor(html: Path) -> None:
    """Each clause of each chapter is the anchor #<id in lower case> on its page."""
    chapters = spec_clauses()
    assert sum(len(ids) for ids in chapters.values()) > 0, "the spec defines no clause"
    for stem, ids in chapters.items():
        page = html / "reference" / "spec" / f"{stem}.html"
        assert page.exists(), f"spec chapter {stem} was not rendered"
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        missing = [c for c in ids if c.lower() not in parser.ids]
        assert not missing, f"{stem}: clauses without an anchor: {missing}"


def test_every_generated_figure_is_in_the_html(html: Path) -> None:
    """Every picture the pages ask for was drawn, is well-formed SVG and is shown."""
    expected = expected_figures()
    assert len(expected) >= 10
    images = {p.name for p in (html / "_images").glob("*.svg")}
    assert expected <= images, f"figures not built: {sorted(expected - images)}"
    shown = set()
    for page in html.rglob("*.html"):
        shown |= set(re.findall(r'src="[^"]*_images/([^"/]+\.svg)"', page.read_text("utf-8")))
    assert expected <= shown, f"figures built but not shown: {sorted(expected - shown)}"
    for name in expected:
        root = ET.parse(html / "_images" / name).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert len(list(root.iter("{http://www.w3.org/2000/svg}rect"))) > 3, name


def test_no_internal_link_is_broken(html: Path) -> None:
    """Every relative href/src names an existing file, and its #fragment an existing id."""
    pages = {p.resolve(): p for p in html.rglob("*.html")}
    parsed: dict[Path, _Links] = {}

    def links(path: Path) -> _Links:
        if path not in parsed:
            parsed[path] = _Links()
            parsed[path].feed(path.read_text(encoding="utf-8"))
        return parsed[path]

    broken = []
    for page in pages:
        for target in links(page).targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
                continue  # external (http:, mailto:, data:): not ours to check offline
            path, fragment = urldefrag(target)
            path = urlsplit(path).path  # drop ?v=... cache busters
            resolved = (page.parent / unquote(path)).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(html.resolve())}: {target}")
            elif fragment and resolved.suffix == ".html" and fragment not in links(resolved).ids:
                broken.append(f"{page.relative_to(html.resolve())}: {target} (no such id)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])


def test_clause_citations_in_pages_link_to_their_anchor(html: Path) -> None:
    """A {clause} citation becomes a link to the chapter page's #<id> anchor."""
    page = (html / "explanation" / "slab.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"]+)"><span class="[^"]*std-ref[^"]*">([A-Z]+-\d{3})<', page)
    assert hrefs, "the slab explanation cites no clause"
    for href, clause in hrefs:
        assert href.endswith(f"#{clause.lower()}"), (href, clause)


def _mini_build(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    """Build a one-page project with the docs' extension over a one-clause spec."""
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "04-slab.md").write_text(
        "# Slab\n\n### SLAB-001 [MUST] A clause\n\nText citing SLAB-001.\n", encoding="utf-8"
    )
    src = tmp_path / "docs"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['myst_parser', 'memslice_docs']\nnitpicky = True\n"
        "suppress_warnings = ['myst.header']\n",
        encoding="utf-8",
    )
    (src / "index.md").write_text(
        f"# Home\n\n{page}\n\n```{{toctree}}\nreference/spec/index\n```\n", encoding="utf-8"
    )
    return sphinx_strict(src, tmp_path / "out", timeout=300)


def test_the_build_rejects_a_citation_of_a_missing_clause(tmp_path: Path) -> None:
    """Test the tester: citing a clause the spec lacks fails the -W -n build."""
    result = _mini_build(tmp_path, "See {clause}`SLAB-002`.")
    assert result.returncode != 0
    assert "slab-002" in (result.stdout + result.stderr).lower()


def test_the_build_accepts_a_citation_of_an_existing_clause(tmp_path: Path) -> None:
    """...and the same project citing a clause that exists builds, with the anchor."""
    result = _mini_build(tmp_path, "See {clause}`SLAB-001`.")
    assert result.returncode == 0, result.stdout + result.stderr
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert 'href="reference/spec/04-slab.html#slab-001"' in page


PY_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


@pytest.mark.parametrize(
    "page",
    sorted(
        str(p.relative_to(DOCS))
        for p in DOCS.rglob("*.md")
        if "```python" in p.read_text(encoding="utf-8")
        and "_generated" not in p.parts
        and not p.is_relative_to(DOCS / "reference" / "spec")
    ),
)
def test_python_examples_in_the_docs_run(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ```python block of a page runs, in order, in one namespace.

    ``# raises NAME`` after a block's last statement means that statement must
    raise ``memslice.errors.NAME``; a ``print(...)  # TEXT`` comment means TEXT
    must appear in what the block printed.
    """
    import contextlib
    import io

    import memslice.errors

    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in PY_BLOCK.findall((DOCS / page).read_text(encoding="utf-8")):
        raises = re.search(r"^# raises (\w+)", block, flags=re.M)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            if raises:
                error = getattr(memslice.errors, raises.group(1))
                with pytest.raises(error):
                    exec(compile(block, page, "exec"), namespace)
            else:
                exec(compile(block, page, "exec"), namespace)
        for promised in re.findall(r"print\(.*\)\s+# (.+)$", block, flags=re.M):
            assert promised.strip() in out.getvalue(), (page, promised, out.getvalue())


def committed_reports() -> list[dict[str, object]]:
    """The conformance reports the docs draw from (docs/_data/conformance/*.json)."""
    import json

    reports = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((DOCS / "_data" / "conformance").glob("*.json"))
    ]
    assert reports, "no committed conformance report: run docs/_data/regenerate.py"
    return reports


def clause_statuses(report: dict[str, object]) -> dict[str, str]:
    """A report's status per clause.  A clause listed under several profiles
    (API-005 in core and in concurrency) counts as failed if any entry failed,
    else passed if any passed, else not-checked if any is, else not-claimed."""
    order = ["fail", "pass", "not-checked", "not-claimed"]
    grouped: dict[str, set[str]] = {}
    for entry in report["clauses"]:  # type: ignore[attr-defined]
        grouped.setdefault(entry["id"], set()).add(entry["status"])
    return {clause: min(found, key=order.index) for clause, found in grouped.items()}


class _MatrixCells(HTMLParser):
    """The conformance matrix's cells: ``{(clause, impl): (status, href, title)}``."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], tuple[str, str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "a" and "data-clause" in values:
            key = (values["data-clause"], values["data-impl"])
            assert key not in self.cells, f"two cells for {key}"
            self.cells[key] = (values["data-status"], values["href"], values.get("title", ""))


def test_the_conformance_matrix_shows_each_reports_status_for_every_clause(html: Path) -> None:
    """One cell per (spec clause, report), inline in the page (so hovering shows
    its title), with the report's own status for that clause, or "absent" when
    the report does not list it, linking to the clause's anchor."""
    page = html / "reference" / "conformance.html"
    parser = _MatrixCells()
    parser.feed(page.read_text(encoding="utf-8"))
    chapters = spec_clauses()
    chapter_of = {c: stem for stem, ids in chapters.items() for c in ids}
    expected = {}
    for report in committed_reports():
        statuses = clause_statuses(report)
        for clause in chapter_of:
            expected[(clause, str(report["impl"]))] = statuses.get(clause, "absent")
    assert {key: cell[0] for key, cell in parser.cells.items()} == expected
    for (clause, impl), (status, href, title) in parser.cells.items():
        assert href == f"spec/{chapter_of[clause]}.html#{clause.lower()}", (clause, href)
        assert title.startswith(f"{clause} on {impl}: {status}"), title
    assert "conformance-matrix.svg" not in page.read_text(encoding="utf-8")


def test_traceability_holds_each_reports_results(html: Path) -> None:
    """The traceability page has one pass mark per passed (clause, report) pair
    and one fail mark per failed pair."""
    page = (html / "reference" / "spec" / "traceability.html").read_text(encoding="utf-8")
    rows = page[page.index("<tbody") :]
    clauses = {c for ids in spec_clauses().values() for c in ids}
    for mark, status in (("✓", "pass"), ("✗", "fail")):
        want = sum(
            1
            for report in committed_reports()
            for clause, found in clause_statuses(report).items()
            if found == status and clause in clauses
        )
        assert rows.count(f">{mark}<") == want, (mark, want)


def test_the_benchmark_page_shows_every_target_and_plot(html: Path) -> None:
    """Every target of the committed results is listed with its verdict, and
    every workload's time plot is drawn and shown."""
    import json

    doc = json.loads((ROOT / "benchmarks" / "results" / "results.json").read_text("utf-8"))
    page = (html / "reference" / "benchmarks.html").read_text(encoding="utf-8")
    for target in doc["targets"]:
        name = target["name"].replace("&", "&amp;")
        assert name in page, name
        verdict = "yes" if target["met"] else "<strong>no</strong>"
        targets = page[page.index('id="targets"') :]
        row = targets[targets.index(name) :].split("</tr>", 1)[0]
        assert verdict in row, (name, row)
    for key in doc["workloads"]:
        assert (html / "_images" / f"time-{key}.svg").exists(), key
        assert f"_images/time-{key}.svg" in page, key
    misses = page[page.index("Why the misses happen") :]
    for target in doc["targets"]:
        if not target["met"]:
            assert target["name"].replace("&", "&amp;") in misses, target["name"]


def test_every_listed_implementation_has_a_committed_report() -> None:
    """docs/_data/regenerate.py's list and the committed reports agree: each
    implementation it names has a report, which names that implementation."""
    import importlib.util
    import json

    path = DOCS / "_data" / "regenerate.py"
    spec = importlib.util.spec_from_file_location("regenerate_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for impl in module.IMPLS:
        report = DOCS / "_data" / "conformance" / f"{module.slug(impl)}.json"
        assert report.exists(), f"no report for {impl}: python docs/_data/regenerate.py"
        assert json.loads(report.read_text(encoding="utf-8"))["impl"] == impl


# ----------------------------------------------------------------------- the learning path
LEARNING_PATH = (
    "index",
    "start-here",
    "tutorial/index",
    "tutorial/first-example",
    "tutorial/second-example",
    "tutorial/threads-and-time",
    "explanation/index",
    "explanation/slab",
    "explanation/colour",
    "explanation/magazines",
    "explanation/depot",
    "explanation/contention",
    "explanation/thread-exit",
    # The step-through page (docs-pictures) follows thread exit wherever it exists.
    *(["explanation/step-through"] if (DOCS / "explanation" / "step-through.md").exists() else []),
    "explanation/large-blocks",
    "explanation/debug-blocks",
    "explanation/gmemchunk",
    "explanation/why-dropped",
    "explanation/quirks",
)


def _related(page: Path, kind: str) -> Path | None:
    """Where a page's "previous" or "next" link (the theme's) points."""
    found = re.search(rf'<a class="{kind}-page" href="([^"#]+)"', page.read_text("utf-8"))
    return (page.parent / found.group(1)).resolve() if found else None


def test_the_learning_path_links_each_page_to_the_next_and_previous(html: Path) -> None:
    """Home, start here, the tutorial, then the explanations in the order of the
    layers: each page's "next" link is the following page and vice versa."""
    pages = [(html / f"{name}.html").resolve() for name in LEARNING_PATH]
    for before, after in itertools.pairwise(pages):
        assert _related(before, "next") == after, (before, _related(before, "next"))
        assert _related(after, "prev") == before, (after, _related(after, "prev"))


def glossary_terms() -> list[str]:
    """The term names of spec/00-terms.md: the bold names on a definition-list
    term line (``**chunk**, **chunk size**`` followed by a ``: `` line)."""
    lines = (SPEC / "00-terms.md").read_text(encoding="utf-8").splitlines()
    terms = []
    for line, follows in itertools.pairwise(lines):
        if line.startswith("**") and follows.startswith(": "):
            terms += [name.strip("`") for name in re.findall(r"\*\*(.+?)\*\*", line)]
    assert len(terms) >= 20, terms
    return terms


class _Article(HTMLParser):
    """The text of a page's article, in reading order, as ``(text, link, skip)``:
    ``link`` is the href of the enclosing link, ``skip`` is "code", "heading" or
    "" (API signatures, scripts, inline pictures and the step-through widget
    count as headings: text, but not prose)."""

    SKIPPED = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__()
        self.segments: list[tuple[str, str | None, str]] = []
        self._stack: list[tuple[str, str]] = []  # (tag, role)
        self._in_article = 0
        self._code: tuple[int, list[str]] | None = None  # (depth, text) of an open code

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "article":
            self._in_article += 1
        role = ""
        if tag in ("code", "pre", "kbd", "samp"):
            role = "code"
        elif (
            re.fullmatch(r"h[1-6]", tag)
            or tag in self.SKIPPED
            or (tag == "dt" and "sig" in values.get("class", "").split())
            # Pictures' labels and the step-through widget are drawn, not prose.
            or tag == "svg"
            or "memslice-stepper" in values.get("class", "").split()
        ):
            role = "heading"
        elif tag == "a":
            role = "link:" + values.get("href", "")
        if tag not in ("br", "img", "input", "meta", "link", "hr", "wbr"):
            self._stack.append((tag, role))
            if role == "code" and self._code is None:
                self._code = (len(self._stack), [])

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, _ = self._stack.pop()
            if self._code is not None and len(self._stack) < self._code[0]:
                # A code element is one use, however many spans it is drawn with.
                self._emit(" ".join("".join(self._code[1]).split()), "code")
                self._code = None
            if open_tag == tag:
                break
        if tag == "article":
            self._in_article -= 1

    def handle_data(self, data: str) -> None:
        if not self._in_article or not data.strip():
            return
        if self._code is not None:
            self._code[1].append(data)
            return
        roles = [role for _, role in self._stack]
        self._emit(data, "heading" if "heading" in roles else "")

    def _emit(self, text: str, skip: str) -> None:
        roles = [role for _, role in self._stack]
        links = [r[5:] for r in roles if r.startswith("link:")]
        if "heading" in roles:
            skip = "heading"
        self.segments.append((text, links[-1] if links else None, skip))


def first_use_problems(page: Path, glossary: Path, terms: list[str]) -> tuple[list[str], set[str]]:
    """For one built page: the terms whose first use is not a link to their glossary
    entry, and the terms whose first use is.

    A use is a term in the article's text outside headings, code and links other
    than glossary links, or inline code that is exactly a term (`SlabInfo`).
    Where terms overlap ("chunk size" contains "chunk"), the longer one is the use.
    """
    alternatives = "|".join(
        re.escape(t).replace(r"\ ", r"\s+") for t in sorted(terms, key=len, reverse=True)
    )
    pattern = re.compile(rf"(?<![\w-])({alternatives})(?:e?s)?(?![\w-])", re.IGNORECASE)
    by_words = {t.lower(): t for t in terms}
    article = _Article()
    article.feed(page.read_text(encoding="utf-8"))
    seen: set[str] = set()
    problems: list[str] = []
    linked: set[str] = set()
    for text, link, skip in article.segments:
        if skip == "heading":
            continue
        if skip == "code":
            uses = [text.strip()] if text.strip() in terms else []
        elif link is not None and "#term-" not in link:
            continue
        else:
            uses = [by_words[" ".join(m.group(1).split()).lower()] for m in pattern.finditer(text)]
        for term in uses:
            if term in seen:
                continue
            seen.add(term)
            target = link and (page.parent / link.split("#")[0]).resolve()
            anchor = link.split("#", 1)[1] if link and "#" in link else ""
            if target != glossary or anchor.lower() != "term-" + term.lower().replace(" ", "-"):
                problems.append(f"{page.name}: first {term!r} is not linked")
            else:
                linked.add(term)
    return problems, linked


def test_every_page_links_each_term_to_the_glossary_the_first_time_it_uses_it(
    html: Path,
) -> None:
    """On every page, the first use of each glossary term links to its entry."""
    terms = glossary_terms()
    glossary = (html / "reference" / "spec" / "00-terms.html").resolve()
    skipped = {"genindex.html", "search.html", "py-modindex.html"}
    problems: list[str] = []
    linked_somewhere: set[str] = set()
    for page in html.rglob("*.html"):
        if page.resolve() == glossary or page.name in skipped:
            continue
        found, linked = first_use_problems(page, glossary, terms)
        problems += [f"{page.parent.relative_to(html)}/{p}" for p in found]
        linked_somewhere |= linked
    assert not problems, "\n".join(problems[:30])
    assert len(linked_somewhere) >= 20, sorted(set(terms) - linked_somewhere)


def test_the_first_use_check_catches_an_unlinked_term(tmp_path: Path) -> None:
    """Test the tester: an unlinked first use is reported, a linked one is not,
    a later unlinked use does not matter, and a use inside a heading, a longer
    piece of code or another link is no use at all."""
    glossary = tmp_path / "terms.html"
    glossary.write_text("<html></html>")
    term_link = '<a href="terms.html#term-slab">slab</a>'
    cases = {
        "bad.html": "<p>A slab, then a " + term_link + ".</p>",
        "good.html": "<h2>The slab</h2><p><code>slab = 1</code> <a href='x.html'>slab</a> "
        + term_link
        + ", then a slab again.</p>",
    }
    results = {}
    for name, body in cases.items():
        page = tmp_path / name
        page.write_text(f"<html><body><article>{body}</article></body></html>")
        results[name] = first_use_problems(page, glossary.resolve(), ["slab", "chunk"])
    assert results["bad.html"] == (["bad.html: first 'slab' is not linked"], set())
    assert results["good.html"] == ([], {"slab"})


def test_the_home_page_uses_no_term_before_defining_it(html: Path) -> None:
    """The home page speaks plain words: no allocator term (ring, SlabInfo, a
    colour label such as c=64) and no picture before the reader reaches
    "start here"."""
    page = (html / "index.html").read_text(encoding="utf-8")
    article = page[page.index("<article") : page.index("</article>")]
    for word in ("ring", "SlabInfo", "c=64", "magazine", "depot"):
        assert not re.search(rf"(?<![\w-]){re.escape(word)}", article), word
    assert "<img" not in article
    assert 'href="start-here.html"' in article


# ----------------------------------------------------------------------- the browser
def _screenshots_module() -> ModuleType:
    """docs/screenshots.py, a script outside any package, loaded from its path."""
    import importlib.util

    path = DOCS / "screenshots.py"
    spec = importlib.util.spec_from_file_location("memslice_docs_screenshots", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_main_pages_fit_a_1280_px_window_in_chromium(html: Path) -> None:
    """Each main page, rendered by headless chromium in a 1,280 px window, is no
    wider than the window, cuts nothing off on the right (wide tables and code
    scroll in their own box), has no broken image, and breaks no clause ID over
    two lines.  A missing chromium fails this test: .ci/run installs it."""
    shots = _screenshots_module()
    problems: list[str] = []
    measured = 0
    with Chromium() as browser:
        # The main pages, every page of the learning path, and every how-to.
        pages = dict.fromkeys(
            [
                *shots.PAGES,
                *(f"{name}.html" for name in LEARNING_PATH),
                *(f"howto/{p.stem}.html" for p in sorted((DOCS / "howto").glob("*.md"))),
            ]
        )
        for relative in pages:
            page = html / relative
            assert page.exists(), relative
            layout = shots.measure(browser, page, relative)
            assert layout.inner_width == shots.WIDTH
            problems += layout.problems()
            measured += layout.images
    assert not problems, "\n".join(problems)
    assert measured >= 40, f"only {measured} images on the main pages"


def test_the_layout_check_catches_what_it_must(tmp_path: Path) -> None:
    """Test the tester: a page with a wide block that does not scroll, one with a
    broken image and one with a clause ID broken over two lines all fail; the
    same wide block inside a scrolling box passes."""
    shots = _screenshots_module()
    wide = '<div style="width:3000px">wide</div>'
    pages = {
        "cut.html": f"<article><p>text</p>{wide}</article>",
        "scrolls.html": f'<article><div style="overflow-x:auto">{wide}</div></article>',
        "broken.html": '<article><img src="missing.svg" alt="x"></article>',
        "clause.html": '<article><p style="width:60px">see <span class="clause">'
        "CONF-015</span> and more</p></article>",
    }
    for name, body in pages.items():
        (tmp_path / name).write_text(f"<!doctype html><html><body>{body}</body></html>")
    with Chromium() as browser:
        found = {name: shots.measure(browser, tmp_path / name, name) for name in pages}
    assert not found["cut.html"].fits and found["cut.html"].problems()
    assert found["scrolls.html"].fits and not found["scrolls.html"].problems()
    assert found["broken.html"].broken_images == ("missing.svg",)
    assert found["clause.html"].broken_clauses == ("CONF-015",)


# ----------------------------------------------------------------------- facts on the pages
def _text(page: Path) -> str:
    """A page's article as plain text, with whitespace collapsed."""
    body = page.read_text(encoding="utf-8")
    body = body[body.index("<article") : body.index("</article>")]
    return " ".join(re.sub(r"<[^>]+>", " ", body).replace("&amp;", "&").split())


def test_the_layer_summary_says_each_lock_is_global(html: Path) -> None:
    """The explanation index agrees with SLAB-001 and DEPOT-001: one lock for the
    slab layer and one for the depot, each shared by every class."""
    for clause, path in (("SLAB-001", "04-slab.md"), ("DEPOT-001", "07-depot.md")):
        text = (SPEC / path).read_text(encoding="utf-8")
        body = text[text.index(f"### {clause}") :].split("\n### ", 1)[0]
        assert "one global" in body, clause  # the spec's own words
    page = _text(html / "explanation" / "index.html")
    assert "per class, one lock" not in page
    assert "one global lock for all classes" in page
    assert "another global lock for all classes" in page


CELL = r"<td[^>]*>(.*?)</td>"


def _rendered_rows(page: Path, marker: str) -> list[list[str]]:
    """The body rows of the first table after ``marker`` in a page, as cell texts."""
    body = page.read_text(encoding="utf-8")
    table = body[body.index(marker) :]
    table = table[table.index("<tbody") : table.index("</tbody>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    return [
        [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(CELL, row, re.S)]
        for row in rows
    ]


def test_the_magazine_threshold_table_is_mag_004_computed_by_the_reference(html: Path) -> None:
    """Every class's threshold on the magazines page is the reference's own
    (Geometry.threshold, MAG-004), ranges included; 16-byte chunks get the same
    threshold as 32-byte ones, not 8192 / (5 * 16)."""
    from memslice.sizeclass import geometry_for
    from memslice.tunables import PROFILES

    geometry = geometry_for(PROFILES["glib-2.74"])
    shown: dict[int, int] = {}
    for first, *_, threshold, _held in _rendered_rows(
        html / "explanation" / "magazines.html", "memslice-thresholds"
    ):
        sizes = [int(n) for n in re.findall(r"\d+", first)]
        low, high = sizes[0], sizes[-1]
        for chunk in range(low, high + 1, geometry.p2alignment):
            shown[chunk] = int(threshold)
    expected = {c.chunk_size: geometry.threshold(c.index, 0) for c in geometry.classes}
    assert shown == expected
    assert shown[16] == shown[32] != geometry.max_page_size // (5 * 16)
    assert "divided by five chunk sizes" not in _text(html / "explanation" / "magazines.html")


def test_the_start_page_class_table_is_the_references_geometry(html: Path) -> None:
    """Each row of the start page's table is what the reference computes for
    that request size: chunk, class, page, chunks, padding, threshold."""
    from memslice.sizeclass import geometry_for
    from memslice.tunables import PROFILES

    geometry = geometry_for(PROFILES["glib-2.74"])
    rows = _rendered_rows(html / "start-here.html", "memslice-classes")
    assert len(rows) >= 5
    for asked, chunk, ix, page, chunks, padding, threshold in rows:
        size = int(asked.split()[0])
        index = geometry.class_index(geometry.p2align(size))
        if not 0 <= index < geometry.n_classes:
            assert chunk == "–", asked
            continue
        cls = geometry.classes[index]
        assert (chunk, ix, page, chunks, padding, threshold) == (
            f"{cls.chunk_size} B",
            str(index),
            f"{cls.page_size} B",
            str(cls.chunks_per_slab),
            f"{cls.padding} B",
            str(geometry.threshold(index, 0)),
        ), asked


def test_tutorial_step_5_says_what_the_reference_does(html: Path) -> None:
    """After GLib's 10 000 allocations of 50 bytes, the loaded magazine is empty,
    so the first freed chunk comes straight back on the next allocation; the
    tutorial says so, and no longer says the opposite."""
    import memslice

    allocator = memslice.Allocator(environ={})
    blocks = [allocator.alloc(50) for _ in range(10_000)]
    ix = allocator.geometry.class_index(allocator.geometry.p2align(50))
    threads = allocator.snapshot().threads
    # A snapshot lists non-empty magazines only: (loaded, freeing) per class.
    loaded = [t.magazines[ix][0].chunks for t in threads if ix in t.magazines]
    assert all(not chunks for chunks in loaded), loaded
    allocator.free1(50, blocks[0])
    assert allocator.alloc(50) == blocks[0]
    text = _text(html / "tutorial" / "first-example.html")
    assert "while the loaded magazine has chunks" not in text
    assert "The loaded magazine is empty at this point" in text
    assert "get this very chunk back" in text


def test_no_page_has_stale_text_or_cites_a_missing_appendix(html: Path) -> None:
    """Words left from the build-up of the project, and the "spec appendix A"
    that never existed, are on no page."""
    stale = ("being built alongside", "issue 6", "appendix")
    for page in html.rglob("*.html"):
        if page.name in ("genindex.html", "search.html"):
            continue
        text = _text(page).lower()
        for words in stale:
            assert words not in text, (page.relative_to(html), words)


def test_the_benchmark_story_takes_its_numbers_and_words_from_the_data(html: Path) -> None:
    """The page's W1 sentence quotes results.json's medians (not a number from an
    older run), and the comparison words follow the data: feed the story a run
    where the ratios are reversed and "slower" becomes "as fast"."""
    import copy
    import json

    from memslice_results import _number, bench_story

    doc = json.loads((ROOT / "benchmarks" / "results" / "results.json").read_text("utf-8"))
    page = _text(html / "reference" / "benchmarks.html")
    story = page[page.index("What the run shows") : page.index("Time per operation")]
    w1 = doc["workloads"]["W1"]["peers"]
    for peer in ("reference", "glib", "bare-ctypes", "python-pair"):
        assert f"{_number(w1[peer]['ns_per_op']['median'])} ns" in story, peer
    assert "360 ns" not in story or _number(w1["reference"]["ns_per_op"]["median"]) == "360"
    naive = doc["workloads"]["W1"]["time_ratio_to_reference"]["naive"]
    said = "\n".join(bench_story(doc))
    flipped = copy.deepcopy(doc)
    flipped["workloads"]["W1"]["time_ratio_to_reference"]["naive"] = 1 / naive / 2
    said_flipped = "\n".join(bench_story(flipped))
    assert ("slower than the reference" in said) == (naive > 1.05)
    assert "as fast as the reference" in said_flipped
