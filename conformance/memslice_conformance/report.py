"""Reports: the JSON report, JUnit XML, and the per-clause table.

Rules and theory of operation
-----------------------------
::

    Report ─► to_json()   {"conforming": bool, "impl", "profiles", "seed",
                           "versions": {"spec", "suite", "protocol"},
                           "clauses": [{"id", "level", "status", "checks",
                                        "failures": [{"check", "kind", "message",
                                                      "trace"}]}],
                           "checks": [...]}
           ─► to_junit()  one <testcase> per clause (failures carry the message)
           ─► table()     rich table: clause, level, status, checks

Statuses: ``pass`` (every check citing the clause ran and passed),
``fail`` (some failure cites it: violation, error answer, crash or hang),
``not-checked`` (the profile is claimed but no shipped check cites it),
``not-claimed`` (the implementation does not claim the profile; never
reported as passed).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Final

from rich.table import Table

from .jsonl import JSONValue
from .runner import CheckResult, Report

__all__ = ["REPORT_FORMAT", "table", "to_json", "to_junit"]

REPORT_FORMAT: Final = "memslice-conformance-report"

_STYLE: Final = {"pass": "green", "fail": "bold red", "not-checked": "yellow",
                 "not-claimed": "dim"}


def _failure_json(check: CheckResult) -> dict[str, JSONValue]:
    assert check.failure is not None
    out: dict[str, JSONValue] = {
        "check": check.name,
        "kind": check.failure.kind,
        "message": check.failure.message,
        "clauses": list(check.failure.clauses),
        "reproduced_on_replay": check.reproduced,
        "trace_file": check.trace_path,
    }
    if check.trace is not None:
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
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def table(report: Report) -> Table:
    """A rich table with one row per clause."""
    verdict = "[green]CONFORMING[/]" if report.conforming else "[bold red]NOT CONFORMING[/]"
    out = Table(
        title=f"{report.implementation} ({report.impl}): {verdict}, "
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
