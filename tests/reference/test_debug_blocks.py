"""debug-blocks: every bad release raises GLib's exact message before anything changes."""

from __future__ import annotations

import ctypes
import threading

import pytest

from memslice import Allocator, InvalidSizeError, NonAllocatedBlockError


@pytest.fixture
def checked() -> Allocator:
    return Allocator(environ={"G_SLICE": "debug-blocks"})


def test_double_free(checked: Allocator) -> None:
    """DEBUG-003, DEBUG-007: the second release is a 'non-allocated block'."""
    block = checked.alloc(24)
    checked.free1(24, block)
    with pytest.raises(NonAllocatedBlockError) as caught:
        checked.free1(24, block)
    assert caught.value.glib_message == (
        f"GSlice: MemChecker: attempt to release non-allocated block: {block:#x} size=24"
    )
    checked.check(live=[])


def test_wrong_size_in_the_same_class(checked: Allocator) -> None:
    """DEBUG-005: recorded size first, the size passed as invalid-size; nothing freed."""
    block = checked.alloc(24)
    with pytest.raises(InvalidSizeError) as caught:
        checked.free1(17, block)
    assert str(caught.value) == (
        f"GSlice: MemChecker: attempt to release block with invalid size: {block:#x} "
        "size=24 invalid-size=17"
    )
    checked.check(live=[(block, 24)])
    checked.free1(24, block)
    checked.check(live=[])


def test_interior_and_foreign_pointers(checked: Allocator) -> None:
    """DEBUG-004: p + 32 and an address never handed out are 'non-allocated'."""
    block = checked.alloc(100)
    with pytest.raises(NonAllocatedBlockError, match=f"{block + 32:#x} size=100"):
        checked.free1(100, block + 32)
    buffer = ctypes.create_string_buffer(64)
    with pytest.raises(NonAllocatedBlockError):
        checked.free1(64, ctypes.addressof(buffer))
    checked.check(live=[(block, 100)])


def test_malloc_path_is_checked_too(checked: Allocator) -> None:
    """DEBUG-006: alloc 5000, free as 4999: size=5000 invalid-size=4999."""
    block = checked.alloc(5000)
    with pytest.raises(InvalidSizeError, match="size=5000 invalid-size=4999"):
        checked.free1(4999, block)
    checked.free1(5000, block)
    checked.check(live=[])


def test_bad_chain_node_is_caught_before_any_node_is_freed(checked: Allocator) -> None:
    """DEBUG-002, PY-006: a chain with one bad node frees nothing."""
    nodes = [checked.alloc(32) for _ in range(4)]
    for here, following in zip(nodes, [*nodes[1:], 0], strict=True):
        checked.write(here + 8, following.to_bytes(8, "little"))
    checked.free1(32, nodes[2])  # now the chain runs into a released node
    with pytest.raises(NonAllocatedBlockError):
        checked.free_chain_with_offset(32, nodes[0], 8)
    checked.check(live=[(nodes[0], 32), (nodes[1], 32), (nodes[3], 32)])


def test_always_malloc_with_debug_blocks() -> None:
    """CONF-008, DEBUG-006: 'debug-blocks:always-malloc' checks malloc-routed slices."""
    allocator = Allocator(environ={"G_SLICE": "debug-blocks:always-malloc"})
    block = allocator.alloc(40)
    allocator.free1(40, block)
    with pytest.raises(NonAllocatedBlockError):
        allocator.free1(40, block)



class PausingMalloc:
    """A system malloc that reuses addresses LIFO and can pause inside free().

    It opens, deterministically, the window a real cross-thread race needs: the
    freeing thread is stopped just after the block went back to "libc", while
    another thread is handed the very same address.
    """

    def __init__(self) -> None:
        self._buffers: dict[int, ctypes.Array[ctypes.c_char]] = {}
        self._free: list[int] = []
        self.pause_in_free: threading.Event | None = None
        self.resume = threading.Event()

    def malloc(self, size: int) -> int:
        if self._free:
            return self._free.pop()
        buffer = ctypes.create_string_buffer(max(size, 4096))
        self._buffers[ctypes.addressof(buffer)] = buffer
        return ctypes.addressof(buffer)

    def free(self, address: int) -> None:
        self._free.append(address)
        if self.pause_in_free is not None:
            self.pause_in_free.set()
            self.resume.wait(5)


def test_a_release_never_deletes_the_record_of_the_next_owner() -> None:
    """DEBUG-002: checking and forgetting a block are one step, before the release, so a
    thread handed the same address meanwhile keeps its record and can free its block."""
    source = PausingMalloc()
    allocator = Allocator(environ={"G_SLICE": "debug-blocks"}, system_malloc=source)
    first = allocator.alloc(2000)
    source.pause_in_free = threading.Event()
    paused = source.pause_in_free
    releaser = threading.Thread(target=allocator.free1, args=(2000, first))
    releaser.start()
    assert paused.wait(5)  # the releaser is inside free(): the address is free again
    source.pause_in_free = None
    second = allocator.alloc(2000)
    assert second == first  # the same address, handed to this thread
    source.resume.set()
    releaser.join()
    allocator.free1(2000, second)  # refused as "non-allocated" before the fix
    allocator.check(live=[])
