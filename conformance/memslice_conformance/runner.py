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

What stops a check, and what it becomes (RUN-003 .. RUN-005)::

    anything the implementation raises, BaseException included
      (SystemExit, KeyboardInterrupt from its code, RecursionError,
       an exception whose __str__ raises)          -> "fail" of that check
    the check's deadline (check_deadline)          -> "incomplete" check
    the run's deadline (run_deadline)              -> that check "incomplete",
                                                      the rest not run
    the user's Ctrl-C (SIGINT to the runner)       -> the same, run interrupted

Deadlines are enforced by ``SIGALRM`` when the run is on the main thread
(so they reach a ``py:`` factory that sleeps, the hello probe and custom
checks) and by the session wrapper otherwise.  A failing check's trace is
shrunk (:mod:`memslice_conformance.reporting.shrink`) within ``shrink_seconds``.

``status`` is ``"not-conforming"`` iff some check failed, else
``"incomplete"`` iff some selected check did not finish, else
``"conforming"`` iff at least one check passed (RUN-001); ``conforming`` is
``status == "conforming"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import signal
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test

from memslice_conformance.checks import coverage
from memslice_conformance.checks.machine import Recorder, build_machine
from memslice_conformance.checks.model import Checker, StepFailure, failure_of
from memslice_conformance.checks.sweeps import run_sweep
from memslice_conformance.checks.threads import Program, programs, run_program
from memslice_conformance.failures import HangAbort, ImplHang, ImplUnavailable, OutOfTime, safe_text
from memslice_conformance.impl.impls import Implementation, resolve
from memslice_conformance.impl.jsonl import Request
from memslice_conformance.impl.session import Response, Session, SessionFactory, WorkerSession
from memslice_conformance.lanes import plan_lanes, run_lanes
from memslice_conformance.limits import (
    DEFAULT_CHECK_DEADLINE,
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_RUN_DEADLINE,
    DEFAULT_SHRINK_SECONDS,
    EXCHANGE_DEADLINE,
)
from memslice_conformance.profiles.registry import (
    CHECKS,
    CUSTOM_RUNNERS,
    PROFILE_PREFIXES,
    PROFILES,
    NotChecked,
    expand_profiles,
)
from memslice_conformance.reporting.blame import blame
from memslice_conformance.reporting.results import CheckResult, ClauseResult, Report, failing_call
from memslice_conformance.reporting.shrink import Shrinker, WarmSessions
from memslice_conformance.reporting.trace import Trace, save_trace
from memslice_conformance.reporting.verdicts import settle
from memslice_conformance.spec import Spec, SpecError, load_spec

__all__ = [
    "DEFAULT_CHECK_DEADLINE",
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_RUN_DEADLINE",
    "DEFAULT_SHRINK_SECONDS",
    "CheckResult",
    "ClauseResult",
    "Report",
    "RunInterrupted",
    "clause_statuses",
    "failing_call",
    "resolve_within",
    "run_conformance",
    "selected_checks",
    "trace_file_name",
    "unloaded_report",
]

STEPS_PER_EXAMPLE: Final = 40
#: Seconds each check took on GLib 2.74 through the worker (``--profile all``,
#: one lane, scaled so the state machine is 10): only their proportions
#: matter, to balance parallel lanes (RUN-015).
EXPECTED_SECONDS: Final = {
    "machine": 10.0, "stress": 5.0, "scale": 4.2, "hammer": 3.9, "debug_blocks": 1.5,
    "sizes_sweep": 1.35, "layout": 1.0, "failure_paths": 0.7, "threads": 0.7, "reuse": 0.6,
    "chain_sweep": 0.5, "thread_churn": 0.35, "config": 0.25, "edges": 0.2,
    "contention_triple": 0.2,
}
#: Seconds Hypothesis may spend shrinking one failure of the machine / threads.
SHRINK_SECONDS: Final = {"machine": 12.0, "threads": 6.0}
_FIRST_DEADLINE: Final = EXCHANGE_DEADLINE
_AFTER_HANG_DEADLINE: Final = 3.0
#: Worker processes kept starting while a failure is shrunk (see WarmSessions).
_WARM_WORKERS: Final = 3


