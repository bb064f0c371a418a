/* A small, correct slice allocator exporting GLib's g_slice_* ABI, with
 * planted bugs selected at compile time (-DBUG_...), for testing the tester.
 * (BUG_NO_LOCK is thread-unsafe: only the concurrency profile can see it.)
 * The configuration API is optional (LOAD-003): -DNO_CONFIG_API exports only
 * the five allocation functions, -DPARTIAL_CONFIG_API only g_slice_get_config,
 * and -DCONFIG_MUTABLE is a custom allocator whose set_config still changes a
 * value after the first allocation: correct on core, a CONF-004 violation.
 *
 *   chunk = size rounded up to 16; per-chunk-size LIFO free lists (link word
 *   at offset 0 of a freed chunk) under one mutex; fresh chunks from malloc,
 *   or from a bump arena (BUG_OVERLAP strides 16 bytes short).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef CLAIMS_REUSE
/* How a C library claims more than core and concurrency. */
const char *memslice_conformance_profiles = "reuse, no-such-profile";
#endif

#ifdef BUG_NO_LOCK
/* The planted bug: the free lists are shared by all threads with no lock. */
#define pthread_mutex_lock(m) ((void)(m))
#define pthread_mutex_unlock(m) ((void)(m))
#endif

typedef struct Node { struct Node *next; } Node;
#define NCLASS 1024
static Node *free_lists[NCLASS + 1];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long n_frees;

static size_t chunk_of(size_t n) { return (n + 15) & ~(size_t)15; }

#ifdef BUG_OVERLAP
static char arena[256 << 20] __attribute__((aligned(16)));
static size_t top;
#endif

static void *take(size_t size, int *recycled) {
  size_t c = chunk_of(size), ix = c / 16;
  void *p = NULL;
  *recycled = 0;
  pthread_mutex_lock(&lock);
  if (ix <= NCLASS && free_lists[ix]) {
    Node *n = free_lists[ix];
    free_lists[ix] = n->next;
    p = n;
    *recycled = 1;
  }
#ifdef BUG_OVERLAP
  if (!p) {
    p = arena + top;
    top += c >= 48 ? c - 16 : c;  /* the bug: neighbours share 16 bytes */
  }
#endif
  pthread_mutex_unlock(&lock);
  if (!p) p = malloc(c);
  if (!p) abort();  /* a nonzero request never gets NULL (API-001) */
  return p;
}

static void give(size_t size, void *p) {
  size_t c = chunk_of(size), ix = c / 16;
  pthread_mutex_lock(&lock);
  n_frees++;
#ifdef BUG_SEGV
  if (n_frees == 30) *(volatile int *)16 = 1;
#endif
  if (ix <= NCLASS) {
    Node *n = p;
    n->next = free_lists[ix];
    free_lists[ix] = n;
    p = NULL;
  }
  pthread_mutex_unlock(&lock);
#ifndef BUG_OVERLAP
  if (p) free(p);
#endif
}

void *g_slice_alloc(size_t n) {
  int recycled;
  return n ? take(n, &recycled) : NULL;
}

void *g_slice_alloc0(size_t n) {
  int recycled;
  if (!n) return NULL;
  void *p = take(n, &recycled);
#ifdef BUG_ALLOC0_DIRTY
  if (!recycled)
#endif
    memset(p, 0, n);
  return p;
}

void *g_slice_copy(size_t n, const void *src) {
#ifdef BUG_ABORT
  if (n) abort();
#endif
  if (!n) return NULL;
  void *p = g_slice_alloc(n);
  memcpy(p, src, n);
  return p;
}

void g_slice_free1(size_t n, void *p) {
  if (p) give(n, p);
}

void g_slice_free_chain_with_offset(size_t n, void *chain, size_t off) {
#ifdef BUG_HANG
  if (chain) for (;;) sleep(1);
#endif
#ifdef BUG_CHAIN_OFFSET0
  off = 0;
#endif
  while (chain) {
    void *next = *(void **)((char *)chain + off);
    give(n, chain);
    chain = next;
  }
}

#if defined(CONFIG_MUTABLE)
static int64_t config_values[8];
void g_slice_set_config(int key, int64_t value) {
  if (key >= 1 && key <= 4) config_values[key] = value;  /* even after first use */
}
int64_t g_slice_get_config(int key) {
  return key >= 1 && key <= 4 ? config_values[key] : 0;
}
#elif defined(PARTIAL_CONFIG_API)
int64_t g_slice_get_config(int key) { (void)key; return 0; }
#endif
#if !defined(NO_CONFIG_API) && !defined(PARTIAL_CONFIG_API)
#ifndef CONFIG_MUTABLE
void g_slice_set_config(int key, int64_t value) { (void)key; (void)value; }
int64_t g_slice_get_config(int key) { (void)key; return 0; }
#endif
int64_t *g_slice_get_config_state(int key, int64_t address, unsigned *n_values) {
  (void)key; (void)address;
  *n_values = 0;
  return NULL;
}
#endif
