"""A trace as a standalone C program: the failure reproduced without Python.

Rules and theory of operation
-----------------------------
``memslice-conformance replay TRACE --emit-c repro.c`` writes one C file that
makes the trace's calls through the ``g_slice_*`` ABI and checks, after each
step, what the suite's :class:`~memslice_conformance.checks.model.Checker` checks
(RUN-008)::

    repro.c
      prototypes       the five allocation functions (+ the config ones the
                       trace uses)
      the model        blk[handle] = {pointer, size, expected bytes, known mask}
                       born()  : NULL iff size 0, aligned, disjoint (API-001/4/6),
                                 alloc0 zero (API-002), copy equal (API-003)
                       verify(): every known byte of every live block (API-005)
      named threads    run_on(thread, call_N): a pthread per trace thread name,
                       driven one call at a time; "pthread_exit" ends it
      call_1..call_N   one small function per call, numbered as in the trace
      main()           dirty_heap() (garbage in fresh memory and in the slack
                       past each block, as in the suite's worker), then the
                       steps in order, verify() after each; on a clean exit,
                       what the suite saw that this program did not (RUN-016)

Build and run: ``gcc repro.c -L. -lmyslice -lpthread && LD_LIBRARY_PATH=. ./a.out``
(or under gdb, or with ``-fsanitize=address``).  Exit status 0: no failure;
1: a check failed, with ``FAIL [CLAUSE] call N: ...`` on stdout; a crash
is the crash itself.  The calls of one step run one after another (in the
suite they may overlap across threads), so a failure that needs a race may
not reproduce; nor may one that depends on what never-written memory holds
(the garbage here is 0xa5 bytes, the worker's is its own: a link read past
the end of a block crashes in both only because both hold non-NULL garbage
there).  The program says both in its head comment and, when the trace
records a failure it did not see, at its exit (RUN-016).  Handles become an
``enum`` of C names, so ``blk[b3].p`` is the trace's block ``b3``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Final, cast

from memslice_conformance.checks.model import Op
from memslice_conformance.impl.jsonl import JSONValue
from memslice_conformance.reporting.trace import Trace, call_lines

__all__ = ["emit_c"]

_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")
_RESERVED: Final = frozenset(
    {"main", "blk", "call_no", "born", "died", "verify", "wrote", "fail", "run_on",
     "end_thread", "NBLOCKS", "NTHREADS", "ALLOC", "ALLOC0", "COPY", "link_chain",
     "check_block", "int", "char", "void", "if", "else", "for", "while", "do", "return",
     "static", "const", "struct", "enum", "unsigned", "size_t", "long", "short"}
)

_PRELUDE: Final = r"""
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not every trace uses every helper below. */
#pragma GCC diagnostic ignored "-Wunused-function"

/* The g_slice_* ABI (gsize is size_t, gpointer is void *). */
void *g_slice_alloc(size_t block_size);
void *g_slice_alloc0(size_t block_size);
void *g_slice_copy(size_t block_size, const void *mem_block);
void g_slice_free1(size_t block_size, void *mem_block);
void g_slice_free_chain_with_offset(size_t block_size, void *mem_chain, size_t next_offset);
@CONFIG@
/* -- the model: what every live block must hold (the suite's checker, in C) */

enum { ALLOC, ALLOC0, COPY };

static struct {
  unsigned char *p;       /* the address the allocator handed out */
  size_t size;
  unsigned char *want;    /* expected bytes */
  unsigned char *known;   /* 1 where the expected byte is known (written) */
  int live;
} blk[NBLOCKS];

static int call_no;
static const char *call_text;
static const char *const handle_name[NBLOCKS];

static void fail(const char *clause, const char *format, ...) {
  va_list args;
  printf("FAIL [%s] call %d: %s\n     ", clause, call_no, call_text);
  va_start(args, format);
  vprintf(format, args);
  va_end(args);
  printf("\n");
  fflush(stdout);
  exit(1);
}

