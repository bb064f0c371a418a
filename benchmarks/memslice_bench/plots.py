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

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["draw_all"]


def _workloads(doc: Mapping[str, object]) -> Mapping[str, Mapping[str, object]]:
    workloads = doc.get("workloads", {})
    assert isinstance(workloads, Mapping)
    return workloads


def _peers(entry: Mapping[str, object]) -> Mapping[str, Mapping[str, Mapping[str, float]]]:
    peers = entry["peers"]
    assert isinstance(peers, Mapping)
    return peers


def _time_figure(key: str, entry: Mapping[str, object], out: Path) -> Path:
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
    path = out / f"time-{key}.svg"
    fig.savefig(path)
    plt.close(fig)
    return path


def _utilisation_figure(workloads: Mapping[str, Mapping[str, object]], out: Path) -> Path | None:
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
    path = out / "utilisation.svg"
    fig.savefig(path)
    plt.close(fig)
    return path


def _breakdown_figure(workloads: Mapping[str, Mapping[str, object]], out: Path) -> Path | None:
    if "W4" not in workloads:
        return None
    peers = _peers(workloads["W4"])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    drawn = False
    for row, name in enumerate(peers):
        metrics = peers[name]["metrics"]
        if "mapped_at_peak" not in metrics or not name.startswith(("reference", "naive", "gmem")):
            continue
        live = metrics["mapped_at_peak"] * metrics["U"]
        parts = [("live", live)] + [
            (k.removeprefix("waste."), v)
            for k, v in metrics.items()
            if k.startswith("waste.") and k != "waste.areas" and k != "waste.tree_comparisons"
        ]
        left = 0.0
        for label, value in parts:
            ax.barh(name, value, left=left, label=label if row == 0 else None)
            left += value
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("bytes at W4's peak live")
    ax.set_title("W4: where the bytes are")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    path = out / "breakdown-W4.svg"
    fig.savefig(path)
    plt.close(fig)
    return path


def _release_figure(workloads: Mapping[str, Mapping[str, object]], out: Path) -> Path | None:
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
    path = out / "release-W6.svg"
    fig.savefig(path)
    plt.close(fig)
    return path


def draw_all(doc: Mapping[str, object], out: Path) -> list[Path]:
    """Every figure the document has data for; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    workloads = _workloads(doc)
    paths = [_time_figure(key, entry, out) for key, entry in workloads.items()]
    for maker in (_utilisation_figure, _breakdown_figure, _release_figure):
        path = maker(workloads, out)
        if path is not None:
            paths.append(path)
    return paths
