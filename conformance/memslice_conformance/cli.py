"""``memslice-conformance``: the command line over :mod:`memslice_conformance.runner`.

Rules and theory of operation
-----------------------------
::

    memslice-conformance run [--impl IMPL] [--profile P ...] [--max-examples N]
                             [--seed S] [--report F.json] [--junit F.xml]
                             [--trace-dir DIR] [--check NAME ...] [--fail-fast]
                             [--check-deadline S] [--run-deadline S]
                             [--shrink-seconds S]
    memslice-conformance replay TRACE.json --impl IMPL [--print] [--emit-c FILE.c]
    memslice-conformance list [profiles|checks|clauses|impls]
    memslice-conformance validate-protocol --impl cmd:PROGRAM

Exit status (RUN-001, RUN-004): 0 the implementation conforms to the
requested profiles (or the replay no longer fails / the protocol is
valid); 1 some check failed (crashes and hangs included); 2 the
implementation could not be loaded, an argument, an output path or a trace
file is wrong; 3 the run is incomplete (a deadline passed or Ctrl-C) and
found no failure.  A run writes its report and JUnit file whatever its
outcome, even when the implementation cannot be loaded (LOAD-012); output
paths, profiles and check names are checked before anything loads (RUN-006).

``replay`` never runs what a trace names (RUN-002): the implementation
comes from ``--impl`` alone; ``--print`` and ``--emit-c`` need none.

The CLI is a thin layer: everything it prints comes from the library's
:class:`~memslice_conformance.runner.Report`.  It imports the runner, rich
and Hypothesis only once a command runs, so ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memslice_conformance.limits import (
    DEFAULT_CHECK_DEADLINE,
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_RUN_DEADLINE,
    DEFAULT_SHRINK_SECONDS,
)

if TYPE_CHECKING:
    from rich.console import Console

    from memslice_conformance.runner import Report

__all__ = ["EXIT_FAIL", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_UNAVAILABLE", "main"]

EXIT_OK, EXIT_FAIL, EXIT_UNAVAILABLE, EXIT_INCOMPLETE = 0, 1, 2, 3

def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _build_line(source: Path, impl: str | None) -> str:
    """How to build and run an --emit-c program against the library under test.

    ``-Wl,-rpath`` so that ``./a.out`` finds the library without LD_LIBRARY_PATH;
    for anything but a ``lib:`` path, ``libmyslice.so`` stands for your library.
    """
    folder, name = ".", "myslice"
    if impl is not None and impl.startswith("lib:"):
        library = Path(impl[4:])
        stem = library.name.split(".so")[0]
        if stem.startswith("lib") and len(stem) > 3:
            folder, name = str(library.parent), stem[3:]
    return (f"gcc {shlex.quote(str(source))} -L{shlex.quote(folder)} -l{shlex.quote(name)} "
            f"-Wl,-rpath,{shlex.quote(folder)} -lpthread && ./a.out")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memslice-conformance",
        description="Check a slice allocator against the memslice spec.",
        epilog="exit status: 0 conforming, 1 a check failed, 2 bad input (implementation, "
        "arguments, paths, trace), 3 incomplete (deadline or Ctrl-C, no failure found)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the conformance checks")
    run.add_argument("--impl", default="reference", help="implementation (default: reference)")
    run.add_argument("--profile", action="append", dest="profiles",
                     help="profile to check (repeatable; 'all' for every profile; default core)")
    run.add_argument("--max-examples", type=int, default=DEFAULT_MAX_EXAMPLES,
                     help="Hypothesis examples for the state machine "
                     f"(default {DEFAULT_MAX_EXAMPLES})")
    run.add_argument("--seed", type=int, default=0, help="seed (default 0: deterministic)")
    run.add_argument("--report", type=Path,
                     help="write the JSON report here (shape: the package's "
                     "schema/report-v1.json), even when the implementation cannot be loaded")
    run.add_argument("--junit", type=Path,
                     help="write JUnit XML here, even when the implementation cannot be loaded")
    run.add_argument("--trace-dir", type=Path, default=Path("memslice-traces"),
                     help="where failing traces are written (default ./memslice-traces)")
    run.add_argument("--check", action="append", dest="checks",
                     help="run only this check (repeatable; see `list checks`)")
    run.add_argument("--fail-fast", action="store_true",
                     help="stop after the first failing check")
    run.add_argument("--jobs", type=_positive, default=None, metavar="N",
                     help="run the checks in N parallel lanes (default: the cores this "
                     "process may use, at most 4, or 1 with --fail-fast; 1 runs them one "
                     "after another)")
    run.add_argument("--check-deadline", type=_seconds, default=DEFAULT_CHECK_DEADLINE,
                     help="seconds one check may take; past it the check is incomplete "
                     f"(default {DEFAULT_CHECK_DEADLINE:g})")
    run.add_argument("--run-deadline", type=_seconds, default=DEFAULT_RUN_DEADLINE,
                     help=f"seconds the whole run may take (default {DEFAULT_RUN_DEADLINE:g})")
    run.add_argument("--shrink-seconds", type=_seconds, default=DEFAULT_SHRINK_SECONDS,
                     help="seconds to shrink each failing trace "
                     f"(default {DEFAULT_SHRINK_SECONDS:g})")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    rep = sub.add_parser("replay", help="re-run a trace without Hypothesis, print it, or "
                         "write it as a C program")
    rep.add_argument("trace", type=Path)
    rep.add_argument("--impl", help="implementation to replay on (required to run the trace; "
                     "the trace's own 'impl' is never used)")
    rep.add_argument("--print", action="store_true", dest="print_steps",
                     help="print the trace's calls as C-like lines")
    rep.add_argument("--emit-c", type=Path, metavar="FILE.c",
                     help="write a standalone C program making the same calls through the "
                     "g_slice_* ABI and checking the same condition")
    lst = sub.add_parser("list", help="list profiles, checks, clauses or implementations")
    lst.add_argument("what", nargs="?", default="all",
                     choices=["all", "profiles", "checks", "clauses", "impls"])
    val = sub.add_parser("validate-protocol",
                         help="check that an implementation speaks memslice-jsonl v1")
    val.add_argument("--impl", required=True)
    return parser


def _console() -> Console:
    from rich.console import Console

    # Soft wrap: a long path or C line stays one line, so it can be copied.
    return Console(soft_wrap=True)


def _output_problem(path: Path, what: str) -> str | None:
    """Why ``path`` cannot take an output file, or None (RUN-006)."""
    try:
        return _path_problem(path, what)
    except OSError as exc:
        return f"{what} {path}: {exc.strerror or exc}"


def _path_problem(path: Path, what: str) -> str | None:
    if len(path.name.encode()) > 255:
        return f"{what} {path}: file name too long"
    if path.is_dir():
        return f"{what} {path} is a directory"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"{what} {path}: directory {parent} does not exist"
    if path.exists():
        if not os.access(path, os.W_OK):
            return f"{what} {path} is not writable"
    elif not os.access(parent, os.W_OK | os.X_OK):
        return f"{what} {path}: directory {parent} is not writable"
    return None


def _trace_dir_problem(path: Path) -> str | None:
    try:
        return _dir_problem(path)
    except OSError as exc:
        return f"--trace-dir {path}: {exc.strerror or exc}"


def _dir_problem(path: Path) -> str | None:
    if path.exists() and not path.is_dir():
        return f"--trace-dir {path} exists and is not a directory"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--trace-dir {path}: cannot create it: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"--trace-dir {path} is not writable"
    return None


def _run(args: argparse.Namespace) -> int:
    console = _console()
    if args.max_examples < 1:
        console.print("[red]--max-examples must be at least 1[/]")
        return EXIT_UNAVAILABLE
    problems = [
        problem
        for problem in (
            _output_problem(args.report, "--report") if args.report else None,
            _output_problem(args.junit, "--junit") if args.junit else None,
            _trace_dir_problem(args.trace_dir) if args.trace_dir else None,
        )
        if problem
    ]
    if problems:
        for problem in problems:
            console.print(f"[red]cannot write output:[/] {problem}", highlight=False)
        return EXIT_UNAVAILABLE
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

    from memslice_conformance.failures import ImplUnavailable
    from memslice_conformance.lanes import default_jobs
    from memslice_conformance.profiles.registry import CHECKS, expand_profiles
    from memslice_conformance.runner import resolve_within, run_conformance, selected_checks

    unknown = [c for c in args.checks or () if c not in CHECKS]
    if unknown:
        console.print(f"[red]unknown check(s):[/] {', '.join(unknown)}; known: "
                      f"{', '.join(sorted(CHECKS))}", highlight=False)
        return EXIT_UNAVAILABLE
    try:
        # Before loading, so that a report of a library that cannot be
        # loaded names the profiles asked for (LOAD-012).
        expand_profiles(args.profiles or ["core"])
    except ValueError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        return EXIT_UNAVAILABLE
    loading = time.monotonic()
    try:
        impl = resolve_within(args.impl, min(args.check_deadline, args.run_deadline))
    except ImplUnavailable as exc:
        console.print(f"[red]cannot load implementation:[/] {exc}", highlight=False)
        return _unloaded(args, console, str(exc), time.monotonic() - loading,
                         EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        console.print("[red]interrupted while loading the implementation[/]")
        return _unloaded(args, console, "interrupted by the user (Ctrl-C) while loading",
                         time.monotonic() - loading, EXIT_INCOMPLETE)
    for note in impl.notes:  # how it was loaded (LOAD-003, LOAD-005)
        console.print(f"note: {note}", markup=False, highlight=False)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, disable=args.quiet or not console.is_terminal, transient=True,
    ) as progress:
        tasks: dict[str, TaskID] = {}
        # Without a terminal, one line per finished check, in the run's order
        # whatever lane finished it first, so that two logs of one run compare.
        lines = _InOrder(selected_checks(impl, args.profiles or ["core"], args.checks),
                         console if not console.is_terminal and not args.quiet else None)

        def report_progress(check: str, status: str) -> None:
            if check not in tasks:
                tasks[check] = progress.add_task(f"{check}: {status}", total=1)
            else:
                progress.update(tasks[check], description=f"{check}: {status}",
                                completed=0 if status in ("running", "shrinking") else 1)
            if status not in ("running", "shrinking"):
                lines.finished(check, status)

        try:
            report = run_conformance(
                impl, profiles=args.profiles or ["core"], max_examples=args.max_examples,
                seed=args.seed, trace_dir=args.trace_dir, progress=report_progress,
                checks=args.checks, check_deadline=args.check_deadline,
                run_deadline=args.run_deadline, trace_shrink_seconds=args.shrink_seconds,
                fail_fast=args.fail_fast,
                # --fail-fast means the first failure in the run's order (RUN-009).
                jobs=args.jobs or (1 if args.fail_fast else default_jobs()),
            )
        except ValueError as exc:
            console.print(f"[red]{exc}[/]")
            return EXIT_UNAVAILABLE
        lines.flush()  # checks after one that did not run (fail-fast, a deadline)
    return _finish(report, args, console)


class _InOrder:
    """Progress lines printed in the run's order: a check's line waits for the
    lines of the checks before it (lanes finish them in any order)."""

    def __init__(self, order: list[str], console: Console | None) -> None:
        self.order = order
        self.console = console
        self.done: dict[str, str] = {}
        self.printed = 0

    def finished(self, check: str, status: str) -> None:
        self.done[check] = status
        while self.printed < len(self.order) and self.order[self.printed] in self.done:
            self._print(self.order[self.printed])
            self.printed += 1

    def flush(self) -> None:
        for check in self.order[self.printed:]:
            if check in self.done:
                self._print(check)
        self.printed = len(self.order)

    def _print(self, check: str) -> None:
        if self.console is not None:
            self.console.print(f"  {check}: {self.done[check]}", highlight=False)


def _unloaded(args: argparse.Namespace, console: Console, why: str, seconds: float,
              status: int) -> int:
    """Write the report files of a run whose implementation did not load (LOAD-012).

    The exit status stays ``status`` (2, or 3 for Ctrl-C): the files say the
    same as the message printed above them, for a CI job that keeps only files.
    """
    from memslice_conformance.runner import unloaded_report

    if not (args.report or args.junit):
        return status
    report = unloaded_report(
        args.impl, why, args.profiles or ["core"], args.max_examples, args.seed, seconds,
        check_deadline=args.check_deadline, run_deadline=args.run_deadline,
        trace_shrink_seconds=args.shrink_seconds,
    )
    written = _write_outputs(report, args, console)
    if written:
        console.print(f"no check ran; wrote {' and '.join(written)} saying so",
                      highlight=False)
    return status


def _write_outputs(report: Report, args: argparse.Namespace,
                   console: Console) -> list[str] | None:
    """Write the JSON report and JUnit file asked for; the paths written, None on failure.

    A path that cannot be written is said on the terminal (its problem was
    checked before the run, so this is a race or a full disk).
    """
    from memslice_conformance.reporting.report import to_json, to_junit

    written: list[str] = []
    try:
        if args.report:
            args.report.write_text(json.dumps(to_json(report), indent=1) + "\n")
            written.append(str(args.report))
        if args.junit:
            args.junit.write_text(to_junit(report))
            written.append(str(args.junit))
    except OSError as exc:
        console.print(f"[red]cannot write output:[/] {exc}", highlight=False)
        return None
    return written


def _finish(report: Report, args: argparse.Namespace, console: Console) -> int:
    """Print the verdict and write the report files, whatever the outcome."""
    from memslice_conformance.reporting.report import fail_lines, table

    console.print(table(report))
    for check in report.checks:
        if check.failure is not None:
            for line in fail_lines(check, report.impl):
                console.print(line, markup=False, highlight=False)
        elif check.status == "incomplete":
            console.print(f"[yellow]INCOMPLETE[/] {check.name}: {check.note}", highlight=False)
    status = EXIT_OK if _write_outputs(report, args, console) is not None else EXIT_UNAVAILABLE
    passed = sum(c.status == "pass" for c in report.checks)
    verdict = {"conforming": "conforming", "not-conforming": "NOT conforming",
               "incomplete": "INCOMPLETE"}[report.status]
    console.print(
        f"{verdict}: {passed}/{len(report.checks)} checks passed "
        f"in {report.seconds:.1f} s (seed {report.seed})"
        + (f"; {report.incomplete_reason}" if report.incomplete_reason else ""),
        highlight=False,
    )
    outcome = {"conforming": EXIT_OK, "not-conforming": EXIT_FAIL,
               "incomplete": EXIT_INCOMPLETE}[report.status]
    return outcome if outcome != EXIT_OK else status


def _replay(args: argparse.Namespace) -> int:
    from memslice_conformance.reporting.trace import TraceError, call_lines, load_trace

    console = _console()
    try:
        trace = load_trace(args.trace)
    except TraceError as exc:
        console.print(f"[red]cannot read trace:[/] {exc}", highlight=False)
        return EXIT_UNAVAILABLE
    recorded = (f"recorded on {trace.impl!r}, check {trace.check}, seed {trace.seed}, "
                f"{trace.op_count} calls")
    if args.print_steps:
        console.print(f"# trace {args.trace}: {recorded}", markup=False, highlight=False)
        if trace.failure is not None:
            console.print(f"# failure [{', '.join(trace.failure.clauses)}] "
                          f"({trace.failure.kind}): {trace.failure.message}",
                          markup=False, highlight=False)
        for number, line in enumerate(call_lines(trace.steps), start=1):
            mark = "  <-- fails here" if number == trace.call else ""
            console.print(f"{number:>5}  {line}{mark}", markup=False, highlight=False)
    if args.emit_c is not None:
        from memslice_conformance.reporting.emit_c import emit_c

        problem = _output_problem(args.emit_c, "--emit-c")
        if problem:
            console.print(f"[red]cannot write output:[/] {problem}", highlight=False)
            return EXIT_UNAVAILABLE
        args.emit_c.write_text(emit_c(trace))
        console.print(f"wrote {args.emit_c}: build and run with  "
                      f"{_build_line(args.emit_c, args.impl)}", markup=False, highlight=False)
    if args.impl is None:
        if args.print_steps or args.emit_c is not None:
            return EXIT_OK
        console.print(
            f"[red]replay needs --impl:[/] name the implementation to replay on. This trace "
            f"was {recorded} (shown as information; a trace never chooses what runs).",
            highlight=False,
        )
        return EXIT_UNAVAILABLE
    return _replay_on(trace, args.impl, console)


def _replay_on(trace: object, spec: str, console: Console) -> int:
    from memslice_conformance.failures import ImplUnavailable, OutOfTime
    from memslice_conformance.impl.session import SessionFactory
    from memslice_conformance.reporting.trace import Trace, call_lines, replay_outcome
    from memslice_conformance.runner import _time_limit, resolve_within

    assert isinstance(trace, Trace)
    try:
        impl = resolve_within(spec)
    except ImplUnavailable as exc:
        console.print(f"[red]cannot load implementation:[/] {exc}", highlight=False)
        return EXIT_UNAVAILABLE
    factory = SessionFactory(impl)
    try:
        with _time_limit(DEFAULT_CHECK_DEADLINE, "replay"):
            outcome = replay_outcome(trace, factory)
    except OutOfTime as exc:
        console.print(f"[yellow]INCOMPLETE[/] {exc}", highlight=False)
        return EXIT_INCOMPLETE
    finally:
        factory.close()
    if outcome.failure is None:
        console.print(f"replayed {trace.op_count} calls on {impl.spec}: no failure",
                      highlight=False)
        return EXIT_OK
    failure = outcome.failure
    lines = call_lines(trace.steps)
    console.print(f"[bold red]FAIL[/] [{', '.join(failure.clauses)}] ({failure.kind}): "
                  f"{failure.message}", highlight=False)
    if 0 < outcome.call <= len(lines):
        console.print(f"     call {outcome.call}: {lines[outcome.call - 1]}",
                      markup=False, highlight=False)
    return EXIT_FAIL


def _list(args: argparse.Namespace) -> int:
    from memslice_conformance.impl.impls import BUILTIN
    from memslice_conformance.profiles.registry import CHECKS, PROFILES

    console = _console()
    what = args.what
    if what in ("all", "profiles"):
        console.print("[bold]profiles[/]")
        for profile in PROFILES.values():
            shipped = ", ".join(profile.checks) if profile.checks else "(checks not shipped yet)"
            console.print(f"  {profile.name:13} {profile.description}: {shipped}")
    if what in ("all", "checks"):
        console.print("[bold]checks[/]")
        for check in CHECKS.values():
            console.print(f"  {check.name:13} [{check.profile}] {check.description} "
                          f"({', '.join(check.clauses)})", highlight=False)
    if what in ("all", "impls"):
        console.print("[bold]implementations[/]")
        for name, text in BUILTIN.items():
            console.print(f"  {name:24} {text}", highlight=False)
    if what in ("all", "clauses"):
        from memslice_conformance.runner import _profile_clauses, _spec_clauses

        spec = _spec_clauses()
        console.print("[bold]clauses[/]")
        for name in PROFILES:
            for cid, (level, title) in _profile_clauses(name, spec).items():
                console.print(f"  {name:13} {cid:10} [{level}] {title}", highlight=False)
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from memslice_conformance.failures import ImplUnavailable
    from memslice_conformance.impl.validate import validate_protocol

    console = _console()
    try:
        problems = validate_protocol(args.impl)
    except ImplUnavailable as exc:
        console.print(f"[red]cannot start implementation:[/] {exc}")
        return EXIT_UNAVAILABLE
    for problem in problems:
        console.print(f"[red]protocol:[/] {problem}", highlight=False)
    if problems:
        return EXIT_FAIL
    console.print("speaks memslice-jsonl v1")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``memslice-conformance`` script."""
    args = _parser().parse_args(argv)
    command = {"run": _run, "replay": _replay, "list": _list, "validate-protocol": _validate}
    return command[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
