/* The smallest slice allocator the suite accepts: only the five allocation
 * functions (LOAD-002), over malloc.  No configuration API (CONF-021).
 * -DONLY_ALLOC exports g_slice_alloc alone (refused, every missing function
 * named); -DCTOR_ABORT aborts in its constructor; -DCTOR_MAP_10G maps 10 GiB
 * in its constructor and aborts if that fails (the memory cap, LOAD-009);
 * -DCTOR_FORK forks a child that sleeps (LOAD-007); -DCTOR_STDERR writes
 * 300 MB to stderr (LOAD-008); -DBIG_TLS has 256 KiB of initial-exec TLS
 * (LOAD-005); -DCTOR_THREAD starts a thread at load (no fork-reset, LOAD-010). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef BIG_TLS
static __thread char big_tls[256 << 10] __attribute__((tls_model("initial-exec")));
#endif

#ifdef CTOR_THREAD
static void *sleeper(void *arg) {
  (void)arg;
  for (;;) sleep(1);
  return NULL;
}
#endif

#if defined(CTOR_ABORT) || defined(CTOR_MAP_10G) || defined(CTOR_FORK) || \
    defined(CTOR_STDERR) || defined(CTOR_THREAD)
__attribute__((constructor)) static void on_load(void) {
#ifdef CTOR_THREAD
  pthread_t thread;
  pthread_create(&thread, NULL, sleeper, NULL);
#endif
#ifdef CTOR_ABORT
  fputs("five: refusing to load\n", stderr);
  abort();
#endif
#ifdef CTOR_MAP_10G
  void *p = mmap(NULL, (size_t)10 << 30, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    fputs("five: mmap of 10 GiB failed\n", stderr);
    abort();
  }
#endif
#ifdef CTOR_FORK
  const char *where = getenv("FIVE_CHILD_PID_FILE");
  pid_t child = fork();
  if (child == 0) {
    for (;;) sleep(1);
  }
  if (where) {
    FILE *f = fopen(where, "a");
    if (f) { fprintf(f, "%d\n", (int)child); fclose(f); }
  }
#endif
#ifdef CTOR_STDERR
  static char line[1 << 16];
  memset(line, 'e', sizeof line);
  for (int i = 0; i < 300 * 16; i++) fwrite(line, 1, sizeof line, stderr);
  fputs("\nfive: the last line of stderr\n", stderr);
#endif
}
#endif

void *g_slice_alloc(size_t n) {
#ifdef BIG_TLS
  big_tls[n % sizeof big_tls]++;
#endif
  return n ? malloc(n) : NULL;
}

#ifndef ONLY_ALLOC
void *g_slice_alloc0(size_t n) { return n ? calloc(1, n) : NULL; }

void *g_slice_copy(size_t n, const void *src) {
  void *p = g_slice_alloc(n);
  if (p) memcpy(p, src, n);
  return p;
}

void g_slice_free1(size_t n, void *p) { (void)n; free(p); }

void g_slice_free_chain_with_offset(size_t n, void *chain, size_t off) {
  (void)n;
  while (chain) {
    void *next = *(void **)((char *)chain + off);
    free(chain);
    chain = next;
  }
}
#endif
