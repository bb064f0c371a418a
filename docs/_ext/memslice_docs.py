"""Sphinx extension: the spec with stable clause anchors, and live pictures.

Rules and theory of operation
-----------------------------
Three jobs, all done at build time from the project's own sources::

    spec/*.md ──(builder-inited)──▶ docs/reference/spec/*.md   (generated, not in git)
        each clause heading "### SLAB-004 [MUST] Title" gets a label (slab-004)=
        so every clause has the stable anchor #slab-004; clause IDs in the text
        become {clause} links; links to spec files that do not exist become text

    {clause}`SLAB-004`  ──▶ a std:ref cross-reference to slab-004; a missing
        clause is an "undefined label" warning, which -W turns into a failure

    {memslice-figure} / {memslice-step} ──▶ run a workload of memslice.__main__
        on the live reference, draw with memslice.visualise, write
        docs/_generated/figures/NAME.svg, and insert it as a figure;
        pictures of a whole run (the colour zoom, cache sets, before/after)
        name chunks from the run's first snapshot on (ChunkNames)

    {memslice-stepper} TRACE.json ──▶ replay a call trace on the live reference
        (memslice.stepthrough) and insert the step-through as raw HTML: one
        frame per call, clause IDs linked to their anchors in the rendered spec

Invariants: nothing here is drawn by hand; a figure's file name is a pure
function of its directive's arguments, so the HTML test can list the figures
a build must contain; the generated folders are wiped at every build, so a
removed spec file or figure cannot linger.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from memslice.__main__ import StepResult, WorkloadContext

GLOSSARY_FILE = "00-terms.md"
TERM_LINE = re.compile(r"^\*\*.+?\*\*")
CLAUSE_HEADING = re.compile(r"^### ([A-Z]+-\d{3}) \[([A-Za-z0-9.\-]+)\] (.+)$")
CLAUSE_ID = re.compile(r"(?<![\w{`-])([A-Z]{2,6}-\d{3})(?![\w-])")
MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
PICTURES = ("ring", "slab", "magazines", "table", "totals", "colour-zoom", "cache-sets")

#: The glossary's terms, read from spec/00-terms.md when the build starts.
_TERMS: list[str] = []

# Figures and workloads are computed once per Sphinx process.
_RUNS: dict[tuple[str, str], tuple[WorkloadContext, list[StepResult]]] = {}


# ----------------------------------------------------------------------- the spec
def _link_clauses(line: str) -> str:
    """Turn bare clause IDs outside inline code into {clause} roles."""
    parts = line.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = CLAUSE_ID.sub(r"{clause}`\1`", parts[i])
    return "`".join(parts)


def glossary_entries(text: str) -> list[tuple[list[str], str, list[str]]]:
    """The terms of ``spec/00-terms.md``: ``(names, aside, definition lines)`` per entry.

    An entry is a definition-list item whose term line holds the names in bold
    (``**chunk**, **chunk size**``), maybe followed by an aside such as
    ``(`ix`)``; its definition starts with ``: `` and continues indented.
    """
    entries: list[tuple[list[str], str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        follows = lines[i + 1] if i + 1 < len(lines) else ""
        if TERM_LINE.match(line) and follows.startswith(": "):
            names = [n.strip("`") for n in re.findall(r"\*\*(.+?)\*\*", line)]
            aside = re.sub(r"\*\*.+?\*\*", "", line).strip(" ,")
            body = [follows[2:]]
            i += 2
            while i < len(lines) and lines[i].startswith("  "):
                body.append(lines[i].strip())
                i += 1
            entries.append((names, aside, body))
            continue
        i += 1
    return entries


def glossary_terms(spec_dir: Path) -> list[str]:
    """Every term name the glossary defines, as written (``SlabInfo``, ``chunk size``)."""
    path = spec_dir / GLOSSARY_FILE
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [name for names, _, _ in glossary_entries(text) for name in names]


def _as_glossary(text: str) -> str:
    """The terms chapter with its definition list turned into a Sphinx glossary,
    so that ``{term}`chunk``` links anywhere in the docs resolve to it."""
    entries = glossary_entries(text)
    if not entries:
        return text
    first = text.index("**" + entries[0][0][0])
    # Everything before the first entry (title, picture) stays as written.
    head = text[: text.rfind("\n", 0, first) + 1]
    note = (
        "These docs use this chapter as their glossary: every page links a term here "
        "the first time it uses it, and {doc}`../../start-here` introduces the terms "
        "one at a time, with pictures.\n"
    )
    out = [head, note, "```{glossary}"]
    for names, aside, body in entries:
        out += names
        out.append("  " + (f"{aside} — " if aside else "") + body[0])
        out += ["  " + line for line in body[1:]]
        out.append("")
    out.append("```")
    return "\n".join(out) + "\n"


def render_spec_file(text: str, existing: set[str]) -> tuple[str, list[tuple[str, str, str]]]:
    """The MyST source of one spec file, and its clauses as (ID, level, title)."""
    out: list[str] = []
    ids: list[tuple[str, str, str]] = []
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is not None:
            out.append(line)
            if stripped.startswith(fence):
                fence = None
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            out.append(line)
            continue
        heading = CLAUSE_HEADING.match(line)
        if heading:
            clause, level, title = heading.groups()
            ids.append((clause, level, title))
            out += [f"({clause.lower()})=", f"### {clause} [{level}] {title}"]
            continue

        def relink(match: re.Match[str]) -> str:
            label, target = match.group(1), match.group(2)
            if target.startswith(("http://", "https://", "#")):
                return match.group(0)
            name = target.split("#", 1)[0]
            if name.endswith(".md") and "/" not in name and name in existing:
                return match.group(0)
            return label  # a file outside the rendered spec: keep the words only

        line = MD_LINK.sub(relink, line)
        out.append(line if line.startswith("#") else _link_clauses(line))
    return "\n".join(out) + "\n", ids


def generate_spec(app: Sphinx) -> None:
    """Copy spec/*.md into docs/reference/spec/ with clause anchors."""
    src = Path(app.srcdir)
    spec_dir = src.parent / "spec"
    out = src / "reference" / "spec"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files = sorted(p for p in spec_dir.glob("*.md") if p.name != "README.md")
    existing = {p.name for p in files}
    _TERMS[:] = glossary_terms(spec_dir)
    all_ids: list[str] = []
    rows: list[str] = []
    for path in files:
        text, clauses = render_spec_file(path.read_text(encoding="utf-8"), existing)
        if path.name == GLOSSARY_FILE:
            text = _as_glossary(text)
        (out / path.name).write_text(text, encoding="utf-8")
        all_ids += [c for c, _, _ in clauses]
        rows += [
            f"| {{clause}}`{c}` | {level} | {title.replace('|', '/')} |"
            for c, level, title in clauses
        ]
    readme = spec_dir / "README.md"
    intro = ""
    if readme.exists():
        intro, _ = render_spec_file(readme.read_text(encoding="utf-8"), existing)
        intro = intro.replace("# The memslice specification", "", 1)
    levels = {c: level for c, level, _ in (r for r in _clause_rows(files))}
    app.env.memslice_clause_levels = levels  # type: ignore[attr-defined]
    (out / "traceability.md").write_text(traceability(src.parent, levels), encoding="utf-8")
    # The terms chapter is the docs' glossary: the home page's toctree holds it.
    toc = "\n".join([*(p.stem for p in files if p.name != GLOSSARY_FILE), "traceability"])
    glossary_note = (
        "The terms the clauses use are defined in chapter 00, which these pages also "
        "use as their {doc}`glossary <00-terms>`.\n\n"
        if (spec_dir / GLOSSARY_FILE).exists()
        else ""
    )
    (out / "index.md").write_text(
        "# The specification\n\n"
        "Rendered at build time from `spec/*.md`. Every clause has a stable anchor: "
        "clause `SLAB-004` is `#slab-004` on its chapter's page.\n"
        f"{intro}\n{glossary_note}"
        f"```{{toctree}}\n:maxdepth: 1\n:caption: Chapters\n\n{toc}\n```\n\n"
        "## Every clause\n\n| Clause | Level | Title |\n|---|---|---|\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )
    app.env.memslice_clause_ids = all_ids  # type: ignore[attr-defined]
    app.env.memslice_clause_files = {  # type: ignore[attr-defined]
        c: path.stem for path in files for c, _, _ in render_spec_file(path.read_text(), set())[1]
    }
    (src / "_generated").mkdir(exist_ok=True)
    # The wire protocol's JSON Schema, shown on the plug-in page when it exists.
    schema = src.parent / "conformance" / "memslice_conformance" / "schema" / "protocol-v1.json"
    (src / "_generated" / "protocol-v1.json").write_text(
        schema.read_text(encoding="utf-8")
        if schema.exists()
        else '{"$comment": "not written yet"}\n',
        encoding="utf-8",
    )
    (src / "_generated" / "clause-ids.txt").write_text("\n".join(all_ids) + "\n")


def _clause_rows(files: list[Path]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for path in files:
        rows += render_spec_file(path.read_text(encoding="utf-8"), set())[1]
    return rows


TRACE_SOURCES: tuple[tuple[str, str, str], ...] = (
    # (column, folder relative to the checkout, file pattern)
    ("Reference", "reference/memslice", "*.py"),
    ("Tests", "tests", "**/*.py"),
    ("Conformance", "conformance/memslice_conformance", "**/*"),
)