static void born(int h, void *got, size_t size, int kind, const unsigned char *source) {
  unsigned char *p = got;
  blk[h].live = 0;
  if (size == 0) {
    if (p) fail("API-001", "returned %p for size 0, not NULL", got);
    return;
  }
  if (!p) fail("API-001", "returned NULL for size %zu", size);
  if ((uintptr_t)p % sizeof(void *))
    fail("API-006", "returned %p, not aligned to sizeof(void *)", got);
  for (int o = 0; o < NBLOCKS; o++)
    if (blk[o].live && p < blk[o].p + blk[o].size && blk[o].p < p + size)
      fail("API-004", "returned [%p, %p), which overlaps live block %s [%p, %p)",
           got, (void *)(p + size), handle_name[o], (void *)blk[o].p,
           (void *)(blk[o].p + blk[o].size));
  blk[h].p = p;
  blk[h].size = size;
  blk[h].want = calloc(size, 1);
  blk[h].known = calloc(size, 1);
  if (!blk[h].want || !blk[h].known) { perror("calloc"); exit(2); }
  if (kind != ALLOC) {
    if (kind == COPY) memcpy(blk[h].want, source, size);
    memset(blk[h].known, 1, size);
    for (size_t i = 0; i < size; i++)
      if (p[i] != blk[h].want[i])
        fail(kind == ALLOC0 ? "API-002" : "API-003", "byte %zu is 0x%02x, expected 0x%02x",
             i, p[i], blk[h].want[i]);
  }
  blk[h].live = 1;
}

static void died(int h) {
  blk[h].live = 0;
  free(blk[h].want);
  free(blk[h].known);
  blk[h].want = blk[h].known = NULL;
}

static void wrote(int h, size_t offset, const unsigned char *data, size_t n) {
  memcpy(blk[h].p + offset, data, n);
  memcpy(blk[h].want + offset, data, n);
  memset(blk[h].known + offset, 1, n);
}

static void check_block(int h, const unsigned char *got) {
  for (size_t i = 0; i < blk[h].size; i++)
    if (blk[h].known[i] && got[i] != blk[h].want[i])
      fail("API-005", "live block %s (%zu bytes at %p) changed: byte %zu is 0x%02x, "
           "expected 0x%02x", handle_name[h], blk[h].size, (void *)blk[h].p, i, got[i],
           blk[h].want[i]);
}

static void verify(void) {
  for (int h = 0; h < NBLOCKS; h++)
    if (blk[h].live) check_block(h, blk[h].p);
}

/* A chain of blocks linked through the word at next_offset, last link NULL. */
static void *link_chain(const int *nodes, int n, size_t next_offset) {
  for (int i = 0; i < n; i++) {
    void *next = i + 1 < n ? blk[nodes[i + 1]].p : NULL;
    memcpy(blk[nodes[i]].p + next_offset, &next, sizeof next);
  }
  return blk[nodes[0]].p;
}

/* The suite's worker is a running process whose heap holds garbage; a fresh
 * C process's heap is zero.  Dirtying it first makes "fresh" memory hold
 * garbage here too, so a bug that reads a never-written word (a link read at
 * the wrong offset, past the end of its block) follows a wild pointer here as
 * it does there, instead of reading NULL and stopping.  Every chunk is filled
 * to its usable size (the bytes past the requested size are where such reads
 * land), first 8 of each small size (malloc's per-size caches hand these out
 * first), then 4 MiB freed behind a fence chunk that is kept, so that they
 * merge into one free chunk later allocations are carved from, rather than
 * into the top of the heap, which malloc may give back to the system (zero
 * pages again).  It makes no g_slice_* call. */
static void dirty(void *p) {
  if (p) memset(p, 0xa5, malloc_usable_size(p));
}

static void dirty_heap(void) {
  for (size_t size = 16; size <= 4096; size += 16) {
    void *blocks[8];
    for (int i = 0; i < 8; i++) dirty(blocks[i] = malloc(size));
    for (int i = 0; i < 8; i++) free(blocks[i]);
  }
  enum { PIECES = 64, PIECE = 64 * 1024 };
  static void *pieces[PIECES], *fence;
  for (int i = 0; i < PIECES; i++) dirty(pieces[i] = malloc(PIECE));
  dirty(fence = malloc(PIECE));
  for (int i = 0; i < PIECES; i++) free(pieces[i]);
}

