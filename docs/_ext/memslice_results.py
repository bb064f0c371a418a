"""Sphinx extension: benchmark results and the conformance matrix, from data files.

Rules and theory of operation
-----------------------------
Two kinds of results are measured elsewhere and only *drawn* here, at build
time, by the project's own code::

    benchmarks/results/results.json ──memslice_bench.plots.draw_all──▶ _generated/bench/*.svg
                                    ──{memslice-bench} meta|time|space|targets|plots──▶ tables
    docs/_data/conformance/*.json   ──{memslice-conformance} summary|matrix──▶ table + SVG grid
        (memslice-conformance run --report; python docs/_data/regenerate.py)

Directives emit MyST Markdown (tables, figures) and parse it in place, so
the tables look like every other table in the docs.  Numbers are read from
the JSON and never typed by hand; a report run against another spec text
than the current one is marked *stale* next to its digest.

Invariants: a clause missing from a report is shown as "absent", never as
passed; a status this module does not know is shown verbatim (a new status
cannot be mistaken for "pass").
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

# ----------------------------------------------------------------------- conformance
#: status -> (symbol in tables, SVG fill colour, words in legends)
STATUS: dict[str, tuple[str, str, str]] = {
    "pass": ("✓", "#2e9e44", "pass"),
    "fail": ("✗", "#d62728", "fail"),
    "not-checked": ("○", "#f2d16b", "claimed, no shipped check cites it"),
    "not-claimed": ("–", "#c8c8c8", "profile not claimed by the implementation"),
    "absent": (
        "",
        "#ffffff",
        "not in the report: no profile covers it, or the report is older than the clause",
    ),
}


@dataclass(frozen=True, slots=True)
class ConformanceReport:
    """One committed report: the implementation, its per-clause statuses, its facts."""

    impl: str
    short: str
    data: dict[str, Any]

    @property
    def statuses(self) -> dict[str, str]:
        """clause -> status; a clause listed under several profiles shows the
        first of fail, pass, not-checked, not-claimed among its entries."""
        return combined_statuses(self.data.get("clauses", []))


#: A clause in several profiles of one report: the entry that decides its cell.
PRECEDENCE = ("fail", "pass", "not-checked", "not-claimed")


def combined_statuses(entries: list[dict[str, Any]]) -> dict[str, str]:
    """One status per clause from a report's per-profile entries (see PRECEDENCE)."""
    found: dict[str, str] = {}
    for entry in entries:
        clause, status = entry["id"], entry["status"]
        old = found.get(clause)
        rank = PRECEDENCE.index(status) if status in PRECEDENCE else -1  # unknown: shown
        if old is None or rank < (PRECEDENCE.index(old) if old in PRECEDENCE else -1):
            found[clause] = status
    return found


