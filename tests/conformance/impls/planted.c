/* A small slice allocator with planted bugs, for the shrinker and the C
 * reproducer tests (tests/conformance/test_shrink.py).  Compile with one of:
 *
 *   -DCORRECT          no bug
 *   -DBUG_REUSE_TWICE  popping the last chunk of a size's free list forgets to
 *                      clear the list: that chunk is handed out twice
 *                      (alloc a, free a, alloc b, alloc c: b and c overlap)
 *   -DBUG_CHAIN_WALK   g_slice_free_chain_with_offset reads each link at
 *                      offset 0, not next_offset: with a chain linked at 8
 *                      and data at 0 it follows a wild pointer (SIGSEGV)
 *   -DBUG_LINK_PAST_END  g_slice_free_chain_with_offset reads each link 16
 *                      bytes past next_offset: for an 8-byte block that is
 *                      the slack past its end, which the trace never wrote,
 *                      so what the walk follows is whatever the heap held
 *                      there (SIGSEGV on garbage, a clean stop on zero)
 *
 * Chunks are the size rounded up to 16, from malloc; one LIFO free list per
 * chunk size up to 1024, under one mutex; larger blocks go to malloc/free.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct Node { struct Node *next; } Node;
static Node *lists[1024 / 16 + 1];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t chunk_of(size_t n) { return (n + 15) & ~(size_t)15; }

void *g_slice_alloc(size_t size) {
  if (size == 0) return NULL;
  size_t c = chunk_of(size);
  if (c > 1024) return malloc(size);
  pthread_mutex_lock(&lock);
  Node *n = lists[c / 16];
  if (n) {
#ifdef BUG_REUSE_TWICE
    if (n->next) lists[c / 16] = n->next;
#else
    lists[c / 16] = n->next;
#endif
  }
  pthread_mutex_unlock(&lock);
  return n ? (void *)n : malloc(c);
}

void *g_slice_alloc0(size_t size) {
  void *p = g_slice_alloc(size);
  if (p) memset(p, 0, size);
  return p;
}

void *g_slice_copy(size_t size, const void *src) {
  void *p = g_slice_alloc(size);
  if (p) memcpy(p, src, size);
  return p;
}

void g_slice_free1(size_t size, void *mem) {
  if (!mem) return;
  size_t c = chunk_of(size);
  if (c > 1024) { free(mem); return; }
  pthread_mutex_lock(&lock);
  ((Node *)mem)->next = lists[c / 16];
  lists[c / 16] = mem;
  pthread_mutex_unlock(&lock);
}

void g_slice_free_chain_with_offset(size_t size, void *chain, size_t next_offset) {
  char *p = chain;
  while (p) {
#if defined(BUG_CHAIN_WALK)
    char *next = *(char **)p;
#elif defined(BUG_LINK_PAST_END)
    char *next;
    memcpy(&next, p + next_offset + 16, sizeof next);
#else
    char *next = *(char **)(p + next_offset);
#endif
    g_slice_free1(size, p);
    p = next;
  }
}

/* The optional configuration API: no tunables, every key reads 0. */
void g_slice_set_config(int key, long long value) { (void)key; (void)value; }
long long g_slice_get_config(int key) { (void)key; return 0; }
long long *g_slice_get_config_state(int key, long long address, unsigned int *n_values) {
  (void)key; (void)address;
  *n_values = 0;
  return NULL;
}
