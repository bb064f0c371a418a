"""The issue 14 speed figures and the regression guard of ``tox -e bench``.

The guard is tested on fabricated documents (it must fail on a figure more
than 25 % worse and pass otherwise, and the baseline must survive a failing
run); the measuring code runs once at quick scale (every figure present,
well-formed, its goal attached).  No test here asserts a speed: speed targets
are ratios measured by ``memslice-bench``, never timed unit tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from memslice_bench import cli, speed


def _figure(median: float) -> dict[str, object]:
    return {"min": median, "median": median, "max": median, "spread": 0.0, "goal": 1.0}


def test_compare_flags_only_figures_more_than_the_tolerance_worse() -> None:
    baseline = {"w1_glib": _figure(0.6), "w4_glib": _figure(2.0), "gone": _figure(1.0)}
    current = {"w1_glib": _figure(0.76), "w4_glib": _figure(2.49), "new": _figure(9.0)}
    worse = speed.compare(current, baseline, 0.25)
    assert len(worse) == 1 and worse[0].startswith("w1_glib")  # +27 %; w4 is +24.5 %
    assert speed.compare(current, baseline, 0.30) == []
    assert speed.compare(baseline, current, 0.25) == []  # better is never a regression


def _fake_measure(median: float) -> object:
    def measure_all(rounds: int = 5, quick: bool = False) -> dict[str, object]:
        return {name: {**_figure(median), "met": True} for name in speed.GOALS}

    return measure_all


def test_the_guard_fails_the_run_and_keeps_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"workloads": {"W1": {}}, "speed": _fake_measure(1.0)()}))
    committed = results.read_text()
    monkeypatch.setattr(speed, "measure_all", _fake_measure(1.3))
    argv = ["--speed-only", "--quiet", "--baseline", str(results), "--out", str(results)]
    assert cli.main(argv) == 1
    assert results.read_text() == committed  # the baseline is unchanged
    rejected = json.loads((tmp_path / "results.rejected.json").read_text())
    assert rejected["speed"]["w1_glib"]["median"] == 1.3 and "workloads" in rejected
    monkeypatch.setattr(speed, "measure_all", _fake_measure(1.2))
    assert cli.main(argv) == 0  # within 25 %: accepted, merged into the document
    merged = json.loads(results.read_text())
    assert merged["speed"]["w1_glib"]["median"] == 1.2 and "workloads" in merged


def test_the_guard_needs_a_readable_baseline(tmp_path: Path) -> None:
    missing = tmp_path / "absent.json"
    assert cli.main(["--speed-only", "--quiet", "--baseline", str(missing)]) == 2


def test_an_allocator_starts_no_subprocess() -> None:
    """Issue 14: Allocator() must not run ldconfig (ctypes.util.find_library) or anything."""
    code = (
        "import sys, memslice\n"
        "allocator = memslice.Allocator()\n"
        "allocator.free1(24, allocator.alloc(24))\n"
        "assert 'subprocess' not in sys.modules, 'subprocess was imported'\n"
        "assert 'ctypes.util' not in sys.modules, 'ctypes.util was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_every_figure_is_measured_at_quick_scale() -> None:
    figures = speed.measure_all(rounds=1, quick=True)
    assert set(figures) == set(speed.GOALS)
    for name, figure in figures.items():
        assert isinstance(figure, dict)
        assert 0 < figure["min"] <= figure["median"] <= figure["max"], name
        assert figure["goal"] == speed.GOALS[name] and isinstance(figure["met"], bool)
