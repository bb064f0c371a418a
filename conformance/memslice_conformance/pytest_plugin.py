"""The pytest plugin: ``pytest --memslice-impl=IMPL`` runs the suite as tests.

Rules and theory of operation
-----------------------------
Registered under the ``pytest11`` entry point ``memslice``, so it is loaded
in every pytest run where memslice is installed.  It is inert unless
``--memslice-impl`` is given: it only adds options and collects nothing.

With ``--memslice-impl``, the implementation is loaded at collection (a
failure to load is a usage error, exit status 4) and one test item per
clause of the requested, claimed profiles is added (node ids
``memslice[IMPL]::API-004``); the profiles it does not claim fold into one
item, ``memslice[IMPL]::not-claimed``, skipped with a one-line summary.  The
conformance run happens once, lazily, on the first item, and each item
reports its clause's verdict::

    pass         -> passed          fail        -> failed (FAIL line, the calls
    not-checked  -> skipped                        before it, the trace file)
    incomplete run -> the clauses no finished check covers fail

``--memslice-xfail=FILE`` names the implementation's expected failures
(RUN-011)::

    # comment line (first non-blank character '#')
    API-006: blocks are only 4-aligned      # trailing comment: ' # ' onwards
    CONF-004: see issue#12                  (a '#' not set off by spaces is text)

A listed clause that fails is xfailed; a listed clause that passes fails the
run as a stale entry, so the file cannot silently rot (like the
array-api-tests' xfails).  A missing file, a line without ``ID: reason``, an
ID listed twice or an ID not in the requested profiles is a usage error
naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from memslice_conformance.limits import DEFAULT_MAX_EXAMPLES

if TYPE_CHECKING:
    from memslice_conformance.impl.impls import Implementation
    from memslice_conformance.runner import ClauseResult, Report

__all__ = ["load_xfails"]

#: A trailing comment: a '#' with white space before it and after it (or at the end).
_TRAILING_COMMENT: Final = re.compile(r"\s#(\s.*)?$")
_CLAUSE_ID: Final = re.compile(r"^[A-Z][A-Z0-9]*-[0-9]{3}$")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memslice", "memslice conformance suite")
    group.addoption("--memslice-impl", default=None,
                    help="run the memslice conformance suite against this implementation")
    group.addoption("--memslice-profile", action="append", default=None,
                    help="profile to check (repeatable; default core)")
    group.addoption("--memslice-xfail", default=None,
                    help="file of expected failures: 'CLAUSE-ID: reason' per line")
    group.addoption("--memslice-check", action="append", default=None,
                    help="run only this check (repeatable; default every check)")
    group.addoption("--memslice-max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    group.addoption("--memslice-seed", type=int, default=0)
    group.addoption("--memslice-trace-dir", default="memslice-traces",
                    help="write failing traces here (default ./memslice-traces, as the "
                    "command line)")


def load_xfails(path: Path) -> dict[str, str]:
    """Parse an expected-failures file into ``{clause_id: reason}`` (RUN-011).

    Raises :class:`pytest.UsageError` naming the file and line for anything
    that is not a comment, a blank line or ``CLAUSE-ID: reason``.
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise pytest.UsageError(f"--memslice-xfail {path}: cannot read it: {exc}") from None
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = _TRAILING_COMMENT.sub("", line).strip()
        clause, sep, reason = line.partition(":")
        clause = clause.strip()
        where = f"{path}:{number}"
        if not sep or not _CLAUSE_ID.match(clause):
            raise pytest.UsageError(
                f"{where}: expected 'CLAUSE-ID: reason' (e.g. 'API-006: why'), got {raw!r}")
        if clause in out:
            raise pytest.UsageError(f"{where}: {clause} is listed twice")
        out[clause] = reason.strip()
    return out


class _Shared:
    """The one conformance run shared by all clause items."""

    def __init__(self, config: pytest.Config, impl: Implementation) -> None:
        self.config = config
        self.impl = impl
        self.report: Report | None = None

    def get(self) -> Report:
        if self.report is None:
            from memslice_conformance.runner import run_conformance

            opt = self.config.getoption
            trace_dir = opt("--memslice-trace-dir")
            self.report = run_conformance(
                self.impl,
                profiles=opt("--memslice-profile") or ["core"],
                max_examples=opt("--memslice-max-examples"),
                seed=opt("--memslice-seed"),
                trace_dir=Path(trace_dir) if trace_dir else None,
                checks=opt("--memslice-check"),
            )
        return self.report


