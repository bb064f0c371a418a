"""The public API: contents, copies, chains, views, and bad input rejected intact."""

from __future__ import annotations

import ctypes
import sys

import pytest

from memslice import (
    GLIB_2_74,
    Allocator,
    ForeignPointerError,
    SliceConfig,
    SliceMemoryError,
    SliceTypeError,
    SliceUsageError,
    SliceValueError,
    Tunables,
)


def test_alloc0_zeroes_a_dirty_recycled_block(allocator: Allocator) -> None:
    """API-002: alloc0 gives exactly n zero bytes even on recycled memory."""
    block = allocator.alloc(80)
    allocator.write(block, b"\xcd" * 80)
    allocator.free1(80, block)
    for _ in range(40):
        again = allocator.alloc0(80)
        assert allocator.read(again, 80) == bytes(80)
        allocator.write(again, b"\xcd" * 80)
        allocator.free1(80, again)


def test_copy_from_address_and_bytes(allocator: Allocator) -> None:
    """API-003: g_slice_copy(12, "0123456789ABCDEF") gives "0123456789AB"."""
    source = ctypes.create_string_buffer(b"0123456789ABCDEF")
    block = allocator.copy(12, ctypes.addressof(source))
    assert allocator.read(block, 12) == b"0123456789AB"
    other = allocator.copy(12, b"0123456789ABCDEF")
    assert other != block and allocator.read(other, 12) == b"0123456789AB"
    with pytest.raises(SliceValueError):
        allocator.copy(20, b"short")
    with pytest.raises(SliceValueError):
        allocator.copy(8, 0)
    with pytest.raises(ForeignPointerError, match="not readable"):
        allocator.copy(64, 8)  # page zero is never mapped: refused, not a crash (PY-023)
    allocator.check(live=[(block, 12), (other, 12)])


@pytest.mark.parametrize("offset", [0, 8, 16, 24, 36])
def test_free_chain_at_any_offset(allocator: Allocator, offset: int) -> None:
    """API-008: a chain linked at any offset is freed; next is read before each free."""
    nodes = [allocator.alloc(48) for _ in range(10)]
    for here, following in zip(nodes, [*nodes[1:], 0], strict=True):
        allocator.write(here + offset, following.to_bytes(8, "little"))
    allocator.free_chain_with_offset(48, nodes[0], offset)
    allocator.check(live=[])


def test_free_chain_reuse_order_matches_glib(allocator: Allocator) -> None:
    """API-008, MAG-007: after draining 51 chunks of 32, a 5-node chain comes back 4..0."""
    import threading

    result: list[list[int]] = []

    def body() -> None:
        drained = [allocator.alloc(24) for _ in range(51)]
        chain = drained[:5]
        for here, following in zip(chain, [*chain[1:], 0], strict=True):
            allocator.write(here + 8, following.to_bytes(8, "little"))
        allocator.free_chain_with_offset(24, chain[0], 8)
        result.append([chain.index(allocator.alloc(24)) for _ in range(5)])

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert result == [[4, 3, 2, 1, 0]]


def test_cyclic_chain_is_refused(allocator: Allocator) -> None:
    """PY-002, PY-006: a chain that loops would spin forever in GLib; here it raises."""
    a, b = allocator.alloc(32), allocator.alloc(32)
    allocator.write(a, b.to_bytes(8, "little"))
    allocator.write(b, a.to_bytes(8, "little"))
    with pytest.raises(SliceValueError, match="loops"):
        allocator.free_chain_with_offset(32, a, 0)
    allocator.check(live=[(a, 32), (b, 32)])


BAD_SIZES = [1.5, "8", None, True, b"8", -1, -(1 << 70)]


@pytest.mark.parametrize("size", BAD_SIZES)
def test_bad_sizes_are_rejected_with_state_intact(allocator: Allocator, size: object) -> None:
    """PY-001, PY-002, PY-006: non-int sizes are TypeError, negatives ValueError."""
    keep = allocator.alloc(40)
    expected = (
        SliceValueError
        if isinstance(size, int) and not isinstance(size, bool)
        else (SliceTypeError)
    )
    for call in (
        lambda: allocator.alloc(size),  # type: ignore[arg-type]
        lambda: allocator.alloc0(size),  # type: ignore[arg-type]
        lambda: allocator.copy(size, keep),  # type: ignore[arg-type]
        lambda: allocator.free1(size, keep),  # type: ignore[arg-type]
        lambda: allocator.free_chain_with_offset(size, keep, 0),  # type: ignore[arg-type]
    ):
        with pytest.raises(expected):
            call()
    allocator.check(live=[(keep, 40)])


