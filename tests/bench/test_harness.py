"""The harness's own arithmetic, on inputs whose answers are known ("test the tester")."""

from __future__ import annotations

import threading

import pytest

from memslice.recorder import parse_log
from memslice_bench.harness import Target, evaluate_targets, summarise
from memslice_bench.peers import make_peer
from memslice_bench.peers.naive import NaivePeer
from memslice_bench.record import convert
from memslice_bench.workloads import SpaceProbe, layout_limit_mapped, lcg


def test_lcg_is_the_numerical_recipes_generator() -> None:
    """API-020: the hammer's generator; its first outputs from seed 0 are well known."""
    gen = lcg(0)
    assert [next(gen) for _ in range(4)] == [1013904223, 1196435762, 3519870697, 2868466484]


def test_layout_limit_by_hand() -> None:
    """Spec appendix: 16-byte chunks, 13 per 256-byte page (SIZE-007, SIZE-008)."""
    assert layout_limit_mapped({16: 13}) == 256
    assert layout_limit_mapped({16: 14}) == 512
    assert layout_limit_mapped({10: 7, 16: 6}) == 256  # 10 rounds to the 16-byte class
    assert layout_limit_mapped({0: 5}) == 0  # NULL costs nothing
    assert layout_limit_mapped({2000: 3}) == 6000  # large blocks at their size


def test_summarise_uses_the_median() -> None:
    stats = summarise([5.0, 1.0, 100.0, 3.0, 4.0])
    assert stats["median"] == 4.0
    assert stats["rounds"] == 5
    assert stats["min"] == 1.0 and stats["max"] == 100.0


def _doc(w1_glib_ratio: float, u: float, layout: float, returned: float) -> dict[str, object]:
    return {
        "workloads": {
            "W1": {"peers": {}, "time_ratio_to_reference": {"glib": w1_glib_ratio}},
            "W4": {
                "peers": {"reference": {"metrics": {"U": u, "U_layout": layout}}},
                "time_ratio_to_reference": {},
            },
            "W6": {
                "peers": {"reference": {"metrics": {"returned_fraction": returned}}},
                "time_ratio_to_reference": {},
            },
        }
    }


def test_targets_met_and_missed() -> None:
    met = {t.name: t for t in evaluate_targets(_doc(2.5, 0.9, 0.9, 0.99))}
    assert met["W1 reference / glib ctypes pair"].measured == pytest.approx(0.4)
    assert all(t.met for t in met.values())
    missed = {t.name: t for t in evaluate_targets(_doc(1.0, 0.8, 0.9, 0.5))}
    assert not any(t.met for t in missed.values())
    assert missed["W1 reference / glib ctypes pair"].margin == pytest.approx(-1.0)
    assert missed["W6 fraction of freed memory returned"].margin == pytest.approx(
        (0.5 - 0.95) / 0.95
    )


def test_target_margin_sign() -> None:
    assert Target("t", 0.25, 0.5, False, True).margin == pytest.approx(0.5)
    assert Target("t", 1.2, 1.0, True, True).margin == pytest.approx(0.2)


def test_space_probe_keeps_the_peak_live_sample() -> None:
    peer = NaivePeer(arena_bytes=1 << 24)
    probe = SpaceProbe(peer)
    blocks = [peer.alloc(64) for _ in range(100)]
    probe.sample(6400, {64: 100})
    for block in blocks[:50]:
        peer.free(64, block)
    probe.sample(3200, {64: 50})
    metrics = probe.metrics()
    assert metrics["peak_live"] == 6400
    assert metrics["U"] == pytest.approx(6400 / 8192)  # two 4 KiB pages
    peer.close()


def test_naive_peer_reuses_lifo_and_never_releases() -> None:
    peer = NaivePeer(arena_bytes=1 << 24)
    a, b = peer.alloc(24), peer.alloc(30)  # both in the 32-byte class
    assert b - a == 32
    peer.free(24, a)
    peer.free(30, b)
    assert peer.alloc(17) == b
    mapped = peer.space().mapped
    assert mapped == 4096
    peer.free(17, b)
    peer.expire()
    assert peer.space().mapped == mapped
    assert peer.alloc(0) == 0
    peer.close()


def test_naive_peer_is_thread_safe() -> None:
    peer = NaivePeer(arena_bytes=1 << 26)
    seen: list[list[int]] = []

    def work() -> None:
        mine = [peer.alloc(48) for _ in range(2000)]
        seen.append(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [b for blocks in seen for b in blocks]
    assert len(set(every)) == len(every) == 8000
    peer.close()


@pytest.mark.parametrize("name", ["bare-ctypes", "python-pair"])
def test_time_floors_allocate_nothing(name: str) -> None:
    peer = make_peer(name)
    assert not peer.allocates
    peer.free(8, peer.alloc(8))
    assert peer.space().mapped == 0


def test_unknown_peer() -> None:
    with pytest.raises(ValueError, match="unknown peer"):
        make_peer("jemalloc")


def test_trace_conversion() -> None:
    """Addresses are reused, ids are not; unmatched frees and NULLs are dropped."""
    raw = "\n".join(
        [
            "p 1 0 0",
            "a 16 1000 1",
            "a 0 0 1",
            "f 16 1000 1",
            "a 24 1000 2",
            "f 8 2000 1",
            "f 24 1000 2",
        ]
    )
    header, *events = convert(parse_log(raw, ["prog", "--flag"]), "prog --flag")
    assert events == ['["a",16,0]', '["f",16,0]', '["a",24,1]', '["f",24,1]']
    assert '"unmatched_frees_dropped": 1' in header
    assert '"threads": 2' in header


def test_native_thread_hammer_runs_every_configuration() -> None:
    """The C reproduction of GSlice's two-thread slowdown builds and runs (tiny rounds)."""
    from memslice_bench.threads_native import reproduce

    runs = reproduce(rounds=5, repeats=1)
    assert [(r.mode, r.threads) for r in runs] == [
        ("default", 1),
        ("default", 2),
        ("always-malloc", 1),
        ("always-malloc", 2),
    ]
    assert all(r.seconds > 0 and r.voluntary_switches >= 0 for r in runs)
    assert all(r.max_contention_counter == 0 for r in runs if r.mode == "always-malloc")