def citations(root: Path) -> dict[str, dict[str, dict[str, int]]]:
    """``{column: {clause: {file: count}}}`` for every clause ID cited in the sources."""
    found: dict[str, dict[str, dict[str, int]]] = {}
    for column, folder, pattern in TRACE_SOURCES:
        table = found.setdefault(column, {})
        for path in sorted((root / folder).glob(pattern)):
            if not path.is_file() or path.suffix not in {".py", ".c", ".json", ".md"}:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            name = str(path.relative_to(root / folder))
            for clause in CLAUSE_ID.findall(text):
                files = table.setdefault(clause, {})
                files[name] = files.get(name, 0) + 1
    return found


def traceability(root: Path, levels: dict[str, str]) -> str:
    """A Markdown page: for each clause, the files of each kind that cite it."""
    found = citations(root)
    columns = [c for c, _, _ in TRACE_SOURCES]
    lines = [
        "# Traceability",
        "",
        "For every clause, the files that cite it: the reference code that implements it,",
        "the project's tests, and the conformance suite's checks. Computed at build time by",
        "scanning the sources for clause IDs, so it is only as good as the citations;",
        "a MUST clause with an empty column is a gap worth a look.",
        "",
    ]
    must = [c for c, level in levels.items() if level == "MUST"]
    for column in columns:
        missing = [c for c in must if c not in found[column]]
        lines.append(
            f"- {column}: {len(must) - len(missing)} of {len(must)} MUST clauses cited"
            + (
                " (not yet: "
                + ", ".join(f"{{clause}}`{c}`" for c in missing[:12])
                + (" ..." if len(missing) > 12 else "")
                + ")"
                if missing
                else ""
            )
        )
    # Results on each implementation, from the committed conformance reports
    # (docs/_data/conformance, drawn by memslice_results; see the matrix page).
    from memslice_results import result_columns

    headers, results, legend = result_columns(root / "docs")
    if headers:
        lines += [
            "",
            "The columns after *Level* are each implementation's result, from the",
            "committed conformance reports ({doc}`../conformance`):",
            "",
            *(f"- {entry}" for entry in legend),
        ]
    # Results first: short cells that stay on screen; the file lists can run wide.
    lines += [
        "",
        "The table is wider than the page: scroll it sideways to see the files.",
        "",
        "::::{container} memslice-trace",
        "| Clause | Level | " + "".join(f"{h} | " for h in headers) + f"{' | '.join(columns)} |",
        "|---|---|" + ":-:|" * len(headers) + "---|" * len(columns),
    ]
    for clause, level in levels.items():
        cells = list(results.get(clause, [""] * len(headers)))
        for column in columns:
            files = found[column].get(clause, {})
            cells.append(", ".join(f"`{f}`" for f in sorted(files)) or "-")
        lines.append(f"| {{clause}}`{clause}` | {level} | {' | '.join(cells)} |")
    lines.append("::::")
    return "\n".join(lines) + "\n"


