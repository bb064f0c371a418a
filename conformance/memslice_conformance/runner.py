"""The suite as a library: ``run_conformance(impl, ...) -> Report``.

Rules and theory of operation
-----------------------------
::

    run_conformance("lib:./libx.so", profiles=["core"], seed=0)
      ├── resolve impl (ImplUnavailable -> the CLI exits 2)
      ├── for each requested profile it claims, for each check:
      │     sweep    -> one fresh session, deterministic steps
      │     machine  -> Hypothesis state machine, fresh session per example
      │     threads  -> Hypothesis-generated concurrent programs
      │     failure  -> StepFailure (clauses, kind) + minimal trace, replayed
      │                 once more to confirm it reproduces; next check goes on
      └── one record per clause: pass / fail / not-checked / not-claimed

A crash or hang fails the check that was running and only that check; the
next check opens a new session (a new worker process).  After the first hang
the per-exchange deadline drops, so a hanging implementation cannot eat the
run's time budget.  Hypothesis runs seeded (``seed``, default 0) with no
example database: the same seed gives the same run.

``conforming`` is true iff at least one check ran and no check of a
claimed, requested profile failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test

from . import coverage
from .blame import blame
from .failures import HangAbort, ImplHang, ImplUnavailable
from .impls import Implementation, resolve
from .machine import Recorder, build_machine
from .model import Checker, StepFailure, failure_of
from .profiles import CHECKS, CUSTOM_RUNNERS, PROFILES, NotChecked, expand_profiles
from .session import Session, SessionFactory
from .spec import Spec, SpecError, load_spec
from .sweeps import run_sweep
from .threads import Program, programs, run_program
from .trace import Trace, replay, save_trace

__all__ = [
    "DEFAULT_MAX_EXAMPLES",
    "CheckResult",
    "ClauseResult",
    "Report",
    "run_conformance",
]

#: Examples of the state machine per run by default (threads get a quarter).
DEFAULT_MAX_EXAMPLES: Final = 80
STEPS_PER_EXAMPLE: Final = 40
#: Seconds Hypothesis may spend shrinking one failure of the machine / threads.
SHRINK_SECONDS: Final = {"machine": 12.0, "threads": 6.0}
_FIRST_DEADLINE: Final = 10.0
_AFTER_HANG_DEADLINE: Final = 3.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    profile: str
    status: str  # "pass" | "fail" | "not-checked"
    seconds: float
    examples: int
    failure: StepFailure | None = None
    trace: Trace | None = None
    reproduced: bool | None = None
    trace_path: str | None = None
    #: Why a "not-checked" check could not be done.
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ClauseResult:
    """The verdict on one clause."""

    id: str
    level: str
    title: str
    profile: str
    status: str  # "pass" | "fail" | "not-checked" | "not-claimed"
    checks: tuple[str, ...]
    failed_checks: tuple[str, ...] = ()
    #: Why a "not-checked" clause was not checked (see memslice_conformance.coverage).
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a run found; see :mod:`memslice_conformance.report`."""

    impl: str
    implementation: str
    profiles: tuple[str, ...]
    claimed: tuple[str, ...]
    seed: int
    max_examples: int
    versions: dict[str, str]
    checks: tuple[CheckResult, ...]
    clauses: tuple[ClauseResult, ...]
    seconds: float
    conforming: bool = field(default=False)


def _suite_version() -> str:
    try:
        return version("memslice")
    except PackageNotFoundError:
        return "unknown"


def _spec_clauses() -> dict[str, tuple[str, str]] | None:
    """clause id -> (level, title), or None when the spec cannot be read."""
    spec = _load_spec()
    if spec is None:
        return None
    return {cid: (c.level, c.title) for cid, c in spec.clauses.items()}


def _load_spec() -> Spec | None:
    try:
        return load_spec()
    except (SpecError, OSError):
        return None


#: Core MUST clauses that belong to another profile's checks.
_NOT_CORE_PREFIXES: Final = ("DEBUG",)


def _profile_clauses(
    profile: str, spec: dict[str, tuple[str, str]] | None
) -> dict[str, tuple[str, str]]:
    """The clauses a profile answers for: from the spec, plus what its checks cite."""
    info = PROFILES[profile]
    cited = {c for name in info.checks for c in CHECKS[name].clauses}
    if spec is None:
        return {c: ("MUST", "") for c in sorted(cited)}
    chosen: dict[str, tuple[str, str]] = {}
    if profile == "core":
        loaded = _load_spec()
        assert loaded is not None
        for clause in loaded.core_must_clauses():
            if clause.prefix not in _NOT_CORE_PREFIXES:
                chosen[clause.id] = (clause.level, clause.title)
    else:
        for cid, (level, title) in spec.items():
            if level in info.levels or cid.split("-")[0] in info.prefixes:
                chosen[cid] = (level, title)
    for cid in cited:
        if cid in spec:
            chosen[cid] = spec[cid]
    return dict(sorted(chosen.items(), key=lambda kv: _clause_order(kv[0])))


