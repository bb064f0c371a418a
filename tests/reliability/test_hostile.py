"""Hostile inputs at the conformance suite, in bulk: traces, implementations, orphans, memory.

The quick tests in ``tests/conformance`` (test_runs.py, test_loading.py) show
each defect of issue 12 fixed once; this slow module (``tox -e soak``) throws
many of each and counts them for the reliability summary:

* a corpus of malformed traces, a few hundred shapes mutated from one valid
  trace (wrong types, missing fields, huge numbers, deep nesting, unknown
  handles, negative offsets, broken JSON), each replayed with
  ``memslice-conformance replay TRACE --impl reference``: every one must exit
  2 with exactly one line, "cannot read trace: ...", and no traceback
  (RUN-002).  Every tenth also goes through the installed command in a real
  subprocess, so the exit status and stderr are the command's own;
* hostile implementations (Python objects raising ``SystemExit``,
  ``KeyboardInterrupt``, unprintable errors, endless recursion; C libraries
  that corrupt, crash, abort or hang; a ``cmd:`` program that is too slow),
  each of which must get its typed verdict -- "not-conforming" with the
  failure kind expected, or "incomplete" -- never a pass or a traceback
  (RUN-003, RUN-005);
* implementations that fork: a ``cmd:`` program that starts a background
  ``sleep`` and a ``lib:`` whose constructor forks (LOAD-007).  After their
  runs, the processes whose parent is 1 and which are one of those children
  are counted: there must be none;
* a valid trace just under the size limit, replayed on the reference: it
  must replay without failure, and the runner's peak resident memory
  (``ru_maxrss``) is recorded (the command's own in a subprocess, and this
  process's after the in-process replay).
"""

from __future__ import annotations

import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memslice_conformance.cli import main
from memslice_conformance.reporting.trace import MAX_TRACE_BYTES, load_trace
from memslice_conformance.runner import run_conformance

from .support import peak_rss_bytes, record

ROOT = Path(__file__).resolve().parents[2]
IMPLS = ROOT / "tests" / "conformance" / "impls"
COMMAND = Path(sys.executable).with_name("memslice-conformance")
MIB = 1 << 20

pytestmark = pytest.mark.slow


# -- the malformed-trace corpus -----------------------------------------------------------

HANDLE = r"[A-Za-z0-9_.-]{1,40}"


def valid_trace() -> dict[str, object]:
    """A well-formed trace touching every op kind that names a handle, size or offset."""
    steps = [
        [{"op": "alloc", "size": 40, "as": "b1"}],
        [{"op": "alloc0", "size": 24, "as": "b2"}],
        [{"op": "write", "block": "b1", "offset": 8, "data": "deadbeef"}],
        [{"op": "copy", "size": 40, "src": "b1", "as": "b3"}],
        [{"op": "check", "block": "b3"}],
        [{"op": "alloc", "size": 40, "as": "b4", "thread": "t1"}],
        [{"op": "free_null", "size": 16}],
        [{"op": "chain_null", "size": 16, "next_offset": 0}],
        [{"op": "get_config", "key": 99}],
        [{"op": "free_chain", "blocks": ["b1", "b3"], "next_offset": 8}],
        [{"op": "free1", "block": "b2"}, {"op": "free1", "block": "b4"}],
    ]
    return {"format": "memslice-conformance-trace", "version": 1, "check": "machine",
            "impl": "reference", "seed": 7,
            "failure": {"clauses": ["API-004"], "kind": "violation", "message": "x",
                        "call": 3},
            "steps": steps}


#: Values of the wrong JSON type for an integer field, and for a string field.
NOT_INTEGERS: tuple[object, ...] = ("8", 8.5, None, True, [], {}, [8], {"n": 8})
NOT_STRINGS: tuple[object, ...] = (5, 5.5, None, False, [], {}, ["b1"], {"b": 1})
#: Integers a size, offset or key may never be (negative, beyond 16 MiB or 32 bits).
BAD_INTEGERS: tuple[object, ...] = (-1, -8, -(1 << 63), 1 << 24 + 1, 1 << 64, 10**300)
#: Handles that break the pattern (empty, too long, path-like, spaces, non-ASCII).
BAD_HANDLES: tuple[object, ...] = ("", "b" * 41, "../b1", "b 1", "b1;rm", "bé", "b1\n")


