"""Misuse: undefined without debug-blocks (but memory-safe and reported), refused with it.

Without debug-blocks, GLib cannot see a double free, an interior pointer or a
size of another class (API-013, API-014): the behaviour is undefined and the
allocator may be corrupted.  The reference pins what it does instead
(PY-007): it never writes outside its own memory, an address outside it is
refused with ``ForeignPointerError`` before anything changes (PY-004,
PY-006), and the damage done by the rest is reported by the consistency
checker (INTRO-003).  These tests pin that documented behaviour.

With debug-blocks (DEBUG-003 to DEBUG-006, PY-018), every bad release --
double free, never-allocated or foreign address, interior pointer, wrong size
(same class or not, slab or malloc route), a bad node anywhere in a chain --
raises before any state changes: the snapshot is equal, no held block's bytes
moved, and the checker, given the blocks still held, agrees with the
debug-blocks table (PY-006).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator

import pytest

from memslice import Allocator, SliceConfig
from memslice.errors import (
    ConsistencyError,
    ForeignPointerError,
    InvalidSizeError,
    NonAllocatedBlockError,
    SliceUsageError,
    SliceValueError,
)

# -- without debug-blocks: undefined in GLib, memory-safe and reported here ------------


@pytest.fixture
def plain() -> Iterator[Allocator]:
    allocator = Allocator(environ={})
    yield allocator
    allocator.close()


def test_double_free_is_reported_by_the_checker(plain: Allocator) -> None:
    """PY-007, API-013: the second free goes unnoticed, the checker finds the chunk twice."""
    block, other = plain.alloc(24), plain.alloc(24)
    plain.free1(24, block)
    plain.free1(24, block)  # GLib: undefined; the reference: accepted, memory-safe
    with pytest.raises(ConsistencyError, match="is both"):
        plain.check(live=[(other, 24)])


def test_free_with_a_size_of_another_class_is_refused(plain: Allocator) -> None:
    """PY-004, PY-006: a 32-byte chunk freed as a 112-byte one is no chunk of that class."""
    block, other = plain.alloc(24), plain.alloc(24)
    before = plain.snapshot()
    with pytest.raises(ForeignPointerError, match="112-byte chunk"):
        plain.free1(100, block)
    assert plain.snapshot() == before
    plain.check(live=[(block, 24), (other, 24)])


@pytest.mark.parametrize("delta", [8, 16, -8])
def test_interior_pointer_is_refused(plain: Allocator, delta: int) -> None:
    """PY-004, PY-006: an address inside (or just before) a chunk is refused untouched."""
    block = plain.alloc(24)
    plain.write(block, bytes(range(32)))
    before = plain.snapshot()
    with pytest.raises(ForeignPointerError):
        plain.free1(24, block + delta)
    assert plain.snapshot() == before and plain.read(block, 32) == bytes(range(32))
    plain.check(live=[(block, 24)])


def test_slab_only_double_free_releases_a_slab_under_a_live_block() -> None:
    """PY-007: on the slab-only route a double free empties the slab; the checker sees it."""
    allocator = Allocator(environ={})
    allocator.set_config(SliceConfig.BYPASS_MAGAZINES, 1)
    block, other = allocator.alloc(24), allocator.alloc(24)
    allocator.free1(24, block)
    allocator.free1(24, block)  # n_allocated reaches 0 while `other` is still held
    with pytest.raises(ConsistencyError, match="not a chunk of a live slab"):
        allocator.check(live=[(other, 24)])
    allocator.close()


def test_addresses_outside_the_allocator_are_refused_and_never_touched(plain: Allocator) -> None:
    """PY-004, PY-006, PY-007: foreign memory is refused before anything is written to it."""
    held = [(plain.alloc(24), 24), (plain.alloc(5000), 5000)]
    sentinel = (ctypes.c_ubyte * 64)(*range(64))
    foreign = ctypes.addressof(sentinel)
    before = plain.snapshot()
    for size in (24, 5000):  # the slab route and the malloc route
        with pytest.raises(ForeignPointerError):
            plain.free1(size, foreign)
    with pytest.raises(ForeignPointerError):
        plain.free_chain_with_offset(24, foreign, 0)
    block = held[0][0]
    plain.write(block + 8, foreign.to_bytes(8, "little"))  # a chain whose 2nd node is foreign
    with pytest.raises(ForeignPointerError):
        plain.free_chain_with_offset(24, block, 8)
    assert bytes(sentinel) == bytes(range(64))
    assert plain.snapshot() == before
    plain.check(live=held)  # the chain's first node was not freed either (PY-006)


def _arena_end(allocator: Allocator) -> int:
    arena = allocator._arena
    return arena.base + arena.size


@pytest.mark.parametrize(
    "where",
    ["arena, never handed out", "last word of the arena", "freed slab", "slab-only route"],
)
def test_arena_addresses_never_handed_out_are_refused(where: str) -> None:
    """PY-004 (issue 12 item 8): the magazine route checks the slab records before writing.

    ``free1(24, p + 2**30)`` used to be cached (the checker then reported a lost chunk
    and a later thread exit raised in the reaper); ``free1(24, end - 8)`` raised a bare
    IndexError after writing a word.  Both are now refused with nothing changed.
    """
    allocator = Allocator(environ={})
    if where == "slab-only route":
        allocator.set_config(SliceConfig.BYPASS_MAGAZINES, 1)
    held = allocator.alloc(24)
    victim = {
        "arena, never handed out": held + (1 << 30),
        "last word of the arena": _arena_end(allocator) - 8,
        "freed slab": held + 4096,  # a page the buddy source has not handed out
        "slab-only route": held + (1 << 30),
    }[where]
    before = allocator.snapshot()
    for _ in range(3):  # the fast path (a warm magazine) and the full path alike
        with pytest.raises(ForeignPointerError, match="PY-004"):
            allocator.free1(24, victim)
    assert allocator.snapshot() == before
    allocator.check(live=[(held, 24)])
    allocator.free1(24, held)
    allocator.check(live=[])
    allocator.close()


def test_a_foreign_free_in_a_thread_leaves_its_exit_clean() -> None:
    """PY-004, PY-015: a refused free leaves nothing for the thread-exit reaper to trip on."""
    import threading

    allocator = Allocator(environ={})
    errors: list[BaseException] = []

    def body() -> None:
        block = allocator.alloc(24)
        try:
            allocator.free1(24, block + (1 << 30))
        except ForeignPointerError:
            pass
        else:  # pragma: no cover - the defect this test pins
            errors.append(AssertionError("a foreign address was accepted"))
        allocator.free1(24, block)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert not errors
    allocator.check(live=[])
    allocator.close()


def test_a_second_free_of_a_large_block_is_refused(plain: Allocator) -> None:
    """LARGE-003, PY-004: libc's free is never handed an address twice."""
    large, small = plain.alloc(5000), plain.alloc(40)
    plain.free1(5000, large)
    with pytest.raises(ForeignPointerError):
        plain.free1(5000, large)
    plain.check(live=[(small, 40)])


