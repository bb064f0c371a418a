"""The harness: rounds, rotation, medians and ratios within one run; targets; JSON.

Rules and theory of operation
-----------------------------
Timing on a shared 2-core machine is noisy, so no figure is quoted alone::

    for workload W:
        peers(W) = chosen peers W applies to (+ the extra peers W names)
        for r in 0..rounds-1:                       rotate the order by r
            for peer in rotate(peers(W), r):  fresh peer, W(peer, params), close
        per peer:  pytest-benchmark Stats over the per-round ns/op (median, IQR, ...)
                   median of every numeric metric over the rounds
        ratios:    per round peer ns/op / reference ns/op, then the median

Statistics come from ``pytest_benchmark.stats.Stats``, the library's own
summary (min, max, mean, stddev, median, IQR, quartiles, outliers).  The
targets of issue 6 are evaluated from the results (``evaluate_targets``),
each with the measured figure, the bound and by how much it is met or
missed.  Invariant: a ratio is only ever formed between figures of the same
round.
"""

from __future__ import annotations

import datetime
import multiprocessing
import platform
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from pytest_benchmark.stats import Stats

from .peers import PEER_NAMES, make_peer
from .workloads import WORKLOADS, Outcome, Workload

__all__ = [
    "BASELINE",
    "Target",
    "evaluate_targets",
    "peers_for",
    "run",
    "run_once",
    "run_workload",
    "summarise",
]

BASELINE = "reference"
TIME_FLOORS = ("bare-ctypes", "python-pair")
PROCESS_GLOBAL = ("glib", "malloc")
JSONDict = dict[str, object]


def peers_for(workload: Workload, chosen: Sequence[str]) -> list[str]:
    """The peers ``workload`` runs on: the chosen ones it applies to, then its extras.

    Extra peers (variants of the reference) run only with the reference itself.
    """
    names = [
        name for name in dict.fromkeys(chosen) if workload.applies_to(name, name not in TIME_FLOORS)
    ]
    if BASELINE in chosen:
        names += [name for name in workload.extra_peers if name not in names]
    return names


def _run_isolated(
    key: str, peer_name: str, params: dict[str, int]
) -> tuple[int, int, dict[str, float]]:
    """Child-process entry point: one workload on one fresh process-global peer."""
    peer = make_peer(peer_name)
    try:
        outcome = WORKLOADS[key].run(peer, params)
    finally:
        peer.close()
    return outcome.elapsed_ns, outcome.ops, dict(outcome.metrics)


def run_once(workload: Workload, peer_name: str, params: Mapping[str, int]) -> Outcome:
    """One round of one workload on a fresh peer.

    GLib's slice allocator and glibc's heap are per process: their caches
    survive from one peer object to the next, so a space figure taken in this
    process would include earlier rounds.  For workloads that measure space
    those peers run in a freshly spawned interpreter instead.
    """
    if workload.space and peer_name in PROCESS_GLOBAL:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            elapsed, ops, metrics = pool.submit(
                _run_isolated, workload.key, peer_name, dict(params)
            ).result()
        return Outcome(elapsed, ops, metrics)
    peer = make_peer(peer_name)
    try:
        return workload.run(peer, params)
    finally:
        peer.close()


def summarise(samples: Sequence[float]) -> dict[str, float]:
    """pytest-benchmark's summary of a sample: min, max, mean, stddev, median, IQR, ..."""
    stats = Stats()  # type: ignore[no-untyped-call]
    for value in samples:
        stats.update(value)  # type: ignore[no-untyped-call]
    raw: dict[str, object] = stats.as_dict()  # type: ignore[no-untyped-call]
    return {k: float(v) for k, v in raw.items() if isinstance(v, (int, float))}


def _median_metrics(outcomes: Iterable[Outcome]) -> dict[str, float]:
    pooled: dict[str, list[float]] = {}
    for outcome in outcomes:
        for key, value in outcome.metrics.items():
            pooled.setdefault(key, []).append(float(value))
    return {key: statistics.median(values) for key, values in pooled.items()}


def run_workload(
    workload: Workload,
    peers: Sequence[str],
    *,
    rounds: int,
    quick: bool,
    progress: Callable[[str], None] | None = None,
) -> JSONDict:
    """All rounds of one workload on its peers: stats, metrics and ratios."""
    params = workload.quick if quick else workload.full
    outcomes: dict[str, list[Outcome]] = {name: [] for name in peers}
    for r in range(rounds):
        shift = r % max(1, len(peers))
        for name in [*peers[shift:], *peers[:shift]]:
            if progress is not None:
                progress(f"{workload.key} round {r + 1}/{rounds}: {name}")
            outcomes[name].append(run_once(workload, name, params))
    results: JSONDict = {}
    for name, runs in outcomes.items():
        summary = summarise([outcome.ns_per_op for outcome in runs])
        results[name] = {
            "ns_per_op": summary,
            "ops_per_round": runs[0].ops,
            "metrics": _median_metrics(runs),
        }
    ratios: dict[str, float] = {}
    if BASELINE in outcomes:
        base = outcomes[BASELINE]
        for name, runs in outcomes.items():
            ratios[name] = statistics.median(
                a.ns_per_op / b.ns_per_op for a, b in zip(runs, base, strict=True)
            )
    return {
        "title": workload.title,
        "params": dict(params),
        "rounds": rounds,
        "peers": results,
        "time_ratio_to_reference": ratios,
    }