def _deep(depth: int) -> object:
    value: object = 8
    for _ in range(depth):
        value = [value]
    return value


def _ops(trace: dict[str, object]) -> Iterator[tuple[int, int, dict[str, object]]]:
    steps = trace["steps"]
    assert isinstance(steps, list)
    for i, step in enumerate(steps):
        for j, op in enumerate(step):
            yield i, j, op


def _with_op(base: dict[str, object], i: int, j: int, change: Callable[[dict[str, object]], None]
             ) -> dict[str, object]:
    mutated = copy.deepcopy(base)
    steps = mutated["steps"]
    assert isinstance(steps, list)
    change(steps[i][j])
    return mutated


def malformed_corpus() -> dict[str, bytes]:
    """Name -> file content: every entry must be refused as a trace."""
    base = valid_trace()
    corpus: dict[str, object] = {}
    integer_fields = {"size", "offset", "next_offset", "key"}
    handle_fields = {"as", "src", "block", "thread"}
    required = {"alloc": ("size", "as"), "alloc0": ("size", "as"),
                "copy": ("size", "src", "as"), "write": ("block", "data"),
                "check": ("block",), "free_null": ("size",),
                "chain_null": ("size", "next_offset"), "get_config": ("key",),
                "free_chain": ("blocks", "next_offset"), "free1": ("block",)}
    for i, j, op in _ops(base):
        where = f"step {i} {op['op']}"
        for name in op:
            def drop(o: dict[str, object], name: str = name) -> None:
                del o[name]
            if name == "op" or name in required.get(str(op["op"]), ()):
                corpus[f"{where}: missing {name}"] = _with_op(base, i, j, drop)
            wrong: tuple[object, ...] = ()
            if name in integer_fields:
                bad_ints = BAD_INTEGERS if name != "key" else (1 << 31, -(1 << 31) - 1, 1 << 64)
                wrong = NOT_INTEGERS + bad_ints + (_deep(50), _deep(900))
            elif name in handle_fields:
                wrong = NOT_STRINGS + BAD_HANDLES
            elif name == "op":
                wrong = (*NOT_STRINGS, "exec", "ALLOC", "", "free1 ", "__import__")
            elif name == "data":
                wrong = (*NOT_STRINGS, "0", "zz", "DEADBEEF", "de ad", "dead\n")
            elif name == "blocks":
                wrong = ("b1", 5, None, {}, [], [5], [None], ["b1", ""], [["b1"]])
            for k, value in enumerate(wrong):
                def put(o: dict[str, object], name: str = name, value: object = value) -> None:
                    o[name] = value
                corpus[f"{where}: {name} wrong #{k}"] = _with_op(base, i, j, put)
    # handles no earlier op defined, or freed already (the checks after the schema)
    for i, j, op in _ops(base):
        for name in ("src", "block"):
            if name in op:
                def unknown(o: dict[str, object], name: str = name) -> None:
                    o[name] = "b99"
                corpus[f"step {i} {op['op']}: unknown handle in {name}"] = _with_op(
                    base, i, j, unknown)
    for k, blocks in enumerate((["b1", "b99"], ["b99"], ["b2", "b2"], ["b1", "b3", "b5"])):
        def chain(o: dict[str, object], blocks: list[str] = blocks) -> None:
            o["blocks"] = blocks
        corpus[f"free_chain unknown or repeated handles #{k}"] = _with_op(base, 9, 0, chain)
    used_after_free = copy.deepcopy(base)
    steps = used_after_free["steps"]
    assert isinstance(steps, list)
    for k, late in enumerate(({"op": "free1", "block": "b1"}, {"op": "check", "block": "b3"},
                              {"op": "write", "block": "b2", "data": "00"},
                              {"op": "copy", "size": 40, "src": "b1", "as": "b9"})):
        corpus[f"use after free #{k}"] = {**used_after_free, "steps": [*steps, [late]]}
    for k, offset in enumerate((40, 39, 1 << 20)):  # past the end of a 40-byte block
        def past(o: dict[str, object], offset: int = offset) -> None:
            o["offset"] = offset
        corpus[f"write past the block #{k}"] = _with_op(base, 2, 0, past)
    # the document's own fields and shape
    for name in ("format", "version", "steps"):
        document = copy.deepcopy(base)
        del document[name]
        corpus[f"missing top-level {name}"] = document
    top_wrong: dict[str, tuple[object, ...]] = {
        "format": ("memslice-conformance-trace2", 1, None, [], ""),
        "version": (2, 0, "1", None, 1.5, [1], -1),
        "check": (5, None, [], "c" * 101),
        "impl": (5, None, {}, "i" * 4097),
        "seed": ("7", 7.5, None, []),
        "failure": ("x", 5, [], True),
        "shrink": ("x", 5, [], True),
        "steps": ({"a": 1}, 5, "steps", None, [5], [[5]], [[]], [{"op": "alloc"}],
                  [[None]], [["alloc"]], [[[]]], _deep(500)),
    }
    for name, values in top_wrong.items():
        for k, value in enumerate(values):
            corpus[f"top-level {name} wrong #{k}"] = {**base, name: value}
    failure_wrong: dict[str, tuple[object, ...]] = {
        "clauses": (5, "API-004", [5], ["nope"], ["api-004"], [None], ["API-004\n"]),
        "kind": (5, None, "k" * 41),
        "message": (5, None, []),
        "call": (0, -1, "3", 3.5),
    }
    for name, values in failure_wrong.items():
        for k, value in enumerate(values):
            failure = {**base["failure"], name: value}  # type: ignore[dict-item]
            corpus[f"failure {name} wrong #{k}"] = {**base, "failure": failure}
    for k, value in enumerate(([1, 2], "trace", 5, None, True, [base], {})):
        corpus[f"document not an object #{k}"] = value
    out = {name: json.dumps(value).encode() for name, value in corpus.items()}
    # bytes that are not JSON, or JSON the decoder itself refuses
    text = json.dumps(base).encode()
    for cut in (1, 10, len(text) // 3, len(text) // 2, len(text) - 1):
        out[f"truncated at {cut}"] = text[:cut]
    out.update({
        "empty file": b"",
        "whitespace only": b" \n\t ",
        "not UTF-8": b'{"format": "\xff\xfe"}',
        "NUL bytes": text[:40] + b"\0" * 64,
        "binary noise": bytes(range(256)) * 4,
        "deep nesting, unclosed": b"[" * 200_000,
        "deep nesting, closed": b"[" * 100_000 + b"]" * 100_000,
        "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "huge integer literal": text.replace(b'"size": 40', b'"size": ' + b"9" * 5000, 1),
        "float overflow": text.replace(b'"size": 40', b'"size": 1e400', 1),
        "NaN size": text.replace(b'"size": 40', b'"size": NaN', 1),
        "Infinity size": text.replace(b'"size": 40', b'"size": Infinity', 1),
        "duplicate keys, the last one bad": text.replace(
            b'"size": 40', b'"size": 40, "size": -8', 1),
        "trailing garbage": text + b" }",
        "two documents": text + b"\n" + text,
    })
    return out


def test_the_corpus_starts_from_a_valid_trace(tmp_path: Path) -> None:
    """The base trace is well-formed: each mutation is what breaks its copy."""
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(valid_trace()))
    assert load_trace(path).op_count == 12
    assert main(["replay", str(path), "--impl", "reference"]) in (0, 1)


