"""Resolving ``--impl`` strings to implementations the suite can open sessions on.

Rules and theory of operation
-----------------------------
::

    --impl string            where it runs        what it is
    reference[:MODE]         in-process           memslice.Allocator(GLIB_2_74), G_SLICE=MODE
    py:module:attr           in-process           an object, class or factory (SliceAllocator)
    NAME                     in-process           entry point NAME in group
                                                  memslice_conformance.implementations
    lib:PATH                 worker process       any library exporting the five g_slice_*
                                                  allocation functions (ctypes); claims
                                                  core, concurrency, config if it exports
                                                  the three config functions, and what its
                                                  memslice_conformance_profiles string lists
    glib[:MODE]              worker process       the system libglib-2.0.so.0, G_SLICE=MODE
    malloc                   worker process       libc malloc/calloc/free, slice semantics
    cmd:PROGRAM ARGS         child process        any program speaking memslice-jsonl v1
    worker:IMPL              worker process       any of the above hosted in a worker (for
                                                  Python code that may crash the process)

Python implementations run in the suite's process on real threads (fast, and
a Python bug cannot corrupt the interpreter); native code runs behind a
worker so that a crash or a hang is a finding, not the end of the run.

A factory (a class or a zero-argument callable) gives every example a fresh
allocator, so a failure replays from a clean state; a ready-made object is
shared by every example.  Anything that cannot be resolved or loaded raises
:class:`~memslice_conformance.failures.ImplUnavailable` (CLI exit status 2).
"""

from __future__ import annotations

import importlib
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Final, Literal

from memslice_conformance.failures import ImplUnavailable
from memslice_conformance.impl.protocol import Configurable, Described, SliceAllocator

__all__ = [
    "ALL_PROFILES",
    "BUILTIN",
    "BUILTIN_CLAIMS",
    "ENTRY_POINT_GROUP",
    "GLIB_MODES",
    "LIB_CLAIMS",
    "MALLOC_CLAIMS",
    "Implementation",
    "make_local",
    "python_impl",
    "resolve",
]

ENTRY_POINT_GROUP: Final = "memslice_conformance.implementations"

#: ``glib`` suffix -> the ``G_SLICE`` value the worker runs with.
GLIB_MODES: Final[Mapping[str, str | None]] = {
    "": None,
    "always-malloc": "always-malloc",
    "debug-blocks": "debug-blocks",
}

#: Built-in implementation names, for ``memslice-conformance list``.
BUILTIN: Final[Mapping[str, str]] = {
    "reference": "the project's reference allocator, in-process (fresh per example)",
    "reference:always-malloc": "the reference with G_SLICE=always-malloc",
    "reference:debug-blocks": "the reference with G_SLICE=debug-blocks",
    "glib": "the system libglib-2.0.so.0 (GLib 2.74 slab mode), in a worker",
    "glib:always-malloc": "system GLib with G_SLICE=always-malloc",
    "glib:debug-blocks": "system GLib with G_SLICE=debug-blocks",
    "malloc": "libc malloc/calloc/free behind the slice ABI (GLib 2.76 style)",
    "lib:PATH": "any shared library exporting the g_slice_* ABI, in a worker",
    "py:module:attr": "a Python object or factory satisfying SliceAllocator",
    "cmd:PROGRAM ARGS": "any program speaking memslice-jsonl v1 on stdin/stdout",
    "worker:IMPL": "IMPL (e.g. py:module:attr) hosted in a worker process, isolated",
}

Factory = Callable[[], SliceAllocator]

ALL_PROFILES: Final = frozenset(
    {"core", "concurrency", "config", "glib-2.74", "debug-blocks", "reuse"}
)

#: What the built-in implementations claim, by ``G_SLICE`` mode (issue 4).  The
#: default mode is GLib 2.74 itself; debug-blocks keeps its layout (DEBUG-012)
#: and its configuration API, but its reuse timing is not promised.
#: always-malloc promises correctness only: its configuration API is not
#: claimed because GLib 2.74 then has no contention counters and
#: ``get_config_state(CONTENTION_COUNTER, ix)`` reads through NULL (CONF-012;
#: the reference refuses it, PY-017), which CONF-010 does not allow.
BUILTIN_CLAIMS: Final[Mapping[str, frozenset[str]]] = {
    "": ALL_PROFILES,
    "debug-blocks": frozenset(
        {"core", "concurrency", "config", "debug-blocks", "glib-2.74"}
    ),
    "always-malloc": frozenset({"core", "concurrency"}),
}
#: ``lib:`` libraries: core and concurrency, plus ``config`` when they export
#: the three configuration functions (LOAD-003).
LIB_CLAIMS: Final = frozenset({"core", "concurrency"})
#: The malloc shim answers the configuration API as GLib 2.76 does (every
#: key 0, no state, set_config ignored): that conforms to ``config``.
MALLOC_CLAIMS: Final = LIB_CLAIMS | {"config"}


