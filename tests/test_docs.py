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

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

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


def test_the_conformance_matrix_shows_each_reports_status_for_every_clause(html: Path) -> None:
    """One cell per (spec clause, report), titled with the report's own status
    for that clause, or "absent" when the report does not list it."""
    svg = ET.parse(html / "_images" / "conformance-matrix.svg").getroot()
    cells = {}
    for title in svg.iter("{http://www.w3.org/2000/svg}title"):
        head, _, status = (title.text or "").rpartition(": ")
        clause, _, impl = head.partition(" on ")
        cells[(clause, impl)] = status
    clauses = [c for ids in spec_clauses().values() for c in ids]
    expected = {}
    for report in committed_reports():
        statuses = clause_statuses(report)
        for clause in clauses:
            expected[(clause, str(report["impl"]))] = statuses.get(clause, "absent")
    assert cells == expected
    assert "conformance-matrix.svg" in (html / "reference" / "conformance.html").read_text("utf-8")


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
        targets = page[page.index("The targets of issue 6") :]
        row = targets[targets.index(name) :].split("</tr>", 1)[0]
        assert verdict in row, (name, row)
    for key in doc["workloads"]:
        assert (html / "_images" / f"time-{key}.svg").exists(), key
        assert f"_images/time-{key}.svg" in page, key
    assert "Why the misses happen" in page and "W1." in page


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