class RunInterrupted(BaseException):
    """The user pressed Ctrl-C (SIGINT delivered to the runner): stop, report "incomplete"."""


class LaneStopped(BaseException):
    """Another lane failed under fail-fast: this lane's check stops, "not run" (RUN-015)."""


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


#: Core MUST clauses that belong to another profile's checks (CONF: LOAD-003).
_NOT_CORE_PREFIXES: Final = tuple(PROFILE_PREFIXES)


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


@contextlib.contextmanager
def _time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`OutOfTime` in this thread after ``seconds`` (main thread only).

    ``SIGALRM`` interrupts whatever the main thread waits on (a sleeping
    ``py:`` factory, a hello probe, a custom check), which no cooperative
    check could reach.  Off the main thread this is a no-op and only the
    session wrapper's cooperative check applies.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise OutOfTime(what, seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    # Repeating: an exception raised where Python ignores it (a gc callback,
    # a __del__) would be lost; the next tick raises it again.
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001), 0.5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _User:
    """Tells the user's Ctrl-C apart from a KeyboardInterrupt the implementation raises."""

    def __init__(self) -> None:
        self.interrupted = False

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_sigint(signum: int, frame: object) -> None:
            self.interrupted = True
            raise RunInterrupted

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _TimedSession:
    """A session that refuses new exchanges once the check's time is up (RUN-005)."""

    def __init__(self, inner: Session, stop_at: float, what: str, seconds: float,
                 stopped: Callable[[], bool] = lambda: False) -> None:
        self.inner = inner
        self.stop_at = stop_at
        self.what = what
        self.seconds = seconds
        self.stopped = stopped

    def run(self, requests: Sequence[Request]) -> list[Response]:
        if time.monotonic() > self.stop_at:
            raise OutOfTime(self.what, self.seconds)
        if self.stopped():
            raise LaneStopped
        return self.inner.run(requests)

    def close(self) -> None:
        self.inner.close()

    def stderr_tail(self) -> str:
        return self.inner.stderr_tail()

    @property
    def optional_ops(self) -> frozenset[str]:
        return self.inner.optional_ops


class _TimedFactory(SessionFactory):
    """A :class:`SessionFactory` whose sessions stop at the check's deadline."""

    def __init__(self, impl: Implementation, deadline: float, stop_at: float, what: str,
                 seconds: float, stopped: Callable[[], bool] = lambda: False) -> None:
        super().__init__(impl, deadline=deadline)
        self.stop_at = stop_at
        self.what = what
        self.seconds = seconds
        self.stopped = stopped
        self._workers: list[WorkerSession] = []

    def open(self) -> Session:
        if time.monotonic() > self.stop_at:
            raise OutOfTime(self.what, self.seconds)
        inner = super().open()
        if isinstance(inner, WorkerSession):
            self._workers = [w for w in self._workers if w.client.alive]
            self._workers.append(inner)
        return _TimedSession(inner, self.stop_at, self.what, self.seconds, self.stopped)

    def close(self) -> None:
        """Also stop every worker a check left open (stopped by a deadline, say)."""
        super().close()
        for worker in self._workers:
            worker.close()
        self._workers.clear()


_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")


def trace_file_name(impl: str, check: str) -> str:
    """A short, safe file name for a check's trace (RUN-006): never "File name too long"."""
    digest = hashlib.sha256(impl.encode()).hexdigest()[:10]
    readable = _UNSAFE.sub("_", impl.rsplit("/", 1)[-1]).strip("._")[:32] or "impl"
    return f"{_UNSAFE.sub('_', check)[:32]}-{readable}-{digest}.json"


def _failure_from(exc: BaseException) -> StepFailure:
    """A failure record for anything an implementation raised, even a hostile exception."""
    try:
        return failure_of(exc)
    except BaseException:
        return StepFailure(tuple(getattr(exc, "clauses", ()) or ()),
                           f"implementation raised {safe_text(exc)}", "error")


_SUITE_DIR: Final = Path(__file__).resolve().parent
_STDLIB_DIR: Final = Path(sysconfig.get_paths()["stdlib"]).resolve()


