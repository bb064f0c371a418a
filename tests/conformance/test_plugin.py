"""The pytest plugin: inert by default, the suite as tests with --memslice-impl."""

from __future__ import annotations

import pytest


def test_plugin_is_inert_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    assert True\n")
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "memslice[" not in result.stdout.str()


def test_plugin_runs_the_suite_with_expected_failures(pytester: pytest.Pytester) -> None:
    xfail = pytester.path / "xfail.txt"
    xfail.write_text("# known problems\nAPI-006: blocks are only 4-aligned\n")
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "--memslice-impl=py:pyimpls:FourAligned",
        f"--memslice-xfail={xfail}", "--memslice-max-examples=5",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("xfailed") == 1
    assert outcomes.get("passed", 0) >= 5


def test_plugin_reports_stale_expected_failures(pytester: pytest.Pytester) -> None:
    xfail = pytester.path / "xfail.txt"
    xfail.write_text("API-007: we thought NULL frees crashed\n")
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "--memslice-impl=malloc",
        f"--memslice-xfail={xfail}", "--memslice-max-examples=3",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1
    assert "stale" in result.stdout.str()
