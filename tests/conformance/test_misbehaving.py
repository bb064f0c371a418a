"""The suite never loses a verdict: garbage, wild pointers, memory hogs and crashes.

Issue 5: an implementation that returns garbage, hands out addresses outside
any mapping, eats memory, or crashes part-way produces a verdict naming the
failing check; results gathered before a crash stay in the report; the
runner itself neither dies nor hangs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import misbehaving
import pytest

from memslice_conformance.impl.impls import python_impl, resolve
from memslice_conformance.runner import Report, run_conformance

QUICK = ("edges", "sizes_sweep", "chain_sweep")

#: The rest of the slice ABI, written over each library's g_slice_alloc/free1.
ABI_TAIL = r"""
void *g_slice_alloc0(size_t n) {
    void *p = g_slice_alloc(n);
    if (p) memset(p, 0, n);
    return p;
}
void *g_slice_copy(size_t n, const void *s) {
    void *p = g_slice_alloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
void g_slice_free_chain_with_offset(size_t n, void *c, size_t off) {
    while (c) {
        void *next;
        memcpy(&next, (char *)c + off, sizeof next);
        g_slice_free1(n, c);
        c = next;
    }
}
void g_slice_set_config(int key, long long value) { (void)key; (void)value; }
long long g_slice_get_config(int key) { (void)key; return 0; }
long long *g_slice_get_config_state(int key, long long address, unsigned *n) {
    (void)key; (void)address; if (n) *n = 0; return NULL;
}
"""

WILD_POINTER = r"""
#include <stdlib.h>
#include <string.h>
/* Correct below 1009 bytes; above, hands out distinct addresses in no mapping. */
static unsigned long wild;
void *g_slice_alloc(size_t n) {
    if (n > 1008) return (void *)(0x10000ul + 0x2000ul * ++wild);
    return n ? malloc(n) : NULL;
}
void g_slice_free1(size_t n, void *p) { if (n <= 1008) free(p); }
""" + ABI_TAIL

MEMORY_HOG = r"""
#include <stdlib.h>
#include <string.h>
/* A runaway allocator: every block takes, and touches, 16 MiB more than asked. */
void *g_slice_alloc(size_t n) {
    if (!n) return NULL;
    char *p = malloc(n + (16u << 20));
    if (p) memset(p, 1, n + (16u << 20));
    return p;
}
void g_slice_free1(size_t n, void *p) { (void)n; free(p); }
""" + ABI_TAIL


def build(tmp_path: Path, name: str, source: str) -> str:
    c_file = tmp_path / f"{name}.c"
    c_file.write_text(source)
    library = tmp_path / f"lib{name}.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(library), str(c_file)], check=True)
    return f"lib:{library}"


def failing_checks(report: Report) -> set[str]:
    return {check.name for check in report.checks if check.status == "fail"}


@pytest.mark.parametrize("cls", misbehaving.MISBEHAVING, ids=lambda c: c.__name__)
def test_garbage_answers_are_reported(cls: type) -> None:
    """API-001, API-004: non-addresses and one address for everything fail, by clause."""
    report = run_conformance(python_impl(cls), max_examples=4, seed=0, checks=QUICK)
    assert not report.conforming
    failing = {c.id for c in report.clauses if c.status == "fail"}
    assert set(cls.BREAKS) <= failing, failing


def test_garbage_through_a_worker_process_is_reported() -> None:
    """The same garbage, crossing the JSON-lines protocol from a worker, is a verdict."""
    impl = resolve("worker:py:misbehaving:ReturnsText")
    report = run_conformance(impl, max_examples=4, seed=0, checks=["edges", "sizes_sweep"])
    assert not report.conforming and failing_checks(report)


def test_wild_pointer_crash_keeps_earlier_results(tmp_path: Path) -> None:
    """A SIGSEGV in the malloc-path sizes fails that check; checks before it keep passing."""
    report = run_conformance(
        build(tmp_path, "wild", WILD_POINTER), max_examples=4, seed=0, checks=QUICK
    )
    assert not report.conforming
    statuses = {check.name: check.status for check in report.checks}
    assert statuses["edges"] == "pass"  # gathered before the crash, kept in the report
    crashed = [c for c in report.checks if c.failure and c.failure.kind == "crash"]
    assert crashed and "SIGSEGV" in str(crashed[0].failure)


def test_memory_hog_is_stopped_by_the_worker_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runaway allocator hits the worker's address-space cap and fails in bounded time."""
    monkeypatch.setenv("MEMSLICE_WORKER_MEMORY", str(512 << 20))
    started = time.monotonic()
    report = run_conformance(
        build(tmp_path, "hog", MEMORY_HOG), max_examples=4, seed=0, checks=["sizes_sweep"]
    )
    assert not report.conforming
    assert time.monotonic() - started < 120


def test_a_protocol_babbler_is_reported(tmp_path: Path) -> None:
    """A cmd: program that answers with non-JSON is a failure, not a runner crash."""
    script = tmp_path / "babble.py"
    script.write_text(
        "import sys\n"
        "for line in sys.stdin:\n"
        "    sys.stdout.write('this is not json\\n')\n"
        "    sys.stdout.flush()\n"
    )
    from memslice_conformance.failures import ImplUnavailable

    try:
        report = run_conformance(f"cmd:{sys.executable} {script}", max_examples=2, seed=0)
    except ImplUnavailable as error:  # refused at hello: the CLI's exit status 2
        assert "json" in str(error).lower() or "protocol" in str(error).lower()
    else:
        assert not report.conforming