def clause_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Any,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """``{clause}`SLAB-004```: a link to the clause's anchor, checked by Sphinx."""
    env = inliner.document.settings.env
    clause = text.strip()
    node = addnodes.pending_xref(
        rawtext,
        refdomain="std",
        reftype="ref",
        reftarget=clause.lower(),
        refexplicit=True,
        refwarn=True,
        refdoc=env.docname,
    )
    node += nodes.inline(clause, clause, classes=["xref", "std", "std-ref", "clause"])
    return [node], []


# ----------------------------------------------------------------------- glossary links
#: Where a term is never linked: code, headings, existing links, the signatures
#: of the API pages, and the glossary's own entries.
_NO_TERM_LINKS = (
    nodes.FixedTextElement,  # literal blocks, doctest blocks
    nodes.literal,
    nodes.title,
    nodes.subtitle,
    nodes.rubric,
    nodes.reference,
    nodes.term,
    nodes.raw,
    nodes.target,
    addnodes.pending_xref,
    addnodes.desc_signature,
    addnodes.toctree,
)


def term_pattern(terms: list[str]) -> re.Pattern[str]:
    """One pattern for every term, longest first, as whole words with an optional
    plural (``chunk sizes``), never part of a hyphenated word (``debug-blocks``)."""
    alternatives = "|".join(
        re.escape(term).replace(r"\ ", r"\s+") for term in sorted(terms, key=len, reverse=True)
    )
    return re.compile(rf"(?<![\w-])({alternatives})(?:e?s)?(?![\w-])", re.IGNORECASE)


