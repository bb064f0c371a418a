"""The reliability summary: one block of figures at the end of ``tox -e soak``.

Tests record their figures with :func:`support.record` as they run; when
the session ends, this hook prints them under the five headings issue 12
asks for (load held, faults survived, bad inputs tried, orphans left, peak
runner memory).  The hook only reports: every figure is also asserted by
the test that measured it, so a bad figure fails its test rather than
passing quietly here.  A quick run records nothing and prints nothing.
"""

from __future__ import annotations

import pytest

from .support import FIGURE_HEADINGS, FIGURES, peak_rss_bytes


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for heading in FIGURE_HEADINGS:
        terminalreporter.write_line(f"{heading}:")
        for line in FIGURES.get(heading, ["(not measured in this run)"]):
            terminalreporter.write_line(f"  {line}")
    terminalreporter.write_line(
        f"  runner ru_maxrss at the end of the session: {peak_rss_bytes() / (1 << 20):.1f} MiB"
    )
