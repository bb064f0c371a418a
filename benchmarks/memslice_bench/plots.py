"""Matplotlib SVG figures from a results document (for the docs).

Rules and theory of operation
-----------------------------
One figure per question, each drawn only from the JSON the harness wrote::

    time-<W>.svg        median ns per operation per peer (log scale), IQR whiskers
    utilisation.svg     U at peak per peer on W4 and W8, with GLib 2.74's layout limit
    breakdown-W4.svg    where the reference's mapped bytes are at W4's peak (stacked)
    release-W6.svg      fraction of freed memory returned to the OS per peer

Figures use the non-interactive Agg backend and fixed sizes; files are SVG so
the docs stay sharp and diffable.  Nothing here measures anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["draw_all"]


def _save(fig: Figure, out: Path, stem: str, fmt: str) -> Path:
    path = out / f"{stem}.{fmt}"
    fig.savefig(path)
    plt.close(fig)
    return path


def _workloads(doc: Mapping[str, object]) -> Mapping[str, Mapping[str, object]]:
    workloads = doc.get("workloads", {})
    assert isinstance(workloads, Mapping)
    return workloads


def _peers(entry: Mapping[str, object]) -> Mapping[str, Mapping[str, Mapping[str, float]]]:
    peers = entry["peers"]
    assert isinstance(peers, Mapping)
    return peers


def _time_figure(key: str, entry: Mapping[str, object], out: Path, fmt: str) -> Path:
    peers = _peers(entry)
    names = list(peers)
    medians = [peers[n]["ns_per_op"]["median"] for n in names]
    low = [max(0.0, m - peers[n]["ns_per_op"]["q1"]) for n, m in zip(names, medians, strict=True)]
    high = [peers[n]["ns_per_op"]["q3"] - m for n, m in zip(names, medians, strict=True)]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    colours = ["tab:blue" if n.startswith("reference") else "tab:gray" for n in names]
    ax.barh(names, medians, xerr=[low, high], color=colours)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("ns per operation (median over rounds, log scale)")
    ax.set_title(f"{key}: {entry['title']}")
    fig.tight_layout()
    return _save(fig, out, f"time-{key}", fmt)


def _utilisation_figure(
    workloads: Mapping[str, Mapping[str, object]], out: Path, fmt: str
) -> Path | None:
    rows: list[tuple[str, str, float]] = []
    for key, metric in (("W4", "U"), ("W8", "U_mean")):
        if key not in workloads:
            continue
        for name, result in _peers(workloads[key]).items():
            value = result["metrics"].get(metric)
            if value is not None:
                rows.append((key, name, value))
        layout = _peers(workloads[key]).get("reference", {}).get("metrics", {}).get("U_layout")
        if layout is not None:
            rows.append((key, "GLib 2.74 layout limit", layout))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels = [f"{k} {n}" for k, n, _ in rows]
    ax.barh(labels, [min(v, 1.0) for _, _, v in rows], color="tab:green")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("U = live requested bytes / bytes mapped, at peak live")
    ax.set_title("Space utilisation")
    fig.tight_layout()
    return _save(fig, out, "utilisation", fmt)


def _breakdown_figure(
    workloads: Mapping[str, Mapping[str, object]], out: Path, fmt: str
) -> Path | None:
    if "W4" not in workloads:
        return None
    peers = _peers(workloads["W4"])
    rows: dict[str, dict[str, float]] = {}
    for name, result in peers.items():
        metrics = result["metrics"]
        if "mapped_at_peak" not in metrics or not name.startswith(("reference", "naive", "gmem")):
            continue
        parts = {"live": metrics["mapped_at_peak"] * metrics["U"]}
        for key, value in metrics.items():
            label = key.removeprefix("waste.")
            if key.startswith("waste.") and label not in ("areas", "tree_comparisons") and value:
                parts[label] = value
        rows[name] = parts
    if not rows:
        return None
    categories = list(dict.fromkeys(k for parts in rows.values() for k in parts))
    colours = plt.get_cmap("tab20")
    names = list(rows)
    fig, ax = plt.subplots(figsize=(8, 3.4))
    left = [0.0] * len(names)
    for i, category in enumerate(categories):
        widths = [rows[n].get(category, 0.0) / 2**20 for n in names]
        ax.barh(names, widths, left=left, label=category, color=colours(i))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("MiB at W4's peak live (live first, then where the rest is)")
    ax.set_title("W4: where the bytes are")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _save(fig, out, "breakdown-W4", fmt)


def _release_figure(
    workloads: Mapping[str, Mapping[str, object]], out: Path, fmt: str
) -> Path | None:
    if "W6" not in workloads:
        return None
    peers = _peers(workloads["W6"])
    names = [n for n in peers if "returned_fraction" in peers[n]["metrics"]]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh(names, [min(1.0, max(0.0, peers[n]["metrics"]["returned_fraction"])) for n in names])
    ax.axvline(0.95, color="tab:red", linestyle="--", label="target 95%")
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    ax.set_xlabel("fraction of freed memory returned to the OS")
    ax.set_title("W6: release after the working set expires")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, out, "release-W6", fmt)


def draw_all(doc: Mapping[str, object], out: Path, fmt: str = "svg") -> list[Path]:
    """Every figure the document has data for; returns the files written.

    ``fmt`` is any format matplotlib writes (``svg`` for the docs, ``png`` to look).
    """
    out.mkdir(parents=True, exist_ok=True)
    workloads = _workloads(doc)
    paths = [_time_figure(key, entry, out, fmt) for key, entry in workloads.items()]
    for maker in (_utilisation_figure, _breakdown_figure, _release_figure):
        path = maker(workloads, out, fmt)
        if path is not None:
            paths.append(path)
    return paths