/* -- named threads: each trace thread is a pthread that runs one call at a time */

typedef void (*call_fn)(void);
static struct {
  pthread_t id;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  call_fn job;
  int started, quit;
} threads[NTHREADS];

static void *thread_main(void *arg) {
  int t = (int)(intptr_t)arg;
  pthread_mutex_lock(&threads[t].lock);
  for (;;) {
    while (!threads[t].job && !threads[t].quit)
      pthread_cond_wait(&threads[t].wake, &threads[t].lock);
    if (threads[t].job) {
      threads[t].job();
      threads[t].job = NULL;
      pthread_cond_broadcast(&threads[t].wake);
      continue;
    }
    pthread_mutex_unlock(&threads[t].lock);
    return NULL;
  }
}

static void run_on(int t, call_fn f) {
  if (t == 0) { f(); return; }  /* thread 0 is main */
  if (!threads[t].started) {
    pthread_mutex_init(&threads[t].lock, NULL);
    pthread_cond_init(&threads[t].wake, NULL);
    threads[t].quit = 0;
    threads[t].started = 1;
    pthread_create(&threads[t].id, NULL, thread_main, (void *)(intptr_t)t);
  }
  pthread_mutex_lock(&threads[t].lock);
  threads[t].job = f;
  pthread_cond_broadcast(&threads[t].wake);
  while (threads[t].job) pthread_cond_wait(&threads[t].wake, &threads[t].lock);
  pthread_mutex_unlock(&threads[t].lock);
}

static void end_thread(int t) {
  if (t == 0 || !threads[t].started) return;
  pthread_mutex_lock(&threads[t].lock);
  threads[t].quit = 1;
  pthread_cond_broadcast(&threads[t].wake);
  pthread_mutex_unlock(&threads[t].lock);
  pthread_join(threads[t].id, NULL);
  threads[t].started = 0;
}
"""

_CONFIG: Final = """
/* The optional configuration API (GSliceConfig is an int enum). */
int64_t g_slice_get_config(int ckey);
void g_slice_set_config(int ckey, int64_t value);
int64_t *g_slice_get_config_state(int ckey, int64_t address, unsigned int *n_values);
"""


def _comment(text: str) -> str:
    """Text safe inside a /* */ comment."""
    return text.replace("*/", "* /").replace("\n", " ")


def _c_string(text: str) -> str:
    """Text safe inside a C string literal."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _bytes(name: str, hex_text: str) -> str:
    data = bytes.fromhex(hex_text)
    if not data:
        return f"static const unsigned char {name}[1];"
    rows = [", ".join(f"0x{b:02x}" for b in data[i : i + 12]) for i in range(0, len(data), 12)]
    body = ",\n  ".join(rows)
    return f"static const unsigned char {name}[] = {{\n  {body}\n}};"


class _Names:
    """C names for handles and threads."""

    def __init__(self, steps: Sequence[Sequence[Op]]) -> None:
        handles: list[str] = []
        threads: list[str] = ["main"]
        for step in steps:
            for op in step:
                for key in ("as", "block", "src"):
                    if op.get(key) is not None and str(op[key]) not in handles:
                        handles.append(str(op[key]))
                for h in cast(list[JSONValue], op.get("blocks") or []):
                    if str(h) not in handles:
                        handles.append(str(h))
                thread = str(op.get("thread", "main"))
                if thread not in threads:
                    threads.append(thread)
        plain = all(_IDENT.match(h) and h not in _RESERVED and not h.startswith("call_")
                    for h in handles)
        self.handles = {h: (h if plain else f"h{i}") for i, h in enumerate(handles)}
        self.threads = {t: i for i, t in enumerate(threads)}


