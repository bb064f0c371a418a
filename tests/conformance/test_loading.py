"""Loading and isolating an implementation (LOAD-002..LOAD-011, CONF-021).

Every library here is built from ``impls/loading/five.c`` (the five
allocation functions over malloc, nothing else) in a variant that plants one
loading problem; the runs use the real worker, real ``dlopen`` and real
process groups.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from c_builds import c_library_builder

from memslice_conformance.cli import main as cli_main
from memslice_conformance.failures import ImplUnavailable
from memslice_conformance.impl.impls import python_impl, resolve
from memslice_conformance.impl.native import REQUIRED_SYMBOLS
from memslice_conformance.impl.worker import STDERR_TAIL, WorkerClient, worker_argv
from memslice_conformance.runner import run_conformance

FIVE = Path(__file__).parent / "impls" / "loading" / "five.c"
QUICK = ("edges", "sizes_sweep", "chain_sweep", "machine")


@pytest.fixture(scope="session")
def five(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Compile ``five.c`` with ``-D<variant>`` (PLAIN: none); returns the .so path."""
    return c_library_builder(tmp_path_factory, FIVE, "libfive_{variant}.so")


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for a reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_five_functions_conform_on_core_and_config_is_not_claimed(
    five: Callable[[str], Path],
) -> None:
    """A library with only the allocation API loads and conforms (LOAD-002, CONF-021)."""
    spec = f"lib:{five('PLAIN')}"
    assert "config" not in resolve(spec).profiles
    report = run_conformance(spec, profiles=["core", "config"], max_examples=6, checks=QUICK)
    assert report.conforming, [c.failure for c in report.checks if c.failure]
    config = {c.status for c in report.clauses if c.profile == "config"}
    assert config == {"not-claimed"}
    assert not any(c.id.startswith("CONF") for c in report.clauses if c.profile == "core")


def test_every_missing_function_is_named_with_its_prototype(
    five: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """One message, all four missing prototypes, "could not be loaded", exit 2 (LOAD-002)."""
    spec = f"lib:{five('ONLY_ALLOC')}"
    with pytest.raises(ImplUnavailable) as caught:
        resolve(spec)
    message = str(caught.value)
    assert "could not be loaded" in message and "crashed" not in message
    for name, prototype in REQUIRED_SYMBOLS.items():
        assert (prototype in message) == (name != "g_slice_alloc"), name
    assert cli_main(["run", "--impl", spec, "--quiet"]) == 2
    printed = " ".join(capsys.readouterr().out.split())
    assert "g_slice_free_chain_with_offset(size_t block_size, void *mem_chain," in printed
    assert "crashed" not in printed


def test_a_name_without_a_slash_is_looked_for_in_the_current_directory(
    five: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lib:libx.so`` means ./libx.so when it exists, else the message says how (LOAD-004)."""
    shutil.copy(five("PLAIN"), tmp_path / "libmine.so")
    monkeypatch.chdir(tmp_path)
    assert resolve("lib:libmine.so").profiles >= {"core"}
    with pytest.raises(ImplUnavailable, match=r"lib:\./libnothere\.so"):
        resolve("lib:libnothere.so")


def test_a_library_that_needs_more_static_tls_is_retried_and_says_so(
    five: Callable[[str], Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """256 KiB of initial-exec TLS does not fit glibc's reserve; the retry does (LOAD-005)."""
    spec = f"lib:{five('BIG_TLS')}"
    # Plain dlopen really refuses it, so the retry is what made it load.
    probe = subprocess.run(
        [sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(five('BIG_TLS'))!r})"],
        capture_output=True, text=True, check=False,
    )
    assert "static TLS" in probe.stderr
    impl = resolve(spec)
    assert any("glibc.rtld.optional_static_tls=" in note for note in impl.notes)
    report = run_conformance(impl, max_examples=3, checks=["edges", "sizes_sweep"])
    assert report.conforming, [c.failure for c in report.checks if c.failure]
    argv = ["run", "--impl", spec, "--check", "edges", "--quiet", "--trace-dir", str(tmp_path)]
    assert cli_main(argv) == 0
    assert "note: loaded with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=" in " ".join(
        capsys.readouterr().out.split()
    )


def test_a_constructor_that_aborts_could_not_be_loaded(
    five: Callable[[str], Path], tmp_path: Path
) -> None:
    """A death while loading names the signal and stderr, never a crash verdict
    (LOAD-006); the report asked for says the same, with no check run (LOAD-012)."""
    with pytest.raises(ImplUnavailable) as caught:
        resolve(f"lib:{five('CTOR_ABORT')}")
    message = str(caught.value)
    assert "could not be loaded" in message and "SIGABRT" in message
    assert "five: refusing to load" in message
    report = tmp_path / "r.json"
    assert cli_main(["run", "--impl", f"lib:{five('CTOR_ABORT')}", "--quiet",
                     "--report", str(report)]) == 2
    data = json.loads(report.read_text())
    assert "SIGABRT" in data["load_error"] and "five: refusing to load" in data["load_error"]
    assert data["status"] == "incomplete" and data["checks"] == []


def test_the_hello_probe_runs_under_the_memory_cap(
    five: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A constructor mapping 10 GiB fails within the 4 GiB cap at the probe (LOAD-009)."""
    spec = f"lib:{five('CTOR_MAP_10G')}"
    with pytest.raises(ImplUnavailable, match="mmap of 10 GiB failed"):
        resolve(spec)
    # The cap is what refused it: without one the same library loads.
    monkeypatch.setenv("MEMSLICE_WORKER_MEMORY", "0")
    assert "core" in resolve(spec).profiles


def test_what_a_library_forks_does_not_outlive_the_run(
    five: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker's process group is killed when it is closed (LOAD-007)."""
    pids = tmp_path / "pids"
    monkeypatch.setenv("FIVE_CHILD_PID_FILE", str(pids))
    report = run_conformance(
        f"lib:{five('CTOR_FORK')}", max_examples=3, checks=["edges", "machine"]
    )
    assert report.conforming
    forked = [int(line) for line in pids.read_text().split()]
    assert len(forked) >= 2  # the hello probe and at least one session
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in forked) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in forked if _alive(pid)] == []


