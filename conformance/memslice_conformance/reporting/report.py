"""Reports: the JSON report, JUnit XML, and the per-clause table.

Rules and theory of operation
-----------------------------
::

    Report ─► to_json()   {"conforming": bool, "status", "incomplete_reason", "load_error",
                           "limits": {deadlines, shrink budget}, "impl", "profiles", "seed",
                           "versions": {"spec", "suite", "protocol"},
                           "clauses": [{"id", "level", "status", "checks",
                                        "failures": [{"check", "kind", "message",
                                                      "trace"}]}],
                           "checks": [...]}
           ─► to_junit()  one <testcase> per clause (failures carry the message),
                          plus an erroring "run finished" case when incomplete, or
                          an erroring "implementation loaded" case when it was not
           ─► table()     rich table: clause, level, status, checks

The JSON report's shape is published as ``schema/report-v1.json``; every
report :func:`to_json` makes validates against it, the report of an
implementation that could not be loaded included (LOAD-012: no check, every
clause "not-checked", status "incomplete", ``load_error`` the reason).

Statuses: ``pass`` (every check citing the clause ran and passed),
``fail`` (some failure cites it: violation, error answer, crash or hang),
``not-checked`` (the profile is claimed but no shipped check cites it),
``not-claimed`` (the implementation does not claim the profile; never
reported as passed).  A check is ``pass``, ``fail``, ``not-checked`` or
``incomplete`` (stopped by a deadline or Ctrl-C: never a pass, RUN-004).
A failure carries its shrunk trace, the failing call as a C-like line and
what the shrinker did (RUN-007).
"""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from typing import Final

from rich.table import Table

from memslice_conformance.impl.jsonl import JSONValue
from memslice_conformance.reporting.results import CheckResult, Report, failing_call
from memslice_conformance.reporting.trace import call_lines

__all__ = ["REPORT_FORMAT", "fail_lines", "table", "to_json", "to_junit"]

REPORT_FORMAT: Final = "memslice-conformance-report"

_STYLE: Final = {"pass": "green", "fail": "bold red", "not-checked": "yellow",
                 "not-claimed": "dim", "incomplete": "yellow"}


#: How many calls before the failing one a FAIL message shows.
STEPS_SHOWN: Final = 12

_HOW: Final = {"crash": "crashed", "hang": "hung", "error": "failed",
               "violation": "broke the contract"}


def fail_lines(check: CheckResult, impl: str = "IMPL") -> list[str]:
    """A failed check as the CLI and the pytest plugin show it (RUN-007)::

        FAIL check [clauses] call N: <C call> crashed: <message>
             steps before it (k of N-1):
                  1  b1 = g_slice_alloc(16);
             shrunk from 53 to 4 calls in 8.6 s (a local minimum)
             trace: FILE
    """
    failure = check.failure
    assert failure is not None
    where = failing_call(check)
    head = f"FAIL {check.name} [{', '.join(failure.clauses)}]"
    if where.endswith(":"):  # a batch: the message names the call
        out = [f"{head} {where} {failure.kind}: {failure.message}"]
    elif where:
        out = [f"{head} {where} {_HOW.get(failure.kind, failure.kind)}: {failure.message}"]
    else:
        out = [f"{head} ({failure.kind}): {failure.message}"]
    trace = check.trace
    if trace is not None and trace.call > 1:
        lines = call_lines(trace.steps)
        first = max(0, trace.call - 1 - STEPS_SHOWN)
        out.append(f"     steps before it ({trace.call - 1 - first} of {trace.call - 1}):")
        out.extend(f"       {n:>4}  {lines[n - 1]}" for n in range(first + 1, trace.call))
    if trace is not None and trace.shrink:
        shrink = trace.shrink
        done = "a local minimum" if shrink.get("complete") else "budget spent, not minimal"
        if not shrink.get("complete") and shrink.get("assumed"):
            # RUN-012: long runs of like calls were judged a chunk size at a time.
            done = "not proven minimal: long runs of like calls tried once per chunk size"
        out.append(f"     shrunk from {shrink.get('from_ops')} to {shrink.get('to_ops')} "
                   f"calls in {shrink.get('seconds')} s ({done})")
    if check.trace_path:
        out.append(f"     trace: {check.trace_path}  (replay: memslice-conformance replay "
                   f"{shlex.quote(check.trace_path)} --impl {shlex.quote(impl)} --print)")
    return out


def _failure_json(check: CheckResult) -> dict[str, JSONValue]:
    assert check.failure is not None
    out: dict[str, JSONValue] = {
        "check": check.name,
        "kind": check.failure.kind,
        "message": check.failure.message,
        "clauses": list(check.failure.clauses),
        "reproduced_on_replay": check.reproduced,
        "trace_file": check.trace_path,
        "failing_call": failing_call(check) or None,
    }
    if check.trace is not None:
        out["shrink"] = check.trace.shrink
        out["trace"] = check.trace.to_json()
    return out


