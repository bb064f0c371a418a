"""The GLib 2.8 GMemChunk model follows the documented 2.8 algorithm.

Expected figures are the worked examples measured against the compiled 2.8
code (the GMemChunk facts, §1.4 table) and the behaviour described in §1.5 to
§1.8; the Hypothesis test checks the invariants of §1.7 after every step of
random traces.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memslice_bench.peers.gmemchunk import (
    G_ALLOC_AND_FREE,
    G_ALLOC_ONLY,
    GMemChunkPeer,
    MemChunk,
    MemChunkError,
    compute_size,
)

# (A, R) -> (atom_size, area_size, malloc P, atoms per area), measured on LP64.
WORKED_EXAMPLES = [
    (1, 4096, 8, 4044, 4096, 505),
    (12, 4096, 16, 4044, 4096, 252),
    (100, 4096, 104, 4044, 4096, 38),
    (1020, 4096, 1024, 4044, 4096, 3),
    (16, 2048, 16, 1996, 2048, 124),
    (24, 3072, 24, 4044, 4096, 168),
    (40, 5120, 40, 4044, 4096, 101),
    (24, 1024, 24, 972, 1024, 40),
    (50, 100, 56, 76, 128, 1),
    (12, 24, 16, 12, 64, 1),
    (3000, 3000, 3000, 4044, 4096, 1),
    (4045, 4045, 4048, 8140, 8192, 2),
]


@pytest.mark.parametrize(("a", "r", "atom", "area", "p", "per_area"), WORKED_EXAMPLES)
def test_sizes_match_the_measured_worked_examples(
    a: int, r: int, atom: int, area: int, p: int, per_area: int
) -> None:
    chunk = MemChunk("x", a, r)
    assert (chunk.atom_size, chunk.area_size, chunk.block_size) == (atom, area, p)
    # Count atoms per area by allocating until a second area appears.
    first = chunk.alloc()
    n = 1
    while chunk.num_mem_areas == 1:
        chunk.alloc()
        n += 1
    assert n - 1 == per_area
    assert chunk.mem_area is not None and chunk.mem_area.mem != first
    chunk.destroy()


def test_compute_size_rounds_to_the_nearer_power() -> None:
    assert compute_size(3000, 100) == 2048  # 3000 is nearer 2048 than 4096
    assert compute_size(3072, 100) == 4096  # a tie rounds up
    assert compute_size(3000, 2100) == 4096  # the lower power would be too small
    assert compute_size(53, 53) == 64  # the smallest real request (H + 1) takes 64


def test_creation_checks() -> None:
    with pytest.raises(MemChunkError, match="atom_size > 0"):
        MemChunk("x", 0, 4096)
    with pytest.raises(MemChunkError, match="area_size >= atom_size"):
        MemChunk("x", 64, 32)


def test_free_list_is_lifo_and_atoms_of_marked_areas_are_discarded() -> None:
    chunk = MemChunk("x", 1000, 4096, G_ALLOC_AND_FREE)  # 4 atoms per area
    atoms = [chunk.alloc() for _ in range(8)]  # two full areas
    assert chunk.num_mem_areas == 2
    chunk.free(atoms[5])
    chunk.free(atoms[1])
    assert chunk.alloc() == atoms[1]  # most recently freed first
    assert chunk.alloc() == atoms[5]
    # Empty the first area completely: it is marked; its atoms are not reused.
    for atom in atoms[:4]:
        chunk.free(atom)
    assert chunk.num_marked_areas == 1
    fresh = chunk.alloc()
    # The alloc drained (discarded) the marked area's four atoms, which parked
    # the area as the spare; the current area being full, the spare became
    # the new current area: the same memory, bumped from its start again,
    # never reused atom by atom from the free list.
    assert chunk.free_mem_area is None
    assert chunk.num_marked_areas == 0
    assert fresh == atoms[0]
    assert chunk.num_mem_areas == 2
    assert chunk.drained == 4


def test_a_second_emptied_area_is_released_while_a_spare_exists() -> None:
    chunk = MemChunk("x", 1000, 4096, G_ALLOC_AND_FREE)
    atoms = [chunk.alloc() for _ in range(12)]  # three areas
    for atom in atoms[:8]:  # empty the first two areas
        chunk.free(atom)
    assert chunk.num_marked_areas == 2
    chunk.clean()
    # clean releases emptied areas outright (it never creates a spare).
    assert chunk.num_mem_areas == 1
    assert chunk.area_frees == 2
    assert chunk.free_atoms == []


def test_clean_keeps_atoms_of_unmarked_areas_in_order() -> None:
    chunk = MemChunk("x", 1000, 4096, G_ALLOC_AND_FREE)
    atoms = [chunk.alloc() for _ in range(8)]
    for atom in (atoms[4], atoms[0], atoms[1], atoms[2], atoms[3], atoms[6]):
        chunk.free(atom)
    chunk.clean()
    assert chunk.free_atoms == [atoms[4], atoms[6]]  # head is the last element
    assert chunk.num_mem_areas == 1


def test_alloc_only_chunks_never_reuse() -> None:
    chunk = MemChunk("x", 16, 4096, G_ALLOC_ONLY)
    a = chunk.alloc()
    chunk.free(a)
    assert chunk.alloc() != a
    assert chunk.free_atoms == []


def test_reset_frees_every_area_and_clears_the_spare() -> None:
    chunk = MemChunk("x", 1000, 4096, G_ALLOC_AND_FREE)
    atoms = [chunk.alloc() for _ in range(8)]
    for atom in atoms[:4]:
        chunk.free(atom)
    chunk.clean()
    chunk.reset()
    assert chunk.num_mem_areas == 0
    assert chunk.free_mem_area is None  # the deliberate deviation from 2.8
    assert chunk.area_frees == chunk.area_mallocs


def test_print_counts_bumped_undrained_bytes() -> None:
    chunk = MemChunk("name", 40, 4096, G_ALLOC_AND_FREE)
    atoms = [chunk.alloc() for _ in range(3)]
    chunk.free(atoms[0])  # freed but not drained: still counted as used
    assert chunk.print() == "name: 120 bytes using 1 mem areas"


def test_freeing_a_foreign_pointer_is_reported() -> None:
    chunk = MemChunk("x", 16, 4096, G_ALLOC_AND_FREE)
    chunk.alloc()
    with pytest.raises(MemChunkError):
        chunk.free(8)


def _check_invariants(chunk: MemChunk) -> None:
    spare = chunk.free_mem_area
    marked = 0
    for area in chunk.mem_areas.values():
        if area is spare:
            assert area.free == chunk.area_size
            continue
        if area.mark:
            marked += 1
            assert area.allocated == 0
        assert 0 <= area.index <= chunk.area_size or chunk.atom_size > chunk.area_size
    assert marked == chunk.num_marked_areas
    assert len(chunk.mem_areas) == chunk.num_mem_areas
    assert chunk.area_mallocs - chunk.area_frees == chunk.num_mem_areas


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    atom=st.sampled_from([8, 24, 100, 1000]),
    script=st.lists(st.tuples(st.sampled_from("aafc"), st.integers(0, 10_000)), max_size=120),
)
def test_invariants_hold_on_random_traces(atom: int, script: list[tuple[str, int]]) -> None:
    chunk = MemChunk("x", atom, 4096, G_ALLOC_AND_FREE)
    live: list[int] = []
    for op, pick in script:
        if op == "a":
            mem = chunk.alloc()
            assert mem not in live
            live.append(mem)
        elif op == "f" and live:
            chunk.free(live.pop(pick % len(live)))
        elif op == "c":
            chunk.clean()
        _check_invariants(chunk)
    chunk.destroy()


def test_peer_shares_one_chunk_per_size_behind_a_lock() -> None:
    peer = GMemChunkPeer()
    a = peer.alloc(0)  # size 0 becomes 1, as in slice-test's "O" mode
    b = peer.alloc(40)
    assert a and b
    space = peer.space()
    assert space.handed_out == 8 + 40
    assert space.breakdown["areas"] == 2
    peer.free(0, a)
    peer.free(40, b)
    assert peer.space().handed_out == 0
    peer.close()


def test_lookup_table_shape() -> None:
    """The facts' table 3: 1000 live 16-byte atoms fill 4 areas; lookups grow with log(areas);
    the first allocation after freeing all drains every freed atom (P1, P2)."""
    from memslice_bench.memchunk_tables import lookup_table

    small, large = lookup_table((100, 1_000), pairs=200)
    assert (small.areas, large.areas) == (1, 4)
    assert small.model_comparisons_per_pair < large.model_comparisons_per_pair
    assert large.model_drained_by_first_alloc == 1_000
    assert large.reference_ns_per_pair > 0


def test_phase_table_shape() -> None:
    """The facts' table 2: freeing releases nothing in 2.8; bursts of one size grow it further."""
    from memslice_bench.memchunk_tables import phase_table

    allocated, churned, freed, bursts = phase_table(300, 2, 30)
    assert freed.model_bytes == churned.model_bytes  # nothing given back
    assert bursts.model_bytes > freed.model_bytes
    assert freed.reference_bytes <= churned.reference_bytes
    assert allocated.reference_bytes < allocated.model_bytes
