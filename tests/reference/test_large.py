"""Routing at the slab limit and the system-malloc path."""

from __future__ import annotations

import pytest

from memslice import Allocator, ForeignPointerError


def test_routing_boundary_1008_1009(allocator: Allocator) -> None:
    """SIZE-009, LARGE-001: 1008 bytes come from slabs, 1009 from the system malloc."""
    slab_block = allocator.alloc(1008)
    large_block = allocator.alloc(1009)
    assert allocator._arena.contains(slab_block, 1008)
    assert not allocator._arena.contains(large_block)
    assert allocator.snapshot().totals.large_live == 1009  # the unrounded size (LARGE-001)
    allocator.free1(1008, slab_block)
    allocator.free1(1009, large_block)
    allocator.check(live=[])


def test_size_zero_is_null_everywhere(allocator: Allocator) -> None:
    """API-001, API-007: alloc(0), alloc0(0), copy(0, 0) are NULL; NULL frees are no-ops."""
    assert allocator.alloc(0) == 0
    assert allocator.alloc0(0) == 0
    assert allocator.copy(0, 0) == 0
    allocator.free1(0, 0)
    allocator.free1(24, 0)
    allocator.free1(5000, 0)
    allocator.free_chain_with_offset(24, 0, 8)
    allocator.check(live=[])


def test_large_blocks_are_real_memory(allocator: Allocator) -> None:
    """LARGE-001, PY-010: the block holds exactly mem_size bytes for reading and writing."""
    block = allocator.alloc(3000)
    allocator.write(block, b"\x5a" * 3000)
    assert allocator.read(block, 3000) == b"\x5a" * 3000
    with pytest.raises(ForeignPointerError):
        allocator.read(block, 3001)
    allocator.free1(3000, block)


def test_unknown_large_pointer_is_refused_not_passed_to_libc(allocator: Allocator) -> None:
    """PY-004: a release of an address malloc never returned raises."""
    block = allocator.alloc(2000)
    with pytest.raises(ForeignPointerError):
        allocator.free1(2000, block + 16)
    allocator.free1(2000, block)
    with pytest.raises(ForeignPointerError):
        allocator.free1(2000, block)  # double free on the malloc path
    allocator.check(live=[])


def test_large_chains(allocator: Allocator) -> None:
    """API-008: chains of malloc-path blocks are walked and freed."""
    nodes = [allocator.alloc(2048) for _ in range(5)]
    for here, following in zip(nodes, [*nodes[1:], 0], strict=True):
        allocator.write(here + 100, following.to_bytes(8, "little"))
    allocator.free_chain_with_offset(2048, nodes[0], 100)
    allocator.check(live=[])


def test_owning_block_finds_the_block_holding_an_address() -> None:
    """PY-004, PY-023: reads and writes of large blocks are vouched for by the block that
    holds every byte; the lookup is a search over sorted starts, checked here against
    a plain scan of the live blocks after allocations and frees in mixed order."""
    a = Allocator(environ={"G_SLICE": "always-malloc"})
    live = {a.alloc(size): size for size in (24, 5000, 17, 1009, 40, 3000) * 20}
    for address in list(live)[::3]:
        a.free1(live.pop(address), address)
    large = a._large
    probes = [(start + off, length) for start, size in live.items()
              for off, length in ((0, size), (size - 1, 1), (size // 2, size - size // 2),
                                  (size - 1, 2), (-1, 1), (size, 1))]

    def scan(address: int, length: int) -> int | None:
        return next((s for s, n in live.items() if s <= address and address + length <= s + n),
                    None)

    for address, length in probes:
        assert large.owning_block(address, length) == scan(address, length), (address, length)
    for address, size in live.items():
        a.free1(size, address)
    assert large.owning_block(min(live), 1) is None
