"""The pytest plugin: ``pytest --memslice-impl=IMPL`` runs the suite as tests.

Rules and theory of operation
-----------------------------
Registered under the ``pytest11`` entry point ``memslice``, so it is loaded
in every pytest run where memslice is installed.  It is inert unless
``--memslice-impl`` is given: it only adds options and collects nothing.

With ``--memslice-impl``, one test item per clause of the requested
profiles is added (node ids ``memslice[IMPL]::API-004``); the conformance
run happens once, lazily, on the first item, and each item reports its
clause's verdict::

    pass         -> passed          fail        -> failed (message + trace file)
    not-checked  -> skipped         not-claimed -> skipped

``--memslice-xfail=FILE`` names the implementation's expected failures, one
``CLAUSE-ID: reason`` per line (``#`` comments allowed).  A listed clause
that fails is xfailed; a listed clause that passes fails the run as a stale
entry, so the file cannot silently rot (like the array-api-tests' xfails).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .failures import ImplUnavailable
from .runner import DEFAULT_MAX_EXAMPLES, ClauseResult, Report, run_conformance

__all__ = ["load_xfails"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memslice", "memslice conformance suite")
    group.addoption("--memslice-impl", default=None,
                    help="run the memslice conformance suite against this implementation")
    group.addoption("--memslice-profile", action="append", default=None,
                    help="profile to check (repeatable; default core)")
    group.addoption("--memslice-xfail", default=None,
                    help="file of expected failures: 'CLAUSE-ID: reason' per line")
    group.addoption("--memslice-max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    group.addoption("--memslice-seed", type=int, default=0)
    group.addoption("--memslice-trace-dir", default=None,
                    help="write failing traces here")


def load_xfails(path: Path) -> dict[str, str]:
    """Parse an expected-failures file into ``{clause_id: reason}``."""
    out: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        clause, sep, reason = line.partition(":")
        clause = clause.strip()
        if not sep or "-" not in clause:
            raise pytest.UsageError(f"{path}:{number}: expected 'CLAUSE-ID: reason', got {raw!r}")
        out[clause] = reason.strip()
    return out


class _Shared:
    """The one conformance run shared by all clause items."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report: Report | None = None
        self.error: str | None = None

    def get(self) -> Report:
        if self.report is None and self.error is None:
            opt = self.config.getoption
            trace_dir = opt("--memslice-trace-dir")
            try:
                self.report = run_conformance(
                    opt("--memslice-impl"),
                    profiles=opt("--memslice-profile") or ["core"],
                    max_examples=opt("--memslice-max-examples"),
                    seed=opt("--memslice-seed"),
                    trace_dir=Path(trace_dir) if trace_dir else None,
                )
            except (ImplUnavailable, ValueError) as exc:
                self.error = str(exc)
        if self.report is None:
            raise pytest.UsageError(f"memslice: {self.error}")
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
        result = self._result()
        report = self.shared.get()
        if result.status in ("not-checked", "not-claimed"):
            if self.xfail_reason is not None:
                pytest.xfail(f"{result.status}; expected failure: {self.xfail_reason}")
            pytest.skip(f"{self.clause}: {result.status}")
        if result.status == "fail":
            by_name = {c.name: c for c in report.checks}
            lines = []
            for name in result.failed_checks:
                check = by_name[name]
                assert check.failure is not None
                lines.append(f"{name} ({check.failure.kind}): {check.failure.message}")
                if check.trace_path:
                    lines.append(f"  trace: {check.trace_path}")
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


class ClauseFailed(Exception):
    """A clause failed for the implementation under test."""


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    impl = config.getoption("--memslice-impl")
    if not impl:
        return
    from .profiles import expand_profiles
    from .runner import _profile_clauses, _spec_clauses

    xfail_path = config.getoption("--memslice-xfail")
    xfails = load_xfails(Path(xfail_path)) if xfail_path else {}
    shared = _Shared(config)
    spec = _spec_clauses()
    try:
        profiles = expand_profiles(config.getoption("--memslice-profile") or ["core"])
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    seen: set[str] = set()
    for profile in profiles:
        for clause in _profile_clauses(profile, spec):
            if clause in seen:
                continue
            seen.add(clause)
            items.append(
                ClauseItem.from_parent(
                    session, name=f"memslice[{impl}]::{clause}", clause=clause,
                    shared=shared, xfail=xfails.get(clause),
                )
            )
    unknown = sorted(set(xfails) - seen)
    if unknown:
        raise pytest.UsageError(f"--memslice-xfail names clauses not checked: {', '.join(unknown)}")
