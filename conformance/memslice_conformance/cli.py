"""``memslice-conformance``: the command line over :mod:`memslice_conformance.runner`.

Rules and theory of operation
-----------------------------
::

    memslice-conformance run [--impl IMPL] [--profile P ...] [--max-examples N]
                             [--seed S] [--report F.json] [--junit F.xml]
                             [--trace-dir DIR] [--check NAME ...]
    memslice-conformance replay TRACE.json [--impl IMPL]
    memslice-conformance list [profiles|checks|clauses|impls]
    memslice-conformance validate-protocol --impl cmd:PROGRAM

Exit status: 0 the implementation conforms to the requested profiles (or
the replay no longer fails / the protocol is valid), 1 some check failed
(crashes and hangs included), 2 the implementation could not be loaded or
the arguments are wrong.  The CLI is a thin layer: everything it prints
comes from the library's :class:`~memslice_conformance.runner.Report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from .failures import ImplUnavailable
from .impls import BUILTIN, resolve
from .profiles import CHECKS, PROFILES
from .report import table, to_json, to_junit
from .runner import DEFAULT_MAX_EXAMPLES, run_conformance
from .session import SessionFactory
from .trace import load_trace, replay

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_UNAVAILABLE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memslice-conformance",
        description="Check a slice allocator against the memslice spec.",
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
    run.add_argument("--report", type=Path, help="write the JSON report here")
    run.add_argument("--junit", type=Path, help="write JUnit XML here")
    run.add_argument("--trace-dir", type=Path, default=Path("memslice-traces"),
                     help="where failing traces are written (default ./memslice-traces)")
    run.add_argument("--check", action="append", dest="checks", choices=sorted(CHECKS),
                     help="run only this check (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    rep = sub.add_parser("replay", help="re-run a trace without Hypothesis")
    rep.add_argument("trace", type=Path)
    rep.add_argument("--impl", help="implementation (default: the one in the trace)")
    lst = sub.add_parser("list", help="list profiles, checks, clauses or implementations")
    lst.add_argument("what", nargs="?", default="all",
                     choices=["all", "profiles", "checks", "clauses", "impls"])
    val = sub.add_parser("validate-protocol",
                         help="check that an implementation speaks memslice-jsonl v1")
    val.add_argument("--impl", required=True)
    return parser


def _run(args: argparse.Namespace, console: Console) -> int:
    if args.max_examples < 1:
        console.print("[red]--max-examples must be at least 1[/]")
        return EXIT_UNAVAILABLE
    try:
        impl = resolve(args.impl)
    except ImplUnavailable as exc:
        console.print(f"[red]cannot load implementation:[/] {exc}")
        return EXIT_UNAVAILABLE
    for note in impl.notes:  # how it was loaded (LOAD-003, LOAD-005)
        console.print(f"note: {note}", markup=False, highlight=False)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, disable=args.quiet or not console.is_terminal, transient=True,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report_progress(check: str, status: str) -> None:
            if check not in tasks:
                tasks[check] = progress.add_task(f"{check}: {status}", total=1)
            else:
                progress.update(tasks[check], description=f"{check}: {status}",
                                completed=0 if status == "running" else 1)
            if not console.is_terminal and not args.quiet and status != "running":
                console.print(f"  {check}: {status}")

        try:
            report = run_conformance(
                impl, profiles=args.profiles or ["core"], max_examples=args.max_examples,
                seed=args.seed, trace_dir=args.trace_dir, progress=report_progress,
                checks=args.checks,
            )
        except ValueError as exc:
            console.print(f"[red]{exc}[/]")
            return EXIT_UNAVAILABLE
    console.print(table(report))
    for check in report.checks:
        if check.failure is not None:
            console.print(
                f"[bold red]FAIL[/] {check.name} [{', '.join(check.failure.clauses)}] "
                f"({check.failure.kind}): {check.failure.message}",
                markup=True, highlight=False,
            )
            if check.trace_path:
                console.print(f"     trace: {check.trace_path}  (replay: memslice-conformance "
                              f"replay {check.trace_path} --impl '{report.impl}')")
    if args.report:
        args.report.write_text(json.dumps(to_json(report), indent=1) + "\n")
    if args.junit:
        args.junit.write_text(to_junit(report))
    console.print(
        f"{'conforming' if report.conforming else 'NOT conforming'}: "
        f"{sum(c.status == 'pass' for c in report.checks)}/{len(report.checks)} checks passed "
        f"in {report.seconds:.1f} s (seed {report.seed})"
    )
    return EXIT_OK if report.conforming else EXIT_FAIL


def _replay(args: argparse.Namespace, console: Console) -> int:
    try:
        trace = load_trace(args.trace)
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read trace:[/] {exc}")
        return EXIT_UNAVAILABLE
    try:
        impl = resolve(args.impl or trace.impl)
    except ImplUnavailable as exc:
        console.print(f"[red]cannot load implementation:[/] {exc}")
        return EXIT_UNAVAILABLE
    factory = SessionFactory(impl)
    try:
        failure = replay(trace, factory)
    except ValueError as exc:
        console.print(f"[red]malformed trace:[/] {exc}")
        return EXIT_UNAVAILABLE
    finally:
        factory.close()
    if failure is None:
        console.print(f"replayed {len(trace.steps)} steps on {impl.spec}: no failure")
        return EXIT_OK
    console.print(f"[bold red]FAIL[/] [{', '.join(failure.clauses)}] ({failure.kind}): "
                  f"{failure.message}", highlight=False)
    return EXIT_FAIL


def _list(args: argparse.Namespace, console: Console) -> int:
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
        from .runner import _profile_clauses, _spec_clauses

        spec = _spec_clauses()
        console.print("[bold]clauses[/]")
        for name in PROFILES:
            for cid, (level, title) in _profile_clauses(name, spec).items():
                console.print(f"  {name:13} {cid:10} [{level}] {title}", highlight=False)
    return EXIT_OK


def _validate(args: argparse.Namespace, console: Console) -> int:
    from .validate import validate_protocol

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
    console = Console()
    command = {"run": _run, "replay": _replay, "list": _list, "validate-protocol": _validate}
    return command[args.command](args, console)


if __name__ == "__main__":
    sys.exit(main())