class ClauseItem(pytest.Item):
    """One spec clause's verdict for the implementation under test."""

    def __init__(
        self, *, clause: str, shared: _Shared, xfail: str | None, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.clause = clause
        self.shared = shared
        self.xfail_reason = xfail

    def _result(self) -> ClauseResult:
        for clause in self.shared.get().clauses:
            if clause.id == self.clause:
                return clause
        raise AssertionError(f"{self.clause} is not in the report")

    def runtest(self) -> None:
        from memslice_conformance.reporting.report import fail_lines

        result = self._result()
        report = self.shared.get()
        if result.status == "not-checked" and report.status == "incomplete":
            raise ClauseFailed(f"{self.clause}: the run is incomplete "
                               f"({report.incomplete_reason}); no finished check covers it")
        if result.status in ("not-checked", "not-claimed"):
            if self.xfail_reason is not None:
                pytest.xfail(f"{result.status}; expected failure: {self.xfail_reason}")
            why = f" ({result.note})" if result.note else ""  # COVER-004: say why
            pytest.skip(f"{self.clause}: {result.status}{why}")
        if result.status == "fail":
            by_name = {c.name: c for c in report.checks}
            lines: list[str] = []
            for name in result.failed_checks:
                lines.extend(fail_lines(by_name[name], report.impl))
            if self.xfail_reason is not None:
                pytest.xfail(f"expected failure: {self.xfail_reason}")
            raise ClauseFailed("\n".join(lines))
        if self.xfail_reason is not None:
            raise ClauseFailed(
                f"{self.clause} passed but is listed as an expected failure "
                f"({self.xfail_reason!r}): remove the stale entry"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: object = None) -> str:
        if isinstance(excinfo.value, ClauseFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.name}"


class NotClaimedItem(pytest.Item):
    """Every clause of the requested profiles the implementation does not claim, as one skip."""

    def __init__(self, *, summary: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.summary = summary

    def runtest(self) -> None:
        pytest.skip(self.summary)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.name}"


class ClauseFailed(Exception):
    """A clause failed for the implementation under test."""


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    impl_spec = config.getoption("--memslice-impl")
    if not impl_spec:
        return
    from memslice_conformance.failures import ImplUnavailable
    from memslice_conformance.profiles.registry import expand_profiles
    from memslice_conformance.runner import _profile_clauses, _spec_clauses, resolve_within

    xfail_path = config.getoption("--memslice-xfail")
    xfails = load_xfails(Path(xfail_path)) if xfail_path else {}
    try:
        profiles = expand_profiles(config.getoption("--memslice-profile") or ["core"])
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    from memslice_conformance.profiles.registry import CHECKS

    unknown_checks = [c for c in config.getoption("--memslice-check") or () if c not in CHECKS]
    if unknown_checks:
        raise pytest.UsageError(f"--memslice-check: unknown check(s) {', '.join(unknown_checks)}")
    try:
        impl = resolve_within(impl_spec)
    except ImplUnavailable as exc:
        raise pytest.UsageError(f"memslice: cannot load implementation: {exc}") from None
    shared = _Shared(config, impl)
    spec = _spec_clauses()
    seen: set[str] = set()
    unclaimed: dict[str, int] = {}
    added: list[pytest.Item] = []
    for profile in profiles:
        clauses = [c for c in _profile_clauses(profile, spec) if c not in seen]
        seen.update(clauses)
        if profile not in impl.profiles:
            unclaimed[profile] = len(clauses)
            continue
        for clause in clauses:
            added.append(
                ClauseItem.from_parent(
                    session, name=f"memslice[{impl_spec}]::{clause}", clause=clause,
                    shared=shared, xfail=xfails.get(clause),
                )
            )
    if unclaimed:
        listed = ", ".join(f"{p} ({n} clauses)" for p, n in unclaimed.items())
        added.append(NotClaimedItem.from_parent(
            session, name=f"memslice[{impl_spec}]::not-claimed",
            summary=f"not claimed by {impl.name}: {listed}",
        ))
    items.extend(added)
    # Items added here were never reported as collected, so pytest's "collected
    # N items" line (printed after this hook) would not count them: report them
    # as one collector's result, as a collected file's items are.
    config.hook.pytest_collectreport(report=pytest.CollectReport(
        f"memslice[{impl_spec}]", "passed", None, list(added)))
    unknown = sorted(set(xfails) - seen)
    if unknown:
        raise pytest.UsageError(
            f"--memslice-xfail {xfail_path}: names clauses not in the requested profiles: "
            f"{', '.join(unknown)}")