def _canonical(found: str, terms: list[str]) -> str:
    words = " ".join(found.split()).lower()
    for term in sorted(terms, key=len, reverse=True):
        if (
            words == term.lower()
            or words.rstrip("s") == term.lower()
            or (words.endswith("es") and words[:-2] == term.lower())
        ):
            return term
    raise ValueError(found)


def _term_xref(term: str, child: nodes.Node, docname: str) -> addnodes.pending_xref:
    ref = addnodes.pending_xref(
        "",
        refdomain="std",
        reftype="term",
        reftarget=term,
        refexplicit=True,
        refwarn=True,
        refdoc=docname,
    )
    ref.append(child)
    return ref


def link_first_use_of_terms(app: Sphinx, doctree: nodes.document) -> None:
    """Link the first use of each glossary term on a page to its glossary entry.

    Reading order is document order; a term already linked by hand (``{term}``)
    counts as used.  Inline code that is exactly a term (`` `SlabInfo` ``) is
    linked too.  The glossary page itself links nothing.
    """
    docname = app.env.docname
    if not _TERMS or docname == "reference/spec/" + GLOSSARY_FILE[:-3]:
        return
    pattern = term_pattern(_TERMS)
    exact = {term: term for term in _TERMS}
    used: set[str] = set()
    for ref in doctree.findall(addnodes.pending_xref):
        if ref.get("reftype") == "term":
            used.add(_canonical(str(ref["reftarget"]), _TERMS))

    def excluded(node: nodes.Node) -> bool:
        parent = node.parent
        while parent is not None:
            if isinstance(parent, _NO_TERM_LINKS):
                return True
            parent = parent.parent
        return False

    # Soft line breaks leave a sentence in several Text nodes: join neighbours, so a
    # term broken over two source lines ("colour\naccumulator") is still one use.
    for element in list(doctree.findall(nodes.Element)):
        merged: list[nodes.Node] = []
        for child in element.children:
            if merged and isinstance(child, nodes.Text) and isinstance(merged[-1], nodes.Text):
                merged[-1] = nodes.Text(str(merged[-1]) + str(child))
            else:
                merged.append(child)
        if len(merged) != len(element.children):
            element.children = []
            element.extend(merged)
    candidates = list(doctree.findall(lambda n: isinstance(n, (nodes.Text, nodes.literal))))
    for node in candidates:
        if isinstance(node, nodes.literal):
            term = exact.get(node.astext())
            if term and term not in used and not excluded(node) and node.parent is not None:
                used.add(term)
                node.parent.replace(node, _term_xref(term, node.deepcopy(), docname))
            continue
        if excluded(node) or node.parent is None:
            continue
        text = str(node)
        pieces: list[nodes.Node] = []
        start = 0
        for match in pattern.finditer(text):
            term = _canonical(match.group(0), _TERMS)
            if term in used:
                continue
            used.add(term)
            pieces.append(nodes.Text(text[start : match.start()]))
            pieces.append(_term_xref(term, nodes.Text(match.group(0)), docname))
            start = match.end()
        if pieces:
            pieces.append(nodes.Text(text[start:]))
            kept = [p for p in pieces if not (isinstance(p, nodes.Text) and not str(p))]
            node.parent.replace(node, kept)


