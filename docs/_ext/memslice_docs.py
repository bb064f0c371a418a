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
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from memslice.__main__ import StepResult, WorkloadContext

CLAUSE_HEADING = re.compile(r"^### ([A-Z]+-\d{3}) \[([A-Za-z0-9.\-]+)\] (.+)$")
CLAUSE_ID = re.compile(r"(?<![\w{`-])([A-Z]{2,6}-\d{3})(?![\w-])")
MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
PICTURES = ("ring", "slab", "magazines", "table", "totals", "colour-zoom", "cache-sets")

# Figures and workloads are computed once per Sphinx process.
_RUNS: dict[tuple[str, str], tuple[WorkloadContext, list[StepResult]]] = {}


# ----------------------------------------------------------------------- the spec
def _link_clauses(line: str) -> str:
    """Turn bare clause IDs outside inline code into {clause} roles."""
    parts = line.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = CLAUSE_ID.sub(r"{clause}`\1`", parts[i])
    return "`".join(parts)


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
    all_ids: list[str] = []
    rows: list[str] = []
    for path in files:
        text, clauses = render_spec_file(path.read_text(encoding="utf-8"), existing)
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
    toc = "\n".join([*(p.stem for p in files), "traceability"])
    (out / "index.md").write_text(
        "# The specification\n\n"
        "Rendered at build time from `spec/*.md`. Every clause has a stable anchor: "
        "clause `SLAB-004` is `#slab-004` on its chapter's page.\n"
        f"{intro}\n"
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
                f" (not yet: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''})"
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
        "| Clause | Level | " + "".join(f"{h} | " for h in headers) + f"{' | '.join(columns)} |",
        "|---|---|" + ":-:|" * len(headers) + "---|" * len(columns),
    ]
    for clause, level in levels.items():
        cells = list(results.get(clause, [""] * len(headers)))
        for column in columns:
            files = found[column].get(clause, {})
            cells.append(", ".join(f"`{f}`" for f in sorted(files)) or "-")
        lines.append(f"| {{clause}}`{clause}` | {level} | {' | '.join(cells)} |")
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
            parts[j] = CLAUSE_ID.sub(
                lambda m: f":ref:`{m.group(1)} <{m.group(1).lower()}>`", parts[j]
            )
        lines[i] = "``".join(parts)
        if line.rstrip().endswith("::"):
            literal_indent = indent


def _always_redraw(
    app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    return sorted(getattr(env, "memslice_figure_pages", set()) - removed)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the role, directives and the build-time spec rendering."""
    app.connect("env-get-outdated", _always_redraw)
    app.connect("builder-inited", _wipe_generated, priority=100)
    app.connect("builder-inited", generate_spec, priority=500)
    app.add_role("clause", clause_role)
    app.setup_extension("sphinx.ext.autodoc")  # the event below is autodoc's
    app.connect("autodoc-process-docstring", link_docstring_clauses)
    app.add_directive("memslice-figure", MemsliceFigure)
    app.add_directive("memslice-step", MemsliceStep)
    app.add_directive("memslice-stepper", MemsliceStepper)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
