"""Configuration: G_SLICE parsing, the two config copies, set/get_config and its state."""

from __future__ import annotations

import io

import pytest

from memslice import Allocator, ConfigWarning, SliceConfig, SliceValueError
from memslice.config import G_SLICE_KEYS, parse_debug_string

from .formulas import threshold


@pytest.mark.parametrize(
    ("value", "flags"),
    [
        (None, 0),
        ("", 0),
        ("always-malloc", 1),
        ("debug-blocks", 2),
        ("DEBUG_BLOCKS", 2),
        ("Always_Malloc", 1),
        ("always-malloc:debug-blocks", 3),
        ("debug-blocks;always-malloc", 3),
        ("debug-blocks, always-malloc", 3),
        ("debug-blocks\talways-malloc", 3),
        ("all", 3),
        ("all,debug-blocks", 1),
        ("debug-blocks:all", 1),
        ("always", 0),
        ("always-malloc-please", 0),
        ("nonsense,debug-blocks", 2),
    ],
)
def test_parse_debug_string(value: str | None, flags: int) -> None:
    """CONF-008: separators, case, _ == -, whole-token match, unknown ignored, 'all' inverts."""
    assert parse_debug_string(value, G_SLICE_KEYS) == flags


def test_help_lists_the_keys_and_selects_nothing() -> None:
    """CONF-008: G_SLICE=help prints the supported values."""
    stream = io.StringIO()
    assert parse_debug_string("HELP", G_SLICE_KEYS, stream) == 0
    assert stream.getvalue() == "Supported debug values: always-malloc debug-blocks all help\n"


def test_defaults_as_glib_reports_them(allocator: Allocator) -> None:
    """CONF-006: get_config(0..7) is 0, 0, 0, 15000, 1, 63, 0, 0 as measured on GLib."""
    assert [allocator.get_config(key) for key in range(8)] == [0, 0, 0, 15000, 1, 63, 0, 0]


def test_get_config_reads_defaults_not_g_slice() -> None:
    """CONF-006: G_SLICE=always-malloc still reports ALWAYS_MALLOC = 0; routing obeys it."""
    allocator = Allocator(environ={"G_SLICE": "always-malloc"})
    block = allocator.alloc(40)
    assert allocator.settings.always_malloc
    assert allocator.get_config(SliceConfig.ALWAYS_MALLOC) == 0
    assert not allocator._arena.contains(block)  # malloc memory, not slab memory
    allocator.free1(40, block)


def test_set_config_before_first_use_takes_effect() -> None:
    """CONF-003, CONF-004: before initialisation set_config changes defaults and behaviour."""
    allocator = Allocator(environ={})
    allocator.set_config(SliceConfig.ALWAYS_MALLOC, 7)
    allocator.set_config(SliceConfig.COLOR_INCREMENT, (1 << 32) + 5)
    allocator.set_config(SliceConfig.CHUNK_SIZES, 99)  # ignored
    allocator.set_config(SliceConfig.CONTENTION_COUNTER, 99)  # ignored
    allocator.set_config(42, 1)  # unknown: ignored
    assert allocator.get_config(SliceConfig.ALWAYS_MALLOC) == 1
    assert allocator.get_config(SliceConfig.COLOR_INCREMENT) == 5  # truncated to a guint
    assert allocator.get_config(SliceConfig.CHUNK_SIZES) == 63
    assert not allocator._arena.contains(allocator.alloc(40))


def test_set_config_after_first_use_warns_and_changes_nothing(allocator: Allocator) -> None:
    """CONF-004: GLib's critical 'assertion sys_page_size == 0 failed', as a ConfigWarning."""
    allocator.alloc(0)  # even size 0 initialises, as thread_memory_from_self does
    with pytest.warns(ConfigWarning, match=r"sys_page_size == 0"):
        allocator.set_config(SliceConfig.WORKING_SET_MSECS, 0)
    assert allocator.get_config(SliceConfig.WORKING_SET_MSECS) == 15000


def test_get_config_state_triples(allocator: Allocator) -> None:
    """CONF-010: [chunk, contention, threshold] for every class; other keys give None."""
    for index in range(63):
        chunk = 16 * (index + 1)
        assert allocator.get_config_state(SliceConfig.CONTENTION_COUNTER, index) == [
            chunk,
            0,
            threshold(chunk),
        ]
    assert allocator.get_config_state(SliceConfig.ALWAYS_MALLOC, 0) is None
    assert allocator.get_config_state(99, 0) is None


def test_get_config_state_where_glib_would_crash() -> None:
    """CONF-012, PY-017: out-of-range index and always-malloc raise, never read garbage."""
    allocator = Allocator(environ={})
    with pytest.raises(SliceValueError, match="outside"):
        allocator.get_config_state(SliceConfig.CONTENTION_COUNTER, 63)
    malloc_only = Allocator(environ={"G_SLICE": "always-malloc"})
    with pytest.raises(SliceValueError, match="crashes"):
        malloc_only.get_config_state(SliceConfig.CONTENTION_COUNTER, 0)


def test_set_config_rejects_values_outside_gint64(allocator: Allocator) -> None:
    """PY-002: the value is a gint64."""
    with pytest.raises(SliceValueError):
        allocator.set_config(SliceConfig.WORKING_SET_MSECS, 1 << 63)
    assert not allocator.initialised
