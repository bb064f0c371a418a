"""The GMemChunk compatibility layer behaves as GLib 2.10+ does (API-021, API-022, API-023).

Expected values come from the documented behaviour of GLib 2.74's
``gallocator.c`` (the project's GMemChunk facts, §2.2 and §2.3), and the
``glib`` tests check the same calls against the installed GLib through ctypes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import pytest

import memslice
from memslice import Allocator, SliceTypeError, SliceUsageError, SliceValueError
from memslice import memchunk as mc


@pytest.fixture
def allocator() -> Iterator[Allocator]:
    a = Allocator()
    yield a
    a.close()


class Node(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("next", ctypes.c_void_p)]


def test_header_holds_the_unrounded_atom_size(allocator: Allocator) -> None:
    """API-021: the 4-byte header stores atom_size as given; area and type are ignored."""
    chunk = mc.mem_chunk_new("x", 24, 0, mc.G_ALLOC_ONLY, allocator=allocator)
    assert chunk.atom_size == 24
    assert allocator.read(chunk.header, 4) == (24).to_bytes(4, "little")
    odd = mc.mem_chunk_new(None, 27, 1, 0, allocator=allocator)  # area < atom: accepted
    assert odd.atom_size == 27


@pytest.mark.parametrize("bad", [0, -1])
def test_non_positive_atom_sizes_are_rejected(allocator: Allocator, bad: int) -> None:
    """API-021: only atom_size <= 0 is refused, with GLib's assertion text."""
    with pytest.raises(SliceValueError, match="atom_size > 0"):
        mc.mem_chunk_new("x", bad, 4096, mc.G_ALLOC_AND_FREE, allocator=allocator)


def test_bad_argument_types_are_typed_errors(allocator: Allocator) -> None:
    """PY-001: bool and str are not sizes; a name must be text; a chunk must be a MemChunk."""
    with pytest.raises(SliceTypeError):
        mc.mem_chunk_new("x", True, 0, 0, allocator=allocator)
    with pytest.raises(SliceTypeError):
        mc.mem_chunk_new("x", "8", 0, 0, allocator=allocator)  # type: ignore[arg-type]
    with pytest.raises(SliceTypeError):
        mc.mem_chunk_new(b"x", 8, 0, 0, allocator=allocator)  # type: ignore[arg-type]
    with pytest.raises(SliceTypeError):
        mc.mem_chunk_alloc(8)  # type: ignore[arg-type]
    with pytest.raises(SliceValueError, match="guint"):
        mc.mem_chunk_new("x", 1 << 32, 0, 0, allocator=allocator)


def test_atoms_are_slices_of_the_atom_size(allocator: Allocator) -> None:
    """API-021: alloc is g_slice_alloc(atom_size): same class as plain slices, 16-aligned."""
    chunk = mc.mem_chunk_new("x", 20, 4096, mc.G_ALLOC_ONLY, allocator=allocator)
    atoms = [chunk.alloc() for _ in range(200)]
    assert all(a % 16 == 0 for a in atoms)
    for atom in atoms:
        chunk.free(atom)  # really freed, although the chunk is ALLOC_ONLY
    # Plain 32-byte slices (the same class as 20) get those very addresses back.
    # (GLib 2.74 reused 1960 of 2000 in the same experiment: magazines keep a few.)
    again = {allocator.alloc(32) for _ in range(200)}
    assert len(again & set(atoms)) >= 180
    allocator.check()


def test_alloc0_zeroes_exactly_the_atom(allocator: Allocator) -> None:
    """API-021: alloc0 zeroes atom_size bytes, not the rounded chunk."""
    chunk = mc.mem_chunk_new("x", 20, 0, 0, allocator=allocator)
    dirty = [allocator.alloc(32) for _ in range(300)]
    for block in dirty:
        allocator.write(block, b"\xaa" * 32)
    for block in dirty:
        allocator.free1(32, block)
    atom = chunk.alloc0()
    assert atom in dirty  # every cached chunk of the class is dirty
    assert allocator.read(atom, 32) == b"\0" * 20 + b"\xaa" * 12


def test_free_of_null_is_silent_and_a_null_chunk_is_rejected(allocator: Allocator) -> None:
    """API-021/API-022: free(chunk, NULL) is a no-op; a NULL chunk is GLib's CRITICAL."""
    chunk = mc.mem_chunk_new("x", 8, 0, 0, allocator=allocator)
    mc.mem_chunk_free(chunk, 0)
    for call in (
        lambda: mc.mem_chunk_alloc(None),
        lambda: mc.mem_chunk_alloc0(None),
        lambda: mc.mem_chunk_free(None, 0),
        lambda: mc.mem_chunk_destroy(None),
    ):
        with pytest.raises(SliceValueError, match="mem_chunk != NULL"):
            call()


