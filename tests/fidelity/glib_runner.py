"""Run one layout trace on the real GLib 2.74 in this (fresh) process.

Usage: ``python glib_runner.py < request.json > result.json`` where the request
is ``{"trace": [...], "config": bool, "contention": bool}`` (trace in the JSON
form of ``memslice_conformance.checks.layout.trace_to_json``) and the result is
``{"addresses": [...], "routes": [...], "config": {...} | null}``.

GLib is loaded before anything else, on the main thread, exactly as a C
program that links it would be: its library constructors then make their
load-time slice allocations on the thread that later runs the trace's
``"main"`` operations (CONF-015).  ``G_SLICE`` comes from the environment the
parent gives this process.  A missing libglib is an error, never a skip.

This is the small self-contained stand-in for the conformance worker
(``memslice_conformance.impl.worker``), which did not exist when it was written.
"""

from __future__ import annotations

import ctypes
import os

# Load first: nothing else may touch GLib before its constructors have run here.
# (MEMSLICE_GLIB_LIBRARY exists so a test can prove a missing library fails loudly.)
_GLIB = ctypes.CDLL(os.environ.get("MEMSLICE_GLIB_LIBRARY", "libglib-2.0.so.0"))

import json  # noqa: E402
import sys  # noqa: E402

from memslice_conformance.checks import layout  # noqa: E402

_GLIB.g_slice_alloc.restype = ctypes.c_void_p
_GLIB.g_slice_alloc.argtypes = [ctypes.c_size_t]
_GLIB.g_slice_free1.restype = None
_GLIB.g_slice_free1.argtypes = [ctypes.c_size_t, ctypes.c_void_p]
_GLIB.g_slice_free_chain_with_offset.restype = None
_GLIB.g_slice_free_chain_with_offset.argtypes = [ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
_GLIB.g_slice_get_config.restype = ctypes.c_int64
_GLIB.g_slice_get_config.argtypes = [ctypes.c_int]
_GLIB.g_slice_get_config_state.restype = ctypes.POINTER(ctypes.c_int64)
_GLIB.g_slice_get_config_state.argtypes = [
    ctypes.c_int,
    ctypes.c_int64,
    ctypes.POINTER(ctypes.c_uint),
]
_GLIB.g_free.restype = None
_GLIB.g_free.argtypes = [ctypes.c_void_p]
_GLIB.glib_check_version.restype = ctypes.c_char_p
_GLIB.glib_check_version.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]


class GlibBackend:
    """``layout.SliceBackend`` and configuration reader over the real GLib."""

    def alloc(self, size: int) -> int:
        return _GLIB.g_slice_alloc(size) or 0

    def free1(self, size: int, address: int) -> None:
        _GLIB.g_slice_free1(size, address or None)

    def free_chain_with_offset(self, size: int, head: int, next_offset: int) -> None:
        _GLIB.g_slice_free_chain_with_offset(size, head or None, next_offset)

    def write_pointer(self, address: int, value: int) -> None:
        ctypes.c_uint64.from_address(address).value = value

    def thread_exiting(self) -> None:
        """Nothing: GLib's cleanup runs in the pthread key destructor (EXIT-002)."""

    def get_config(self, key: int) -> int:
        return int(_GLIB.g_slice_get_config(key))

    def get_config_state(self, key: int, address: int) -> list[int] | None:
        n_values = ctypes.c_uint(12345)
        values = _GLIB.g_slice_get_config_state(key, address, ctypes.byref(n_values))
        if not values:
            return None if n_values.value == 0 else [-1]  # -1: n_values not reset
        try:
            return [values[i] for i in range(n_values.value)]
        finally:
            _GLIB.g_free(ctypes.cast(values, ctypes.c_void_p))


def main() -> None:
    # 2.74.x only: later series replaced the allocator with malloc (no layout).
    if _GLIB.glib_check_version(2, 74, 0) is not None or _GLIB.glib_check_version(2, 75, 0) is None:
        sys.exit("libglib-2.0.so.0 is not 2.74.x (glib_major/minor check failed)")
    request = json.load(sys.stdin)
    trace = layout.trace_from_json(json.dumps(request["trace"]))
    backend = GlibBackend()
    observation = layout.execute_trace(trace, backend)
    config = None
    if request.get("config"):
        observed = layout.observe_config(
            backend, 63, ask_contention=request.get("contention", True)
        )
        config = layout.config_to_json(observed)
    json.dump(
        {
            "addresses": list(observation.addresses),
            "routes": list(observation.routes),
            "config": config,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
