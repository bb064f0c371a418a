"""Conformance profiles and the checks that make them up.

Rules and theory of operation
-----------------------------
A *profile* is a named set of clauses plus the checks that exercise them.
An implementation *claims* profiles (``hello.profiles`` or the Python
object's ``profiles``); ``core`` is claimed by everyone::

    profile        clauses                          checks
    core           the spec's core MUST clauses     edges, sizes_sweep, chain_sweep,
                   (CONF and DEBUG excluded)        machine, threads, thread_churn, hammer
    concurrency    CONT, the core thread clauses    stress (native driver or Python threads)
    config         CONF-002/004/010/011             config (the optional configuration API)
    glib-2.74      every glib-2.74 clause            layout (traces vs the reference oracle)
    debug-blocks   DEBUG                            debug_blocks (six bad releases)
    reuse          MAG, DEPOT                       reuse (bounded reuse), trim (expiry)

The five non-core profiles live in ``profile_concurrency``, ``profile_config``,
``profile_layout``, ``profile_debug_blocks`` and ``profile_reuse``, registered
at the end of this module.  The configuration API is optional (LOAD-003), so
its MUST clauses bind only implementations that claim ``config``
(:data:`PROFILE_PREFIXES`); no ``core`` check cites them.  A custom check
that cannot be done on an implementation in bounded time raises
:class:`NotChecked` with the reason: its clauses are then reported ``not-checked``, never passed.

Invariant: a profile that is requested but not claimed is reported as
``not-claimed`` clause by clause, never as passed; a claimed profile whose
checks are not shipped yet reports its clauses as ``not-checked``.

New checks slot in with :func:`register_check`: a function that receives the
resolved implementation, the seed and the example budget, and raises
:class:`~memslice_conformance.failures.Violation` (or lets an
``ImplFailure`` through) when the implementation breaks a clause.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from memslice_conformance.impl.impls import Implementation

__all__ = [
    "CHECKS",
    "CUSTOM_RUNNERS",
    "PROFILES",
    "PROFILE_PREFIXES",
    "CheckInfo",
    "NotChecked",
    "Profile",
    "expand_profiles",
    "register_check",
    "rerun_command",
    "untraced",
]


@dataclass(frozen=True, slots=True)
class CheckInfo:
    """One check of a profile: its name, what it covers, how it searches."""

    name: str
    profile: str
    clauses: tuple[str, ...]
    kind: str  # "sweep" | "machine" | "threads" | "custom"
    description: str


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    #: Clause levels and prefixes that belong to the profile (from the spec).
    levels: tuple[str, ...]
    prefixes: tuple[str, ...]
    checks: tuple[str, ...]


CHECKS: Final[dict[str, CheckInfo]] = {
    c.name: c
    for c in (
        CheckInfo(
            "edges",
            "core",
            ("API-001", "API-007"),
            "sweep",
            "size 0, NULL frees and NULL chains",
        ),
        CheckInfo(
            "sizes_sweep",
            "core",
            ("API-001", "API-002", "API-003", "API-004", "API-005", "API-006", "API-013"),
            "sweep",
            "every size 1..1200 and malloc-path sizes; recycled memory and alloc0",
        ),
        CheckInfo(
            "chain_sweep",
            "core",
            ("API-008", "API-005", "API-009"),
            "sweep",
            "chains at every field offset, both sides of each route edge",
        ),
        CheckInfo(
            "machine",
            "core",
            (
                "API-001", "API-002", "API-003", "API-004", "API-005", "API-006",
                "API-007", "API-008", "API-009", "EXIT-001", "EXIT-005",
            ),
            "machine",
            "Hypothesis state machine over the live-block model, four threads",
        ),
        CheckInfo(
            "threads",
            "core",
            ("API-004", "API-005", "API-009", "EXIT-001", "EXIT-005"),
            "threads",
            "concurrent per-thread programs with hand-offs and exits",
        ),
        CheckInfo(
            "thread_churn",
            "core",
            ("API-009", "EXIT-001", "EXIT-005", "API-005"),
            "sweep",
            "generations of threads that allocate, hand over, exit and are replaced",
        ),
        CheckInfo(
            "hammer",
            "core",
            ("API-020", "API-004", "API-005"),
            "sweep",
            "GLib's memory hammer: 1200 live blocks, half replaced per round",
        ),
    )
}

PROFILES: Final[dict[str, Profile]] = {
    p.name: p
    for p in (
        Profile(
            "core",
            "what every slice allocator must do",
            ("MUST",),
            (),
            ("edges", "sizes_sweep", "chain_sweep", "machine", "threads", "thread_churn",
             "hammer"),
        ),
        Profile("concurrency", "correct under truly parallel threads", (), ("CONT",), ()),
        # Its clauses are the ones its check cites: the other CONF clauses are
        # glib-2.74 facts or a SHOULD about documentation (CONF-017).
        Profile("config", "the optional configuration API (set/get_config)", (), (), ()),
        Profile("glib-2.74", "GLib 2.74's layout and timing", ("glib-2.74",), (), ()),
        Profile("debug-blocks", "the debug-blocks checker", (), ("DEBUG",), ()),
        Profile("reuse", "magazine and depot reuse behaviour", (), ("MAG", "DEPOT"), ()),
    )
}


#: Prefixes whose MUST clauses bind an optional profile, not ``core``: the
#: configuration API is optional (LOAD-003), debug-blocks is a mode.
PROFILE_PREFIXES: Final[dict[str, str]] = {"CONF": "config", "DEBUG": "debug-blocks"}


class NotChecked(Exception):
    """A custom check that cannot be done on this implementation; ``str`` says why."""


#: A custom check: (implementation, seed, max_examples) -> None, raising on failure.
CustomRunner = Callable[["Implementation", int, int], None]

#: check name -> runner, for checks of kind "custom".
CUSTOM_RUNNERS: Final[dict[str, CustomRunner]] = {}


def register_check(info: CheckInfo, runner: CustomRunner) -> None:
    """Add a custom check to its profile (issue 4's profiles plug in here)."""
    if info.profile not in PROFILES:
        raise ValueError(f"unknown profile {info.profile!r}")
    custom = replace(info, kind="custom")
    CHECKS[custom.name] = custom
    CUSTOM_RUNNERS[custom.name] = runner
    profile = PROFILES[custom.profile]
    if custom.name not in profile.checks:
        PROFILES[custom.profile] = replace(profile, checks=(*profile.checks, custom.name))


def rerun_command(impl: str, check: str, seed: int, max_examples: int | None = None) -> str:
    """The shell command that reruns ``check`` alone on ``impl`` (RUN-014).

    For the failures no trace can hold: the message ends with it, quoted so
    that it can be pasted as it is.  ``max_examples`` is given for the
    checks whose work depends on it.
    """
    profile = CHECKS[check].profile if check in CHECKS else "core"
    words = ["memslice-conformance", "run", "--impl", impl, "--profile", profile,
             "--check", check, "--seed", str(seed)]
    if max_examples is not None:
        words += ["--max-examples", str(max_examples)]
    return shlex.join(words)


def untraced(message: str, impl: str, check: str, seed: int, why: str,
             max_examples: int | None = None) -> str:
    """``message`` for a failure no trace can hold: why, and how to rerun it (RUN-014)."""
    command = rerun_command(impl, check, seed, max_examples)
    return f"{message} [no replayable trace: {why}; rerun this check alone: {command}]"


def expand_profiles(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``all`` means every profile; unknown names raise ``ValueError``."""
    out: list[str] = []
    for name in names:
        chosen = list(PROFILES) if name == "all" else [name]
        for item in chosen:
            if item not in PROFILES:
                raise ValueError(f"unknown profile {item!r}; known: all, {', '.join(PROFILES)}")
            if item not in out:
                out.append(item)
    return tuple(out)


def _register_builtin() -> None:
    # Imported here, not at the top: the profile modules import this one,
    # and each registers its checks as it loads.
    from memslice_conformance.profiles import (  # noqa: F401
        concurrency,
        config,
        contention_triple,
        debug_blocks,
        failure_paths,
        layout,
        reuse,
        scale,
    )


_register_builtin()