# -- with debug-blocks: caught before any state changes -----------------------------

MODES = {
    "magazines": ({"G_SLICE": "debug-blocks"}, False),
    "slab-only": ({"G_SLICE": "debug-blocks"}, True),
    "always-malloc": ({"G_SLICE": "debug-blocks,always-malloc"}, False),
}


@pytest.fixture(params=sorted(MODES))
def debug(request: pytest.FixtureRequest) -> Iterator[Allocator]:
    environ, bypass = MODES[request.param]
    allocator = Allocator(environ=environ)
    if bypass:
        allocator.set_config(SliceConfig.BYPASS_MAGAZINES, 1)
    yield allocator
    allocator.close()


def refused_without_a_trace(
    allocator: Allocator,
    held: list[tuple[int, int]],
    misuse: Callable[[], None],
    error: type[Exception],
) -> Exception:
    """Run ``misuse``; it must raise ``error`` and change nothing at all (PY-006, PY-018)."""
    snapshot = allocator.snapshot()
    contents = [allocator.read(address, size) for address, size in held if address]
    with pytest.raises(error) as caught:
        misuse()
    assert allocator.snapshot() == snapshot
    assert [allocator.read(address, size) for address, size in held if address] == contents
    allocator.check(live=held)  # includes: the debug-blocks table lists exactly `held`
    return caught.value


