"""The native stress driver: it passes correct C allocators and rejects racy ones.

Test-the-tester for the concurrency profile: a thread-unsafe slab allocator
(global free lists, no lock) must be caught, as must one that crashes or hangs;
GLib in all three G_SLICE modes and the malloc shim must pass.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from memslice_conformance.checks.stress import CompilerMissing, compile_native, run_stress

UNSAFE_SLAB = r"""
#include <stdlib.h>
static void *free_lists[80];   /* one global LIFO per 16-byte class, and no lock at all */
void *g_slice_alloc(size_t n) {
    if (!n) return NULL;
    if (n > 1024) return malloc(n);
    size_t ix = (n + 15) / 16;
    if (!free_lists[ix]) {
        char *run = malloc(64 * 1024);
        for (size_t off = 0; off + ix * 16 <= 64 * 1024; off += ix * 16) {
            *(void **)(run + off) = free_lists[ix];
            free_lists[ix] = run + off;
        }
    }
    void *p = free_lists[ix];
    free_lists[ix] = *(void **)p;
    return p;
}
void g_slice_free1(size_t n, void *p) {
    if (!p) return;
    if (n > 1024) { free(p); return; }
    size_t ix = (n + 15) / 16;
    *(void **)p = free_lists[ix];
    free_lists[ix] = p;
}
"""

CRASHING = r"""
#include <stdlib.h>
static int calls;
void *g_slice_alloc(size_t n) {
    if (++calls == 5000) *(volatile int *)0 = 1;
    return n ? malloc(n) : NULL;
}
void g_slice_free1(size_t n, void *p) { (void)n; free(p); }
"""

HANGING = r"""
#include <stdlib.h>
#include <unistd.h>
static int calls;
void *g_slice_alloc(size_t n) {
    if (++calls == 5000) for (;;) pause();
    return n ? malloc(n) : NULL;
}
void g_slice_free1(size_t n, void *p) { (void)n; free(p); }
"""


def build(tmp_path: Path, name: str, source: str) -> str:
    c_file = tmp_path / f"{name}.c"
    c_file.write_text(source)
    library = tmp_path / f"lib{name}.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(c_file)], check=True)
    return str(library)


@pytest.mark.glib
@pytest.mark.parametrize("mode", ["", "always-malloc", "debug-blocks"])
def test_glib_passes_in_every_mode(mode: str) -> None:
    """API-004, API-005, API-009, EXIT-005 hold for GLib 2.74 under real threads."""
    for seed in (1, 2):
        run = run_stress("libglib-2.0.so.0", env={"G_SLICE": mode}, seed=seed)
        assert run.passed, run.describe()
        assert run.operations > 100_000


def test_malloc_shim_passes() -> None:
    """The slice ABI over malloc (GLib 2.76's design) is correct under threads."""
    run = run_stress(str(compile_native("malloc_slice.c", shared=True)))
    assert run.passed, run.describe()


def test_thread_unsafe_allocator_is_rejected(tmp_path: Path) -> None:
    """A racy free list hands blocks out twice: at least one seed of a few must show it."""
    library = build(tmp_path, "unsafe", UNSAFE_SLAB)
    runs = [run_stress(library, seed=seed, timeout=30) for seed in range(1, 6)]
    assert not all(run.passed for run in runs)
    failing = [run for run in runs if not run.passed]
    assert any(run.violations or run.crash for run in failing), [r.describe() for r in runs]


def test_crash_is_a_verdict_with_its_signal(tmp_path: Path) -> None:
    """A segfault inside the library is reported as SIGSEGV, not lost."""
    run = run_stress(build(tmp_path, "crashing", CRASHING), threads=2, operations=5000)
    assert run.crash == "SIGSEGV" and not run.passed
    assert "SIGSEGV" in run.describe()


def test_hang_is_a_verdict_within_the_deadline(tmp_path: Path) -> None:
    """A library that blocks forever is cut off at the deadline."""
    run = run_stress(build(tmp_path, "hanging", HANGING), threads=2, operations=5000, timeout=3)
    assert run.timed_out and not run.passed and "hung" in run.describe()


def test_unloadable_library_is_an_error_not_a_pass() -> None:
    """A library that cannot be loaded is a driver error."""
    run = run_stress("/nonexistent/libnothing.so")
    assert not run.passed and run.error and "cannot load" in run.error


def test_missing_compiler_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No compiler is a clear CompilerMissing, never a silent skip."""
    monkeypatch.setenv("MEMSLICE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler-anywhere")
    with pytest.raises(CompilerMissing, match="apt-get install gcc"):
        compile_native("stress.c")