@dataclass(frozen=True, slots=True)
class Implementation:
    """A resolved implementation: how to open a fresh instance of it."""

    spec: str
    name: str
    kind: Literal["in-process", "worker"]
    profiles: frozenset[str]
    factory: Factory | None = None
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: What the user should know about how it was loaded (LOAD-003, LOAD-005).
    notes: tuple[str, ...] = ()


def _reference_factory(mode: str | None) -> Factory:
    try:
        import memslice
        from memslice.tunables import GLIB_2_74
    except ImportError as exc:  # pragma: no cover - the reference ships with the suite
        raise ImplUnavailable(f"cannot import the reference allocator: {exc}") from exc
    environ = {} if mode is None else {"G_SLICE": mode}

    def make() -> SliceAllocator:
        allocator: SliceAllocator = memslice.Allocator(GLIB_2_74, environ=environ)
        return allocator

    return make


def _load_attr(target: str) -> object:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ImplUnavailable(f"expected py:module:attr, got py:{target}")
    try:
        obj: object = importlib.import_module(module_name)
    except Exception as exc:
        raise ImplUnavailable(f"cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ImplUnavailable(f"{module_name!r} has no attribute {attr!r}") from exc
    return obj


def _as_factory(obj: object, label: str) -> Factory:
    """A class or factory function gives fresh instances; an object is shared."""
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, SliceAllocator)):
        maker = obj

        def make() -> SliceAllocator:
            made = maker()
            if not isinstance(made, SliceAllocator):
                raise ImplUnavailable(f"{label} did not produce a SliceAllocator: {made!r}")
            return made

        return make
    if isinstance(obj, SliceAllocator):
        shared: SliceAllocator = obj
        return lambda: shared
    raise ImplUnavailable(f"{label} is neither a SliceAllocator nor a factory of one")


def _describe(impl: SliceAllocator, default_name: str) -> tuple[str, frozenset[str]]:
    """Display name and claims; an object with the config API claims ``config`` (LOAD-003)."""
    config = frozenset({"config"}) if isinstance(impl, Configurable) else frozenset()
    if isinstance(impl, Described):
        return str(impl.name), frozenset(impl.profiles) | {"core"} | config
    return default_name, frozenset({"core"}) | config


def _in_process(spec: str, factory: Factory, default_name: str) -> Implementation:
    try:
        probe = factory()
    except ImplUnavailable:
        raise
    except Exception as exc:
        raise ImplUnavailable(f"{spec}: constructing the implementation failed: {exc}") from exc
    name, profiles = _describe(probe, default_name)
    return Implementation(spec, name, "in-process", profiles, factory=factory)