def test_double_free_is_refused(debug: Allocator) -> None:
    """DEBUG-003, PY-018: GLib's "non-allocated block" message, nothing changed."""
    block, other = debug.alloc(24), debug.alloc(24)
    debug.free1(24, block)
    raised = refused_without_a_trace(
        debug, [(other, 24)], lambda: debug.free1(24, block), NonAllocatedBlockError
    )
    assert isinstance(raised, NonAllocatedBlockError)
    assert raised.glib_message == (
        f"GSlice: MemChecker: attempt to release non-allocated block: {block:#x} size=24"
    )


@pytest.mark.parametrize("where", ["interior", "foreign", "never-allocated"])
def test_unknown_addresses_are_refused(debug: Allocator, where: str) -> None:
    """DEBUG-004, PY-018: interior, foreign and never-handed-out addresses."""
    block = debug.alloc(48)
    sentinel = (ctypes.c_ubyte * 64)()
    address = {
        "interior": block + 16,
        "foreign": ctypes.addressof(sentinel),
        "never-allocated": block + 4096,
    }[where]
    refused_without_a_trace(
        debug, [(block, 48)], lambda: debug.free1(48, address), NonAllocatedBlockError
    )


@pytest.mark.parametrize(("size", "wrong"), [(24, 17), (24, 100), (5000, 4999), (1000, 1008)])
def test_wrong_sizes_are_refused(debug: Allocator, size: int, wrong: int) -> None:
    """DEBUG-005, DEBUG-006, PY-018: same class or not, slab or malloc route."""
    block = debug.alloc(size)
    raised = refused_without_a_trace(
        debug, [(block, size)], lambda: debug.free1(wrong, block), InvalidSizeError
    )
    assert isinstance(raised, InvalidSizeError) and raised.recorded_size == size
    assert raised.glib_message.endswith(f"size={size} invalid-size={wrong}")


@pytest.mark.parametrize("bad", ["freed", "interior", "other-size", "loop"])
def test_a_bad_chain_node_frees_nothing(debug: Allocator, bad: str) -> None:
    """DEBUG-002, PY-006, PY-018: the whole chain is checked before any node is freed."""
    nodes = [debug.alloc(32) for _ in range(3)]
    stray = debug.alloc(32)
    odd = debug.alloc(64)
    held = [(node, 32) for node in [*nodes, stray]] + [(odd, 64)]
    last = {
        "freed": stray,
        "interior": stray + 16,
        "other-size": odd,
        "loop": nodes[0],
    }[bad]
    for here, following in zip(nodes, [*nodes[1:], last], strict=True):
        debug.write(here + 8, following.to_bytes(8, "little"))
    if bad == "freed":
        debug.free1(32, stray)
        held.remove((stray, 32))
    error: type[Exception] = {
        "freed": NonAllocatedBlockError,
        "interior": NonAllocatedBlockError,
        "other-size": InvalidSizeError,
        "loop": SliceValueError,
    }[bad]
    refused_without_a_trace(
        debug, held, lambda: debug.free_chain_with_offset(32, nodes[0], 8), error
    )


def test_every_debug_refusal_is_a_usage_error(debug: Allocator) -> None:
    """PY-018: the refusals are SliceUsageErrors, and the allocator goes on working."""
    block = debug.alloc(40)
    misuses: tuple[Callable[[], None], ...] = (
        lambda: debug.free1(40, block + 8),
        lambda: debug.free1(41, block),
    )
    for misuse in misuses:
        with pytest.raises(SliceUsageError):
            misuse()
    debug.free1(40, block)
    again = debug.alloc(40)
    debug.check(live=[(again, 40)])