def run(
    workloads: Sequence[str],
    peers: Sequence[str] = PEER_NAMES,
    *,
    rounds: int = 5,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> JSONDict:
    """Run the chosen workloads on the chosen peers; the whole JSON document."""
    out: dict[str, object] = {}
    for key in workloads:
        workload = WORKLOADS[key]
        out[key] = run_workload(
            workload, peers_for(workload, peers), rounds=rounds, quick=quick, progress=progress
        )
    document: JSONDict = {
        "meta": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": quick,
            "rounds": rounds,
            "argv": sys.argv,
        },
        "workloads": out,
    }
    document["targets"] = [t.as_dict() for t in evaluate_targets(document)]
    return document


@dataclass(frozen=True, slots=True)
class Target:
    """One of issue 6's targets: the figure, the bound, and whether it holds."""

    name: str
    measured: float
    bound: float
    higher_is_better: bool
    met: bool

    @property
    def margin(self) -> float:
        """How far inside (positive) or outside (negative) the bound, relative to it."""
        if self.bound == 0:
            return 0.0
        delta = self.measured - self.bound if self.higher_is_better else self.bound - self.measured
        return delta / abs(self.bound)

    def as_dict(self) -> JSONDict:
        return {
            "name": self.name,
            "measured": self.measured,
            "bound": self.bound,
            "higher_is_better": self.higher_is_better,
            "met": self.met,
            "margin": self.margin,
        }


def _target(name: str, measured: float, bound: float, higher: bool) -> Target:
    met = measured >= bound if higher else measured <= bound
    return Target(name, measured, bound, higher, met)


def _peer(doc: Mapping[str, object], key: str) -> Mapping[str, object] | None:
    workloads = doc.get("workloads")
    if not isinstance(workloads, Mapping) or key not in workloads:
        return None
    entry = workloads[key]
    return entry if isinstance(entry, Mapping) else None


def _metric(entry: Mapping[str, object], peer: str, metric: str) -> float | None:
    peers = entry.get("peers")
    if not isinstance(peers, Mapping) or peer not in peers:
        return None
    metrics = peers[peer].get("metrics", {})
    value = metrics.get(metric) if isinstance(metrics, Mapping) else None
    return float(value) if isinstance(value, (int, float)) else None


def _ratio(entry: Mapping[str, object], peer: str) -> float | None:
    ratios = entry.get("time_ratio_to_reference")
    if not isinstance(ratios, Mapping) or peer not in ratios:
        return None
    return float(ratios[peer])


def evaluate_targets(doc: Mapping[str, object]) -> list[Target]:
    """Issue 6's targets for the reference, from whatever the document contains."""
    targets: list[Target] = []
    w1 = _peer(doc, "W1")
    if w1 is not None:
        glib = _ratio(w1, "glib")
        if glib:
            targets.append(_target("W1 reference / glib ctypes pair", 1 / glib, 0.5, False))
        floor = _ratio(w1, "python-pair")
        if floor:
            targets.append(_target("W1 reference / two Python method calls", 1 / floor, 3.0, False))
    w4 = _peer(doc, "W4")
    if w4 is not None:
        u = _metric(w4, BASELINE, "U")
        u_layout = _metric(w4, BASELINE, "U_layout")
        if u is not None and u_layout:
            targets.append(_target("W4 U / GLib 2.74 layout limit U", u / u_layout, 0.99, True))
        u_glib = _metric(w4, "glib", "U")
        if u is not None and u_glib:
            targets.append(_target("W4 U / U of the real GLib (mallinfo2)", u / u_glib, 0.99, True))
        u_eager = _metric(w4, "reference-eager", "U")
        if u_eager is not None and u_layout:
            targets.append(
                _target("W4 U (working set 0) / layout limit U", u_eager / u_layout, 0.99, True)
            )
        peak = _metric(w4, BASELINE, "peak_ratio")
        if peak is not None:
            targets.append(_target("W4 peak mapped / peak live", peak, 1.25, False))
        for other in ("gmemchunk-2.8", "naive"):
            theirs = _metric(w4, other, "U")
            if u is not None and theirs is not None:
                targets.append(_target(f"W4 U reference / U {other}", u / theirs, 1.0, True))
    w6 = _peer(doc, "W6")
    if w6 is not None:
        returned = _metric(w6, BASELINE, "returned_fraction")
        if returned is not None:
            targets.append(_target("W6 fraction of freed memory returned", returned, 0.95, True))
    w8 = _peer(doc, "W8")
    if w8 is not None:
        u = _metric(w8, BASELINE, "U_mean")
        for other in ("gmemchunk-2.8", "naive"):
            theirs = _metric(w8, other, "U_mean")
            if u is not None and theirs is not None:
                targets.append(_target(f"W8 mean U reference / U {other}", u / theirs, 1.0, True))
    w5 = _peer(doc, "W5")
    if w5 is not None:
        for other in ("gmemchunk-2.8", "naive"):
            ratio = _ratio(w5, other)
            if ratio is not None:
                # ratio = their time / ours: above 1 means the reference is faster.
                targets.append(_target(f"W5 throughput reference / {other}", ratio, 1.0, True))
    return targets