# ----------------------------------------------------------------------- live pictures
def _run(workload: str, profile: str) -> tuple[WorkloadContext, list[StepResult]]:
    from memslice.__main__ import run_workload
    from memslice.tunables import PROFILES

    key = (workload, profile)
    if key not in _RUNS:
        _RUNS[key] = run_workload(workload, PROFILES[profile])
    return _RUNS[key]


def _draw(picture: str, workload: str, step: int, size: int | None, profile: str) -> str:
    from memslice import visualise
    from memslice.__main__ import busiest_class
    from memslice.sizeclass import geometry_for
    from memslice.tunables import PROFILES

    geometry = geometry_for(PROFILES[profile])
    if picture == "table":
        return visualise.size_class_table_svg(geometry)
    _, results = _run(workload, profile)
    snap = results[step - 1].after if step else results[0].before
    ix = busiest_class(snap) if size is None else geometry.class_index(geometry.p2align(size))
    cls = snap.classes[ix]
    states = visualise.chunk_states(snap)
    # Names follow each chunk through the run: feed every snapshot up to this one.
    names = visualise.ChunkNames().see(results[0].before)
    for result in results[:step]:
        names.see(result.after)
    if picture == "ring":
        return visualise.ring_svg(cls, states, names=names)
    if picture == "magazines":
        return visualise.magazines_svg(snap, ix, names=names)
    if picture == "colour-zoom":
        return visualise.colour_zoom_svg(cls, names)
    if picture == "cache-sets":
        return visualise.cache_sets_svg(cls)
    if picture == "totals":
        return visualise.totals_svg(snap)
    if not cls.slabs:
        raise ValueError(f"{workload} step {step}: class {ix} has no slab to draw")
    head = cls.slabs[0]
    name = names.slab(ix, head.page)
    return visualise.slab_svg(
        head,
        states,
        letter=name,
        title=(
            f"The head slab of class {ix} ({cls.chunk_size} B chunks), slab {name}: "
            f"{head.page_size} B page, colour offset {head.colour}"
        ),
    )


class _FigureBase(SphinxDirective):
    option_spec: ClassVar[dict[str, Any]] = {
        "workload": directives.unchanged,
        "step": directives.nonnegative_int,
        "size": directives.positive_int,
        "profile": directives.unchanged,
        "caption": directives.unchanged,
    }

    def _figure(self, picture: str) -> nodes.Node:
        if picture not in PICTURES:
            raise self.error(f"unknown picture {picture!r}; one of {', '.join(PICTURES)}")
        workload = self.options.get("workload", "seed-blocks")
        step = int(self.options.get("step", 0))
        size = self.options.get("size")
        profile = self.options.get("profile", "glib-2.74")
        try:
            svg = _draw(picture, workload, step, size, profile)
        except (KeyError, IndexError, ValueError) as exc:
            raise self.error(f"cannot draw {picture}: {exc}") from exc
        name = (
            f"{profile}-table"
            if picture == "table"
            else f"{workload}-step{step}-{picture}" + (f"-{size}" if size else "")
        )
        folder = Path(self.env.srcdir) / "_generated" / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.svg").write_text(svg, encoding="utf-8")
        figure = nodes.figure(classes=["memslice-figure"], ids=[f"fig-{name}"])
        uri = f"/_generated/figures/{name}.svg"
        image = nodes.image(uri=uri, alt=f"memslice figure {name}", classes=["memslice-svg"])
        figure += image
        caption = self.options.get("caption")
        if caption:
            parsed, _ = self.parse_inline(caption, lineno=self.lineno)
            figure += nodes.caption(caption, "", *parsed)
        # Figures live in a folder wiped at every build: re-read this page every time.
        pages: set[str] = getattr(self.env, "memslice_figure_pages", set())
        pages.add(self.env.docname)
        self.env.memslice_figure_pages = pages  # type: ignore[attr-defined]
        return figure