def test_what_a_cmd_program_spawns_does_not_outlive_it(tmp_path: Path) -> None:
    """A background child of a ``cmd:`` program dies with the group (LOAD-007)."""
    marker = tmp_path / "child"
    script = tmp_path / "impl.py"
    script.write_text(textwrap.dedent(f"""
        import json, subprocess, sys
        child = subprocess.Popen(["sleep", "300"])
        open({str(marker)!r}, "w").write(str(child.pid))
        for line in sys.stdin:
            m = json.loads(line)
            r = {{"protocol": "memslice-jsonl", "version": 1, "implementation": "x",
                  "profiles": ["core"]}}
            print(json.dumps({{"id": m["id"], "ok": True, "result": r}}), flush=True)
    """))
    client = WorkerClient([sys.executable, str(script)])
    client.start()
    try:
        client.hello()
        child = int(marker.read_text())
        assert _alive(child)
    finally:
        client.close()
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_stderr_is_kept_to_a_bounded_tail(five: Callable[[str], Path]) -> None:
    """300 MB of stderr: the last 64 KiB are kept, the rest counted (LOAD-008)."""
    client = WorkerClient(worker_argv(f"lib:{five('CTOR_STDERR')}"))
    client.start()
    try:
        client.hello()
    finally:
        # After close the drain has read the pipe to its end: the last line
        # may still sit in the pipe right after hello on a busy machine.
        client.close()
    tail = client.stderr_tail(STDERR_TAIL)
    first_line, _, kept = tail.partition("\n")
    dropped = int(first_line.strip("[").split()[0])
    assert dropped >= 300 * (1 << 20) - STDERR_TAIL
    assert len(kept.encode()) <= STDERR_TAIL
    assert "five: the last line of stderr" in kept