def _clause_order(cid: str) -> tuple[str, int]:
    prefix, _, number = cid.partition("-")
    return prefix, int(number) if number.isdigit() else 0


@contextlib.contextmanager
def _shrink_budget(seconds: float) -> Iterator[None]:
    """Cap Hypothesis's shrinking time for one run.

    Every shrink attempt against a worker costs a fresh process, so the
    default cap (minutes) would blow the 60 s budget of a run.  Hypothesis
    has no public setting for it; its engine reads the module constant
    ``MAX_SHRINKING_SECONDS`` when shrinking starts, so it is set for the
    duration of the run and restored after.  If a future Hypothesis drops
    the constant, shrinking simply keeps its own default.
    """
    from hypothesis.internal.conjecture import engine

    previous = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    if previous is None:
        yield
        return
    engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = previous


class _Run:
    def __init__(
        self,
        impl: Implementation,
        max_examples: int,
        seed: int,
        trace_dir: Path | None,
        progress: Callable[[str, str], None] | None,
    ) -> None:
        self.impl = impl
        self.max_examples = max_examples
        self.seed = seed
        self.trace_dir = trace_dir
        self.progress = progress or (lambda check, status: None)
        self.deadline = _FIRST_DEADLINE
        self.shrink = dict(SHRINK_SECONDS)

    def _settings(self, examples: int) -> settings:
        return settings(
            max_examples=examples,
            stateful_step_count=STEPS_PER_EXAMPLE,
            deadline=None,
            database=None,
            # Explicit, so a derandomising settings profile loaded by the
            # caller (the project's "ci" one) cannot override --seed.
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )

    def run_check(self, name: str) -> CheckResult:
        info = CHECKS[name]
        factory = SessionFactory(self.impl, deadline=self.deadline)
        recorder = Recorder()
        started = time.monotonic()
        coverage.begin(name)
        self.progress(name, "running")
        failure: StepFailure | None = None
        checker: Checker | None = None
        examples = 1
        note: str | None = None
        try:
            if info.kind == "sweep":
                run_sweep(name, factory, self.seed)
            elif info.kind == "custom":
                CUSTOM_RUNNERS[name](self.impl, self.seed, self.max_examples)
            elif info.kind == "machine":
                with _shrink_budget(self.shrink["machine"]):
                    self._run_machine(factory, recorder)
            else:
                with _shrink_budget(self.shrink["threads"]):
                    self._run_threads(factory, recorder)
        except NotChecked as reason:
            note = str(reason)
        except HangAbort as abort:
            failure = failure_of(abort.hang)
            checker = recorder.last
        except Exception as exc:
            failure = failure_of(exc)
            checker = getattr(exc, "checker", None) or recorder.last
            if not failure.clauses:
                failure = StepFailure(
                    info.clauses, f"the check itself failed: {failure.message}", "suite-error"
                )
        finally:
            factory.close()
        examples = max(examples, recorder.examples)
        if failure is not None and failure.kind == "hang":
            self.deadline = min(self.deadline, _AFTER_HANG_DEADLINE)
        seconds = time.monotonic() - started
        if note is not None:
            self.progress(name, "not-checked")
            return CheckResult(name, info.profile, "not-checked", seconds, 0, note=note)
        if failure is None:
            self.progress(name, "pass")
            return CheckResult(name, info.profile, "pass", seconds, examples)
        trace = None
        reproduced: bool | None = None
        path: str | None = None
        if checker is not None:
            trace = Trace(
                name,
                self.impl.spec,
                self.seed,
                failure,
                tuple(tuple(step) for step in checker.trace),
            )
            if failure.kind != "hang":
                again = SessionFactory(self.impl, deadline=self.deadline)
                try:
                    reproduced = replay(trace, again) is not None
                finally:
                    again.close()
                if reproduced:  # COVER-005: name the earlier step the failure needed
                    caused = blame(trace, lambda: SessionFactory(self.impl, self.deadline))
                    if caused is not None:
                        failure = caused
                        trace = Trace(trace.check, trace.impl, trace.seed, failure, trace.steps)
            if self.trace_dir is not None:
                safe = self.impl.spec.replace("/", "_").replace(":", "_").replace(" ", "_")
                path = str(save_trace(trace, self.trace_dir / f"{safe}-{name}.json"))
        self.progress(name, "fail")
        return CheckResult(
            name,
            info.profile,
            "fail",
            time.monotonic() - started,
            examples,
            failure,
            trace,
            reproduced,
            path,
        )

    def _run_machine(self, factory: SessionFactory, recorder: Recorder) -> None:
        machine = build_machine(factory, recorder)
        run_state_machine_as_test(  # type: ignore[no-untyped-call]
            hypothesis_seed(self.seed)(machine),
            settings=self._settings(self.max_examples),
        )

    def _run_threads(self, factory: SessionFactory, recorder: Recorder) -> None:
        budget = max(4, self.max_examples // 4)

        @hypothesis_seed(self.seed)
        @self._settings(budget)
        @given(programs())
        def threads_check(program: Program) -> None:
            session: Session = factory.open()
            checker = Checker(session)
            recorder.last = checker
            recorder.examples += 1
            try:
                run_program(checker, program)
            except ImplHang as exc:
                raise HangAbort(exc) from exc
            finally:
                session.close()

        threads_check()


def run_conformance(
    impl: str | Implementation,
    profiles: Sequence[str] = ("core",),
    max_examples: int | None = None,
    seed: int = 0,
    trace_dir: Path | None = None,
    progress: Callable[[str, str], None] | None = None,
    checks: Sequence[str] | None = None,
    deadline: float = _FIRST_DEADLINE,
    shrink_seconds: float | None = None,
) -> Report:
    """Check ``impl`` against ``profiles``; never raises for a bad implementation.

    ``deadline`` is the seconds an exchange may take before the
    implementation counts as hung; ``shrink_seconds`` caps Hypothesis's
    shrinking per check (default :data:`SHRINK_SECONDS`).  Raises
    :class:`ImplUnavailable` when the implementation cannot be loaded
    and ``ValueError`` for unknown profiles or checks.
    """
    started = time.monotonic()
    wanted = expand_profiles(list(profiles))
    resolved = resolve(impl) if isinstance(impl, str) else impl
    examples = DEFAULT_MAX_EXAMPLES if max_examples is None else max_examples
    if checks is not None:
        unknown = [c for c in checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown checks: {', '.join(unknown)}")
    run = _Run(resolved, examples, seed, trace_dir, progress)
    run.deadline = deadline
    if shrink_seconds is not None:
        run.shrink = {kind: shrink_seconds for kind in SHRINK_SECONDS}
    results: list[CheckResult] = []
    coverage.reset()
    for profile in wanted:
        if profile not in resolved.profiles:
            continue
        for name in PROFILES[profile].checks:
            if checks is not None and name not in checks:
                continue
            results.append(run.run_check(name))
    spec = _spec_clauses()
    clause_results: list[ClauseResult] = []
    for profile in wanted:
        claimed = profile in resolved.profiles
        for cid, (level, title) in _profile_clauses(profile, spec).items():
            covering = tuple(
                r.name
                for r in results
                if r.profile == profile
                and r.status != "not-checked"
                and cid in CHECKS[r.name].clauses
            )
            failed = tuple(
                r.name
                for r in results
                if r.profile == profile and r.failure is not None and cid in r.failure.clauses
            )
            if not claimed:
                status = "not-claimed"
            elif failed:
                status = "fail"
            elif covering:
                status = "pass"
            else:
                status = "not-checked"
            clause_results.append(
                ClauseResult(cid, level, title, profile, status, covering, failed)
            )
    clause_results = coverage.settle(clause_results, results)  # COVER-001..COVER-005
    # A run in which no check passed (only unclaimed profiles) does not
    # count as conforming: "not claimed" is never "passed".
    conforming = any(r.status == "pass" for r in results) and all(
        r.status != "fail" for r in results
    )
    return Report(
        impl=resolved.spec,
        implementation=resolved.name,
        profiles=wanted,
        claimed=tuple(sorted(resolved.profiles)),
        seed=seed,
        max_examples=examples,
        versions={
            "suite": _suite_version(),
            "spec": _spec_version(),
            "protocol": "memslice-jsonl/1",
        },
        checks=tuple(results),
        clauses=tuple(clause_results),
        seconds=time.monotonic() - started,
        conforming=conforming,
    )


def _spec_version() -> str:
    """The spec's declared version if it has one, else a digest of its text.

    A digest pins exactly which clause texts a report was checked against.
    """
    from . import spec as spec_module

    declared = getattr(spec_module, "SPEC_VERSION", None)
    if declared is not None:
        return str(declared)
    spec = _load_spec()
    if spec is None or spec.directory is None:
        return "unknown"
    digest = hashlib.sha256()
    for path in sorted(spec.directory.glob("*.md")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()[:16]} ({len(spec.clauses)} clauses)"


__all__ += ["ImplUnavailable"]