def test_impossible_sizes_are_memory_errors(allocator: Allocator) -> None:
    """PY-003, PY-005: beyond the address space, or refused by malloc: MemoryError."""
    with pytest.raises(MemoryError):
        allocator.alloc(1 << 80)
    with pytest.raises(SliceMemoryError):
        allocator.alloc(sys.maxsize)
    allocator.check(live=[])


def test_bad_addresses_and_offsets(allocator: Allocator) -> None:
    """PY-001, PY-002, PY-004: non-int, negative or foreign addresses; offsets past the block."""
    keep = allocator.alloc(40)
    with pytest.raises(SliceTypeError):
        allocator.free1(40, float(keep))  # type: ignore[arg-type]
    with pytest.raises(SliceValueError):
        allocator.free1(40, -8)
    with pytest.raises(ForeignPointerError):
        allocator.free1(40, 4096)  # not in the arena: refused, never written to
    with pytest.raises(SliceValueError, match="next_offset"):
        allocator.free_chain_with_offset(40, keep, 40)
    with pytest.raises(SliceTypeError):
        allocator.free_chain_with_offset(40, keep, "8")  # type: ignore[arg-type]
    with pytest.raises(ForeignPointerError):
        allocator.view(8, 8)
    with pytest.raises(SliceTypeError):
        allocator.write(keep, "text")  # type: ignore[arg-type]
    allocator.check(live=[(keep, 40)])


def test_views_are_live_memory(allocator: Allocator) -> None:
    """PY-010: view() is the block itself; ctypes sees the same bytes at the address."""
    block = allocator.alloc(16)
    view = allocator.view(block, 16)
    view[:5] = b"hello"
    assert ctypes.string_at(block, 5) == b"hello"
    ctypes.memmove(block, b"HELLO", 5)
    assert bytes(view[:5]) == b"HELLO"
    view.release()


def test_closed_allocator_refuses_calls() -> None:
    """PY-022: after close() every call raises SliceUsageError."""
    allocator = Allocator(environ={})
    allocator.alloc(40)
    block = allocator.alloc(40)
    allocator.close()
    for call in (
        lambda: allocator.alloc(40),
        lambda: allocator.free1(40, block),
        lambda: allocator.free_chain_with_offset(40, block, 0),
        lambda: allocator.read(block, 8),
        allocator.snapshot,
        allocator.check,
    ):
        with pytest.raises(SliceUsageError, match="closed"):
            call()
    assert allocator.get_config(SliceConfig.WORKING_SET_MSECS) == 15000


def test_thirty_two_bit_profile_is_geometry_only() -> None:
    """SIZE-001: a 4-byte-pointer profile cannot hand out this process's addresses."""
    from memslice import Tunables

    with pytest.raises(SliceValueError, match="pointers"):
        Allocator(Tunables(name="ilp32", pointer_size=4))


def test_repr_and_context_manager() -> None:
    """PY-022: the allocator is a context manager that closes itself."""
    with Allocator(environ={}) as allocator:
        assert "not initialised" in repr(allocator)
        allocator.alloc(1)
        assert "initialised" in repr(allocator)


def _mapping_with(prot: int) -> int:
    """A fresh anonymous page with protection ``prot`` (PROT_NONE = 0, PROT_WRITE = 2)."""
    libc = ctypes.CDLL(None)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    address = libc.mmap(None, 4096, prot, 0x22, -1, 0)  # MAP_PRIVATE | MAP_ANONYMOUS
    assert address not in (None, ctypes.c_void_p(-1).value)
    return int(address)


@pytest.mark.parametrize("prot", [0, 2], ids=["PROT_NONE", "write-only"])
def test_copy_refuses_pages_that_cannot_be_read(allocator: Allocator, prot: int) -> None:
    """PY-023 (issue 12 item 8): /proc/self/mem used to read these pages; now refused."""
    source = _mapping_with(prot)
    before = allocator.snapshot()
    with pytest.raises(ForeignPointerError, match="PY-023"):
        allocator.copy(16, source)
    assert allocator.snapshot() == before