def test_malformed_traces_in_bulk_get_one_typed_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RUN-002: every malformed trace is refused with one line, exit 2, no traceback."""
    corpus = malformed_corpus()
    assert len(corpus) >= 300
    through_command = 0
    for number, (name, content) in enumerate(sorted(corpus.items())):
        path = tmp_path / f"case{number}.json"
        path.write_bytes(content)
        status = main(["replay", str(path), "--impl", "reference"])
        captured = capsys.readouterr()
        lines = captured.out.strip().splitlines()
        assert status == 2, (name, captured.out)
        assert len(lines) == 1 and lines[0].startswith("cannot read trace:"), (name, lines)
        assert "Traceback" not in captured.out + captured.err, name
        if number % 10 == 0:
            done = subprocess.run([str(COMMAND), "replay", str(path), "--impl", "reference"],
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 2, (name, done.stdout, done.stderr)
            assert done.stdout.startswith("cannot read trace:"), (name, done.stdout)
            assert len(done.stdout.strip().splitlines()) == 1, (name, done.stdout)
            assert done.stderr == "", (name, done.stderr)
            through_command += 1
        path.unlink()
    print(f"\nmalformed traces: {len(corpus)} refused with exit 2 and one typed line "
          f"({through_command} also through the command in a subprocess)")
    record("bad inputs tried",
           f"malformed traces: {len(corpus)} replayed with --impl reference, each refused "
           f"with exit 2, one 'cannot read trace:' line and no traceback "
           f"({through_command} of them through the installed command in a subprocess)")


# -- a valid trace near the size limit -----------------------------------------------------

def large_trace(target_bytes: int) -> dict[str, object]:
    """A valid trace of alloc/write/check/free cycles whose JSON is just under ``target_bytes``."""
    steps: list[list[dict[str, object]]] = []
    data = "a5" * 2048  # a 2 KiB write: many bytes per call keeps the call count sane
    size = 2 + 4  # the brackets and the comma between steps, roughly
    handle = 0
    while True:
        handle += 1
        name = f"b{handle}"
        cycle: list[list[dict[str, object]]] = [
            [{"op": "alloc", "size": 4096, "as": name}],
            [{"op": "write", "block": name, "offset": 1024, "data": data}],
            [{"op": "check", "block": name}],
            [{"op": "free1", "block": name}],
        ]
        grown = len(json.dumps(cycle))
        if size + grown > target_bytes:
            break
        steps.extend(cycle)
        size += grown
    return {"format": "memslice-conformance-trace", "version": 1, "check": "machine",
            "impl": "reference", "seed": 0, "failure": None, "steps": steps}


def test_a_trace_near_the_size_limit_replays_in_bounded_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RUN-002: a valid trace of ~16 MiB replays; the runner's peak memory is recorded."""
    path = tmp_path / "large.json"
    path.write_text(json.dumps(large_trace(MAX_TRACE_BYTES - (64 << 10))))
    size = path.stat().st_size
    assert MAX_TRACE_BYTES - (256 << 10) < size <= MAX_TRACE_BYTES
    calls = load_trace(path).op_count
    # The command's own high-water mark.  Started through /usr/bin/time: a
    # process forked from this (large) runner inherits its high-water mark
    # across exec, one forked from the small ``time`` does not.
    time_command = shutil.which("time", path="/usr/bin:/bin")
    if time_command is None:
        pytest.fail("/usr/bin/time is required to measure the command's peak memory")
    started = time.monotonic()
    done = subprocess.run(
        [time_command, "-f", "maxrss-kib %M", str(COMMAND), "replay", str(path),
         "--impl", "reference"],
        capture_output=True, text=True, timeout=1800,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert "no failure" in done.stdout
    command_peak = int(done.stderr.split("maxrss-kib")[-1]) * 1024
    # This runner, in process, as the soak's other runs left it.
    before = peak_rss_bytes()
    assert main(["replay", str(path), "--impl", "reference"]) == 0
    assert "no failure" in capsys.readouterr().out
    after = peak_rss_bytes()
    # A 16 MiB trace may cost a few times its size as Python objects, never gigabytes.
    assert command_peak < 40 * size, command_peak
    assert after - before < 40 * size, (before, after)
    print(f"\nlarge trace: {size / MIB:.1f} MiB, {calls:,} calls replayed in {seconds:.0f} s; "
          f"command ru_maxrss {command_peak / MIB:.1f} MiB; runner {after / MIB:.1f} MiB")
    record("peak runner memory",
           f"replay of a valid {size / MIB:.1f} MiB trace ({calls:,} calls, limit "
           f"{MAX_TRACE_BYTES / MIB:.0f} MiB) on the reference: the command's ru_maxrss "
           f"{command_peak / MIB:.1f} MiB in a fresh process ({seconds:.0f} s); this runner's "
           f"{before / MIB:.1f} -> {after / MIB:.1f} MiB across the same replay in process")


# -- hostile implementations ---------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """Compile ``impls/<source>`` with ``-D<variant>`` (PLAIN: none); the .so path."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is required to build the hostile C implementations")
    out = tmp_path_factory.mktemp("hostile")

    def build(source: str, variant: str) -> Path:
        target = out / f"{Path(source).stem}_{variant.lower()}.so"
        if not target.exists():
            flags = [] if variant == "PLAIN" else [f"-D{variant}"]
            subprocess.run([gcc, "-O1", "-Wall", "-Werror", "-shared", "-fPIC", *flags,
                            "-o", str(target), str(IMPLS / source), "-lpthread"], check=True)
        return target

    return build


#: impl spec (or C variant of cslice.c) -> (checks to run, the verdict, a failure kind or None).
HOSTILE: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "py:hostile:ExitsOnFree": (("edges",), "not-conforming", None),
    "py:hostile:InterruptsOnFree": (("edges",), "not-conforming", None),
    "py:hostile:UnprintableError": (("edges",), "not-conforming", None),
    "py:hostile:RecursesOnChain": (("chain_sweep",), "not-conforming", None),
    "py:misbehaving:ReturnsText": (("edges", "machine"), "not-conforming", None),
    "py:misbehaving:SameAddress": (("edges", "machine"), "not-conforming", None),
    "py:misbehaving:NegativeAddress": (("edges", "machine"), "not-conforming", None),
    "BUG_OVERLAP": (("edges", "sizes_sweep", "chain_sweep"), "not-conforming", "violation"),
    "BUG_ALLOC0_DIRTY": (("edges", "sizes_sweep", "chain_sweep"), "not-conforming",
                         "violation"),
    "BUG_SEGV": (("edges", "sizes_sweep", "chain_sweep"), "not-conforming", "crash"),
    "BUG_ABORT": (("edges", "sizes_sweep", "chain_sweep"), "not-conforming", "crash"),
    "BUG_CHAIN_OFFSET0": (("edges", "sizes_sweep", "chain_sweep"), "not-conforming", "crash"),
    "BUG_HANG": (("edges", "sizes_sweep", "chain_sweep"), "not-conforming", "hang"),
    "slow cmd": (("machine",), "incomplete", None),
}