def test_destroy_frees_only_the_header(allocator: Allocator) -> None:
    """API-022: live atoms survive destroy and are never handed out again."""
    chunk = mc.mem_chunk_new("x", 40, 0, 0, allocator=allocator)
    atoms = {chunk.alloc() for _ in range(300)}
    assert repr(chunk) == "<MemChunk atom_size=40>"
    chunk.destroy()
    assert chunk.destroyed
    assert repr(chunk) == "<MemChunk destroyed>"
    fresh = {allocator.alloc(48) for _ in range(1200)}
    assert not fresh & atoms
    with pytest.raises(SliceUsageError):
        chunk.alloc()
    for atom in atoms:  # the caller may still free them one by one
        allocator.free1(40, atom)
    allocator.check()


def test_housekeeping_calls_do_nothing(
    allocator: Allocator, capsys: pytest.CaptureFixture[str]
) -> None:
    """API-023: clean/reset/print/info/blow and the GAllocator calls change and print nothing."""
    chunk = mc.mem_chunk_new("x", 16, 0, mc.G_ALLOC_AND_FREE, allocator=allocator)
    atom = chunk.alloc()
    before = allocator.snapshot().totals
    for call in (chunk.clean, chunk.reset, chunk.print, mc.mem_chunk_info, mc.blow_chunks):
        call()
    mc.mem_chunk_clean(None)
    mc.mem_chunk_reset(None)
    mc.mem_chunk_print(None)
    token = mc.allocator_new("list", 128)
    assert token == mc.ALLOCATOR_TOKEN == 1
    for push in (mc.list_push_allocator, mc.slist_push_allocator, mc.node_push_allocator):
        push(token)
    for pop in (mc.list_pop_allocator, mc.slist_pop_allocator, mc.node_pop_allocator):
        pop()
    mc.allocator_free(token)
    assert allocator.snapshot().totals == before
    assert capsys.readouterr() == ("", "")
    allocator.write(atom, b"still mine")  # reset freed nothing
    assert allocator.read(atom, 10) == b"still mine"
    chunk.free(atom)


def test_typed_macros(allocator: Allocator) -> None:
    """g_mem_chunk_create, g_chunk_new0 and g_chunk_free (memory first) over a ctypes type."""
    chunk = mc.mem_chunk_create(Node, 128, mc.G_ALLOC_AND_FREE, allocator=allocator)
    assert chunk.atom_size == ctypes.sizeof(Node)
    node = mc.chunk_new0(Node, chunk)
    assert node.data is None and node.next is None
    node.data = 42
    other = mc.chunk_new(Node, chunk)
    mc.chunk_free(node, chunk)
    mc.chunk_free(ctypes.addressof(other), chunk)
    mc.chunk_free(None, chunk)
    with pytest.raises(SliceValueError):
        mc.chunk_new(Node, None)
    allocator.check()


def test_default_allocator_is_memslices() -> None:
    """Without ``allocator=``, chunks live in memslice's default allocator (PY-009)."""
    chunk = mc.mem_chunk_new("default", 12)
    assert chunk.allocator is memslice.default_allocator()
    atom = chunk.alloc()
    memslice.free1(12, atom)
    chunk.destroy()


# ----------------------------------------------------------------- the real GLib
@pytest.fixture(scope="module")
def glib() -> ctypes.CDLL:
    lib = ctypes.CDLL("libglib-2.0.so.0")
    lib.g_mem_chunk_new.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    lib.g_mem_chunk_new.restype = ctypes.c_void_p
    lib.g_mem_chunk_alloc.argtypes = [ctypes.c_void_p]
    lib.g_mem_chunk_alloc.restype = ctypes.c_void_p
    lib.g_mem_chunk_free.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.g_mem_chunk_destroy.argtypes = [ctypes.c_void_p]
    lib.g_allocator_new.argtypes = [ctypes.c_char_p, ctypes.c_uint]
    lib.g_allocator_new.restype = ctypes.c_void_p
    return lib


@pytest.mark.glib
def test_glib_agrees_on_header_alignment_and_token(glib: ctypes.CDLL, allocator: Allocator) -> None:
    """The installed GLib shows the same header, alignment and token as the binding."""
    chunk = glib.g_mem_chunk_new(b"x", 24, 0, mc.G_ALLOC_ONLY)
    assert chunk
    assert ctypes.c_uint.from_address(chunk).value == 24
    ours = mc.mem_chunk_new("x", 24, 0, mc.G_ALLOC_ONLY, allocator=allocator)
    assert ours.atom_size == ctypes.c_uint.from_address(chunk).value
    atoms = [glib.g_mem_chunk_alloc(chunk) for _ in range(64)]
    assert all(a % 16 == 0 for a in atoms) == all(ours.alloc() % 16 == 0 for _ in range(64))
    for atom in atoms:
        glib.g_mem_chunk_free(chunk, atom)
    glib.g_mem_chunk_destroy(chunk)
    assert glib.g_allocator_new(b"list", 128) == mc.allocator_new("list", 128)