def to_json(report: Report) -> dict[str, JSONValue]:
    """The JSON report (see module doc for the shape)."""
    by_name = {c.name: c for c in report.checks}
    clauses: list[JSONValue] = []
    for clause in report.clauses:
        record: dict[str, JSONValue] = {
            "id": clause.id,
            "level": clause.level,
            "title": clause.title,
            "profile": clause.profile,
            "status": clause.status,
            "checks": list(clause.checks),
        }
        if clause.note:
            record["note"] = clause.note
        if clause.failed_checks:
            record["failures"] = [_failure_json(by_name[n]) for n in clause.failed_checks]
        clauses.append(record)
    checks: list[JSONValue] = [
        {
            "name": c.name,
            "profile": c.profile,
            "status": c.status,
            "seconds": round(c.seconds, 3),
            "examples": c.examples,
            **({"failure": _failure_json(c)} if c.failure is not None else {}),
            **({"note": c.note} if c.note is not None else {}),
        }
        for c in report.checks
    ]
    return {
        "format": REPORT_FORMAT,
        "conforming": report.conforming,
        "status": report.status,
        "incomplete_reason": report.incomplete_reason or None,
        "load_error": report.load_error or None,
        "limits": dict(report.limits),
        "impl": report.impl,
        "implementation": report.implementation,
        "profiles": list(report.profiles),
        "claimed_profiles": list(report.claimed),
        "seed": report.seed,
        "max_examples": report.max_examples,
        "versions": dict(report.versions),
        "seconds": round(report.seconds, 3),
        "clauses": clauses,
        "checks": checks,
    }


def to_junit(report: Report) -> str:
    """JUnit XML: one test case per clause, grouped in one suite per profile."""
    root = ET.Element("testsuites", name=f"memslice-conformance {report.impl}")
    by_name = {c.name: c for c in report.checks}
    for profile in report.profiles:
        cases = [c for c in report.clauses if c.profile == profile]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{report.impl} [{profile}]",
            tests=str(len(cases)),
            failures=str(sum(c.status == "fail" for c in cases)),
            skipped=str(sum(c.status in ("not-checked", "not-claimed") for c in cases)),
        )
        for clause in cases:
            case = ET.SubElement(
                suite, "testcase", classname=f"{profile}.{clause.id.split('-')[0]}",
                name=f"{clause.id} {clause.title}".strip(),
            )
            if clause.status == "fail":
                messages = [
                    f"{n}: {by_name[n].failure.message}"  # type: ignore[union-attr]
                    for n in clause.failed_checks
                ]
                node = ET.SubElement(case, "failure", message=messages[0][:500])
                node.text = "\n".join(messages)
            elif clause.status in ("not-checked", "not-claimed"):
                ET.SubElement(case, "skipped", message=clause.status)
    if report.status == "incomplete":
        # An incomplete run must not read as green in CI (RUN-004, LOAD-012).
        name, why = ("implementation loaded", report.load_error) if report.load_error else (
            "run finished", report.incomplete_reason)
        suite = ET.SubElement(root, "testsuite", name=f"{report.impl} [run]", tests="1",
                              errors="1")
        case = ET.SubElement(suite, "testcase", classname="run", name=name)
        node = ET.SubElement(case, "error", message=why[:500])
        node.text = why
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _named(report: Report) -> str:
    """``NAME (SPEC)``, or the spec alone when the implementation goes by it."""
    if report.implementation == report.impl:
        return report.impl
    return f"{report.implementation} ({report.impl})"


def table(report: Report) -> Table:
    """A rich table with one row per clause."""
    verdict = {"conforming": "[green]CONFORMING[/]", "incomplete": "[yellow]INCOMPLETE[/]"}.get(
        report.status, "[bold red]NOT CONFORMING[/]")
    out = Table(
        title=f"{_named(report)}: {verdict}, "
        f"seed {report.seed}, {report.seconds:.1f} s",
    )
    out.add_column("clause")
    out.add_column("level")
    out.add_column("title")
    out.add_column("status")
    out.add_column("checks")
    for clause in report.clauses:
        style = _STYLE.get(clause.status, "")
        shown = ", ".join(clause.failed_checks) if clause.failed_checks else ", ".join(
            clause.checks)
        if clause.status == "not-checked" and clause.note:
            shown = f"{shown} ({clause.note})" if shown else clause.note
        out.add_row(clause.id, clause.level, clause.title, f"[{style}]{clause.status}[/]", shown)
    return out
