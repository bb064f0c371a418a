"""Every workload runs on every peer it applies to, in ``--quick`` mode, with sane results.

One CLI run (module fixture) feeds all checks: times and ratios are positive,
utilisation lies in (0, 1] where the peer does its own accounting, the
reference returns freed memory after the working set expires (DEPOT-007)
while the naive and GMemChunk peers keep it, colouring spreads objects over
more L1 sets (COLOR-005), the magazine boundary workload reaches the depot,
and every figure is well-formed SVG.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from memslice_bench import cli
from memslice_bench.harness import peers_for
from memslice_bench.peers import PEER_NAMES
from memslice_bench.workloads import WORKLOADS

OWN_ACCOUNTING = ("reference", "reference-eager", "naive", "gmemchunk-2.8")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path]:
    folder = tmp_path_factory.mktemp("bench")
    out, plots = folder / "results.json", folder / "plots"
    assert cli.main(["--quick", "--quiet", "--out", str(out), "--plots", str(plots)]) == 0
    return json.loads(out.read_text()), plots


def _workloads(run: tuple[dict[str, object], Path]) -> dict[str, dict[str, object]]:
    doc = run[0]["workloads"]
    assert isinstance(doc, dict)
    return doc


def test_every_workload_ran_on_every_applicable_peer(run: tuple[dict[str, object], Path]) -> None:
    workloads = _workloads(run)
    assert set(workloads) == set(WORKLOADS)
    for key, entry in workloads.items():
        expected = peers_for(WORKLOADS[key], PEER_NAMES)
        assert sorted(entry["peers"]) == sorted(expected), key
        assert "reference" in expected


def test_times_and_ratios_are_positive(run: tuple[dict[str, object], Path]) -> None:
    for key, entry in _workloads(run).items():
        for name, result in entry["peers"].items():
            assert result["ns_per_op"]["median"] > 0, (key, name)
            assert result["ops_per_round"] > 0
        ratios = entry["time_ratio_to_reference"]
        assert ratios["reference"] == pytest.approx(1.0)
        assert all(r > 0 for r in ratios.values())


def test_utilisation_is_a_fraction(run: tuple[dict[str, object], Path]) -> None:
    """INTRO-002: U = live / mapped lies in (0, 1] wherever the bytes are counted exactly."""
    workloads = _workloads(run)
    for key in ("W2", "W4"):
        for name in OWN_ACCOUNTING:
            metrics = workloads[key]["peers"].get(name, {}).get("metrics")
            if metrics is None:
                continue
            assert 0 < metrics["U"] <= 1, (key, name)
            assert metrics["peak_ratio"] >= 1
    for name in OWN_ACCOUNTING:
        if name not in workloads["W8"]["peers"]:
            continue
        metrics = workloads["W8"]["peers"][name]["metrics"]
        us = [v for k, v in metrics.items() if k.endswith(".U")]
        assert us and all(0 < u <= 1 for u in us), name
    w4 = workloads["W4"]["peers"]["reference"]["metrics"]
    assert 0 < w4["U"] <= w4["U_layout"] <= 1  # nothing beats the layout limit


def test_release_after_the_working_set(run: tuple[dict[str, object], Path]) -> None:
    """DEPOT-007: the reference gives freed memory back; the naive and 2.8 peers never do."""
    peers = _workloads(run)["W6"]["peers"]
    assert peers["reference"]["metrics"]["returned_fraction"] >= 0.95
    assert peers["naive"]["metrics"]["returned_fraction"] == 0
    assert peers["gmemchunk-2.8"]["metrics"]["returned_fraction"] == 0


def test_colouring_spreads_objects_over_cache_sets(run: tuple[dict[str, object], Path]) -> None:
    """COLOR-005: with colouring, same-size objects use more L1 sets than without."""
    peers = _workloads(run)["W7"]["peers"]
    coloured = peers["reference"]["metrics"]["distinct_l1_sets"]
    plain = peers["reference-nocolour"]["metrics"]["distinct_l1_sets"]
    assert coloured > plain
    # The real GLib colours too (its accumulator is process-wide, so the
    # exact colours depend on what the process allocated before).
    assert peers["glib"]["metrics"]["distinct_l1_sets"] > plain


def test_boundary_workload_reaches_the_depot(run: tuple[dict[str, object], Path]) -> None:
    """MAG-005/MAG-006: bursts one longer than two magazines trip to the depot."""
    metrics = _workloads(run)["W3"]["peers"]["reference"]["metrics"]
    assert 0 < metrics["depot_trips_per_op"] < 1


def test_targets_are_evaluated(run: tuple[dict[str, object], Path]) -> None:
    targets = run[0]["targets"]
    assert isinstance(targets, list)
    names = {t["name"] for t in targets}
    assert "W1 reference / glib ctypes pair" in names
    assert "W6 fraction of freed memory returned" in names
    for t in targets:
        assert t["met"] == (
            t["measured"] >= t["bound"] if t["higher_is_better"] else t["measured"] <= t["bound"]
        )


def test_plots_are_svg(run: tuple[dict[str, object], Path]) -> None:
    plots = run[1]
    files = sorted(plots.glob("*.svg"))
    names = {f.name for f in files}
    assert {f"time-{k}.svg" for k in WORKLOADS} <= names
    assert {"utilisation.svg", "breakdown-W4.svg", "release-W6.svg"} <= names
    for file in files:
        root = ET.parse(file).getroot()
        assert root.tag.endswith("svg"), file


def test_cli_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--workloads", "W9"])
    assert "unknown workload" in capsys.readouterr().err
    assert cli.main(["--list"]) == 0
    assert "W8" in capsys.readouterr().out


def test_cli_subset(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert (
        cli.main(
            [
                "--quick",
                "--quiet",
                "--workloads",
                "W1",
                "--peers",
                "reference,naive",
                "--rounds",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    entry = doc["workloads"]["W1"]
    assert sorted(entry["peers"]) == ["naive", "reference"]
    assert entry["peers"]["naive"]["ns_per_op"]["rounds"] == 2
