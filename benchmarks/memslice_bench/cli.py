"""``memslice-bench``: run workloads on peers, write JSON, draw SVG plots, print targets.

Rules and theory of operation
-----------------------------
::

    memslice-bench [--workloads W1,W4] [--peers reference,glib] [--rounds N]
                   [--quick] [--out results.json] [--plots DIR] [--list]
                   [--glib-threads ROUNDS] [--gmemchunk-tables]
                   [--speed | --speed-only] [--baseline results.json] [--tolerance 0.25]

``--quick`` runs every workload at tiny sizes with one round: a smoke test
that exercises every code path in seconds (the test suite uses it).  The
default is the full parameters with 5 rounds.  The JSON document is the one
:func:`memslice_bench.harness.run` returns; the table printed at the end is
the issue 6 targets with measured figure, bound and margin.

``--speed`` adds the issue 14 figures (:mod:`memslice_bench.speed`: thread
CPU-time ratios of the reference against GLib and floors, memory per block,
start-up), each with min, median, max and spread over the rounds;
``--speed-only`` measures just those and, when ``--out`` names an existing
document, replaces only its ``speed`` section.  ``--baseline`` is the
regression guard: it reads the speed figures of a committed document before
anything is written, and a figure whose median is more than ``--tolerance``
(25 %) worse fails the run (exit 1); the new document then goes to
``<out>.rejected.json`` and the baseline stays as it was.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import harness
from .peers import PEER_NAMES
from .workloads import WORKLOADS

__all__ = ["main"]


def _csv(value: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})"
        )
    return items


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memslice-bench", description="Benchmark memslice against its peers (issue 6)."
    )
    parser.add_argument(
        "--workloads",
        type=lambda v: _csv(v, list(WORKLOADS), "workload"),
        default=list(WORKLOADS),
        help="comma-separated subset of W1..W8 (default: all)",
    )
    parser.add_argument(
        "--peers",
        type=lambda v: _csv(v, PEER_NAMES, "peer"),
        default=list(PEER_NAMES),
        help=f"comma-separated subset of {','.join(PEER_NAMES)} (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick: 1)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke run")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON document here")
    parser.add_argument(
        "--plots", type=Path, default=None, help="draw SVG figures into this folder"
    )
    parser.add_argument("--list", action="store_true", help="list workloads and peers, then exit")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--gmemchunk-tables",
        action="store_true",
        help="also rerun the GMemChunk facts' tables 2 and 3 on the 2.8 model and the reference",
    )
    parser.add_argument(
        "--glib-threads",
        type=int,
        default=None,
        metavar="ROUNDS",
        help="also reproduce GSlice 2.74's two-thread slowdown in C (hammer rounds, e.g. 2000)",
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        "--speed", action="store_true", help="also measure the issue 14 speed figures"
    )
    speed.add_argument(
        "--speed-only",
        action="store_true",
        help="measure only the issue 14 speed figures (merged into an existing --out)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="fail if a speed figure is more than --tolerance worse than in this document",
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.25, help="regression tolerance (default 0.25)"
    )
    return parser


def _speed_table(figures: dict[str, object]) -> Table:
    table = Table(title="issue 14 speed figures (thread CPU-time ratios, same run)")
    for column in ("figure", "min", "median", "max", "spread", "wall median", "goal", "met"):
        table.add_column(column)
    for name, figure in figures.items():
        assert isinstance(figure, dict)
        wall = figure.get("wall_median")
        table.add_row(
            name,
            f"{figure['min']:.3f}",
            f"{figure['median']:.3f}",
            f"{figure['max']:.3f}",
            f"{figure['spread']:.3f}",
            "-" if wall is None else f"{wall:.3f}",
            f"<= {figure['goal']}",
            "yes" if figure["met"] else "NO",
        )
    return table


def _read_baseline(path: Path) -> dict[str, object]:
    """The ``speed`` section of a committed document (empty if it has none)."""
    document = json.loads(path.read_text())
    speed = document.get("speed", {}) if isinstance(document, dict) else {}
    return speed if isinstance(speed, dict) else {}


def _summary_table(doc: dict[str, object]) -> Table:
    table = Table(title="median ns/op (time ratio to the reference)")
    workloads = doc["workloads"]
    assert isinstance(workloads, dict)
    peers: list[str] = []
    for entry in workloads.values():
        peers += [p for p in entry["peers"] if p not in peers]
    table.add_column("workload")
    for peer in peers:
        table.add_column(peer, justify="right")
    for key, entry in workloads.items():
        cells = []
        for peer in peers:
            result = entry["peers"].get(peer)
            ratio = entry["time_ratio_to_reference"].get(peer)
            if result is None:
                cells.append("-")
            else:
                median = result["ns_per_op"]["median"]
                cells.append(f"{median:,.0f}" + (f" ({ratio:.2f})" if ratio is not None else ""))
        table.add_row(key, *cells)
    return table


def _targets_table(doc: dict[str, object]) -> Table:
    table = Table(title="issue 6 targets for the reference")
    for column in ("target", "measured", "bound", "met", "margin"):
        table.add_column(column)
    targets = doc["targets"]
    assert isinstance(targets, list)
    for t in targets:
        table.add_row(
            t["name"],
            f"{t['measured']:.3f}",
            f"{'>=' if t['higher_is_better'] else '<='} {t['bound']}",
            "yes" if t["met"] else "NO",
            f"{t['margin']:+.1%}",
        )
    return table


def _dict_table(title: str, rows: object) -> Table:
    table = Table(title=title)
    assert isinstance(rows, list) and rows
    for column in rows[0]:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(
            *(
                f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
                for v in row.values()
            )
        )
    return table


def _threads_table(doc: dict[str, object]) -> Table:
    table = Table(title="GSlice 2.74 in C: GLib's hammer with 1 and 2 threads (each does it all)")
    for column in ("G_SLICE", "threads", "seconds", "voluntary switches", "max contention cc"):
        table.add_column(column)
    runs = doc["glib_threads"]
    assert isinstance(runs, list)
    for r in runs:
        table.add_row(
            r["mode"],
            str(r["threads"]),
            f"{r['seconds']:.3f}",
            str(r["voluntary_switches"]),
            str(r["max_contention_counter"]),
        )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True)
    if args.list:
        for key, workload in WORKLOADS.items():
            print(f"{key}  {workload.title}")
        print("peers:", ", ".join(PEER_NAMES))
        return 0
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    if rounds < 1:
        console.print("--rounds must be at least 1")
        return 2
    baseline: dict[str, object] | None = None
    if args.baseline is not None:
        try:
            baseline = _read_baseline(args.baseline)
        except (OSError, ValueError) as error:
            console.print(f"cannot read the baseline {args.baseline}: {error}")
            return 2
    progress = None if args.quiet else (lambda line: console.print(f"[dim]{line}[/dim]"))
    if args.speed_only:
        doc: dict[str, object] = {}
        if args.out is not None and args.out.exists():
            doc = json.loads(args.out.read_text())
    else:
        doc = harness.run(
            args.workloads, args.peers, rounds=rounds, quick=args.quick, progress=progress
        )
    if args.speed or args.speed_only:
        from .speed import measure_all

        if progress is not None:
            progress("issue 14 speed figures")
        doc["speed"] = measure_all(rounds=max(rounds, 3), quick=args.quick)
    if args.glib_threads:
        from dataclasses import asdict

        from .threads_native import reproduce

        doc["glib_threads"] = [asdict(r) for r in reproduce(rounds=args.glib_threads)]
    if args.gmemchunk_tables:
        from dataclasses import asdict

        from .memchunk_tables import lookup_table, phase_table

        quick = args.quick
        doc["gmemchunk_lookup"] = [
            asdict(r)
            for r in lookup_table(
                (100, 1_000) if quick else (100, 1_000, 10_000, 100_000),
                pairs=500 if quick else 20_000,
            )
        ]
        doc["gmemchunk_phases"] = [
            asdict(r) for r in (phase_table(500, 2, 20) if quick else phase_table())
        ]
    regressions: list[str] = []
    if baseline is not None:
        from .speed import compare

        speed = doc.get("speed")
        if not isinstance(speed, dict):
            console.print("--baseline needs --speed or --speed-only")
            return 2
        regressions = compare(speed, baseline, args.tolerance)
    out_path = args.out
    if out_path is not None and regressions:
        out_path = out_path.with_suffix(".rejected.json")  # keep the baseline as it was
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    if args.plots is not None and not args.speed_only:
        from .plots import draw_all

        for path in draw_all(doc, args.plots):
            console.print(f"wrote {path}")
    out = Console(file=sys.stdout, width=200)
    if not args.speed_only:
        out.print(_summary_table(doc))
        out.print(_targets_table(doc))
    if "speed" in doc and isinstance(doc["speed"], dict):
        out.print(_speed_table(doc["speed"]))
    if "glib_threads" in doc:
        out.print(_threads_table(doc))
    if "gmemchunk_lookup" in doc:
        out.print(
            _dict_table(
                "GMemChunk facts table 3 (tree lookup), model vs reference", doc["gmemchunk_lookup"]
            )
        )
        out.print(
            _dict_table("GMemChunk facts table 2 (bytes held by phase)", doc["gmemchunk_phases"])
        )
    for line in regressions:
        console.print(f"[bold red]regression[/bold red] {line}")
    if regressions:
        console.print(f"the document went to {out_path}; the baseline is unchanged")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
