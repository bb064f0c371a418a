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


def cell_detail(report: ConformanceReport, clause: str) -> str:
    """A matrix cell's hover text: clause, implementation, status, and what decided it."""
    status = report.statuses.get(clause, "absent")
    words = STATUS.get(status, ("", "", status))[2]
    entries = [e for e in report.data.get("clauses", []) if e["id"] == clause]
    checks = sorted({c for e in entries for c in e.get("checks", [])})
    failures = [
        str(c["failure"].get("message", ""))
        for c in report.data.get("checks", [])
        if c.get("failure") and clause in c["failure"].get("clauses", [])
    ]
    detail = f"{clause} on {report.impl}: {status} ({words})"
    if entries and entries[0].get("title"):
        detail += f". {entries[0]['title']}"
    if checks:
        detail += f". Checks: {', '.join(checks)}"
    if failures:
        detail += f". Failure: {failures[0][:300]}"
    return detail


def matrix_html(
    reports: list[ConformanceReport],
    clauses: list[tuple[str, str]],
    href: dict[str, str],
    bands: int = 3,
) -> str:
    """Clause (rows, in ``bands`` side-by-side tables) x implementation (columns).

    Each cell is a link to the clause's anchor (``href[clause]``), coloured by
    status, with ``data-clause``/``data-impl``/``data-status`` attributes and
    the detail in its ``title`` (shown on hover).
    """
    per_band = -(-len(clauses) // bands)
    head = "".join(
        f'<th scope="col" title="{escape(r.impl)}">{escape(r.short)}</th>' for r in reports
    )
    out = ['<div class="memslice-matrix-bands">']
    for band in range(bands):
        rows = clauses[band * per_band : (band + 1) * per_band]
        if not rows:
            continue
        out.append(
            '<table class="memslice-matrix"><thead><tr><th></th>' + head + "</tr></thead><tbody>"
        )
        for clause, level in rows:
            link = escape(href.get(clause, "#"))
            must = ' class="must"' if level == "MUST" else ""
            cells = []
            for report in reports:
                status = report.statuses.get(clause, "absent")
                symbol, _, _ = STATUS.get(status, ("?", "", status))
                kind = status if status in STATUS else "unknown"
                cells.append(
                    f'<td class="memslice-status-{kind}"><a href="{link}" '
                    f'data-clause="{clause}" data-impl="{escape(report.impl)}" '
                    f'data-status="{escape(status)}" '
                    f'title="{escape(cell_detail(report, clause))}">{escape(symbol)}</a></td>'
                )
            out.append(
                f'<tr><th scope="row"{must}><a class="clause" href="{link}">{clause}</a></th>'
                + "".join(cells)
                + "</tr>"
            )
        out.append("</tbody></table>")
    out.append("</div>")
    legend = " ".join(
        f'<span class="memslice-status memslice-status-{status}"></span>{escape(words)}; '
        for status, (_, _, words) in STATUS.items()
    )
    out.append(f'<p class="memslice-matrix-legend">{legend}bold clause IDs are MUST clauses.</p>')
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


class _Figures:
    """Read numbers from a results document, by workload, peer and metric."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.workloads: dict[str, Any] = doc["workloads"]
        self.targets: list[dict[str, Any]] = doc.get("targets", [])

    def has(self, workload: str, *peers: str) -> bool:
        entry = self.workloads.get(workload)
        return entry is not None and all(p in entry["peers"] for p in peers)

    def ns(self, workload: str, peer: str) -> float:
        """Median nanoseconds per operation."""
        return float(self.workloads[workload]["peers"][peer]["ns_per_op"]["median"])

    def ratio(self, workload: str, peer: str) -> float:
        """The peer's time over the reference's, median of the per-round ratios."""
        return float(self.workloads[workload]["time_ratio_to_reference"][peer])

    def metric(self, workload: str, peer: str, name: str) -> float:
        return float(self.workloads[workload]["peers"][peer]["metrics"][name])

    def param(self, workload: str, name: str) -> str:
        """A workload parameter, written with thousands separators."""
        value = self.workloads[workload]["params"][name]
        return f"{value:,}".replace(",", " ") if isinstance(value, int) else str(value)


def _ns(value: float) -> str:
    return f"{_number(value)} ns"


def _times(value: float) -> str:
    """``2.1 times`` / ``1.3 times``: how many times bigger one figure is."""
    return f"{value:.1f} times"


def _speed(ratio: float) -> str:
    """Words for a time ratio to the reference (peer time / reference time)."""
    if ratio < 0.95:
        return f"{_times(1 / ratio)} as fast as the reference"
    if ratio > 1.05:
        return f"{_times(ratio)} slower than the reference"
    return "about as fast as the reference"


def bench_story(doc: dict[str, Any]) -> list[str]:
    """The benchmark page's findings, in words, with every number read from ``doc``.

    Each paragraph is written only when the run holds the peers it needs, and
    the words that compare (faster, slower, more, less) are chosen from the
    numbers, so a new run cannot leave the prose saying the opposite of the table.
    """
    f = _Figures(doc)
    out: list[str] = []
    if f.has("W1", "reference", "glib", "bare-ctypes", "python-pair"):
        ref, glib = f.ns("W1", "reference"), f.ns("W1", "glib")
        crossing, floor = f.ns("W1", "bare-ctypes"), f.ns("W1", "python-pair")
        inside = glib - crossing
        out += [
            "### One allocation, one free (W1)",
            "",
            f"The simplest program frees each block right after allocating it. The "
            f"reference needs {_ns(ref)} per operation (one `alloc` or one `free`). "
            f"GLib's own allocator, written in C and called from Python, needs {_ns(glib)}; "
            f"but calling *any* C function from Python through `ctypes` costs "
            f"{_ns(crossing)} (the `bare-ctypes` peer calls C functions that do nothing), "
            + (
                f"so GLib's C code itself does its work in about {_ns(inside)}. "
                if inside > 0
                else "which is all of GLib's time within the noise of this machine. "
            )
            + f"Two Python method calls that do nothing take {_ns(floor)}: no Python "
            f"allocator can go below that.",
            "",
            "What this says: the reference is a Python program written to be read, and "
            "its nanoseconds are Python's, not the design's. To compare *designs*, compare "
            "allocators written in the same language (next paragraph), and compare memory "
            "(further down), which does not depend on the language at all.",
            "",
        ]
    python_peers = [p for p in ("naive", "gmemchunk-2.8") if f.has("W1", "reference", p)]
    if python_peers:
        words = {
            "naive": "the `naive` allocator (one lock and one free list per size, "
            "memory never given back)",
            "gmemchunk-2.8": "a model of GLib 2.8's `GMemChunk` (the allocator slices replaced)",
        }
        sentences = [f"{words[p]} is {_speed(f.ratio('W1', p))}" for p in python_peers]
        out += [
            "### Against allocators written in Python too",
            "",
            "Two peers are written in Python like the reference, so they pay the same "
            "interpreter costs. On the one-block loop (W1), "
            + "; ".join(sentences)
            + ". The same ratios for every workload are in brackets in the table below.",
            "",
        ]
    if f.has("W4", "reference", "glib", "malloc"):
        u = {
            p: f.metric("W4", p, "U")
            for p in ("reference", "glib", "malloc", "naive", "gmemchunk-2.8")
            if f.has("W4", p)
        }
        layout = f.metric("W4", "reference", "U_layout")
        best = max(u, key=lambda p: u[p])
        ranked = ", ".join(f"`{p}` {u[p]:.2f}" for p in sorted(u, key=lambda p: -u[p]))
        out += [
            "### Memory: how much of it holds your data (W4)",
            "",
            f"GLib's own stress test keeps {f.param('W4', 'blocks')} blocks alive while "
            "replacing half of them "
            "over and over. At the busiest moment we ask: of all the bytes the allocator "
            "has taken from the system, what fraction holds data the program asked for? "
            "That fraction is *U*, for utilisation; 1.00 would mean no byte wasted. "
            f"Ranked: {ranked}. The best possible for GLib 2.74's slab layout, if every "
            f"slab were packed full, is {layout:.2f}.",
            "",
            f"`{best}` wastes the least here. "
            + (
                "The slab allocators lose memory in three places that `malloc` does not "
                "have: chunks rounded up to 16 bytes, slabs left part-empty when blocks "
                "die at random, and freed magazines kept in the depot for 15 seconds in "
                "case they are wanted again (the *working set*)."
                if best == "malloc"
                else "Its slabs and depot cost less than the other peers' headers and "
                "free lists on this workload."
            ),
            "",
        ]
        if "gmemchunk-2.8" in u:
            more = u["reference"] / u["gmemchunk-2.8"]
            out += [
                f"Against the allocator slices replaced, the reference's U is "
                f"{_times(more)} that of the `GMemChunk` model"
                + (": that waste is the main reason GMemChunk was dropped." if more > 1 else "."),
                "",
            ]
    if f.has("W6", "reference"):
        returned = {
            p: f.metric("W6", p, "returned_fraction")
            for p in ("reference", "glib", "malloc", "naive", "gmemchunk-2.8")
            if f.has("W6", p)
        }
        listed = ", ".join(f"`{p}` {v:.0%}" for p, v in returned.items())
        out += [
            "### Giving memory back (W6)",
            "",
            f"A worker allocates and frees {f.param('W6', 'blocks')} blocks; then the "
            "working set expires and "
            "each size class sees one more free. How much of the freed memory went back to "
            f"the system? {listed}. The reference gives back a slab as soon as its last "
            "chunk comes home, and the depot hands back old magazines on the next push "
            "after the working set. GLib's figure is taken before its real 15-second clock "
            "has run out, so it still holds what it would give back later.",
            "",
        ]
    if f.has("W7", "reference", "reference-nocolour"):
        sets_on = f.metric("W7", "reference", "distinct_l1_sets")
        sets_off = f.metric("W7", "reference-nocolour", "distinct_l1_sets")
        slower = f.ratio("W7", "reference-nocolour")
        out += [
            "### Cache colouring (W7)",
            "",
            f"C code reads the first word of {f.param('W7', 'objects')} objects of "
            f"{f.param('W7', 'size')} bytes, over and over. "
            f"Without colouring those first words fall into {sets_off:.0f} of the L1 "
            f"cache's sets and keep evicting each other; with colouring they spread over "
            f"{sets_on:.0f}. The uncoloured run took {_times(slower)} as long per read.",
            "",
        ]
    if f.has("W5", "reference", "glib", "naive"):
        ops = {p: f.metric("W5", p, "ops_per_s") for p in ("reference", "naive", "glib")}
        out += [
            "### Threads (W5)",
            "",
            "Two threads allocate and two others free what they allocated. Per second: "
            f"reference {ops['reference'] / 1e6:.1f} million operations, `naive` "
            f"{ops['naive'] / 1e6:.1f} million, GLib {ops['glib'] / 1e6:.1f} million. "
            "Python runs one thread at a time (the GIL), so the Python peers cannot show "
            "what magazines buy in C, where threads truly run at once; GLib, whose C code "
            "runs without the GIL, can.",
            "",
        ]
    return out


def miss_reasons(doc: dict[str, Any]) -> list[str]:
    """One bullet per target this run missed, saying why in words, numbers from ``doc``."""
    f = _Figures(doc)
    reasons: dict[str, str] = {}
    if f.has("W1", "reference", "glib", "bare-ctypes", "python-pair"):
        reasons["W1 reference / glib"] = (
            f"The target asks for half of GLib's time, which Python code can hardly reach: "
            f"GLib's "
            f"{_ns(f.ns('W1', 'glib'))} per operation include {_ns(f.ns('W1', 'bare-ctypes'))} "
            f"of crossing from Python into C, and the reference's "
            f"{_ns(f.ns('W1', 'reference'))} are spent on Python bytecode: looking up the "
            "thread's magazines, writing the two link words into each freed chunk "
            "({clause}`MAG-002`), checking arguments."
        )
        reasons["W1 reference / two Python"] = (
            f"Two empty Python method calls take {_ns(f.ns('W1', 'python-pair'))}; three "
            "times that is less than any allocator that does real work can spend."
        )
    if f.has("W4", "reference"):
        layout = f.metric("W4", "reference", "U_layout")
        reasons["W4 U / GLib 2.74 layout limit"] = (
            f"The limit ({layout:.2f}) assumes every live block sits in a full slab. When "
            "half the blocks die at random, slabs stay part-empty, and moving blocks to "
            "fill them is impossible: the program holds their addresses."
        )
        reasons["W4 U (working set 0)"] = reasons["W4 U / GLib 2.74 layout limit"]
        reasons["W4 peak mapped"] = (
            "At the peak the depot still holds freed magazines, kept for the 15-second "
            "working set; the rest is the part-empty slabs above."
        )
    if f.has("W5", "reference"):
        reasons["W5 throughput reference / naive"] = (
            "Under the GIL the threads take turns, so this counts Python work per "
            "operation: the reference moves whole magazines through the depot, stamps "
            "and trims them, where `naive` takes one lock and pushes onto one list."
        )
    lines: list[str] = []
    for target in doc.get("targets", []):
        if target["met"]:
            continue
        why = next((w for k, w in reasons.items() if target["name"].startswith(k)), None)
        lines.append(
            f"- **{target['name']}** (measured {target['measured']:.2f}, bound "
            f"{target['bound']:g}): " + (why or "not explained here; see `benchmarks/README.md`.")
        )
    return lines or ["Every target was met in this run."]


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
    if what == "story":
        return bench_story(doc)
    if what == "misses":
        return miss_reasons(doc)
    raise ValueError(
        f"unknown part {what!r}; one of meta, story, time, space, targets, misses, plots"
    )


def plot_caption(stem: str, doc: dict[str, Any]) -> str:
    """What a plot of ``memslice_bench.plots`` compares, in words."""
    rounds = doc["meta"]["rounds"]
    if stem.startswith("time-"):
        key = stem[5:]
        title = doc["workloads"].get(key, {}).get("title", key)
        return (
            f"{key} ({title}): time per operation of each peer, the median of {rounds} "
            "rounds (bar) and the spread of the middle half of the rounds (whiskers). "
            "The axis is logarithmic: each step to the right is ten times slower."
        )
    words = {
        "utilisation": "U, the share of mapped memory holding live data, at the busiest "
        "moment of W4 and on average over W8's recorded programs, for each peer, beside "
        "GLib 2.74's layout limit (higher is better).",
        "breakdown-W4": "Where the memory of each Python peer is at W4's busiest moment, "
        "in MiB: the live data first, then each kind of overhead the peer accounts for.",
        "release-W6": "The share of freed memory each peer gave back to the system after "
        "W6's working set expired (higher is better).",
    }
    return words.get(stem, f"`{stem}`") + " Drawn at build time from `results.json`."


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
                plot_caption(path.stem, doc),
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
            stale: dict[str, list[str]] = {}
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
                    stale.setdefault(spec, []).append(f"`{r.short}`")
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
                + (
                    "; stale reports ("
                    + "; ".join(f"{', '.join(who)} against `{spec}`" for spec, who in stale.items())
                    + ") were run against an older spec text: regenerate them with "
                    "`python docs/_data/regenerate.py`."
                    if stale
                    else "."
                ),
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
            chapters: dict[str, str] = getattr(self.env, "memslice_clause_files", {})
            clauses = [(c, levels.get(c, "")) for c in ids_file.read_text().split() if c]
            builder = self.env.app.builder
            href = {
                clause: builder.get_relative_uri(self.env.docname, f"reference/spec/{stem}")
                + "#"
                + clause.lower()
                for clause, stem in chapters.items()
            }
            html = matrix_html(reports, clauses, href)
            intro = self._parse(
                [
                    "Every spec clause (rows, in three columns of tables) against each "
                    "implementation (columns), from the committed reports. Each cell links "
                    "to its clause; hover over it (or focus it with the keyboard) to read "
                    "the status, the checks that cite the clause and any failure.",
                ]
            )
            return [*intro, nodes.raw("", html, format="html")]
        raise self.error(f"unknown part {part!r}; one of summary, matrix")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the two directives."""
    app.add_directive("memslice-bench", BenchDirective)
    app.add_directive("memslice-conformance", ConformanceDirective)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