def _raised_by_suite(exc: BaseException) -> bool:
    """Whether the innermost frame outside the standard library is the suite's own.

    An exception without clause IDs is either a bug of the suite or something
    an in-process implementation's code raised (an ``__str__`` that raises,
    say); only the first is reported as "the check itself failed".
    """
    innermost: Path | None = None
    tb = exc.__traceback__
    while tb is not None:
        path = Path(tb.tb_frame.f_code.co_filename).resolve()
        if not path.is_relative_to(_STDLIB_DIR):
            innermost = path
        tb = tb.tb_next
    return innermost is None or innermost.parent == _SUITE_DIR


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
        self.check_deadline = DEFAULT_CHECK_DEADLINE
        self.run_stop_at = time.monotonic() + DEFAULT_RUN_DEADLINE
        self.run_deadline = DEFAULT_RUN_DEADLINE
        self.shrink_seconds = DEFAULT_SHRINK_SECONDS
        self.user = _User()
        self.fail_fast = False
        #: Asked between exchanges: another lane failed under fail-fast (see run_lane).
        self.stop_requested: Callable[[], bool] = lambda: False

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

    def _limit(self, name: str) -> tuple[float, str, float]:
        """(seconds left for this check, what runs out, its stated deadline)."""
        run_left = self.run_stop_at - time.monotonic()
        if run_left < self.check_deadline:
            return run_left, "the run", self.run_deadline
        return self.check_deadline, f"check {name}", self.check_deadline

    def run_lane(
        self, names: Sequence[str], stop: Callable[[], bool]
    ) -> tuple[list[CheckResult], str]:
        """Run ``names`` one by one; (results, why the lane stopped early or "").

        Stops for the user's Ctrl-C, the run's deadline, ``fail_fast`` and
        ``stop()`` (another lane failed under fail-fast: see lanes).
        """
        results: list[CheckResult] = []
        self.stop_requested = stop
        try:
            for name in names:
                if stop():
                    break
                result = self.run_check(name)
                results.append(result)
                if self.user.interrupted:
                    return results, "interrupted by the user (Ctrl-C)"
                if result.status == "incomplete" and time.monotonic() >= self.run_stop_at:
                    return results, f"the run's {self.run_deadline:g} s deadline passed"
                if self.fail_fast and result.status == "fail":
                    break
        except RunInterrupted:
            return results, "interrupted by the user (Ctrl-C)"
        except LaneStopped:
            pass  # the check that was running is "not run"
        return results, ""

    def run_check(self, name: str) -> CheckResult:
        info = CHECKS[name]
        seconds_left, what, stated = self._limit(name)
        started = time.monotonic()
        factory = _TimedFactory(self.impl, self.deadline, started + seconds_left, what, stated,
                                self.stop_requested)
        recorder = Recorder()
        coverage.begin(name)
        self.progress(name, "running")
        failure: StepFailure | None = None
        checker: Checker | None = None
        note: str | None = None
        out_of_time: OutOfTime | None = None
        try:
            with _time_limit(seconds_left, what if what == "the run" else f"check {name}"):
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
            note = safe_text(reason)
        except HangAbort as abort:
            self._stop_if_asked(abort)
            failure = failure_of(abort.hang)
            checker = recorder.last
        except OutOfTime as exc:
            out_of_time = exc
        except RunInterrupted:
            raise
        except KeyboardInterrupt as exc:
            if self.user.interrupted:
                raise RunInterrupted from exc
            failure = self._check_failure(info.clauses, exc)
            checker = recorder.last
        except BaseException as exc:
            self._stop_if_asked(exc)
            failure = self._check_failure(info.clauses, exc)
            checker = getattr(exc, "checker", None) or recorder.last
        finally:
            with contextlib.suppress(Exception):
                factory.close()
        if failure is not None and failure.kind == "hang":
            self.deadline = min(self.deadline, _AFTER_HANG_DEADLINE)
        seconds = time.monotonic() - started
        examples = max(1, recorder.examples)
        if out_of_time is not None:
            self.progress(name, "incomplete")
            return CheckResult(name, info.profile, "incomplete", seconds, recorder.examples,
                               note=safe_text(out_of_time))
        if note is not None:
            self.progress(name, "not-checked")
            return CheckResult(name, info.profile, "not-checked", seconds, 0, note=note)
        if failure is None:
            self.progress(name, "pass")
            return CheckResult(name, info.profile, "pass", seconds, examples)
        trace = None
        reproduced: bool | None = None
        path: str | None = None
        if checker is not None and checker.trace and failure.kind != "suite-error":
            trace = Trace(name, self.impl.spec, self.seed, failure,
                          tuple(tuple(step) for step in checker.trace))
            self.progress(name, "shrinking")
            trace, reproduced = self._shrink(trace)
            if reproduced and trace.failure is not None:
                # The shrunk trace's own failure: its message names its blocks.
                failure = trace.failure
            if reproduced:
                # COVER-005: name the earlier step (a late set_config, a thread
                # exit) whose effect the failing call met.
                caused = blame(trace, lambda: SessionFactory(self.impl, self.deadline))
                if caused is not None:
                    failure = caused
                    # Keep the failing call and the shrinker's record.
                    trace = dataclasses.replace(trace, failure=failure)
            if self.trace_dir is not None:
                target = self.trace_dir / trace_file_name(self.impl.spec, name)
                try:
                    path = str(save_trace(trace, target))
                except OSError as exc:
                    path = None
                    failure = StepFailure(
                        failure.clauses,
                        f"{failure.message} (the trace could not be saved: {exc.strerror})",
                        failure.kind,
                    )
        self.progress(name, "fail")
        return CheckResult(name, info.profile, "fail", time.monotonic() - started, examples,
                           failure, trace, reproduced, path)

    def _stop_if_asked(self, exc: BaseException) -> None:
        """Re-raise as a stop when the user's Ctrl-C or another lane's failure under
        fail-fast cut the check short, whatever ``exc`` it became on the way up:
        Hypothesis replays an example cut short and may then call the test flaky.
        The check did not finish; it did not fail (RUN-004, RUN-015)."""
        if self.user.interrupted:
            raise RunInterrupted from exc
        if self.stop_requested():
            raise LaneStopped from exc

    def _check_failure(self, clauses: tuple[str, ...], exc: BaseException) -> StepFailure:
        failure = _failure_from(exc)
        if failure.clauses:
            return failure
        if isinstance(exc, Exception) and not isinstance(exc, RecursionError) and (
            _raised_by_suite(exc)
        ):
            return StepFailure(clauses, f"the check itself failed: {failure.message}",
                               "suite-error")
        # SystemExit, KeyboardInterrupt, RecursionError and the like come from
        # the implementation's code: a failure of the running check (RUN-003).
        return StepFailure(clauses, f"implementation raised {type(exc).__name__}: "
                           f"{safe_text(exc)}", "error")

    def _shrink(self, trace: Trace) -> tuple[Trace, bool | None]:
        """Delta-debug a failing trace within the shrink budget (RUN-007)."""
        if trace.failure is not None and trace.failure.kind == "hang":
            return trace, None
        warm = 1 if self.impl.kind == "in-process" else _WARM_WORKERS
        factory = WarmSessions(
            [SessionFactory(self.impl, deadline=self.deadline) for _ in range(warm)])
        shrinker = Shrinker(trace, factory, self.shrink_seconds)
        try:
            # The budget is checked between replays, and each exchange of a
            # replay has its deadline: no alarm is needed here.
            result = shrinker.run()
        except RunInterrupted:
            # Keep the failure found and the best trace so far; the run
            # stops after this check (see run_conformance).
            result = shrinker.result()
        except BaseException:
            result = shrinker.result()
        finally:
            with contextlib.suppress(Exception):
                factory.close()
        return result.trace, result.reproduced

    def _run_machine(self, factory: SessionFactory, recorder: Recorder) -> None:
        machine = build_machine(factory, recorder)
        run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]
            hypothesis_seed(self.seed)(machine),  # type: ignore[arg-type,unused-ignore]
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


