"""The results of a run as data: checks, clauses and the report that holds them.

Rules and theory of operation
-----------------------------
The runner (:mod:`memslice_conformance.runner`) fills these records; the
renderings (:mod:`memslice_conformance.reporting.report`: JSON, JUnit, the
table), the verdict rules (:mod:`memslice_conformance.reporting.verdicts`),
the CLI and the pytest plugin only read them::

    Report
     ├── checks:  CheckResult   one per check that was selected: pass | fail |
     │                          not-checked | incomplete, with the failure, its
     │                          shrunk trace and where the trace was saved
     └── clauses: ClauseResult  one per clause of every requested profile: pass |
                                fail | not-checked | not-claimed, with the checks
                                that exercised it and why it was not checked

Records are frozen: a verdict, once written, is changed only by making a new
record (``dataclasses.replace``), so no reader can alter what another reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memslice_conformance.checks.model import StepFailure
from memslice_conformance.reporting.trace import Trace, call_lines

__all__ = ["CheckResult", "ClauseResult", "Report", "failing_call", "inline_call"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    profile: str
    status: str  # "pass" | "fail" | "not-checked" | "incomplete"
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
    #: Why a "not-checked" clause was not checked (see memslice_conformance.checks.coverage).
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a run found; see :mod:`memslice_conformance.reporting.report`."""

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
    #: "conforming" | "not-conforming" | "incomplete" (see the module doc).
    status: str = "not-conforming"
    #: The limits the run ran under: deadlines and the shrink budget (seconds).
    limits: dict[str, float] = field(default_factory=dict)
    #: Why the run stopped early or some check did not finish ("" when neither);
    #: set also when a check failed too (status "not-conforming").
    incomplete_reason: str = ""
    #: Why the implementation could not be loaded ("" when it was): then no check
    #: ran, every clause is "not-checked" and the status "incomplete" (LOAD-012).
    load_error: str = ""


def failing_call(check: CheckResult) -> str:
    """``call N: <C line>`` for a failed check with a trace, else "".

    When the failing step ran several calls as one batch (shrinking could
    not serialise it), ``calls A..N (one batch):``, and the failure's
    message names the call.
    """
    trace = check.trace
    if trace is None or not trace.call:
        return ""
    lines = call_lines(trace.steps)
    if trace.call > len(lines):
        return ""
    if trace.call_first and trace.call_first < trace.call:
        # A batch that could not be serialised: the message says which call.
        return f"calls {trace.call_first}..{trace.call} (one batch):"
    return f"call {trace.call}: {inline_call(lines[trace.call - 1])}"


def inline_call(line: str) -> str:
    """A ``replay --print`` line as the FAIL line shows it (RUN-007).

    The same call and the same notes, so the two agree: the statement loses
    its final ``;`` (a verb follows it) and its ``// ...`` notes become one
    ``/* ... */`` comment: ``g_slice_free_chain_with_offset(8, b3, 0);  //
    chain b3 -> NULL  // on thread t1`` reads ``g_slice_free_chain_with_offset(8,
    b3, 0) /* chain b3 -> NULL; on thread t1 */``.
    """
    code, *notes = line.split("  // ")
    code = code.rstrip().removesuffix(";")
    return f"{code} /* {'; '.join(n.strip() for n in notes)} */" if notes else code
