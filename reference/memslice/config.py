"""Configuration: ``GSliceConfig`` keys, the ``G_SLICE``/``G_DEBUG`` variables, and routing.

Rules and theory of operation
-----------------------------
GLib keeps **two** copies of the configuration (CONF-001)::

    compiled-in defaults ──set_config()──▶ defaults (what get_config() reads!)
            │                                   │ copied once, at initialisation
            │                                   ▼
            └────────── G_SLICE applied ──▶ effective settings (what the allocator obeys)

``set_config`` only works before initialisation (CONF-004); afterwards GLib
prints a critical and changes nothing, and the reference warns
(:class:`ConfigWarning`) and changes nothing.  ``get_config`` reads the
defaults, so ``G_SLICE=always-malloc`` still reports 0 for ALWAYS_MALLOC
(CONF-006) -- a GLib quirk reproduced on purpose.

``G_SLICE`` is parsed with ``g_parse_debug_string`` (CONF-008): tokens split on
``: ; , space tab``, compared case-insensitively with ``_`` equal to ``-``,
unknown tokens ignored, ``help`` alone prints the keys, and a token ``all``
*inverts* the result.  ``G_DEBUG=gc-friendly`` turns on zero-on-free (GC-003).

Routing (SIZE-009): with chunk size ``c``::

    mode              0 < c <= max_slab_chunk_size     otherwise
    default           magazines                        system malloc
    bypass_magazines  slab layer only                  system malloc
    always_malloc     system malloc                    system malloc
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping

from .errors import SliceTypeError
from .records import record, replace
from .tunables import Tunables

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:
    from typing import Final, TextIO

__all__ = [
    "ConfigWarning",
    "Route",
    "Settings",
    "SliceConfig",
    "defaults_from_tunables",
    "parse_debug_string",
    "settings_from_environment",
]


class SliceConfig(enum.IntEnum):
    """``GSliceConfig``: the keys of ``set_config``/``get_config`` (CONF-002)."""

    ALWAYS_MALLOC = 1
    BYPASS_MAGAZINES = 2
    WORKING_SET_MSECS = 3
    COLOR_INCREMENT = 4
    CHUNK_SIZES = 5
    CONTENTION_COUNTER = 6


class ConfigWarning(UserWarning):
    """``set_config`` after initialisation: GLib's critical, as a Python warning (CONF-004)."""


class Route(enum.IntEnum):
    """``allocator_categorize``'s answer: which layer serves a chunk size (SIZE-009)."""

    SYSTEM_MALLOC = 0
    MAGAZINES = 1
    SLAB_ONLY = 2


@record
class Settings:
    """One copy of GLib's ``SliceConfig`` struct plus the gc-friendly flag."""

    always_malloc: bool = False
    bypass_magazines: bool = False
    debug_blocks: bool = False
    working_set_msecs: int = 15000
    color_increment: int = 1
    gc_friendly: bool = False


G_SLICE_KEYS: Final = (("always-malloc", 1), ("debug-blocks", 2))
G_DEBUG_KEYS: Final = (("gc-friendly", 1), ("fatal-warnings", 2), ("fatal-criticals", 4))
_SEPARATORS: Final = ":;, \t"


def _normalise_token(token: str) -> str:
    return token.lower().replace("_", "-")


def parse_debug_string(
    value: str | None, keys: tuple[tuple[str, int], ...], stream: TextIO | None = None
) -> int:
    """``g_parse_debug_string``: the flag bits ``value`` names (CONF-008).

    ``help`` (the whole string, any case) prints the supported keys to
    ``stream`` (stderr by default) and selects nothing.
    """
    if value is None:
        return 0
    if value.strip().lower() == "help" and value.lower() == "help":
        names = " ".join(name for name, _ in keys)
        print(f"Supported debug values: {names} all help", file=stream or sys.stderr)
        return 0
    tokens = [value]
    for separator in _SEPARATORS:
        tokens = [piece for token in tokens for piece in token.split(separator)]
    result = 0
    invert = False
    for token in tokens:
        wanted = _normalise_token(token)
        if wanted == "all":
            invert = True
        for name, bit in keys:
            if wanted == name:
                result |= bit
    if invert:
        every = 0
        for _, bit in keys:
            every |= bit
        result = every & ~result
    return result


def defaults_from_tunables(tunables: Tunables) -> Settings:
    """The compiled-in ``slice_config`` of a profile (CONF-006)."""
    return Settings(
        working_set_msecs=tunables.working_set_msecs,
        color_increment=tunables.color_increment,
    )


def check_environment(environ: Mapping[str, str]) -> None:
    """Raise :class:`SliceTypeError` unless ``G_SLICE``/``G_DEBUG`` are absent or str (PY-024)."""
    for name in ("G_SLICE", "G_DEBUG"):
        value = environ.get(name)
        if value is not None and value.__class__ is not str:
            raise SliceTypeError(
                f"environ[{name!r}] must be a str, not {type(value).__name__} (PY-024)"
            )


def settings_from_environment(
    defaults: Settings, environ: Mapping[str, str], stream: TextIO | None = None
) -> Settings:
    """``slice_config_init``: the effective settings, defaults plus ``G_SLICE`` (CONF-007).

    GLib also forces always-malloc when ``G_SLICE`` is unset and the process
    runs under valgrind (CONF-009); a Python process is never "under valgrind"
    in that sense, so the reference does not reproduce it.
    """
    check_environment(environ)
    effective = defaults
    g_slice = environ.get("G_SLICE")
    if g_slice is not None:
        flags = parse_debug_string(g_slice, G_SLICE_KEYS, stream)
        if flags & 1:
            effective = replace(effective, always_malloc=True)
        if flags & 2:
            effective = replace(effective, debug_blocks=True)
    if parse_debug_string(environ.get("G_DEBUG"), G_DEBUG_KEYS, stream) & 1:
        effective = replace(effective, gc_friendly=True)
    return effective
