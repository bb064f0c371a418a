"""The pytest plugin: inert by default, the suite as tests with --memslice-impl."""

from __future__ import annotations

from pathlib import Path

import pytest

from memslice_conformance.pytest_plugin import load_xfails


def test_plugin_is_inert_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    assert True\n")
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "memslice[" not in result.stdout.str()


def test_the_collected_line_counts_the_plugins_items(pytester: pytest.Pytester) -> None:
    """"collected N items" counts the clause items beside the user's own tests (it
    said "collected 1 item" here, the user's test alone)."""
    pytester.makepyfile("def test_one():\n    assert True\n")
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--memslice-impl=malloc", "--memslice-check=edges",
        "--memslice-max-examples=3",
    )
    ran = sum(result.parseoutcomes().get(k, 0) for k in ("passed", "skipped", "failed"))
    assert ran > 2
    assert f"collected {ran} items" in result.stdout.str(), result.stdout.str()


def test_plugin_runs_the_suite_with_expected_failures(pytester: pytest.Pytester) -> None:
    xfail = pytester.path / "xfail.txt"
    xfail.write_text("# known problems\nAPI-006: blocks are only 4-aligned\n")
    result = pytester.runpytest_inprocess(
        "-q", "-rs", "-p", "no:cacheprovider", "--memslice-impl=py:pyimpls:FourAligned",
        f"--memslice-xfail={xfail}", "--memslice-max-examples=5",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("xfailed") == 1
    # Every check stops at the first misaligned block, so only the clauses a
    # check exercised before it pass; the others are skipped as not-checked,
    # each with the reason (COVER-004), never passed.
    assert outcomes.get("passed", 0) >= 3
    skips = [line for line in result.stdout.lines if "not-checked" in line]
    assert skips and all("(" in line for line in skips), skips


def test_plugin_reports_stale_expected_failures(pytester: pytest.Pytester) -> None:
    xfail = pytester.path / "xfail.txt"
    xfail.write_text("API-007: we thought NULL frees crashed\n")
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "--memslice-impl=malloc", "--memslice-check=edges",
        f"--memslice-xfail={xfail}", "--memslice-max-examples=3",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1
    assert "stale" in result.stdout.str()


# -- RUN-011: the expected-failures file is read strictly, errors name the line


def test_xfail_lines_keep_a_hash_inside_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "xfail.txt"
    path.write_text(
        "# whole-line comment\n"
        "   # indented comment\n"
        "\n"
        "API-006: see issue#12 and C# notes   # trailing comment\n"
        "API-004: two blocks overlap #\n"
        "CONF-004:\n"
    )
    assert load_xfails(path) == {
        "API-006": "see issue#12 and C# notes",
        "API-004": "two blocks overlap",
        "CONF-004": "",
    }


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("API-006 blocks are only 4-aligned\n", 1),
        ("# ok\nnot a clause: reason\n", 2),
        ("API-006: one\nAPI-006: two\n", 2),
        ("api-006: lower case\n", 1),
    ],
)
def test_malformed_xfail_lines_are_usage_errors_naming_the_line(
    text: str, line: int, tmp_path: Path
) -> None:
    path = tmp_path / "xfail.txt"
    path.write_text(text)
    with pytest.raises(pytest.UsageError, match=f"xfail.txt:{line}:"):
        load_xfails(path)


def test_a_missing_xfail_file_is_a_usage_error_not_an_internal_error(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "--memslice-impl=py:pyimpls:FourAligned",
        "--memslice-xfail=no-such-file.txt",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "no-such-file.txt" in text and "INTERNALERROR" not in text


def test_a_malformed_xfail_file_fails_the_run_with_its_line(pytester: pytest.Pytester) -> None:
    xfail = pytester.path / "xfail.txt"
    xfail.write_text("# fine\nAPI-006 no colon here\n")
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "--memslice-impl=py:pyimpls:FourAligned",
        f"--memslice-xfail={xfail}",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "xfail.txt:2:" in result.stderr.str() + result.stdout.str()


def test_unclaimed_profiles_fold_into_one_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(
        "-q", "-rs", "-p", "no:cacheprovider", "--memslice-impl=py:pyimpls:FourAligned",
        "--memslice-profile=glib-2.74", "--memslice-profile=reuse",
        "--memslice-profile=debug-blocks",
    )
    result.assert_outcomes(skipped=1)
    out = result.stdout.str()
    assert out.count("not claimed by") == 1
    assert "glib-2.74 (" in out and "reuse (" in out


def test_a_failure_shows_the_failing_call_the_steps_and_the_trace(
    pytester: pytest.Pytester,
) -> None:
    traces = pytester.path / "traces"
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "--memslice-impl=py:pyimpls:FourAligned",
        "--memslice-max-examples=5", f"--memslice-trace-dir={traces}",
    )
    out = result.stdout.str()
    assert "FAIL " in out and "call 1: b" in out and "g_slice_alloc" in out
    assert f"trace: {traces}" in out


def test_traces_go_to_memslice_traces_by_default(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "--memslice-impl=py:pyimpls:FourAligned",
        "--memslice-max-examples=5", "--memslice-check=edges",
    )
    out = result.stdout.str()
    assert "trace: memslice-traces" in out, out
    assert list((pytester.path / "memslice-traces").glob("edges-*.json"))