def resolve_within(spec: str, seconds: float = DEFAULT_CHECK_DEADLINE) -> Implementation:
    """:func:`resolve` under a deadline: a factory or hello probe that never returns
    raises :class:`ImplUnavailable` after ``seconds`` (RUN-005)."""
    try:
        with _time_limit(seconds, "loading the implementation"):
            return resolve(spec)
    except OutOfTime as exc:
        raise ImplUnavailable(f"{spec}: {safe_text(exc)}") from None
    except ImplUnavailable:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise ImplUnavailable(
            f"{spec}: loading raised {type(exc).__name__}: {safe_text(exc)}") from None


def clause_statuses(
    wanted: Sequence[str],
    claimed: frozenset[str],
    results: Sequence[CheckResult],
) -> list[ClauseResult]:
    """One verdict per clause of every requested profile, from the checks' results.

    The only place clause statuses are decided: a clause passes when a check
    that covers it finished without failure, fails when a failure cites it,
    and is never "pass" when its profile is not claimed.
    """
    spec = _spec_clauses()
    clause_results: list[ClauseResult] = []
    for profile in wanted:
        is_claimed = profile in claimed
        for cid, (level, title) in _profile_clauses(profile, spec).items():
            covering = tuple(
                r.name
                for r in results
                if r.profile == profile
                and r.status in ("pass", "fail")
                and cid in CHECKS[r.name].clauses
            )
            failed = tuple(
                r.name
                for r in results
                if r.profile == profile and r.failure is not None and cid in r.failure.clauses
            )
            if not is_claimed:
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
    return settle(clause_results, results)  # COVER-001..COVER-005


