/* libmyslice.c: the smallest correct slice allocator, as a starting point.
 *
 * It exports GLib's slice ABI on top of the C library's malloc, as GLib 2.76
 * and later do.  Replace the bodies with your own allocator and keep the
 * rules written beside each function: they are the core contract that
 * `memslice-conformance run --impl lib:./libmyslice.so` checks (clause IDs
 * from spec/01-api.md).
 *
 *   build:  gcc -shared -fPIC -O2 -o libmyslice.so libmyslice.c
 *   check:  memslice-conformance run --impl lib:./libmyslice.so
 *
 * Required: the five allocation functions below.  Optional: the three
 * configuration functions at the end, compiled only with -DMYSLICE_CONFIG;
 * a library that exports all three also claims the `config` profile
 * (spec/10-config.md).
 *
 * The types are GLib's, spelled in plain C so that no GLib header is needed:
 *   gpointer = void *, gconstpointer = const void *, gsize = size_t,
 *   gint64 = int64_t, guint = unsigned int, GSliceConfig = an enum, passed as int.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Claiming more profiles than core (optional).  The suite reads this string
 * when it loads the library: a comma-separated list of profile names from
 * `memslice-conformance list profiles`; names it does not know are ignored.
 * List only profiles whose clauses your allocator meets (`memslice-conformance
 * list clauses`).  Every lib: library claims core and concurrency; this one
 * promises nothing about reuse or layout, so it claims nothing more. */
const char *memslice_conformance_profiles = "";

#ifdef MYSLICE_CONFIG
static void freeze_config(void); /* the optional part, at the end of the file */
#else
static void freeze_config(void) {}
#endif

/* A slice allocator never returns NULL for a nonzero size (API-001): when
 * the memory is not there, it stops the program, as GLib does. */
static void *or_die(void *mem, size_t size) {
  if (mem == NULL) {
    fprintf(stderr, "libmyslice: failed to allocate %zu bytes\n", size);
    abort();
  }
  return mem;
}

/* API-001: NULL if and only if size == 0.
 * API-004, API-006: the block overlaps no live block and is aligned to at
 * least sizeof(void *) (malloc gives 16 on x86_64 glibc; API-012 asks for 16).
 * API-015: the contents are unspecified. */
void *g_slice_alloc(size_t block_size) {
  freeze_config();
  if (block_size == 0)
    return NULL;
  return or_die(malloc(block_size), block_size);
}

/* API-002: all block_size bytes read zero, even when the memory is recycled. */
void *g_slice_alloc0(size_t block_size) {
  freeze_config();
  if (block_size == 0)
    return NULL;
  return or_die(calloc(1, block_size), block_size);
}

/* API-003: a new block holding the first block_size bytes of mem_block;
 * mem_block may be NULL only when block_size == 0. */
void *g_slice_copy(size_t block_size, const void *mem_block) {
  void *mem = g_slice_alloc(block_size);
  if (mem != NULL)
    memcpy(mem, mem_block, block_size);
  return mem;
}

/* API-007: freeing NULL does nothing, whatever the size.
 * API-009: any thread may free any block (malloc is thread-safe).
 * API-013: block_size is the size the block was allocated with; a slab
 * allocator uses it to find the size class, malloc does not need it. */
void g_slice_free1(size_t block_size, void *mem_block) {
  (void)block_size;
  free(mem_block); /* free(NULL) is a no-op */
}

/* API-008: free every node of the NULL-terminated list at mem_chain; each
 * node holds the next node's address at byte next_offset.  Read the link
 * before freeing the node that holds it.  API-007: a NULL chain does nothing. */
void g_slice_free_chain_with_offset(size_t block_size, void *mem_chain, size_t next_offset) {
  char *node = mem_chain;
  while (node != NULL) {
    char *next;
    memcpy(&next, node + next_offset, sizeof next); /* the link, read first */
    g_slice_free1(block_size, node);
    node = next;
  }
}

#ifdef MYSLICE_CONFIG
/* ---- Optional: the configuration API (the `config` profile) ------------
 *
 * GLib deprecated these in 2.34.  Export all three or none: the suite checks
 * them only when all three are present.  This version keeps a value per
 * tunable key, lets set_config change it only until the first allocation,
 * and has no contention counters.
 */
#include <stdatomic.h>
#include <stdbool.h>

/* CONF-002: the keys are the values of GLib's GSliceConfig enum, which is
 * passed as an int. */
enum {
  G_SLICE_CONFIG_ALWAYS_MALLOC = 1,
  G_SLICE_CONFIG_BYPASS_MAGAZINES,
  G_SLICE_CONFIG_WORKING_SET_MSECS,
  G_SLICE_CONFIG_COLOR_INCREMENT,
  G_SLICE_CONFIG_CHUNK_SIZES,
  G_SLICE_CONFIG_CONTENTION_COUNTER
};

/* The settings of keys 1 to 4.  A malloc allocator does not use them; a
 * real one would read them at its first allocation.  CONF-017 asks you to
 * say whose answers you give: here GLib 2.74's defaults for keys 1 to 4, and
 * 0 for CHUNK_SIZES and CONTENTION_COUNTER (there are no size classes). */
static int64_t settings[G_SLICE_CONFIG_COLOR_INCREMENT + 1] = {0, 0, 0, 15000, 1};
static atomic_bool in_use;

/* Called by every allocation: from then on the settings are frozen. */
static void freeze_config(void) { atomic_store_explicit(&in_use, true, memory_order_release); }

/* CONF-004: once the allocator is in use (no later than its first
 * allocation), set_config MUST NOT change any setting or any answer of
 * get_config.  GLib 2.74 prints a critical warning here; 2.76 stays silent. */
void g_slice_set_config(int key, int64_t value) {
  if (atomic_load_explicit(&in_use, memory_order_acquire))
    return;
  if (key >= G_SLICE_CONFIG_ALWAYS_MALLOC && key <= G_SLICE_CONFIG_COLOR_INCREMENT)
    settings[key] = value;
}

/* CONF-010: every key outside 1 to 6 reads 0. */
int64_t g_slice_get_config(int key) {
  if (key >= G_SLICE_CONFIG_ALWAYS_MALLOC && key <= G_SLICE_CONFIG_COLOR_INCREMENT)
    return settings[key];
  return 0;
}

/* CONF-011: NULL, with *n_values = 0, for every key but CONTENTION_COUNTER.
 * CONF-010: for CONTENTION_COUNTER, NULL or exactly three values (chunk size,
 * contention counter, magazine threshold of class `address`); an allocator
 * without magazines answers NULL, as GLib 2.76 does.  An array you return
 * must be freeable with the library's own g_free, if it exports one. */
int64_t *g_slice_get_config_state(int key, int64_t address, unsigned int *n_values) {
  (void)key;
  (void)address;
  if (n_values != NULL)
    *n_values = 0;
  return NULL;
}

#endif /* MYSLICE_CONFIG */