def test_hostile_implementations_each_get_their_typed_verdict(
    built: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RUN-003, RUN-005: every hostile implementation is failed or incomplete, never passed."""
    monkeypatch.syspath_prepend(str(IMPLS))
    verdicts: list[str] = []
    for name, (checks, expected, kind) in HOSTILE.items():
        if name.startswith("py:"):
            spec = name
        elif name == "slow cmd":
            spec = f"cmd:{sys.executable} {IMPLS / 'slow_proxy.py'}"
        else:
            spec = f"lib:{built('cslice.c', name)}"
        report = run_conformance(spec, max_examples=6, seed=0, deadline=2.0,
                                 shrink_seconds=0.5, checks=list(checks), check_deadline=5)
        assert report.status == expected, (name, report.status, report.checks)
        assert not report.conforming
        assert len(report.checks) == len(checks), name  # every check has its verdict
        failures = [c.failure for c in report.checks if c.failure is not None]
        if expected == "not-conforming":
            assert failures, name
        if kind is not None:
            assert kind in {f.kind for f in failures}, (name, failures)
        verdicts.append(report.status)
    counted = {status: verdicts.count(status) for status in sorted(set(verdicts))}
    kinds = {
        "raising Python objects": sum(name.startswith("py:hostile:") for name in HOSTILE),
        "Python objects returning garbage": sum(name.startswith("py:misbehaving:")
                                                for name in HOSTILE),
        "broken C libraries (corrupt, crash, abort, hang)": sum(name.startswith("BUG_")
                                                                 for name in HOSTILE),
        "too slow cmd: program": sum(name == "slow cmd" for name in HOSTILE),
    }
    assert sum(kinds.values()) == len(verdicts)
    print(f"\nhostile implementations: {len(verdicts)} run, verdicts {counted}")
    record("bad inputs tried",
           f"hostile implementations: {len(verdicts)} run "
           f"({', '.join(f'{count} {kind}' for kind, count in kinds.items())}); "
           f"every one got its typed verdict: {counted}, none passed")


# -- orphans -------------------------------------------------------------------------------

def _parent_and_cmdline(pid: int) -> tuple[int, str] | None:
    """The parent pid and the command line of a live (not zombie) process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), cmdline.replace(b"\0", b" ").decode(errors="replace").strip()