def selected_checks(
    impl: Implementation, profiles: Sequence[str], checks: Sequence[str] | None = None
) -> list[str]:
    """The checks a run of ``impl`` makes, in the run's order (RUN-015): those of
    each requested profile it claims, limited to ``checks`` when given."""
    return [
        name
        for profile in expand_profiles(list(profiles))
        if profile in impl.profiles
        for name in PROFILES[profile].checks
        if checks is None or name in checks
    ]


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
    *,
    check_deadline: float = DEFAULT_CHECK_DEADLINE,
    run_deadline: float = DEFAULT_RUN_DEADLINE,
    trace_shrink_seconds: float | None = None,
    fail_fast: bool = False,
    jobs: int = 1,
) -> Report:
    """Check ``impl`` against ``profiles``; never raises for a bad implementation.

    ``deadline`` is the seconds an exchange may take before the
    implementation counts as hung; ``shrink_seconds`` caps Hypothesis's
    shrinking per check (default :data:`SHRINK_SECONDS`);
    ``trace_shrink_seconds`` caps the delta debugging of each failing trace
    (RUN-007; default ``shrink_seconds`` if that is given, else
    :data:`DEFAULT_SHRINK_SECONDS`).  ``check_deadline`` and ``run_deadline`` bound each check and
    the whole run, loading included (RUN-005): a check that runs out of time
    is "incomplete", never passed.  ``fail_fast`` stops after the first
    failing check.  ``jobs`` > 1 runs the checks in that many parallel
    lanes (forked processes, RUN-015; :mod:`memslice_conformance.lanes`).
    The user's Ctrl-C ends the run early with status
    "incomplete" (RUN-004).  Raises :class:`ImplUnavailable` when the
    implementation cannot be loaded and ``ValueError`` for unknown profiles
    or checks.
    """
    started = time.monotonic()
    wanted = expand_profiles(list(profiles))
    if checks is not None:
        unknown = [c for c in checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown checks: {', '.join(unknown)}")
    resolved = (resolve_within(impl, min(check_deadline, run_deadline))
                if isinstance(impl, str) else impl)
    examples = DEFAULT_MAX_EXAMPLES if max_examples is None else max_examples
    run = _Run(resolved, examples, seed, trace_dir, progress)
    run.deadline = deadline
    run.check_deadline = check_deadline
    run.run_deadline = run_deadline
    run.run_stop_at = started + run_deadline
    run.fail_fast = fail_fast
    # One knob for callers in a hurry: a Hypothesis shrink cap also caps
    # the delta debugging, unless that has its own.
    if trace_shrink_seconds is None:
        trace_shrink_seconds = (
            DEFAULT_SHRINK_SECONDS if shrink_seconds is None else shrink_seconds
        )
    run.shrink_seconds = trace_shrink_seconds
    if shrink_seconds is not None:
        run.shrink = {kind: shrink_seconds for kind in SHRINK_SECONDS}
    selected = selected_checks(resolved, wanted, checks)
    coverage.reset()
    lanes = plan_lanes(selected, EXPECTED_SECONDS, jobs) if jobs > 1 else [selected]
    with run.user.watching():
        if len(lanes) > 1:
            outcome = run_lanes(lanes, run.run_lane, progress,
                                lambda report: setattr(run, "progress", report), fail_fast)
            reason = outcome.reason
            results = outcome.results + [
                CheckResult(name, CHECKS[name].profile, "incomplete", 0.0, 0,
                            note=f"not finished: {death}")
                for name, death in outcome.lost.items()
            ]
            # The run's order, whatever lane ran a check.
            results.sort(key=lambda r: selected.index(r.name))
        else:
            results, reason = run.run_lane(selected, lambda: False)
    not_run = [name for name in selected if name not in {r.name for r in results}]
    unfinished = [r for r in results if r.status == "incomplete"]
    if not reason and unfinished:
        reason = "; ".join(r.note or r.name for r in unfinished)
    if not_run and reason:
        reason += f"; not run: {', '.join(not_run)}"
    clause_results = clause_statuses(wanted, resolved.profiles, results)
    if any(r.status == "fail" for r in results):
        status = "not-conforming"
    elif reason:
        status = "incomplete"
    elif any(r.status == "pass" for r in results):
        status = "conforming"
    else:
        # Only unclaimed profiles, or nothing could be checked: "not claimed"
        # is never "passed".
        status = "not-conforming"
    return Report(
        impl=resolved.spec,
        implementation=resolved.name,
        profiles=wanted,
        claimed=tuple(sorted(resolved.profiles)),
        seed=seed,
        max_examples=examples,
        versions=_versions(),
        checks=tuple(results),
        clauses=tuple(clause_results),
        seconds=time.monotonic() - started,
        conforming=status == "conforming",
        status=status,
        limits=_limits(deadline, check_deadline, run_deadline, trace_shrink_seconds),
        incomplete_reason=reason,
    )


def unloaded_report(
    spec: str,
    load_error: str,
    profiles: Sequence[str] = ("core",),
    max_examples: int | None = None,
    seed: int = 0,
    seconds: float = 0.0,
    *,
    check_deadline: float = DEFAULT_CHECK_DEADLINE,
    run_deadline: float = DEFAULT_RUN_DEADLINE,
    trace_shrink_seconds: float = DEFAULT_SHRINK_SECONDS,
) -> Report:
    """The report of a run whose implementation could not be loaded (LOAD-012).

    No check ran, so none passed: the status is "incomplete", every clause of
    the requested profiles is "not-checked" with the reason, nothing is
    claimed, and ``load_error`` holds the same message the CLI prints.
    Raises ``ValueError`` for unknown profiles, as :func:`run_conformance` does.
    """
    wanted = expand_profiles(list(profiles))
    reason = f"no check ran: {load_error}"
    spec_clauses = _spec_clauses()
    clauses = tuple(
        ClauseResult(cid, level, title, profile, "not-checked", (), note=reason)
        for profile in wanted
        for cid, (level, title) in _profile_clauses(profile, spec_clauses).items()
    )
    return Report(
        impl=spec,
        implementation=spec,
        profiles=wanted,
        claimed=(),
        seed=seed,
        max_examples=DEFAULT_MAX_EXAMPLES if max_examples is None else max_examples,
        versions=_versions(),
        checks=(),
        clauses=clauses,
        seconds=seconds,
        conforming=False,
        status="incomplete",
        limits=_limits(EXCHANGE_DEADLINE, check_deadline, run_deadline, trace_shrink_seconds),
        incomplete_reason=reason,
        load_error=load_error,
    )


def _versions() -> dict[str, str]:
    return {"suite": _suite_version(), "spec": _spec_version(), "protocol": "memslice-jsonl/1"}


def _limits(exchange: float, check: float, run: float, shrink: float) -> dict[str, float]:
    return {
        "exchange_deadline_seconds": exchange,
        "check_deadline_seconds": check,
        "run_deadline_seconds": run,
        "shrink_seconds_per_failure": shrink,
    }


def _spec_version() -> str:
    """The spec's declared version if it has one, else a digest of its text.

    A digest pins exactly which clause texts a report was checked against.
    """
    from memslice_conformance import spec as spec_module

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
