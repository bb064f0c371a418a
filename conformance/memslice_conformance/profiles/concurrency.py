"""The ``concurrency`` profile: the core thread clauses under truly parallel threads.

Rules and theory of operation
-----------------------------
Python threads calling a C library through ctypes hardly ever overlap inside
it, so for native implementations the check hands the library to the native
stress driver (:mod:`memslice_conformance.checks.stress`), whose POSIX threads run
really at once; Python implementations get long generated thread programs
(:mod:`memslice_conformance.checks.threads`) on real threads::

    implementation            how the "stress" check runs it
    glib[:MODE]               run_stress(libglib-2.0.so.0, G_SLICE=MODE)  x rounds
    lib:PATH                  run_stress(PATH, G_SLICE from its environment) x rounds
    malloc                    run_stress(native/malloc_slice.c built shared) x rounds
    reference, py:, worker:,  seeded random thread programs (4 threads, 10 rounds
    cmd:                      each) through a fresh session per program

Each driver round uses its own seed derived from the run's seed, so rounds
explore different interleavings and the same ``--seed`` replays the same
rounds.  Four rounds, about a second of CPU each: on this project's 2-core
test machine a narrow publish-before-link race
(``tests/conformance/planted/slab.c -DBUG_RACE``) crashed the driver on 20
of 20 seeds, 16 of them in the first round, none later than the third.  A
failing round's seed is rerun for up to ten seconds, and the report says
whether it failed again.
A crash, hang, a block handed out twice while live or a changed live byte
fails API-004 / API-005 / API-009 / EXIT-001 / EXIT-005.
"""

from __future__ import annotations

import random
from typing import Final

from memslice_conformance.checks import coverage
from memslice_conformance.checks.model import Checker
from memslice_conformance.checks.stress import compile_native, rerun_stress, run_stress
from memslice_conformance.checks.threads import CLAUSES, Program, Round, ThreadTurn, run_program
from memslice_conformance.failures import Violation
from memslice_conformance.impl.impls import Implementation
from memslice_conformance.impl.session import SessionFactory
from memslice_conformance.profiles.registry import CheckInfo, register_check, untraced

__all__ = ["DRIVER_ROUNDS", "INFO", "check_stress", "native_target", "random_program"]

#: Driver runs per check (each with its own seed).
DRIVER_ROUNDS: Final = 4
_DRIVER_OPERATIONS: Final = 20000
#: Seconds spent rerunning a failed seed to show whether it reproduces.
_RERUN_SECONDS: Final = 10.0
_SIZES: Final = (1, 8, 16, 24, 40, 96, 100, 256, 500, 1000, 1008, 1009, 2000, 5000)

INFO: Final = CheckInfo(
    "stress",
    "concurrency",
    CLAUSES,
    "custom",
    "native stress driver (C impls) or long thread programs (Python impls), several seeds",
)


def native_target(impl: Implementation) -> tuple[str, dict[str, str]] | None:
    """The library the native driver loads for ``impl`` and its ``G_SLICE``; None if none."""
    head, _, rest = impl.spec.partition(":")
    mode = impl.env.get("G_SLICE", "")
    if head == "glib":
        from memslice_conformance.impl.native import GLIB_SONAME

        return GLIB_SONAME, {"G_SLICE": rest}
    if head == "lib":
        return rest, {"G_SLICE": mode}
    if head == "malloc":
        return str(compile_native("malloc_slice.c", shared=True)), {"G_SLICE": mode}
    return None


def random_program(rng: random.Random, threads: int = 4, rounds: int = 10) -> Program:
    """A long thread program (more rounds than the core's generated ones)."""
    made = []
    for _ in range(rounds):
        turns = tuple(
            ThreadTurn(
                allocs=tuple(
                    (rng.choice(("alloc", "alloc0")), rng.choice(_SIZES))
                    for _ in range(rng.randrange(4, 40))
                ),
                free_share=rng.choice((0.0, 0.25, 0.5, 1.0)),
                hand_off=rng.random() < 0.5,
                exit=rng.random() < 0.3,
            )
            for _ in range(threads)
        )
        made.append(Round(turns))
    return Program(tuple(made))


def check_stress(impl: Implementation, seed: int, max_examples: int) -> None:
    """The ``stress`` check (see the module doc)."""
    target = native_target(impl)
    if target is not None:
        library, env = target
        for round_ in range(DRIVER_ROUNDS):
            run = run_stress(
                library,
                env=env,
                seed=seed * 1000 + round_ + 1,
                operations=_DRIVER_OPERATIONS,
                timeout=120.0,
            )
            if not run.passed:
                message = f"native stress driver: {run.describe()}"
                if not run.timed_out and not run.error:
                    again, tries = rerun_stress(
                        run, _RERUN_SECONDS, env=env, operations=_DRIVER_OPERATIONS
                    )
                    message += (
                        f"\n  rerun of seed {run.seed}: failed again on rerun {tries}"
                        if again
                        else f"\n  rerun of seed {run.seed}: {tries} reruns in "
                        f"{_RERUN_SECONDS:.0f} s did not fail (a narrow race)"
                    )
                raise Violation(CLAUSES, untraced(
                    message, impl.spec, INFO.name, seed,
                    "the driver's POSIX threads race; the calls above are each thread's last"))
        for clause in CLAUSES:
            coverage.exercised(clause)
        return
    rng = random.Random(f"concurrency-{seed}")
    factory = SessionFactory(impl)
    try:
        for _ in range(max(2, max_examples // 10)):
            session = factory.open()
            checker = Checker(session)
            try:
                run_program(checker, random_program(rng))
            except BaseException as exc:
                # The runner shrinks and saves this checker's trace (RUN-007).
                exc.checker = checker  # type: ignore[attr-defined]
                raise
            finally:
                session.close()
    finally:
        factory.close()


register_check(INFO, check_stress)