def _call_body(op: Op, names: _Names, data_name: str) -> list[str]:
    """The C statements of one call."""
    kind = str(op["op"])
    h = names.handles

    def ref(key: str) -> str:
        return h[str(op[key])]

    if kind in ("alloc", "alloc0"):
        size = op["size"]
        return [f"born({ref('as')}, g_slice_{kind}({size}), {size}, "
                f"{'ALLOC' if kind == 'alloc' else 'ALLOC0'}, NULL);"]
    if kind == "copy":
        size, src = op["size"], ref("src")
        return [
            f"unsigned char *before = malloc({size} ? {size} : 1);",
            f"memcpy(before, blk[{src}].p, {size});",
            f"check_block({src}, before);",
            f"born({ref('as')}, g_slice_copy({size}, blk[{src}].p), {size}, COPY, before);",
            "free(before);",
        ]
    if kind == "alloc_zero":
        return [
            "void *a = g_slice_alloc(0), *z = g_slice_alloc0(0), *c = g_slice_copy(0, NULL);",
            "if (a || z || c) fail(\"API-001\", \"size 0 gave %p, %p, %p, not NULL\", a, z, c);",
        ]
    if kind == "write":
        n = len(cast(str, op["data"])) // 2
        return [f"wrote({ref('block')}, {op.get('offset', 0)}, {data_name}, {n});"]
    if kind == "check":
        return [f"check_block({ref('block')}, blk[{ref('block')}].p);"]
    if kind == "free1":
        block = ref("block")
        return [f"g_slice_free1(blk[{block}].size, blk[{block}].p);", f"died({block});"]
    if kind == "free_null":
        return [f"g_slice_free1({op['size']}, NULL);"]
    if kind == "chain_null":
        return [f"g_slice_free_chain_with_offset({op['size']}, NULL, {op['next_offset']});"]
    if kind == "free_chain":
        nodes = [h[str(x)] for x in cast(list[JSONValue], op["blocks"])]
        offset = op["next_offset"]
        return [
            f"static const int nodes[] = {{{', '.join(nodes)}}};",
            f"size_t size = blk[{nodes[0]}].size;",
            f"void *head = link_chain(nodes, {len(nodes)}, {offset});",
            f"g_slice_free_chain_with_offset(size, head, {offset});",
            f"for (int i = 0; i < {len(nodes)}; i++) died(nodes[i]);",
        ]
    if kind == "thread_exit":
        return ["/* the thread ends after this call: see end_thread() in main */"]
    if kind == "get_config":
        return [
            f"int64_t got = g_slice_get_config({op['key']});",
            f"if (got != 0) fail(\"CONF-010\", \"get_config({op['key']}) returned %lld, "
            "expected 0\", (long long)got);",
        ]
    if kind == "get_config_known":
        return [f"(void)g_slice_get_config({op['key']});"]
    if kind == "get_config_state":
        return [
            "unsigned int n = 0;",
            f"int64_t *got = g_slice_get_config_state({op['key']}, {op['address']}, &n);",
            f"if (got) fail(\"CONF-011\", \"get_config_state({op['key']}, {op['address']}) "
            "returned %p, expected NULL\", (void *)got);",
        ]
    if kind == "set_config_late":
        key, value = op["key"], op["value"]
        return [
            f"int64_t before = g_slice_get_config({key});",
            f"g_slice_set_config({key}, {value});",
            f"int64_t after = g_slice_get_config({key});",
            f"if (before != after) fail(\"CONF-004\", \"set_config({key}, {value}) after first "
            "use changed the value from %lld to %lld\", (long long)before, (long long)after);",
        ]
    raise ValueError(f"unknown op {kind!r}")