def test_reset_gives_the_pristine_state_of_a_new_process(five: Callable[[str], Path]) -> None:
    """After reset the allocator is as just loaded: same first address, new pid (LOAD-010)."""
    client = WorkerClient(worker_argv(f"lib:{five('PLAIN')}"))
    client.start()
    try:
        hello = client.hello()
        assert {"reset", "digests"} <= hello.optional_ops
        first = client.call("alloc", size=40)
        assert client.call("alloc", size=40) != first
        before = client.pid
        client.reset()
        assert client.pid != before
        assert client.call("alloc", size=40) == first
    finally:
        client.close()


def test_a_library_with_threads_at_load_is_not_forked_but_still_checked(
    five: Callable[[str], Path],
) -> None:
    """fork copies only the calling thread: no reset then, a new process per
    example instead, same verdict (LOAD-010, LOAD-011)."""
    spec = f"lib:{five('CTOR_THREAD')}"
    client = WorkerClient(worker_argv(spec))
    client.start()
    try:
        assert client.hello().optional_ops == frozenset({"digests", "bulk"})  # no "reset"
    finally:
        client.close()
    report = run_conformance(spec, max_examples=4, checks=["edges", "machine"])
    assert report.conforming, [c.failure for c in report.checks if c.failure]


def test_a_mutable_config_api_fails_only_the_config_profile(
    clib: Callable[[str], str],
) -> None:
    """set_config changing a value after first use: core conforms, CONF-004 fails
    (CONF-004, CONF-021)."""
    report = run_conformance(
        clib("CONFIG_MUTABLE"), profiles=["core", "config"], max_examples=6,
        checks=[*QUICK, "config"],
    )
    statuses = {(c.profile, c.id): c.status for c in report.clauses}
    assert statuses[("config", "CONF-004")] == "fail"
    assert {s for (profile, _), s in statuses.items() if profile == "core"} <= {
        "pass", "not-checked"
    }
    assert [c.name for c in report.checks if c.status == "fail"] == ["config"]
    assert not report.conforming


def test_python_objects_claim_config_by_having_it() -> None:
    """A py: object without the three methods runs core only; one with a mutable
    set_config fails config only (LOAD-003, CONF-004)."""
    import pyimpls

    plain = run_conformance(
        python_impl(pyimpls.NoConfigAPI), profiles=["core", "config"], max_examples=4,
        checks=[*QUICK, "config"],
    )
    assert plain.conforming
    assert [c.name for c in plain.checks] == list(QUICK)
    mutable = run_conformance(
        python_impl(pyimpls.MutableConfig), profiles=["config"], checks=["config"]
    )
    [check] = mutable.checks
    assert check.failure is not None and check.failure.clauses == ("CONF-004",)
    assert "after first use changed" in check.failure.message


@pytest.mark.glib
@pytest.mark.parametrize("spec", ["glib", "glib:debug-blocks", "malloc", "reference"])
def test_both_glib_behaviours_pass_the_config_profile(spec: str) -> None:
    """GLib 2.74 refuses a late set_config with a critical, 2.76 (the malloc shim)
    ignores it: both conform (CONF-004, CONF-010, CONF-011)."""
    report = run_conformance(spec, profiles=["config"])
    assert report.conforming, [c.failure for c in report.checks if c.failure]


def test_the_worker_env_var_for_the_cap_is_not_inherited_by_cmd_programs_blindly() -> None:
    """The cap reaches a cmd: program through prlimit, whatever it reads (LOAD-009)."""
    script = (
        "import json,resource,sys\n"
        "for line in sys.stdin:\n"
        "    m=json.loads(line)\n"
        "    r={'protocol':'memslice-jsonl','version':1,'implementation':"
        "str(resource.getrlimit(resource.RLIMIT_AS)[0]),'profiles':['core']}\n"
        "    print(json.dumps({'id':m['id'],'ok':True,'result':r}),flush=True)\n"
    )
    client = WorkerClient([sys.executable, "-c", script], memory_limit=3 << 30)
    client.start()
    try:
        assert client.hello().implementation == str(3 << 30)
    finally:
        client.close()
    assert os.environ.get("MEMSLICE_WORKER_AS_LIMIT") is None
