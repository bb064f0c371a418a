"""GLib 2.74's own slowdown with two threads, reproduced in C and explained.

Rules and theory of operation
-----------------------------
The GMemChunk facts (§3.3, table 1) report that GSlice 2.74's default mode
took about 8x longer with two threads than with one on GLib's hammer
workload, with some 275,000 voluntary context switches, while
``always-malloc`` scaled perfectly.  No Python peer can show this (the GIL
serialises them), so this module compiles a small C program (written here
from the hammer's description, API-020: LCG sizes ``rand % 1021``, 10000 live
blocks, the even half replaced per round, everything freed, then bursts of
100 blocks of one size) and runs it against the installed
GLib in a fresh process per configuration::

    for mode in (default, always-malloc):  for threads in (1, 2):
        run hammer_threads <threads> <rounds>   (G_SLICE=mode)
        -> wall seconds, voluntary context switches, max contention counter

Each thread does the whole workload, so perfect scaling keeps the time flat
and full serialisation doubles it.  Why GSlice loses: with sizes spread over
64 classes, most requests are for chunks of 336..1008 bytes whose magazines
hold only 4 blocks (MAG-004), so a thread trips to the depot every few
operations; the depot has one mutex for all classes and the slab layer
another (DEPOT-001, SLAB-001).  Two threads hammering those two locks sleep
on them (the context switches).  The contention adaptation (CONT-001)
raises a class's threshold only by ``cc * 64 / chunk``, at most 16 for
1008-byte chunks, and only when a contended pop follows another contended
pop, so it cannot make these classes' magazines big enough.
"""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HAMMER_C", "ThreadRun", "build", "reproduce"]

HAMMER_C = r"""
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

/* GLib's prototypes, declared here: the machine has the library, not its headers. */
typedef size_t gsize;
typedef unsigned int guint;
typedef uint32_t guint32;
typedef int64_t gint64;
typedef void *gpointer;
gpointer g_slice_alloc (gsize size);
void g_slice_free1 (gsize size, gpointer block);
gint64 *g_slice_get_config_state (int ckey, gint64 address, guint *n_values);
void g_free (gpointer mem);
#define G_SLICE_CONFIG_CONTENTION_COUNTER 6

#define N_BLOCKS 10000
#define PRIME 1021
static int rounds;

static void *hammer (void *data) {
  guint32 x = (guint32) (uintptr_t) data;
  gsize sizes[N_BLOCKS];
  gpointer blocks[N_BLOCKS];
  for (int i = 0; i < N_BLOCKS; i++) {
    x = 1664525u * x + 1013904223u;
    sizes[i] = x % PRIME;
    blocks[i] = g_slice_alloc (sizes[i]);
  }
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < N_BLOCKS; i += 2) {
      g_slice_free1 (sizes[i], blocks[i]);
      x = 1664525u * x + 1013904223u;
      sizes[i] = x % PRIME;
      blocks[i] = g_slice_alloc (sizes[i]);
    }
  for (int i = 0; i < N_BLOCKS; i++)
    g_slice_free1 (sizes[i], blocks[i]);
  /* Step 4: bursts of 100 blocks of one random size, allocated then freed. */
  for (int r = 0; r < rounds; r++) {
    x = 1664525u * x + 1013904223u;
    gsize size = x % PRIME;
    for (int i = 0; i < 100; i++)
      blocks[i] = g_slice_alloc (size);
    for (int i = 0; i < 100; i++)
      g_slice_free1 (size, blocks[i]);
  }
  return NULL;
}

int main (int argc, char **argv) {
  int n_threads = atoi (argv[1]);
  rounds = atoi (argv[2]);
  pthread_t threads[64];
  struct timespec t0, t1;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (int t = 0; t < n_threads; t++)
    pthread_create (&threads[t], NULL, hammer, (void *) (uintptr_t) (12345u + t));
  for (int t = 0; t < n_threads; t++)
    pthread_join (threads[t], NULL);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  /* [chunk size, contention counter, threshold] per class; the call has no
     bounds check and crashes under always-malloc, so only asked when told to. */
  gint64 max_cc = 0;
  for (guint ix = 0; argc > 3 && ix < 63; ix++) {
    guint n = 0;
    gint64 *v = g_slice_get_config_state (G_SLICE_CONFIG_CONTENTION_COUNTER, ix, &n);
    if (v && n == 3 && v[1] > max_cc) max_cc = v[1];
    g_free (v);
  }
  printf ("%.6f %ld %ld\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
          ru.ru_nvcsw, (long) max_cc);
  return 0;
}
"""


@dataclass(frozen=True, slots=True)
class ThreadRun:
    """One configuration's figures."""

    mode: str
    threads: int
    seconds: float
    voluntary_switches: int
    max_contention_counter: int


def build(folder: Path) -> Path:
    """Compile the hammer against the system GLib; raises if gcc or the library is missing."""
    source, program = folder / "hammer_threads.c", folder / "hammer_threads"
    source.write_text(HAMMER_C)
    library = ctypes.util.find_library("glib-2.0")
    if library is None:
        raise FileNotFoundError("libglib-2.0.so.0 is not installed")
    # Link against the runtime library by its full path: no -dev package needed.
    path = next(
        p
        for p in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64")
        if (Path(p) / library).exists()
    )
    subprocess.run(
        ["gcc", "-O2", "-o", str(program), str(source), str(Path(path) / library), "-lpthread"],
        check=True,
    )
    return program


def reproduce(rounds: int = 1000, repeats: int = 3) -> list[ThreadRun]:
    """Run every configuration ``repeats`` times; keep each one's median-time run."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        program = build(Path(tmp))
        for mode in ("default", "always-malloc"):
            for threads in (1, 2):
                env = dict(os.environ)
                env.pop("G_SLICE", None)
                if mode != "default":
                    env["G_SLICE"] = mode
                runs = []
                for _ in range(repeats):
                    out = subprocess.run(
                        [str(program), str(threads), str(rounds)]
                        + (["counters"] if mode == "default" else []),
                        check=True,
                        capture_output=True,
                        text=True,
                        env=env,
                    ).stdout.split()
                    runs.append(ThreadRun(mode, threads, float(out[0]), int(out[1]), int(out[2])))
                runs.sort(key=lambda r: r.seconds)
                results.append(runs[len(runs) // 2])
    return results


if __name__ == "__main__":
    for run in reproduce():
        print(run)