def emit_c(trace: Trace) -> str:
    """The trace as a standalone C program (see the module doc)."""
    names = _Names(trace.steps)
    lines = call_lines(trace.steps)
    uses_config = any(
        str(op["op"]).startswith(("get_config", "set_config")) for s in trace.steps for op in s
    )
    failure = trace.failure
    head = [
        "/* Reproducer written by `memslice-conformance replay --emit-c` (RUN-008).",
        f" * check: {_comment(trace.check)}, recorded on {_comment(trace.impl)}, "
        f"seed {trace.seed}, {trace.op_count} calls.",
    ]
    if failure is not None:
        head.append(f" * failure: [{', '.join(failure.clauses)}] ({failure.kind}): "
                    f"{_comment(failure.message)[:400]}")
        if trace.call:
            head.append(f" * failing call: {trace.call}: {_comment(lines[trace.call - 1])}")
    head += [
        " *",
        " * Build and run:  gcc repro.c -L. -lmyslice -lpthread && LD_LIBRARY_PATH=. ./a.out",
        " * Exit status 0: no failure; 1: a check failed (FAIL [CLAUSE] call N: ...);",
        " * a crash is the crash itself.",
        " *",
        *textwrap.wrap(f"What this program cannot check (RUN-016): {_comment(CANNOT_CHECK)}",
                       width=88, initial_indent=" * ", subsequent_indent=" * "),
        " */",
        f"#define NBLOCKS {max(1, len(names.handles))}",
        f"#define NTHREADS {len(names.threads)}",
    ]
    out = ["\n".join(head), _PRELUDE.replace("@CONFIG@", _CONFIG if uses_config else "")]
    if names.handles:
        quoted = ", ".join(f'"{_c_string(h)}"' for h in names.handles)
        out.append("/* The trace's blocks, by handle. */\n"
                   f"enum {{ {', '.join(names.handles.values())} }};\n"
                   f"static const char *const handle_name[NBLOCKS] = {{{quoted}}};\n")
    else:
        out.append('static const char *const handle_name[NBLOCKS] = {""};\n')
    numbered = ", ".join(f"{t} = {i}" for t, i in names.threads.items())
    out.append(f"/* The trace's threads: {numbered} */\n")
    number = 0
    main_body: list[str] = []
    for step in trace.steps:
        exits: list[int] = []
        for op in step:
            number += 1
            data_name = f"data_{number}"
            if op["op"] == "write":
                out.append(_bytes(data_name, cast(str, op["data"])))
            body = "\n".join(f"  {line}" for line in _call_body(op, names, data_name))
            out.append(f"/* call {number}: {_comment(lines[number - 1])} */\n"
                       f"static void call_{number}(void) {{\n{body}\n}}\n")
            thread = names.threads[str(op.get("thread", "main"))]
            main_body.append(f'  call_no = {number}; call_text = "{_c_string(lines[number - 1])}";')
            main_body.append(f"  run_on({thread}, call_{number});")
            if op["op"] == "thread_exit":
                exits.append(thread)
        main_body.extend(f"  end_thread({t});" for t in exits)
        main_body.append("  verify();")
    out.append("int main(void) {\n  dirty_heap();\n" + "\n".join(main_body) +
               '\n  printf("no failure: %d calls made\\n", call_no);\n' +
               "".join(f'  printf("%s\\n", "{_c_string(line)}");\n'
                       for line in _unseen(trace, lines)) +
               "  return 0;\n}\n")
    return "\n".join(out)


#: What a reproducer cannot show, said in its head and, when the suite saw a
#: failure that the program did not, at its exit (RUN-016).
CANNOT_CHECK: Final = (
    "a failure that needs two threads to race (the calls of one step run one after "
    "another here), and one that depends on the contents of memory the trace never "
    "wrote (this program's heap holds 0xa5 garbage, the suite's worker held its own)."
)


def _unseen(trace: Trace, lines: Sequence[str]) -> list[str]:
    """The lines a clean exit prints when the trace records a failure (RUN-016)."""
    failure = trace.failure
    if failure is None:
        return []
    where = f" at call {trace.call}: {lines[trace.call - 1]}" if 0 < trace.call <= len(
        lines) else ""
    return [
        f"note: the suite saw this trace fail [{', '.join(failure.clauses)}] "
        f"({failure.kind}){where}: {failure.message[:300]}",
        "note: this program saw no failure. If the library was not fixed since, the "
        f"failure is one this program cannot check: {CANNOT_CHECK} Replay it with "
        "memslice-conformance replay TRACE --impl IMPL.",
    ]