class MemsliceFigure(_FigureBase):
    """``{memslice-figure} PICTURE``: one live picture (ring, slab, magazines, table)."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        return [self._figure(self.arguments[0])]


class MemsliceStep(_FigureBase):
    """``{memslice-step} WORKLOAD STEP``: the step's code, what each layer did, pictures."""

    required_arguments = 2
    option_spec: ClassVar[dict[str, Any]] = {
        **_FigureBase.option_spec,
        "pictures": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        workload, step_text = self.arguments
        try:
            step = int(step_text)
            _, results = _run(workload, self.options.get("profile", "glib-2.74"))
            result = results[step - 1]
        except (KeyError, IndexError, ValueError) as exc:
            raise self.error(f"no step {step_text!r} in workload {workload!r}") from exc
        self.options["workload"], self.options["step"] = workload, step
        out: list[nodes.Node] = []
        # Steps are C statements from GLib's examples, or a sentence when no C applies.
        language = "c" if "(" in result.step.code else "text"
        code = nodes.literal_block(result.step.code, result.step.code, language=language)
        out.append(code)
        para = nodes.paragraph()
        para += nodes.strong(text="What each layer did (live reference):")
        out.append(para)
        bullets = nodes.bullet_list(classes=["memslice-narration"])
        for line in result.narration or ("no layer changed",):
            layer, _, rest = line.partition(": ")
            item = nodes.list_item()
            text = nodes.paragraph()
            if rest:
                text += nodes.strong(text=layer)
                text += nodes.Text(": " + rest)
            else:
                text += nodes.Text(line)
            item += text
            bullets += item
        out.append(bullets)
        for picture in (self.options.get("pictures") or "").split(","):
            if picture.strip():
                out.append(self._figure(picture.strip()))
        return out


class MemsliceStepper(SphinxDirective):
    """``{memslice-stepper} PATH``: step through a call trace, one call per frame.

    PATH is a call trace relative to the docs folder (a recording, or any
    conformance trace); the page links each clause ID to its anchor.
    """

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"profile": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        from memslice.calltrace import TraceError, load_call_trace
        from memslice.stepthrough import replay, stepper_html
        from memslice.tunables import PROFILES

        path = Path(self.env.srcdir) / self.arguments[0]
        self.env.note_dependency(str(path))
        try:
            trace = load_call_trace(path)
            frames = replay(trace, PROFILES[self.options.get("profile", "glib-2.74")])
        except (TraceError, KeyError) as exc:
            raise self.error(f"cannot step through {path}: {exc}") from exc
        files: dict[str, str] = getattr(self.env, "memslice_clause_files", {})
        up = "../" * self.env.docname.count("/")

        def href(clause: str) -> str | None:
            stem = files.get(clause)
            return f"{up}reference/spec/{stem}.html#{clause.lower()}" if stem else None

        element = "stepper-" + re.sub(r"[^a-z0-9]+", "-", path.stem.lower())
        text = stepper_html(frames, element_id=element, clause_href=href)
        return [nodes.raw("", text, format="html")]


def _wipe_generated(app: Sphinx) -> None:
    shutil.rmtree(Path(app.srcdir) / "_generated", ignore_errors=True)
    _RUNS.clear()


def link_docstring_clauses(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """Make clause IDs in API docstrings links to their clauses (checked like any ref).

    IDs inside ````literals```` and inside ``::`` literal blocks are left alone.
    """
    literal_indent: int | None = None
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if line.strip() and indent <= literal_indent:
                literal_indent = None
            else:
                continue
        parts = line.split("``")
        for j in range(0, len(parts), 2):
            parts[j] = CLAUSE_ID.sub(lambda m: f":clause:`{m.group(1)}`", parts[j])
        lines[i] = "``".join(parts)
        if line.rstrip().endswith("::"):
            literal_indent = indent


# ----------------------------------------------------------------------- tables from the code
def class_rows(sizes: list[int], profile: str = "glib-2.74") -> list[str]:
    """Markdown table: what each requested size becomes (SIZE-003, SIZE-005, SIZE-007,
    SIZE-008, MAG-004), computed by the reference's own geometry."""
    from memslice.sizeclass import geometry_for
    from memslice.tunables import PROFILES

    geometry = geometry_for(PROFILES[profile])
    lines = [
        "| You ask for | Chunk size | Size class | Slab page | Chunks per slab "
        "| Padding | Magazine threshold |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        chunk = geometry.p2align(size)
        ix = geometry.class_index(chunk)
        if not 0 <= ix < geometry.n_classes:
            lines.append(f"| {size} B | – | none: the system `malloc` | – | – | – | – |")
            continue
        cls = geometry.classes[ix]
        lines.append(
            f"| {size} B | {cls.chunk_size} B | {ix} | {cls.page_size} B | "
            f"{cls.chunks_per_slab} | {cls.padding} B | {geometry.threshold(ix, 0)} |"
        )
    return lines


def threshold_rows(profile: str = "glib-2.74") -> list[str]:
    """Markdown table: every class's magazine threshold (MAG-004) without contention,
    classes with the same threshold on one row, computed by the reference."""
    from memslice.sizeclass import geometry_for
    from memslice.tunables import PROFILES

    geometry = geometry_for(PROFILES[profile])
    groups: list[tuple[int, list[int]]] = []
    for cls in geometry.classes:
        threshold = geometry.threshold(cls.index, 0)
        if groups and groups[-1][0] == threshold:
            groups[-1][1].append(cls.chunk_size)
        else:
            groups.append((threshold, [cls.chunk_size]))
    top = geometry.max_page_size
    lines = [
        f"| Chunk size *c* | {top} // max(5*c*, 160) | Threshold (at least 4) "
        "| Bytes in a full magazine |",
        "|---|---:|---:|---:|",
    ]
    for threshold, chunks in groups:
        first, last = chunks[0], chunks[-1]
        span = f"{first} B" if first == last else f"{first} to {last} B"
        raw = sorted({top // max(5 * c, 160) for c in (first, last)})
        formula = " to ".join(str(r) for r in reversed(raw))
        held = (
            f"{threshold * first:,}"
            if first == last
            else f"{threshold * first:,} to {threshold * last:,}"
        )
        lines.append(f"| {span} | {formula} | **{threshold}** | {held} |")
    return lines


class MemsliceTable(SphinxDirective):
    """``{memslice-table} classes|thresholds``: a table computed by the reference."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {
        "sizes": directives.unchanged,
        "profile": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        profile = self.options.get("profile", "glib-2.74")
        kind = self.arguments[0]
        if kind == "classes":
            try:
                sizes = [int(s) for s in self.options.get("sizes", "").split(",") if s.strip()]
            except ValueError as exc:
                raise self.error(f"bad :sizes: {exc}") from exc
            lines = class_rows(sizes, profile)
        elif kind == "thresholds":
            lines = threshold_rows(profile)
        else:
            raise self.error(f"unknown table {kind!r}; one of classes, thresholds")
        container = nodes.container(classes=["memslice-results", f"memslice-{kind}"])
        self.state.nested_parse(StringList(lines, source=self.env.docname), 0, container)
        return [container]


def mark_clause_links(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give every resolved link to a clause the class ``clause`` (one word on
    screen: the stylesheet never breaks it after its hyphen).

    Sphinx rebuilds a resolved reference's contents, dropping the role's own
    classes, so the class goes on the link itself once references are resolved.
    """
    for ref in doctree.findall(nodes.reference):
        target = str(ref.get("refuri", "") or ref.get("refid", ""))
        text = ref.astext()
        if CLAUSE_ID.fullmatch(text) and target.endswith(text.lower()):
            ref["classes"].append("clause")


def _always_redraw(
    app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    return sorted(getattr(env, "memslice_figure_pages", set()) - removed)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the role, directives and the build-time spec rendering."""
    app.connect("env-get-outdated", _always_redraw)
    app.connect("builder-inited", _wipe_generated, priority=100)
    app.connect("builder-inited", generate_spec, priority=500)
    app.add_directive("memslice-table", MemsliceTable)
    app.add_role("clause", clause_role)
    app.connect("doctree-read", link_first_use_of_terms)
    app.connect("doctree-resolved", mark_clause_links)
    app.setup_extension("sphinx.ext.autodoc")  # the event below is autodoc's
    app.connect("autodoc-process-docstring", link_docstring_clauses)
    app.add_directive("memslice-figure", MemsliceFigure)
    app.add_directive("memslice-step", MemsliceStep)
    app.add_directive("memslice-stepper", MemsliceStepper)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