def processes(is_ours: Callable[[int, str], bool], parent: int | None = None
              ) -> list[tuple[int, str]]:
    """Live processes ``is_ours(pid, cmdline)`` recognises, only children of ``parent`` if set."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            seen = _parent_and_cmdline(int(entry.name))
            if seen is not None and parent in (None, seen[0]) and is_ours(int(entry.name),
                                                                          seen[1]):
                found.append((int(entry.name), seen[1]))
    return found


def orphans(is_ours: Callable[[int, str], bool]) -> list[tuple[int, str]]:
    """Live processes whose parent is 1 and which ``is_ours(pid, cmdline)`` recognises."""
    return processes(is_ours, parent=1)


def test_implementations_that_fork_leave_no_orphans(
    built: Callable[[str, str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOAD-007: runs of a cmd: that spawns a sleep and a lib: that forks leave nothing behind."""
    seconds = 80_000 + os.getpid() % 6_000  # a sleep nobody else on the machine runs
    marker = f"sleep {seconds}"
    spawner = tmp_path / "spawner.py"
    spawner.write_text(textwrap.dedent(f"""
        import os, subprocess, sys
        subprocess.Popen(["sleep", "{seconds}"])  # never waited for: left to the suite
        os.execv(sys.executable, [sys.executable, {str(IMPLS / 'slow_proxy.py')!r}, "0"])
    """))
    pid_file = tmp_path / "forked"
    monkeypatch.setenv("FIVE_CHILD_PID_FILE", str(pid_file))
    forker = built("loading/five.c", "CTOR_FORK")
    runs = 0
    for _ in range(3):
        report = run_conformance(f"cmd:{sys.executable} {spawner}", max_examples=5,
                                 checks=["edges", "machine"])
        assert report.conforming, [c.failure for c in report.checks if c.failure]
        report = run_conformance(f"lib:{forker}", max_examples=5, checks=["edges", "machine"])
        assert report.conforming, [c.failure for c in report.checks if c.failure]
        runs += 2
    forked = {int(line) for line in pid_file.read_text().split()}
    assert len(forked) >= 6  # each lib: run forked at least in its probe and one session

    def ours(pid: int, cmdline: str) -> bool:
        return pid in forked or cmdline == marker

    deadline = time.monotonic() + 10  # a killed group may take a moment to be reaped
    while (left := orphans(ours)) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in forked if _parent_and_cmdline(pid) is not None]
    survivors += [pid for pid, _ in processes(lambda pid, cmdline: cmdline == marker)]
    print(f"\norphans: {len(left)} after {runs} runs ({len(forked)} library forks)")
    assert left == []
    assert survivors == []  # nor alive under any other parent
    record("orphans left",
           f"{len(left)} processes with parent 1 after {runs} runs of implementations that "
           f"fork ({runs // 2} of a cmd: spawning '{marker}', {runs // 2} of a lib: forking "
           f"in its constructor, {len(forked)} forked children in all); 0 alive anywhere")


def test_resource_limits_are_what_the_runner_reports() -> None:
    """``peak_rss_bytes`` reads RUSAGE_SELF in bytes: it is at least the resident set now."""
    resident = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert peak_rss_bytes() >= resident * 9 // 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 == peak_rss_bytes()
