"""``python -m memslice record`` and ``show --trace``: a real GLib program, recorded and drawn.

The shipped example (docs/howto/examples/shopping.c) is compiled with gcc and
pkg-config, run under the recorder, and its trace replayed on the reference
and drawn as a step-through page, which headless Chromium then opens from
``file://`` and steps with real clicks (INTRO-006, INTRO-007).  Missing gcc,
GLib development files or Chromium fail these tests loudly: .ci/run installs
them.  The recorder's typed errors are checked on a static binary, a missing
program and a missing compiler.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from chromium import Chromium

from memslice.__main__ import main
from memslice.calltrace import Call, CallTrace, TraceError, load_call_trace, save_call_trace
from memslice.recorder import (
    CompilerMissing,
    NoGlibDevelopmentFiles,
    ProgramNotFound,
    ProgramTimedOut,
    RecordError,
    ShimBuildFailed,
    ShimNotLoaded,
    StaticBinary,
    build_shim,
    compile_glib_program,
    parse_log,
    record,
)
from memslice.stepthrough import replay, stepper_html

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "howto" / "examples" / "shopping.c"
SVG = "{http://www.w3.org/2000/svg}"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memslice", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, XDG_CACHE_HOME=str(cwd / "cache")),
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example built and recorded through the CLI, as the how-to does it."""
    folder = tmp_path_factory.mktemp("example")
    for tool in ("gcc", "pkg-config"):
        assert shutil.which(tool), f"{tool} is required (apt-get install gcc pkg-config)"
    compile_glib_program(EXAMPLE, folder / "example")
    done = run_cli("record", "--out", "t.json", "--", "./example", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "not seen" in done.stderr  # the limitation is said every time
    return folder


def test_record_writes_the_examples_calls_in_order(recorded: Path) -> None:
    trace = load_call_trace(recorded / "t.json")
    ops = [(c.op, c.thread, c.size) for c in trace.calls]
    # What shopping.c calls, in program order; GList's nodes are not seen.
    expected = (
        [("alloc0", "main", 24)] * 6
        + [("free1", "main", 24), ("alloc", "main", 24)]
        + [("alloc", "t1", 16)] * 6
        + [("free1", "t1", 16)] * 6
        + [("thread_exit", "t1", 0), ("free1", "main", 24), ("free_chain", "main", 24)]
    )
    assert ops == expected
    assert trace.calls[7].call == "g_slice_copy"
    chain = trace.calls[-1]
    assert chain.blocks == ("b6", "b5", "b4", "b3", "b1") and chain.next_offset == 0
    assert trace.recorded["unmatched_frees_dropped"] == 0
    raw = json.loads((recorded / "t.json").read_text())
    assert raw["format"] == "memslice-conformance-trace" and raw["version"] == 1
    assert all(len(step) == 1 for step in raw["steps"])


def test_a_recorded_trace_replays_in_the_conformance_suite(recorded: Path) -> None:
    """The suite's own command replays the recording on the implementation --impl names
    (here the system GLib the calls were recorded on; the trace's impl is never used, RUN-002)."""
    suite = Path(sys.executable).parent / "memslice-conformance"
    done = subprocess.run(
        [str(suite), "replay", "t.json", "--impl", "glib"],
        cwd=recorded,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replayed 23 calls on glib" in done.stdout and "no failure" in done.stdout


def test_show_draws_a_step_through_page_for_the_recording(recorded: Path) -> None:
    done = run_cli("show", "--trace", "t.json", "--out", "page.html", cwd=recorded)
    assert done.returncode == 0, done.stderr
    page = (recorded / "page.html").read_text()
    sections = page.count('<section class="frame"')
    assert sections == 23 + 1  # the empty allocator, then one frame per call
    assert "g_slice_free_chain_with_offset (24, b6 -&gt; b5 -&gt; b4 -&gt; b3 -&gt; b1, 0)" in page
    assert "thread t1 ends" in page
    for svg in page.split("<svg ")[1:5]:
        ET.fromstring("<svg " + svg.split("</svg>")[0] + "</svg>")


def test_the_step_through_page_steps_in_headless_chromium(recorded: Path) -> None:
    page = recorded / "page.html"
    if not page.exists():
        run_cli("show", "--trace", "t.json", "--out", "page.html", cwd=recorded)
    visible = (
        "(() => { const s = [...document.querySelectorAll('section.frame')]"
        ".filter(e => e.offsetParent !== null); return s.map(e => e.dataset.step); })()"
    )
    picture = "document.querySelector('section.frame:not([hidden]) .pictures').innerHTML"
    with Chromium() as browser:
        browser.open(page)
        assert browser.evaluate(visible) == ["0"]
        first = browser.evaluate(picture)
        browser.click("button.next")
        assert browser.evaluate(visible) == ["1"]
        assert browser.evaluate(picture) != first, "next did not change the picture"
        assert browser.evaluate("location.hash") == "#step=1"
        assert "g_slice_alloc0 (24)" in browser.evaluate(
            "document.querySelector('section.frame:not([hidden]) .call').textContent"
        )
        browser.click("button.prev")
        assert browser.evaluate(visible) == ["0"]
    # A link to a call opens on that call.
    with Chromium() as browser:
        browser.open(page.as_uri() + "#step=21")
        assert browser.evaluate(visible) == ["21"]
        assert "thread t1 ends" in browser.evaluate(
            "document.querySelector('section.frame:not([hidden]) .call').textContent"
        )


def test_static_binaries_and_missing_programs_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "static.c"
    source.write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-static", str(source), "-o", str(tmp_path / "static")], check=True)
    with pytest.raises(StaticBinary, match="statically linked"):
        record([str(tmp_path / "static")], cache=tmp_path)
    with pytest.raises(ProgramNotFound):
        record([str(tmp_path / "no-such-program")], cache=tmp_path)
    with pytest.raises(ProgramTimedOut):
        record(["sleep", "30"], cache=tmp_path, timeout=0.5)
    done = run_cli("record", "--out", "t.json", "--", "./static", cwd=tmp_path)
    assert done.returncode == 2 and "StaticBinary" in done.stderr
    assert not (tmp_path / "t.json").exists()


def test_a_missing_compiler_or_glib_headers_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc, no pkg-config here
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(CompilerMissing, match="gcc"):
        build_shim(tmp_path / "fresh-cache")
    (tmp_path / "gcc").symlink_to(shutil.which("true", path="/usr/bin:/bin") or "/bin/true")
    with pytest.raises(NoGlibDevelopmentFiles, match="pkg-config"):
        compile_glib_program(EXAMPLE, tmp_path / "example")


def test_pkg_config_without_glib_says_install_libglib_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PKG_CONFIG_LIBDIR", str(tmp_path))  # an empty search path
    monkeypatch.setenv("PKG_CONFIG_PATH", str(tmp_path))
    with pytest.raises(NoGlibDevelopmentFiles, match=r"libglib2\.0-dev"):
        compile_glib_program(EXAMPLE, tmp_path / "example")


def test_parse_log_names_threads_blocks_and_drops_unseen_frees() -> None:
    log = "\n".join(
        [
            "p 100 0 0",
            "a 40 1000 100",
            "f 40 9999 100",  # allocated inside libglib: not seen, dropped
            "a 40 2000 101",
            "x 0 0 101",
            "a 16 3000 101",  # a new thread that got the same kernel id
            "h 40 8 100",
            "n 40 2000 100",
            "n 40 1000 100",
            "a 0 0 100",  # size 0: NULL
        ]
    )
    trace = parse_log(log, ["prog"])
    assert [(c.op, c.thread, c.handle, c.blocks) for c in trace.calls] == [
        ("alloc", "main", "b1", ()),
        ("alloc", "t1", "b2", ()),
        ("thread_exit", "t1", "", ()),
        ("alloc", "t2", "b3", ()),
        ("free_chain", "main", "", ("b2", "b1")),
    ]
    assert trace.calls[-1].next_offset == 8
    assert trace.recorded["unmatched_frees_dropped"] == 1
    assert trace.recorded["null_allocations_skipped"] == 1
    with pytest.raises(ShimNotLoaded):
        parse_log("", ["prog"])


def test_call_traces_round_trip_and_bad_ones_are_typed_errors(tmp_path: Path) -> None:
    calls = (
        Call("alloc", "main", 40, "b1"),
        Call("copy", "main", 40, "b2", src="b1"),
        Call("free1", "main", 40, blocks=("b1",)),
        Call("free_chain", "main", 40, blocks=("b2",), next_offset=8),
    )
    path = save_call_trace(CallTrace(calls, "made by hand"), tmp_path / "t.json")
    assert load_call_trace(path).calls == calls
    frames = replay(load_call_trace(path))
    assert len(frames) == 5 and frames[-1].snapshot.totals.handed_out == 0
    assert "API-003" in frames[2].clauses
    bad = {
        "not json": "{",
        "wrong format": json.dumps({"format": "x", "steps": []}),
        "free of unknown": json.dumps(
            {
                "format": "memslice-conformance-trace",
                "version": 1,
                "steps": [[{"op": "free1", "block": "b9"}]],
            }
        ),
        "negative size": json.dumps(
            {
                "format": "memslice-conformance-trace",
                "version": 1,
                "steps": [[{"op": "alloc", "size": -1, "as": "b1"}]],
            }
        ),
    }
    for name, text in bad.items():
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(TraceError):
            load_call_trace(tmp_path / "bad.json")
        args = ["show", "--trace", str(tmp_path / "bad.json"), "--out", str(tmp_path / "p.html")]
        assert main(args) == 2, name
        assert not (tmp_path / "p.html").exists()


def test_stepper_frames_are_well_formed_and_name_chunks_for_life() -> None:
    calls = tuple(Call("alloc", "main", 1000, f"b{i}") for i in range(1, 10)) + tuple(
        Call("free1", "main", 1000, blocks=(f"b{i}",)) for i in range(1, 10)
    )
    frames = replay(CallTrace(calls))
    text = stepper_html(frames)
    assert text.count('<section class="frame"') == len(calls) + 1
    for svg in text.split("<svg ")[1:]:
        ET.fromstring("<svg " + svg.split("</svg>")[0] + "</svg>")


def test_the_cli_in_process_records_shows_and_refuses(
    recorded: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same commands through ``main`` (what coverage sees), and their refusals."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(recorded / "cache"))
    out = tmp_path / "again.json"
    assert main(["record", "--out", str(out), "--", str(recorded / "example")]) == 0
    assert load_call_trace(out).calls == load_call_trace(recorded / "t.json").calls
    # The docs ship this very recording: recording again gives the same calls.
    shipped = ROOT / "docs" / "howto" / "examples" / "shopping.trace.json"
    assert load_call_trace(shipped).calls == load_call_trace(out).calls
    assert "not seen" in capsys.readouterr().err
    page = tmp_path / "p.html"
    assert main(["show", "--trace", str(out), "--out", str(page), "--max-calls", "5"]) == 0
    text = page.read_text()
    assert text.count('<section class="frame"') == 6 and "18 more calls" in text
    assert main(["show", "--trace", str(out), "--out", str(tmp_path / "p.svg")]) == 2
    assert not (tmp_path / "p.svg").exists()
    assert main(["record", "--out", str(tmp_path / "x.json"), "--", str(tmp_path / "nope")]) == 2
    assert "ProgramNotFound" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["record", "--out", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2
    assert not (tmp_path / "x.json").exists()


def test_malformed_traces_name_their_step(tmp_path: Path) -> None:
    """Every way a trace can be wrong is a TraceError naming the step (INTRO-007)."""
    head = {"format": "memslice-conformance-trace", "version": 1}
    alloc = {"op": "alloc", "size": 40, "as": "b1"}
    cases = {
        "steps not a list": {**head, "steps": {}},
        "version 2": {**head, "version": 2, "steps": []},
        "a step not a list": {**head, "steps": [alloc]},
        "an op without a name": {**head, "steps": [[{"size": 1}]]},
        "a handle used twice": {**head, "steps": [[alloc], [alloc]]},
        "a copy of nothing": {**head, "steps": [[{**alloc, "op": "copy", "src": "b7"}]]},
        "a chain of no block": {**head, "steps": [[{"op": "free_chain", "blocks": []}]]},
        "a chain of two sizes": {
            **head,
            "steps": [
                [alloc],
                [{**alloc, "size": 16, "as": "b2"}],
                [{"op": "free_chain", "blocks": ["b1", "b2"], "next_offset": 0}],
            ],
        },
    }
    for name, document in cases.items():
        (tmp_path / "t.json").write_text(json.dumps(document))
        with pytest.raises(TraceError, match=r"t\.json"):
            load_call_trace(tmp_path / "t.json")
        assert name
    # Ops that move no chunk, and size-0 allocations, are counted, not replayed.
    (tmp_path / "t.json").write_text(
        json.dumps(
            {
                **head,
                "steps": [
                    [{"op": "get_config", "key": 0}, {"op": "alloc", "size": 0, "as": "b0"}],
                    [alloc],
                    [{"op": "write", "block": "b1", "data": "00"}],
                    [{"op": "free_chain", "blocks": ["b1"], "next_offset": 8}],
                    [{"op": "thread_exit", "thread": "t1"}],
                ],
            }
        )
    )
    trace = load_call_trace(tmp_path / "t.json")
    assert trace.skipped_ops == 3 and [c.op for c in trace.calls] == [
        "alloc",
        "free_chain",
        "thread_exit",
    ]
    assert [c.describe() for c in trace.calls] == [
        "b1 = g_slice_alloc (40)  [thread main]",
        "g_slice_free_chain_with_offset (40, b1, 8)  [thread main]",
        "thread t1 ends",
    ]


def test_a_shim_that_does_not_compile_and_a_damaged_log_are_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = tmp_path / "bad-cc"
    failing.write_text("#!/bin/sh\necho 'cc: no' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CC", str(failing))
    with pytest.raises(ShimBuildFailed, match="cc: no"):
        build_shim(tmp_path / "cache")
    with pytest.raises(RecordError, match="could not build"):
        compile_glib_program(EXAMPLE, tmp_path / "example")
    for damaged in ("p 1 0 0\nq 1 2 3", "p 1 0 0\na x 10 1", "p 1 0 0\na 1 2"):
        with pytest.raises(RecordError, match="damaged"):
            parse_log(damaged, ["prog"])


def test_only_the_named_process_writes_the_trace(tmp_path: Path) -> None:
    """A shell that runs the example: the shell is recorded (no slice calls), and the
    example it starts inherits the shim but cannot overwrite the shell's log."""
    program = compile_glib_program(EXAMPLE, tmp_path / "example")
    recording = record(["sh", "-c", f"{program}; true"], cache=tmp_path, quiet=True)
    assert recording.exit_status == 0
    assert recording.trace.calls == ()


def test_a_conformance_failure_trace_can_be_stepped_through(tmp_path: Path) -> None:
    """``show --trace`` reads the suite's own traces: moving ops kept, the others counted."""
    from memslice_conformance.checks.model import Op
    from memslice_conformance.reporting.trace import Trace, save_trace

    steps: tuple[tuple[Op, ...], ...] = (
        ({"op": "alloc", "size": 40, "as": "b1", "thread": "main"},),
        ({"op": "write", "block": "b1", "offset": 0, "data": "ff"},),
        ({"op": "alloc", "size": 40, "as": "b2", "thread": "t1"},),
        ({"op": "free1", "block": "b1", "thread": "t1"},),
        ({"op": "thread_exit", "thread": "t1"},),
    )
    path = save_trace(Trace("machine", "reference", 0, None, steps), tmp_path / "suite.json")
    trace = load_call_trace(path)
    assert [(c.op, c.thread) for c in trace.calls] == [
        ("alloc", "main"),
        ("alloc", "t1"),
        ("free1", "t1"),
        ("thread_exit", "t1"),
    ]
    assert trace.skipped_ops == 1
    frames = replay(trace)
    assert "t1" in {t.name for t in frames[3].snapshot.threads}
    assert "t1" not in {t.name for t in frames[4].snapshot.threads}
    assert frames[4].touched  # the chunks the exiting thread's magazines held
