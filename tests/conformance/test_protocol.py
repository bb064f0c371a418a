"""The memslice-jsonl protocol, the worker, its client, and the executor.

Crash and hang detection are tested with tiny ``cmd:`` programs written
inline, so the client is shown to work for any language, not only for the
Python worker.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memslice_conformance.failures import ImplCrash, ImplHang, ImplUnavailable
from memslice_conformance.impl.executor import OpThreads
from memslice_conformance.impl.impls import resolve
from memslice_conformance.impl.jsonl import OPS, ProtocolError, validate_request
from memslice_conformance.impl.validate import load_schema, validate_protocol
from memslice_conformance.impl.worker import WorkerClient, worker_argv
from memslice_conformance.runner import run_conformance


def _request_schema() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    return jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/request"})


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema())


_values = st.one_of(st.integers(-5, 1 << 40), st.text(max_size=4), st.none(), st.booleans())


@given(
    op=st.one_of(st.sampled_from(sorted(OPS)), st.text(max_size=6)),
    fields=st.dictionaries(
        st.sampled_from(["size", "addr", "src", "head", "next_offset", "key", "value",
                         "address", "data", "thread"]),
        _values,
    ),
    ident=st.one_of(st.integers(0, 100), st.none()),
)
def test_validate_request_agrees_with_the_schema(
    op: str, fields: dict[str, object], ident: int | None
) -> None:
    """The run-time validator and the published schema accept the same requests."""
    message: dict[str, object] = {**fields, "op": op}
    if ident is not None:
        message["id"] = ident
    if isinstance(message.get("data"), str):
        message["data"] = "ab" if len(str(message["data"])) % 2 else ""
    try:
        validate_request(message)  # type: ignore[arg-type]
        ours = True
    except ProtocolError:
        ours = False
    theirs = _request_schema().is_valid(message)
    assert ours == theirs, message


def test_worker_serves_ops_on_named_threads_in_order() -> None:
    client = WorkerClient(worker_argv("malloc"))
    client.start()
    try:
        hello = client.hello()
        assert (hello.protocol, hello.version, hello.implementation) == (
            "memslice-jsonl", 1, "malloc")
        addr = client.call("alloc", size=40, thread="t1")
        assert isinstance(addr, int) and addr % 8 == 0
        responses = client.exchange([
            {"op": "write", "addr": addr, "data": "11" * 40, "thread": "t2"},
            {"op": "read", "addr": addr, "size": 40, "thread": "t2"},
            {"op": "free1", "size": 40, "addr": addr, "thread": "t2"},
            {"op": "thread_exit", "thread": "t1"},
            {"op": "bogus"},
            {"op": "alloc", "size": 0},
        ])
        assert [r["id"] for r in responses] == sorted(r["id"] for r in responses)  # type: ignore[type-var]
        assert responses[1]["result"] == "11" * 40
        assert responses[4]["ok"] is False
        assert responses[5]["result"] == 0
    finally:
        client.close()


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "impl.py"
    path.write_text(body)
    return f"cmd:{sys.executable} {path}"


HELLO = (
    "import json, sys, os, signal, time\n"
    "for line in sys.stdin:\n"
    "    m = json.loads(line)\n"
    "    if m['op'] == 'hello':\n"
    "        r = {'protocol': 'memslice-jsonl', 'version': 1, 'implementation': 'x',"
    " 'profiles': ['core']}\n"
    "        print(json.dumps({'id': m['id'], 'ok': True, 'result': r}), flush=True)\n"
    "        continue\n"
)


def test_client_reports_a_crash_with_its_signal(tmp_path: Path) -> None:
    spec = _script(tmp_path, HELLO + "    os.kill(os.getpid(), signal.SIGSEGV)\n")
    impl = resolve(spec)
    client = WorkerClient(impl.argv)
    client.start()
    try:
        with pytest.raises(ImplCrash) as info:
            client.call("alloc", size=8)
        assert info.value.signal_name == "SIGSEGV"
    finally:
        client.close()


def test_client_kills_a_hang_at_the_deadline(tmp_path: Path) -> None:
    spec = _script(tmp_path, HELLO + "    time.sleep(60)\n")
    client = WorkerClient(resolve(spec).argv, deadline=0.5)
    client.start()
    try:
        with pytest.raises(ImplHang):
            client.call("alloc", size=8)
        assert not client.alive
    finally:
        client.close()


def test_a_crashing_impl_fails_checks_but_the_run_goes_on(tmp_path: Path) -> None:
    """Crashes are failures of the running check; later checks still run."""
    spec = _script(tmp_path, HELLO + "    os.abort()\n")
    report = run_conformance(spec, max_examples=2, checks=["edges", "sizes_sweep"])
    assert not report.conforming
    assert [c.status for c in report.checks] == ["fail", "fail"]
    assert all(c.failure is not None and c.failure.kind == "crash" for c in report.checks)


def test_unloadable_implementations_raise_unavailable(tmp_path: Path) -> None:
    for spec in ("lib:/nonexistent.so", "nonsense", "glib:turbo", "py:nomodule:x",
                 f"lib:{tmp_path}"):
        with pytest.raises(ImplUnavailable):
            resolve(spec)


def test_validate_protocol_accepts_the_worker_and_rejects_bad_speakers(tmp_path: Path) -> None:
    problems = validate_protocol("malloc")
    assert problems == [], problems
    bad = _script(
        tmp_path,
        HELLO + "    print(json.dumps({'id': m['id'], 'ok': True, 'result': 'oops'}), "
        "flush=True)\n",
    )
    problems = validate_protocol(bad)
    assert any("alloc" in p for p in problems)


def test_cmd_implementation_in_another_process_conforms() -> None:
    """Any program speaking the protocol plugs in; here the worker itself."""
    spec = f"cmd:{sys.executable} -m memslice_conformance.impl.worker --impl malloc"
    report = run_conformance(spec, max_examples=3, checks=["edges", "chain_sweep"])
    assert report.conforming


class _Recorder:
    def __init__(self) -> None:
        self.exits: list[int] = []

    def thread_exit(self) -> None:
        self.exits.append(threading.get_ident())


def test_executor_runs_exit_hooks_on_the_exiting_thread_then_starts_afresh() -> None:
    impl = _Recorder()
    threads = OpThreads(impl)  # type: ignore[arg-type]
    first = threads.submit("t1", threading.get_ident).result(5)
    threads.exit_thread("t1").result(5)
    second = threads.submit("t1", threading.get_ident).result(5)
    threads.close()
    assert impl.exits[0] == first
    assert json.dumps(impl.exits)  # recorded plain ints
    with pytest.raises(ValueError):
        OpThreads(impl).exit_thread("main")  # type: ignore[arg-type]
    # The name now runs on a new OS thread (identities may be recycled by the
    # OS, so only the hook count is certain): exited once, closed once.
    assert len(impl.exits) == 2 and second is not None


EXAMPLE = Path(__file__).parents[2] / "conformance/memslice_conformance/examples/slice_impl.pl"


def test_the_perl_example_speaks_the_protocol_and_conforms() -> None:
    """The how-to's implementation in another language (perl is part of every
    Debian base system; a missing perl fails here, loudly)."""
    spec = f"cmd:perl {EXAMPLE}"
    assert validate_protocol(spec) == []
    report = run_conformance(spec, max_examples=3, checks=["edges", "chain_sweep"])
    assert report.conforming, [c.failure for c in report.checks if c.failure]


def test_python_implementations_can_be_isolated_in_a_worker() -> None:
    """``worker:py:...`` hosts Python code out of process (a crash cannot
    take the suite down); the same broken implementation is still caught."""
    report = run_conformance("worker:py:pyimpls:FourAligned", max_examples=3,
                             checks=["sizes_sweep"])
    assert not report.conforming
    assert report.checks[0].failure is not None
    assert report.checks[0].failure.clauses[0] == "API-006"
