/* slicetrace: an LD_PRELOAD shim that logs a program's g_slice calls.
 *
 * Loaded before libglib, it defines the five g_slice entry points a program
 * can call (INTRO-006); the dynamic linker binds the program's calls (and
 * those of libgobject, libgio...) to these definitions first.  Each one logs
 * one line and forwards to GLib's own function, found with dlsym(RTLD_NEXT).
 *
 * Log lines, one per event, written to the file named by $MEMSLICE_TRACE:
 *     a SIZE ADDRESS TID      g_slice_alloc / g_slice_alloc0 / g_slice_copy
 *                             (the op letter is a, z or c respectively)
 *     f SIZE ADDRESS TID      g_slice_free1
 *     h SIZE OFFSET  TID      g_slice_free_chain_with_offset starts ...
 *     n SIZE ADDRESS TID      ... one line per node, before GLib frees it
 *     x 0    0       TID      the thread TID ends (a pthread key destructor)
 * ADDRESS and OFFSET are hexadecimal; TID is the kernel thread id; the first line is
 *     p PID 0 0               the process id, so the reader knows the main thread.
 *
 * One mutex orders the lines: a line is written after the call it describes
 * returned for allocations (so the address is known) and before the call for
 * frees (so a freed address is never logged after another thread got it back).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static FILE *out;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static void *(*real_alloc)(size_t);
static void *(*real_alloc0)(size_t);
static void *(*real_copy)(size_t, const void *);
static void (*real_free1)(size_t, void *);
static void (*real_chain)(size_t, void *, size_t);

static long tid(void) { return (long)syscall(SYS_gettid); }

static void line(char op, size_t n, uintptr_t value, long thread) {
    pthread_mutex_lock(&mu);
    if (out) {
        fprintf(out, "%c %zu %lx %ld\n", op, n, (unsigned long)value, thread);
        fflush(out);
    }
    pthread_mutex_unlock(&mu);
}

static void on_thread_exit(void *marker) { (void)marker; line('x', 0, 0, tid()); }

/* Runs when the shim is loaded, so an empty log proves the shim never loaded
 * (a static binary, or a setuid one that ignores LD_PRELOAD). */
__attribute__((constructor)) static void open_log(void) {
    const char *path = getenv("MEMSLICE_TRACE");
    out = fopen(path ? path : "/dev/null", "w");
    /* Only the recorded process writes the log: programs it starts inherit
     * LD_PRELOAD but not the log's name, so they cannot truncate it. */
    unsetenv("MEMSLICE_TRACE");
    if (out) {
        fprintf(out, "p %ld 0 0\n", (long)getpid());
        fflush(out);
    }
}

/* The real functions, looked up on first use: a program may dlopen GLib late. */
static void setup(void) {
    real_alloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "g_slice_alloc");
    real_alloc0 = (void *(*)(size_t))dlsym(RTLD_NEXT, "g_slice_alloc0");
    real_copy = (void *(*)(size_t, const void *))dlsym(RTLD_NEXT, "g_slice_copy");
    real_free1 = (void (*)(size_t, void *))dlsym(RTLD_NEXT, "g_slice_free1");
    real_chain = (void (*)(size_t, void *, size_t))dlsym(RTLD_NEXT,
                                                         "g_slice_free_chain_with_offset");
    pthread_key_create(&exit_key, on_thread_exit);
}

/* Called on entry of every hook: loads the real functions once, and marks the
 * thread so its exit is logged (the destructor only runs for non-NULL values). */
static void ready(void) {
    pthread_once(&once, setup);
    if (!pthread_getspecific(exit_key)) pthread_setspecific(exit_key, (void *)1);
}

void *g_slice_alloc(size_t n) {
    ready();
    void *p = real_alloc(n);
    line('a', n, (uintptr_t)p, tid());
    return p;
}

void *g_slice_alloc0(size_t n) {
    ready();
    void *p = real_alloc0(n);
    line('z', n, (uintptr_t)p, tid());
    return p;
}

void *g_slice_copy(size_t n, const void *src) {
    ready();
    void *p = real_copy(n, src);
    line('c', n, (uintptr_t)p, tid());
    return p;
}

void g_slice_free1(size_t n, void *p) {
    ready();
    line('f', n, (uintptr_t)p, tid());
    real_free1(n, p);
}

void g_slice_free_chain_with_offset(size_t n, void *chain, size_t next_offset) {
    ready();
    long me = tid();
    line('h', n, next_offset, me);
    for (void *q = chain; q; q = *(void **)((char *)q + next_offset)) line('n', n, (uintptr_t)q, me);
    real_chain(n, chain, next_offset);
}