def _regenerate_module(docs: Path) -> Any:
    path = docs / "_data" / "regenerate.py"
    spec = importlib.util.spec_from_file_location("memslice_docs_regenerate", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def short_name(impl: str) -> str:
    """A column header: ``glib:always-malloc`` -> ``glib am``; ``cmd:node x.js`` -> ``node``."""
    if impl.startswith("cmd:"):
        return impl[4:].split()[0]
    base, _, mode = impl.partition(":")
    base = {"reference": "ref"}.get(base, base)
    return f"{base} {''.join(w[0] for w in mode.split('-'))}" if mode else base


def load_reports(docs: Path) -> list[ConformanceReport]:
    """The committed reports, in the column order of ``_data/regenerate.py``.

    A docs tree without that script (a test's one-page project) has none.
    """
    if not (docs / "_data" / "regenerate.py").exists():
        return []
    module = _regenerate_module(docs)
    folder = docs / "_data" / "conformance"
    reports = []
    for impl in module.IMPLS:
        path = folder / f"{module.slug(impl)}.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            reports.append(ConformanceReport(impl, short_name(impl), data))
    return reports


def spec_digest(spec_dir: Path) -> str:
    """The digest the suite writes as ``versions.spec`` (over every spec/*.md)."""
    digest = hashlib.sha256()
    for path in sorted(spec_dir.glob("*.md")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()[:16]}"


def result_columns(docs: Path) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """For the traceability page: headers, ``{clause: [symbol per report]}``, legend lines."""
    reports = load_reports(docs)
    headers = [r.short for r in reports]
    table: dict[str, list[str]] = {}
    for index, report in enumerate(reports):
        for clause, status in report.statuses.items():
            row = table.setdefault(clause, [""] * len(reports))
            row[index] = STATUS.get(status, (status,))[0]
    legend = [f"`{r.short}` = `{r.impl}`" for r in reports]
    legend.append("; ".join(f"{sym or '(blank)'} {words}" for sym, _, words in STATUS.values()))
    return headers, table, legend


def matrix_svg(reports: list[ConformanceReport], clauses: list[tuple[str, str]]) -> str:
    """Clause (rows, in bands of columns) x implementation (cells), coloured by status."""
    bands = 3
    per_band = -(-len(clauses) // bands)
    cell, label_w, gap = 15, 74, 26
    header_h = 96
    band_w = label_w + cell * len(reports) + gap
    width = bands * band_w + 10
    legend_y = header_h + per_band * cell + 24
    height = legend_y + 20 * len(STATUS) + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, sans-serif" font-size="11">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for band in range(bands):
        x0 = 5 + band * band_w
        for j, report in enumerate(reports):
            cx = x0 + label_w + j * cell + cell / 2 + 4
            out.append(
                f'<text x="{cx}" y="{header_h - 6}" transform="rotate(-60 {cx} {header_h - 6})"'
                f">{escape(report.short)}</text>"
            )
        for i, (clause, level) in enumerate(clauses[band * per_band : (band + 1) * per_band]):
            y = header_h + i * cell
            weight = ' font-weight="bold"' if level == "MUST" else ""
            out.append(f'<text x="{x0}" y="{y + 11}"{weight}>{clause}</text>')
            for j, report in enumerate(reports):
                status = report.statuses.get(clause, "absent")
                fill = STATUS.get(status, ("?", "#7f3fbf", status))[1]
                out.append(
                    f'<rect x="{x0 + label_w + j * cell}" y="{y}" width="{cell - 1}" '
                    f'height="{cell - 1}" fill="{fill}" stroke="#999" stroke-width="0.5">'
                    f"<title>{clause} on {escape(report.impl)}: {status}</title></rect>"
                )
    for k, (status, (_, fill, words)) in enumerate(STATUS.items()):
        y = legend_y + k * 20
        out.append(
            f'<rect x="5" y="{y}" width="14" height="14" fill="{fill}" stroke="#999"/>'
            f'<text x="26" y="{y + 11}">{status}: {escape(words)}</text>'
        )
    out.append(
        f'<text x="{width - 5}" y="{legend_y + 11}" text-anchor="end">'
        "bold clause IDs are MUST clauses</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------- benchmarks
PEER_ORDER = (
    "reference",
    "reference-malloc",
    "reference-eager",
    "reference-nocolour",
    "glib",
    "bare-ctypes",
    "python-pair",
    "malloc",
    "naive",
    "gmemchunk-2.8",
)


def _number(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def bench_tables(doc: dict[str, Any], what: str) -> list[str]:
    """Markdown lines for one part of the benchmark page."""
    workloads: dict[str, Any] = doc["workloads"]
    if what == "meta":
        meta = doc["meta"]
        return [
            f"Run of {meta['date']}: {meta['rounds']} rounds, {meta['implementation']} "
            f"{meta['python']} on {meta['machine']} ({meta['platform']}); command "
            f"`{' '.join(a.rsplit('/', 1)[-1] for a in meta['argv'])}`."
        ]
    if what == "time":
        # Peers are rows and workloads columns: eight narrow columns fit the page.
        seen = {p for w in workloads.values() for p in w["peers"]}
        peers = [p for p in PEER_ORDER if p in seen] + sorted(seen - set(PEER_ORDER))
        keys = list(workloads)
        lines = [f"- **{key}**: {entry['title']}" for key, entry in workloads.items()]
        lines += ["", "| peer | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        for peer in peers:
            cells = []
            for key in keys:
                entry = workloads[key]
                result = entry["peers"].get(peer)
                if result is None:
                    cells.append("–")
                    continue
                # The harness's ratio is the median of per-round ratios (robust
                # to a slow round), not the ratio of the medians.
                ratio = entry.get("time_ratio_to_reference", {}).get(peer)
                suffix = f" ({ratio:.2f})" if ratio is not None else ""
                cells.append(_number(result["ns_per_op"]["median"]) + suffix)
            lines.append(f"| {peer} | " + " | ".join(cells) + " |")
        return lines
    if what == "space":
        rows = (
            ("W4", "U", "W4 U (live / mapped at peak)", "{:.3f}"),
            ("W4", "peak_ratio", "W4 peak mapped / peak live", "{:.2f}"),
            ("W2", "U", "W2 U", "{:.3f}"),
            ("W6", "returned_fraction", "W6 freed memory returned", "{:.1%}"),
            ("W7", "distinct_l1_sets", "W7 distinct L1 sets touched", "{:.0f}"),
            ("W8", "U_mean", "W8 mean U", "{:.3f}"),
        )
        seen = {
            p
            for key, metric, _, _ in rows
            if key in workloads
            for p, r in workloads[key]["peers"].items()
            if metric in r["metrics"]
        }
        peers = [p for p in PEER_ORDER if p in seen] + sorted(seen - set(PEER_ORDER))
        lines = ["| | " + " | ".join(peers) + " |", "|---|" + "---:|" * len(peers)]
        for key, metric, label, fmt in rows:
            if key not in workloads:
                continue
            entry = workloads[key]["peers"]
            cells = [
                fmt.format(entry[p]["metrics"][metric])
                if p in entry and metric in entry[p]["metrics"]
                else "–"
                for p in peers
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        layout = workloads.get("W4", {}).get("peers", {}).get("reference", {})
        if "U_layout" in layout.get("metrics", {}):
            lines += [
                "",
                f"GLib 2.74's layout limit for W4's live set: U = "
                f"{layout['metrics']['U_layout']:.3f}.",
            ]
        return lines
    if what == "targets":
        lines = ["| Target | Bound | Measured | Margin | Met? |", "|---|---:|---:|---:|---|"]
        for target in doc["targets"]:
            bound = ("≥ " if target["higher_is_better"] else "≤ ") + f"{target['bound']:g}"
            met = "yes" if target["met"] else "**no**"
            lines.append(
                f"| {target['name']} | {bound} | {target['measured']:.3f} | "
                f"{target['margin']:+.3f} | {met} |"
            )
        count = sum(1 for t in doc["targets"] if t["met"])
        lines += ["", f"{count} of {len(doc['targets'])} targets met in this run."]
        return lines
    raise ValueError(f"unknown part {what!r}; one of meta, time, space, targets, plots")


class _MarkdownDirective(SphinxDirective):
    def _parse(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.container(classes=["memslice-results"])
        self.state.nested_parse(StringList(lines, source=self.env.docname), 0, container)
        pages: set[str] = getattr(self.env, "memslice_figure_pages", set())
        pages.add(self.env.docname)  # re-read every build: the data files may change
        self.env.memslice_figure_pages = pages  # type: ignore[attr-defined]
        return [container]


class BenchDirective(_MarkdownDirective):
    """``{memslice-bench} PART``: meta, time, space, targets or plots of the last run."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {}

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir).parent
        results = root / "benchmarks" / "results" / "results.json"
        self.env.note_dependency(str(results))
        doc = json.loads(results.read_text(encoding="utf-8"))
        part = self.arguments[0]
        if part != "plots":
            try:
                return self._parse(bench_tables(doc, part))
            except ValueError as exc:
                raise self.error(str(exc)) from exc
        from memslice_bench.plots import draw_all

        out = Path(self.env.srcdir) / "_generated" / "bench"
        lines: list[str] = []
        for path in draw_all(doc, out, "svg"):
            lines += [
                f"```{{figure}} /_generated/bench/{path.name}",
                f":alt: benchmark plot {path.stem}",
                ":class: memslice-figure",
                "",
                f"`{path.name}`, drawn at build time by `memslice_bench.plots`"
                " from `results.json`.",
                "```",
                "",
            ]
        return self._parse(lines)


class ConformanceDirective(_MarkdownDirective):
    """``{memslice-conformance} summary|matrix``: the committed reports, drawn."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {}

    def run(self) -> list[nodes.Node]:
        docs = Path(self.env.srcdir)
        reports = load_reports(docs)
        if not reports:
            raise self.error("no report in docs/_data/conformance: run docs/_data/regenerate.py")
        current = spec_digest(docs.parent / "spec")
        part = self.arguments[0]
        if part == "summary":
            lines = [
                "| Column | Implementation | Conforming | Profiles claimed | Checks passed | "
                "Clauses ✓ / ✗ / ○ / – | Seconds | Spec |",
                "|---|---|---|---|---:|---|---:|---|",
            ]
            stale: list[str] = []
            for r in reports:
                d = r.data
                checks = d.get("checks", [])
                passed = sum(1 for c in checks if c.get("status") == "pass")
                counts = [
                    sum(1 for s in r.statuses.values() if s == k)
                    for k in ("pass", "fail", "not-checked", "not-claimed")
                ]
                spec = str(d.get("versions", {}).get("spec", "?"))
                if not spec.startswith(current):
                    stale.append(f"`{r.short}`: `{spec}`")
                # Long program paths only widen the table: keep each word's last part.
                shown = " ".join(w.rsplit("/", 1)[-1] for w in r.impl.split())
                lines.append(
                    f"| `{r.short}` | `{shown}` | "
                    f"{'yes' if d.get('conforming') else '**no**'} | "
                    f"{', '.join(d.get('claimed_profiles', []))} | {passed}/{len(checks)} | "
                    f"{' / '.join(map(str, counts))} | {d.get('seconds', 0):.1f} | "
                    f"{'**stale**' if not spec.startswith(current) else 'current'} |"
                )
            lines += [
                "",
                "Clauses: ✓ pass, ✗ fail, ○ claimed but not checked, – not claimed. "
                f"Current spec text: `{current}`"
                + (f"; stale reports were run against {', '.join(stale)}." if stale else "."),
            ]
            failures = [
                (r, c) for r in reports for c in r.data.get("checks", []) if c.get("failure")
            ]
            if failures:
                lines += ["", "Failed checks, as the reports give them:", ""]
            for r, check in failures:
                failure = check["failure"]
                message = str(failure.get("message", "")).replace("|", "/")
                lines.append(
                    f"- `{r.short}`, check `{check['name']}` ({failure.get('kind', '?')}, "
                    f"clauses {', '.join(failure.get('clauses', []))}): {message}"
                )
            return self._parse(lines)
        if part == "matrix":
            ids_file = docs / "_generated" / "clause-ids.txt"
            levels = getattr(self.env, "memslice_clause_levels", {})
            clauses = [(c, levels.get(c, "")) for c in ids_file.read_text().split() if c]
            folder = docs / "_generated" / "figures"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "conformance-matrix.svg").write_text(
                matrix_svg(reports, clauses), encoding="utf-8"
            )
            return self._parse(
                [
                    "```{figure} /_generated/figures/conformance-matrix.svg",
                    ":alt: conformance matrix: clause by implementation",
                    ":class: memslice-figure",
                    "",
                    "Every spec clause (rows, in three bands) against each implementation "
                    "(columns), from the committed reports. Hover a cell for its status.",
                    "```",
                ]
            )
        raise self.error(f"unknown part {part!r}; one of summary, matrix")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the two directives."""
    app.add_directive("memslice-bench", BenchDirective)
    app.add_directive("memslice-conformance", ConformanceDirective)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
