"""Typed helpers over ctypes structures, and the seed's two examples run for real."""

from __future__ import annotations

import ctypes
from typing import ClassVar

import pytest

import memslice
from memslice import Allocator, SliceTypeError, typed


class GRealArray(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("len", ctypes.c_uint),
        ("alloc", ctypes.c_uint),
        ("elt_size", ctypes.c_uint),
        ("zero_terminated", ctypes.c_uint, 1),
        ("clear", ctypes.c_uint, 1),
    ]


class ChainNode(ctypes.Structure):
    """GLib's /slice/chain struct: {gint, gint, gchar, gpointer next, gint64}."""

    _fields_ = [
        ("a", ctypes.c_int),
        ("b", ctypes.c_int),
        ("c", ctypes.c_char),
        ("next", ctypes.c_void_p),
        ("d", ctypes.c_int64),
    ]


class Empty(ctypes.Structure):
    _fields_: ClassVar[list[tuple[str, type]]] = []


def test_seed_example_one_ten_thousand_blocks_of_fifty(allocator: Allocator) -> None:
    """API-001, API-005: allocate 10000 blocks of 50, fill with i*j, verify, free all."""
    blocks = [allocator.alloc(50) for _ in range(10000)]
    for i, block in enumerate(blocks):
        allocator.write(block, bytes((i * j) & 0xFF for j in range(50)))
    for i, block in enumerate(blocks):
        assert allocator.read(block, 50) == bytes((i * j) & 0xFF for j in range(50))
    assert len(set(blocks)) == 10000
    for block in blocks:
        allocator.free1(50, block)
    allocator.check(live=[])


def test_seed_example_two_new_and_free(allocator: Allocator) -> None:
    """PY-008: g_slice_new (GRealArray) returns a struct living in slice memory."""
    array = typed.new(allocator, GRealArray)
    assert array is not None
    array.data = None
    array.len = 0
    array.alloc = 0
    array.zero_terminated = 1
    array.clear = 0
    array.elt_size = 4
    address = ctypes.addressof(array)
    assert allocator.read(address + 16, 4) == (4).to_bytes(4, "little")
    copy = typed.dup(allocator, GRealArray, array)
    assert copy is not None and ctypes.addressof(copy) != address and copy.elt_size == 4
    zero = typed.new0(allocator, GRealArray)
    assert zero is not None and bytes(zero) == bytes(ctypes.sizeof(GRealArray))
    for obj in (array, copy, zero):
        typed.free(allocator, GRealArray, obj)
    typed.free(allocator, GRealArray, None)
    allocator.check(live=[])


def test_free_chain_through_a_named_field(allocator: Allocator) -> None:
    """PY-008, API-008: g_slice_free_chain (ChainNode, head, next)."""
    nodes = [typed.new0(allocator, ChainNode) for _ in range(3)]
    for here, following in zip(nodes, [*nodes[1:], None], strict=True):
        assert here is not None
        here.next = ctypes.addressof(following) if following is not None else None
    typed.free_chain(allocator, ChainNode, nodes[0], "next")
    allocator.check(live=[])
    with pytest.raises(SliceTypeError):
        typed.free_chain(allocator, ChainNode, None, "c")  # not a pointer field
    with pytest.raises(SliceTypeError):
        typed.free_chain(allocator, ChainNode, None, "nope")


def test_empty_struct_gives_none(allocator: Allocator) -> None:
    """API-011: sizeof 0 makes g_slice_new return NULL in GLib 2.74."""
    assert typed.new(allocator, Empty) is None
    assert typed.new0(allocator, Empty) is None


def test_wrong_types_are_rejected(allocator: Allocator) -> None:
    """PY-008: non-ctypes types and mismatched instances raise SliceTypeError."""
    with pytest.raises(SliceTypeError):
        typed.new(allocator, int)  # type: ignore[type-var]
    with pytest.raises(SliceTypeError):
        typed.new(allocator, GRealArray())  # type: ignore[arg-type]
    other = typed.new(allocator, ChainNode)
    with pytest.raises(SliceTypeError):
        typed.free(allocator, GRealArray, other)  # type: ignore[arg-type]
    typed.free(allocator, ChainNode, other)
    allocator.check(live=[])


def test_module_level_api_uses_one_default_allocator() -> None:
    """PY-009: the module functions share a lazily created default allocator."""
    first = memslice.default_allocator()
    assert memslice.default_allocator() is first
    block = memslice.alloc(50)
    zeroed = memslice.alloc0(50)
    copied = memslice.copy(50, zeroed)
    assert memslice.default_allocator().read(copied, 50) == bytes(50)
    for address in (block, zeroed, copied):
        memslice.free1(50, address)
    node = memslice.new0(ChainNode)
    twin = memslice.dup(ChainNode, node)  # type: ignore[arg-type]
    memslice.free(ChainNode, twin)
    memslice.free_chain(ChainNode, node, "next")
    memslice.free_chain_with_offset(24, 0, 8)
    assert memslice.get_config(memslice.SliceConfig.CHUNK_SIZES) == 63
    assert memslice.get_config_state(memslice.SliceConfig.CONTENTION_COUNTER, 0) == [16, 0, 51]
    assert memslice.new(Empty) is None
    with pytest.warns(memslice.ConfigWarning):
        memslice.set_config(memslice.SliceConfig.WORKING_SET_MSECS, 1)