def _glib_env(mode: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("G_SLICE", None)
    if mode is not None:
        env["G_SLICE"] = mode
    return env


def python_impl(factory: Factory, name: str | None = None) -> Implementation:
    """An in-process implementation from a factory (a class or callable).

    For library users and tests that hold the object rather than an import
    path; the result can be passed to ``run_conformance`` directly.
    """
    label = name or str(getattr(factory, "__name__", "python"))
    return _in_process(f"py:{label}", _as_factory(factory, label), label)


def resolve(spec: str) -> Implementation:
    """Turn an ``--impl`` string into an :class:`Implementation` (or raise)."""
    from memslice_conformance.impl.worker import worker_argv

    head, _, rest = spec.partition(":")
    if head == "worker":
        if not rest or rest.startswith(("worker:", "cmd:")):
            raise ImplUnavailable(f"worker: needs an implementation to host, got {spec!r}")
        # The hosted code must import in the worker as it does here.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [p for p in sys.path if p] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        return _worker(spec, tuple(worker_argv(rest)), env)
    if head == "reference":
        if rest and rest not in GLIB_MODES:
            raise ImplUnavailable(f"unknown reference mode {rest!r}")
        return replace(
            _in_process(spec, _reference_factory(rest or None), spec),
            profiles=BUILTIN_CLAIMS[rest],
        )
    if head == "py":
        return _in_process(spec, _as_factory(_load_attr(rest), spec), spec)
    if head == "glib":
        if rest not in GLIB_MODES:
            raise ImplUnavailable(
                f"unknown glib mode {rest!r}; use glib, glib:always-malloc or glib:debug-blocks"
            )
        return _worker(spec, tuple(worker_argv(spec)), _glib_env(GLIB_MODES[rest]))
    if head in ("lib", "malloc"):
        if head == "lib" and not rest:
            raise ImplUnavailable("lib: needs a path, e.g. lib:./libmyslice.so")
        if head == "malloc" and rest:
            raise ImplUnavailable(f"malloc takes no argument, got {spec!r}")
        return _worker(spec, tuple(worker_argv(spec)), dict(os.environ))
    if head == "cmd":
        argv = tuple(shlex.split(rest))
        if not argv:
            raise ImplUnavailable("cmd: needs a program, e.g. cmd:'./my-impl --flag'")
        return _worker(spec, argv, dict(os.environ))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == spec:
            try:
                obj = ep.load()
            except Exception as exc:
                raise ImplUnavailable(f"entry point {spec!r} failed to load: {exc}") from exc
            return _in_process(spec, _as_factory(obj, spec), spec)
    raise ImplUnavailable(f"unknown implementation {spec!r} (see `memslice-conformance list`)")


def _worker(spec: str, argv: tuple[str, ...], env: Mapping[str, str]) -> Implementation:
    """Probe a worker's ``hello`` under the same memory cap as the sessions (LOAD-009)."""
    from memslice_conformance.impl.worker import WorkerClient, memory_limit_for

    client = WorkerClient(argv, env, memory_limit=memory_limit_for(spec))
    client.start()
    try:
        hello = client.hello()
    finally:
        client.close()
    return Implementation(
        spec, hello.implementation, "worker", frozenset(hello.profiles) | {"core"},
        argv=argv, env=dict(env), notes=hello.notes,
    )


def _lib_claims(path: str) -> frozenset[str]:
    """:data:`LIB_CLAIMS` plus what a library declares itself.

    A library claims more by exporting ``const char *memslice_conformance_profiles``,
    a comma-separated list (e.g. ``"reuse,debug-blocks"``); unknown names are
    ignored rather than trusted.
    """
    import ctypes

    from memslice_conformance.impl import native

    try:
        library = native.load_library(path)
        declared = ctypes.c_char_p.in_dll(library, "memslice_conformance_profiles")
    except ValueError:  # the symbol is optional
        return LIB_CLAIMS
    names = (declared.value or b"").decode("utf-8", "replace").split(",")
    return LIB_CLAIMS | (frozenset(n.strip() for n in names) & ALL_PROFILES)


def make_local(spec: str) -> tuple[SliceAllocator, str, frozenset[str], tuple[str, ...]]:
    """Build the implementation inside this process (used by the worker).

    Returns the allocator, its display name, the profiles it claims and notes
    for the user (e.g. why ``config`` is not claimed).
    """
    from memslice_conformance.impl import native

    head, _, rest = spec.partition(":")
    try:
        if head == "glib":
            mode = GLIB_MODES.get(rest, None)
            # libglib reads G_SLICE in its load-time constructor: set it first.
            os.environ.pop("G_SLICE", None)
            if mode is not None:
                os.environ["G_SLICE"] = mode
            impl: SliceAllocator = native.open_library(native.GLIB_SONAME, name=spec)
            return impl, spec, BUILTIN_CLAIMS[rest], ()
        if head == "lib":
            library = native.open_library(rest, name=spec)
            claims = _lib_claims(rest)
            notes: tuple[str, ...] = ()
            exported = library.config_symbols()
            if isinstance(library, native.ConfigurableLibSliceAllocator):
                claims |= {"config"}
            elif exported:
                absent = [native.CONFIG_SYMBOLS[s] for s in native.CONFIG_SYMBOLS
                          if s not in exported]
                notes = (
                    "the config profile is not claimed: the library exports "
                    f"{', '.join(exported)} but not " + " ".join(absent) + " (LOAD-003)",
                )
            return library, spec, claims, notes
        if head == "malloc":
            return native.MallocSliceAllocator(), "malloc", MALLOC_CLAIMS, ()
    except native.LoadError as exc:
        raise ImplUnavailable(str(exc)) from exc
    resolved = resolve(spec)
    if resolved.factory is None:
        raise ImplUnavailable(f"{spec!r} cannot be hosted in a worker")
    return resolved.factory(), resolved.name, resolved.profiles, ()
