"""W8's recorder: log the g_slice calls of real GLib programs with an LD_PRELOAD shim.

Rules and theory of operation
-----------------------------
A small C shim (compiled here with the system gcc) defines ``g_slice_alloc``,
``g_slice_alloc0``, ``g_slice_copy``, ``g_slice_free1`` and
``g_slice_free_chain_with_offset``; the dynamic linker binds callers to it
first, it logs ``op size address thread`` and forwards to GLib's own function
(``dlsym(RTLD_NEXT)``)::

    program ──▶ libgio / libgobject ──PLT──▶ shim.so ──▶ libglib g_slice_*
                libglib ──direct call──▶ libglib g_slice_*   (not seen: see below)

Limitation, measured: Debian's ``libglib-2.0.so.0`` binds its own calls to
``g_slice_*`` inside the library (it has no PLT relocation for them), so the
shim sees the slice calls made by GObject, GIO and the program, not those of
GLib's own GList/GHashTable/GTree code.  The traces are therefore honest but
partial recordings of real programs.

``convert`` turns the raw log into JSON Lines: a header (command, counts),
then ``["a"|"f", size, id]`` per event, where ``id`` numbers blocks in order
of allocation (addresses are reused, ids are not).  Frees of blocks the log
never saw allocated are dropped and counted in the header.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

__all__ = ["SHIM_C", "build_shim", "convert", "record"]

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
static FILE *out;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void *(*real_alloc)(size_t), *(*real_alloc0)(size_t), *(*real_copy)(size_t, const void *);
static void (*real_free1)(size_t, void *), (*real_chain)(size_t, void *, size_t);
static void setup(void) {  /* called with mu held */
    if (out) return;
    const char *path = getenv("SLICE_TRACE");
    out = fopen(path ? path : "/dev/null", "w");
    real_alloc = dlsym(RTLD_NEXT, "g_slice_alloc");
    real_alloc0 = dlsym(RTLD_NEXT, "g_slice_alloc0");
    real_copy = dlsym(RTLD_NEXT, "g_slice_copy");
    real_free1 = dlsym(RTLD_NEXT, "g_slice_free1");
    real_chain = dlsym(RTLD_NEXT, "g_slice_free_chain_with_offset");
}
static void note(char op, size_t n, void *p) {
    pthread_mutex_lock(&mu); setup();
    fprintf(out, "%c %zu %lx %lx\n", op, n, (unsigned long)(uintptr_t)p,
            (unsigned long)pthread_self());
    pthread_mutex_unlock(&mu);
}
static void ready(void) { pthread_mutex_lock(&mu); setup(); pthread_mutex_unlock(&mu); }
void *g_slice_alloc(size_t n) { ready(); void *p = real_alloc(n); note('a', n, p); return p; }
void *g_slice_alloc0(size_t n) { ready(); void *p = real_alloc0(n); note('a', n, p); return p; }
void *g_slice_copy(size_t n, const void *s) {
    ready(); void *p = real_copy(n, s); note('a', n, p); return p;
}
void g_slice_free1(size_t n, void *p) { ready(); if (p) note('f', n, p); real_free1(n, p); }
void g_slice_free_chain_with_offset(size_t n, void *p, size_t off) {
    ready();
    for (void *q = p; q; q = *(void **)((char *)q + off)) note('f', n, q);
    real_chain(n, p, off);
}
"""


def build_shim(folder: Path) -> Path:
    """Compile the shim; raises if gcc is missing or fails."""
    source, library = folder / "slicetrace.c", folder / "slicetrace.so"
    source.write_text(SHIM_C)
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source), "-ldl", "-lpthread"],
        check=True,
    )
    return library


def convert(raw: str, command: str) -> list[str]:
    """Raw shim log to JSON Lines (header first)."""
    ids: dict[str, int] = {}
    events: list[str] = []
    dropped = 0
    next_id = 0
    threads: set[str] = set()
    for line in raw.splitlines():
        op, size, address, thread = line.split()
        threads.add(thread)
        if op == "a":
            if address == "0":
                continue  # size 0 gives NULL: nothing to free later
            ids[address] = next_id
            events.append(json.dumps(["a", int(size), next_id], separators=(",", ":")))
            next_id += 1
        elif address in ids:
            events.append(json.dumps(["f", int(size), ids.pop(address)], separators=(",", ":")))
        else:
            dropped += 1
    header = {
        "command": command,
        "glib": "2.74.6 (Debian), recorded with an LD_PRELOAD shim",
        "events": len(events),
        "allocations": next_id,
        "unmatched_frees_dropped": dropped,
        "threads": len(threads),
        "note": "slice calls from GObject/GIO/the program; libglib's internal calls are not "
        "interposable (bound inside the library)",
    }
    return [json.dumps(header), *events]


def record(command: str, out: Path, max_events: int = 20_000) -> int:
    """Run ``command`` under the shim and write its trace to ``out``; returns the event count."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shim = build_shim(folder)
        log = folder / "trace.txt"
        env = dict(os.environ, LD_PRELOAD=str(shim), SLICE_TRACE=str(log))
        subprocess.run(
            shlex.split(command),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
        lines = convert(log.read_text(), command)
    header, events = lines[0], lines[1 : 1 + max_events]
    if len(lines) - 1 > max_events:
        meta = json.loads(header)
        meta["truncated_to"] = max_events
        header = json.dumps(meta)
    out.write_text("\n".join([header, *events]) + "\n")
    return len(events)


if __name__ == "__main__":
    import sys

    here = Path(__file__).resolve().parent / "traces"
    for name, cmd in (
        ("gsettings-list-recursively", "gsettings list-recursively"),
        ("glib-compile-schemas", "glib-compile-schemas --dry-run /usr/share/glib-2.0/schemas"),
        ("gio-list-libdir", "gio list -l -a standard::*,unix::* /usr/lib/x86_64-linux-gnu"),
        ("gio-tree-share-doc", "gio tree /usr/share/doc"),
    ):
        print(name, record(cmd, here / f"{name}.jsonl"), file=sys.stderr)
