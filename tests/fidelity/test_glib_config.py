"""Configuration answers of the real GLib 2.74.6 and of the reference, per G_SLICE mode.

``get_config`` reads the compiled-in defaults whatever ``G_SLICE`` says
(CONF-006); ``get_config_state(CONTENTION_COUNTER, ix)`` gives
``[chunk, contention, threshold]`` for every class (CONF-010) and NULL for
every other key; ``set_config`` always comes too late in GLib because the
library constructors already initialised the allocator (CONF-015).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from fidelity_support import GEOMETRY, N_CLASSES, glib_env, run_glib, run_reference

import memslice
from memslice.config import ConfigWarning, SliceConfig
from memslice.errors import SliceValueError
from memslice.tunables import GLIB_2_74
from memslice_conformance.checks import layout
from memslice_conformance.checks.layout import MAIN, Alloc, Free

pytestmark = pytest.mark.glib

EXPECTED_VALUES = (0, 0, 0, 15000, 1, 63, 0, 0)  # keys 0..7, from the spec's defaults
MODES = [None, "always-malloc", "debug-blocks", "all", ""]
# A short trace first, so the answers come from an allocator that has worked.
TRACE = [Alloc(MAIN, 40), Alloc(MAIN, 2000), Free(MAIN, 0)]


def _expected_contention() -> tuple[tuple[int, ...], ...]:
    chunks = [GEOMETRY.p2alignment * (ix + 1) for ix in range(N_CLASSES)]
    return tuple((chunk, 0, GEOMETRY.threshold(chunk)) for chunk in chunks)


@pytest.mark.parametrize("g_slice", MODES)
def test_get_config_and_state_match_glib(g_slice: str | None) -> None:
    """CONF-006, CONF-010: all keys 0..7 and every class's triple, in every mode."""
    always_malloc = g_slice in ("always-malloc", "all")
    # GLib segfaults on get_config_state(CONTENTION_COUNTER) under always-malloc
    # (tested separately below), so that question is asked only otherwise.
    _, glib = run_glib(TRACE, g_slice, config=True, contention=not always_malloc)
    _, ref = run_reference(TRACE, g_slice, config=True, contention=not always_malloc)
    assert glib is not None and ref is not None
    assert glib.values == EXPECTED_VALUES
    assert dict(glib.other_states) == {k: None for k in (0, 1, 2, 3, 4, 5, 7)}
    if not always_malloc:
        assert glib.contention == _expected_contention()
    assert ref == glib


def test_glib_crashes_where_the_reference_raises() -> None:
    """CONF-012, PY-017: get_config_state(CONTENTION_COUNTER) under always-malloc reads a
    NULL array in GLib (SIGSEGV); the reference raises SliceValueError instead.
    This one difference is deliberate and is why the comparison above skips it."""
    script = (
        "import ctypes; g = ctypes.CDLL('libglib-2.0.so.0'); n = ctypes.c_uint(0);"
        "g.g_slice_get_config_state.restype = ctypes.c_void_p;"
        "g.g_slice_get_config_state(6, ctypes.c_int64(0), ctypes.byref(n))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=glib_env("always-malloc"),
        capture_output=True,
        check=False,
    )
    assert done.returncode == -11
    allocator = memslice.Allocator(GLIB_2_74, environ={"G_SLICE": "always-malloc"})
    try:
        with pytest.raises(SliceValueError):
            allocator.get_config_state(SliceConfig.CONTENTION_COUNTER, 0)
    finally:
        allocator.close()


def test_set_config_is_too_late_in_glib_and_in_the_reproduced_state() -> None:
    """CONF-004, CONF-015: GLib's set_config after load prints a critical and changes
    nothing; a reference in GLib's load-time state warns and changes nothing."""
    script = (
        "import ctypes; g = ctypes.CDLL('libglib-2.0.so.0');"
        "g.g_slice_set_config(3, ctypes.c_int64(0));"
        "g.g_slice_get_config.restype = ctypes.c_int64; print(g.g_slice_get_config(3))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=glib_env(None),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["15000"]
    assert "g_slice_set_config: assertion 'sys_page_size == 0' failed" in done.stderr
    allocator = memslice.Allocator(GLIB_2_74, environ={})
    try:
        layout.reproduce_glib_load_state(allocator)
        with pytest.warns(ConfigWarning):
            allocator.set_config(SliceConfig.WORKING_SET_MSECS, 0)
        assert allocator.get_config(SliceConfig.WORKING_SET_MSECS) == 15000
        assert allocator.settings.working_set_msecs == 15000
    finally:
        allocator.close()