def test_copy_of_an_absurd_size_is_a_typed_error(allocator: Allocator) -> None:
    """PY-023: ``copy(2**36, small_buffer)`` fails at the buffer's end, not in MemoryError."""
    source = ctypes.create_string_buffer(16)
    before = allocator.snapshot()
    with pytest.raises(ForeignPointerError, match="not readable"):
        allocator.copy(1 << 36, ctypes.addressof(source))
    with pytest.raises(SliceValueError):
        allocator.copy(1 << 36, bytes(source))
    assert allocator.snapshot() == before


@pytest.mark.parametrize("offset", [-8, -1])
def test_chain_arguments_are_checked_before_the_chain(allocator: Allocator, offset: int) -> None:
    """PY-002 (issue 12 item 8): a negative offset is refused even for an empty chain."""
    with pytest.raises(SliceValueError, match="next_offset"):
        allocator.free_chain_with_offset(16, 0, offset)
    allocator.free_chain_with_offset(16, 0, 8)  # a valid offset and NULL: a no-op (API-007)
    allocator.free_chain_with_offset(0, 0, 16)  # NULL at any offset >= 0: a no-op (API-007)


@pytest.mark.parametrize("value", [5, b"always-malloc", None.__class__])
def test_environment_values_must_be_text(value: object) -> None:
    """PY-024 (issue 12 item 8): non-str G_SLICE/G_DEBUG give SliceTypeError, not AttributeError."""
    for name in ("G_SLICE", "G_DEBUG"):
        with pytest.raises(SliceTypeError, match=name):
            Allocator(environ={name: value})  # type: ignore[dict-item]
    with pytest.raises(SliceTypeError, match="mapping"):
        Allocator(environ=["G_SLICE=always-malloc"])  # type: ignore[arg-type]
    changing: dict[str, object] = {}
    late = Allocator(environ=changing)  # type: ignore[arg-type]
    changing["G_SLICE"] = 7  # read at initialisation (CONF-013): refused there too
    with pytest.raises(SliceTypeError, match="G_SLICE"):
        late.alloc(8)
    changing["G_SLICE"] = "always-malloc"
    assert late.alloc(8) and late.settings.always_malloc
    late.close()


@pytest.mark.parametrize("size", [-1, -8, -1009, -1500, -2016, -2017, -(1 << 40)])
def test_negative_sizes_never_reach_the_fast_path(allocator: Allocator, size: int) -> None:
    """PY-002: a negative size is refused on every call, whatever its magnitude.

    (A fast-path table indexed by the size would read a negative index from its
    end: a padded table still served -1010..-2016 from real classes.)
    """
    keep = allocator.alloc(24)
    allocator.free1(24, allocator.alloc(24))  # warm: the thread's table exists
    before = allocator.snapshot()
    for call in (allocator.alloc, allocator.alloc0):
        with pytest.raises(SliceValueError):
            call(size)
    with pytest.raises(SliceValueError):
        allocator.free1(size, keep)
    assert allocator.snapshot() == before


def test_start_up_loads_only_the_allocating_layers() -> None:
    """PY-026: `import memslice; Allocator()` imports no dataclasses, typing or subprocess."""
    import subprocess

    probe = (
        "import sys\n"
        "import memslice\n"
        "allocator = memslice.Allocator(environ={})\n"
        "allocator.free1(40, allocator.alloc(40))\n"
        "heavy = sorted({'dataclasses', 'inspect', 'typing', 'subprocess'} & set(sys.modules))\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == "", f"start-up imported {out} (PY-026)"


def test_records_replace_and_freeze() -> None:
    """PY-026: start-up records are frozen, compare by value and derive variants by replace."""
    import pickle

    from memslice import records
    from memslice.records import FrozenRecordError

    variant = records.replace(GLIB_2_74, arena_bytes=1 << 20)
    assert variant.arena_bytes == 1 << 20 and variant.name == GLIB_2_74.name
    assert variant != GLIB_2_74
    assert records.replace(variant, arena_bytes=GLIB_2_74.arena_bytes) == GLIB_2_74
    assert hash(records.replace(GLIB_2_74)) == hash(GLIB_2_74)
    assert pickle.loads(pickle.dumps(GLIB_2_74)) == GLIB_2_74
    with pytest.raises(FrozenRecordError):
        GLIB_2_74.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError, match="no field"):
        records.replace(GLIB_2_74, page_size=1)
    with pytest.raises(TypeError, match="missing required arguments: name"):
        Tunables()  # type: ignore[call-arg]
    with pytest.raises(SliceValueError):  # __post_init__ still validates
        records.replace(GLIB_2_74, pointer_size=3)
