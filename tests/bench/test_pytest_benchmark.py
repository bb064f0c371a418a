"""W1's pair under pytest-benchmark's own fixture, one peer per test (slow; ``tox -e bench``).

This is the same measurement as ``memslice-bench --workloads W1`` through the
library's calibrated fixture, so the two can be cross-checked: run with
``pytest -m slow tests/bench/test_pytest_benchmark.py`` and compare the
medians (API-001, API-013, MAG-005).
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from memslice_bench.peers import make_peer


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["reference", "glib", "bare-ctypes", "python-pair", "malloc", "naive", "gmemchunk-2.8"]
)
def test_w1_pair(benchmark: BenchmarkFixture, name: str) -> None:
    peer = make_peer(name)
    alloc, free = peer.alloc, peer.free
    free(40, alloc(40))  # warm the thread's magazines

    def pair() -> None:
        free(40, alloc(40))

    benchmark.pedantic(pair, rounds=500, iterations=200, warmup_rounds=5)
    assert benchmark.stats.stats.median > 0
    peer.close()
