/* plantslab: a small but real slab allocator behind GLib's g_slice_* ABI, written
 * for memslice's own tests, with one planted bug per -D flag (testing the tester).
 *
 * Theory of operation
 * -------------------
 *   size 1..1024       class ix = (size - 1) / 16, chunk (ix + 1) * 16 bytes, carved
 *                      front to back from 64 KiB pages taken with mmap
 *   size > 1024        malloc with a 16-byte header holding the size
 *   per thread         a cache per class: a LIFO list (link word at offset 0) and
 *                      its length; alloc pops, free pushes; an empty cache refills
 *                      BATCH chunks from the class's shared list (or carves); a cache
 *                      longer than 2 * BATCH gives BATCH back to the shared list
 *   shared lists       one per class, under one mutex per class
 *   thread exit        a pthread-key destructor gives every cached chunk back
 *   failure            a page or a large block that cannot be had aborts (API-001)
 *   config API         GLib's keys 1..6; set_config counts only before the first
 *                      allocation; get_config_state(CONTENTION_COUNTER, ix) answers
 *                      [chunk size of ix, 0, BATCH]
 *
 * Planted bugs (exactly one -D at a time; none: the correct base):
 *   BUG_COUNTER_WRAP   class 5 counts its carved chunks in 12 bits; at the wrap it
 *                      restarts carving at its first page (scale: >4096 live blocks)
 *   BUG_CHAIN_BATCH    a chain free reads the link of every 1024th node after it has
 *                      pushed that node (offset 0 only; chains of >1024 nodes)
 *   BUG_OOM_NULL       a page or large block that cannot be had returns NULL
 *   BUG_RACE           the flush to the shared list publishes the batch's head,
 *                      then walks to the batch's tail and links it, outside the
 *                      lock (a window of a few dozen loads)
 *   BUG_LATE_CONFIG    set_config(ALWAYS_MALLOC) after first use silently switches
 *                      frees to free(): the next slab free crashes
 *   BUG_EXIT_REUSE     the exit destructor gives the chunks back but leaves them in
 *                      the cache record, which the next new thread reuses
 *   BUG_TRIPLE         get_config_state reports the chunk size of class ix - 1
 * Written for memslice; no GLib code is used.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GRAIN 16
#define NCLASS 64
#define MAX_SLAB (NCLASS * GRAIN)
#define PAGE (64 * 1024)
#define BATCH 32
#define HEADER 16

const char *memslice_conformance_profiles = "concurrency";

typedef struct Node { struct Node *next; } Node;

typedef struct {
    pthread_mutex_t lock;
    Node *shared;             /* chunks given back by thread caches */
    char *cursor, *end;       /* the page being carved */
    char *first_page;
    unsigned long carved;
} Class;

typedef struct Cache {
    Node *head[NCLASS];
    unsigned count[NCLASS];
    struct Cache *next_spare;
} Cache;

static Class classes[NCLASS];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static Cache *spares;
static int in_use;
static int always_malloc;
#ifdef BUG_LATE_CONFIG
static int late_reroute;
#endif
static int64_t config[7] = {0, 0, 0, 15000, 1, 0, 0};

static void out_of_memory(void) { abort(); }

static void flush(Class *class, Node **head, unsigned *count, unsigned n) {
    Node *first = *head, *last = first;
#ifdef BUG_RACE
    /* the bug: the batch is published first, and its tail found and linked after,
     * outside the lock; a refill in that window follows the tail's stale link
     * into this thread's cache */
    pthread_mutex_lock(&class->lock);
    Node *old = class->shared;
    class->shared = first;
    pthread_mutex_unlock(&class->lock);
    for (unsigned k = 1; k < n; k++) last = last->next;
    *head = last->next;
    *count -= n;
    last->next = old;
#else
    for (unsigned k = 1; k < n; k++) last = last->next;
    *head = last->next;
    *count -= n;
    pthread_mutex_lock(&class->lock);
    last->next = class->shared;
    class->shared = first;
    pthread_mutex_unlock(&class->lock);
#endif
}

static void thread_gone(void *record) {
    Cache *cache = record;
    for (int ix = 0; ix < NCLASS; ix++) {
#ifdef BUG_EXIT_REUSE
        Node *keep = cache->head[ix];
        unsigned kept = cache->count[ix];
        if (kept) flush(&classes[ix], &cache->head[ix], &cache->count[ix], kept);
        cache->head[ix] = keep;    /* the bug: the record still lists them */
        cache->count[ix] = kept;
#else
        if (cache->count[ix]) flush(&classes[ix], &cache->head[ix], &cache->count[ix], cache->count[ix]);
#endif
    }
    pthread_mutex_lock(&spare_lock);
    cache->next_spare = spares;
    spares = cache;
    pthread_mutex_unlock(&spare_lock);
}

static void setup(void) {
    for (int ix = 0; ix < NCLASS; ix++) pthread_mutex_init(&classes[ix].lock, NULL);
    pthread_key_create(&cache_key, thread_gone);
}

static Cache *my_cache(void) {
    Cache *cache = pthread_getspecific(cache_key);
    if (cache) return cache;
    pthread_mutex_lock(&spare_lock);
    cache = spares;
    if (cache) spares = cache->next_spare;
    pthread_mutex_unlock(&spare_lock);
    if (!cache) {
        cache = calloc(1, sizeof *cache);
        if (!cache) out_of_memory();
    }
#ifndef BUG_EXIT_REUSE
    memset(cache, 0, sizeof *cache);
#endif
    pthread_setspecific(cache_key, cache);
    return cache;
}

/* A fresh chunk of class ix carved from its page; the caller holds the class lock. */
static void *carve(int ix) {
    Class *class = &classes[ix];
    size_t chunk = (size_t)(ix + 1) * GRAIN;
#ifdef BUG_COUNTER_WRAP
    if (ix == 5 && class->carved && (class->carved & 4095) == 0) {
        /* the bug: a 12-bit count wrapped; carving restarts at the first page */
        class->cursor = class->first_page;
        class->end = class->first_page + PAGE / chunk * chunk;
    }
#endif
    if (class->cursor == NULL || class->cursor + chunk > class->end) {
        char *page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) {
#ifdef BUG_OOM_NULL
            return NULL;
#else
            out_of_memory();
#endif
        }
        if (!class->first_page) class->first_page = page;
        class->cursor = page;
        class->end = page + PAGE / chunk * chunk;
    }
    void *chunk_at = class->cursor;
    class->cursor += chunk;
    class->carved++;
    return chunk_at;
}

static void *slab_alloc(int ix) {
    Cache *cache = my_cache();
    if (!cache->head[ix]) {
        Class *class = &classes[ix];
        pthread_mutex_lock(&class->lock);
        for (int k = 0; k < BATCH; k++) {
            Node *node = class->shared;
            if (node) {
                class->shared = node->next;
            } else {
                node = carve(ix);
                if (!node) break;
            }
            node->next = cache->head[ix];
            cache->head[ix] = node;
            cache->count[ix]++;
        }
        pthread_mutex_unlock(&class->lock);
        if (!cache->head[ix]) return NULL;
    }
    Node *node = cache->head[ix];
    cache->head[ix] = node->next;
    cache->count[ix]--;
    return node;
}

static void slab_free(int ix, void *mem) {
    Cache *cache = my_cache();
    Node *node = mem;
    node->next = cache->head[ix];
    cache->head[ix] = node;
    if (++cache->count[ix] > 2 * BATCH) flush(&classes[ix], &cache->head[ix], &cache->count[ix], BATCH);
}

static void *large_alloc(size_t size) {
    char *raw = malloc(size + HEADER);
    if (!raw) {
#ifdef BUG_OOM_NULL
        return NULL;
#else
        out_of_memory();
#endif
    }
    memcpy(raw, &size, sizeof size);
    return raw + HEADER;
}

static void large_free(void *mem) { free((char *)mem - HEADER); }

void *g_slice_alloc(size_t size) {
    if (size == 0) return NULL;
    pthread_once(&once, setup);
    in_use = 1;
    if (size > MAX_SLAB || always_malloc) return large_alloc(size);
    return slab_alloc((int)((size - 1) / GRAIN));
}

void *g_slice_alloc0(size_t size) {
    void *mem = g_slice_alloc(size);
    if (mem) memset(mem, 0, size);
    return mem;
}

void *g_slice_copy(size_t size, const void *src) {
    void *mem = g_slice_alloc(size);
    if (mem) memcpy(mem, src, size);
    return mem;
}

void g_slice_free1(size_t size, void *mem) {
    if (!mem) return;
#ifdef BUG_LATE_CONFIG
    if (size > MAX_SLAB || always_malloc || late_reroute) {
#else
    if (size > MAX_SLAB || always_malloc) {
#endif
        large_free(mem);
        return;
    }
    slab_free((int)((size - 1) / GRAIN), mem);
}

void g_slice_free_chain_with_offset(size_t size, void *head, size_t next_offset) {
    char *node = head;
    unsigned long walked = 0;
    while (node) {
        char *following;
        memcpy(&following, node + next_offset, sizeof following);
#ifdef BUG_CHAIN_BATCH
        if (++walked % 1024 == 0) {
            g_slice_free1(size, node);   /* the bug: the link is read after the push */
            memcpy(&following, node + next_offset, sizeof following);
            node = following;
            continue;
        }
#else
        (void)walked;
#endif
        g_slice_free1(size, node);
        node = following;
    }
}

void g_slice_set_config(int key, int64_t value) {
    if (key < 1 || key > 6) return;
#ifdef BUG_LATE_CONFIG
    /* the bug: a late ALWAYS_MALLOC still reroutes frees, while get_config keeps
     * answering the old value */
    if (in_use && key == 1) late_reroute = value != 0;
#endif
    if (in_use) return;
    config[key] = value;
    if (key == 1) always_malloc = value != 0;
}

int64_t g_slice_get_config(int key) {
    if (key < 1 || key > 6) return 0;
    return config[key];
}

int64_t *g_slice_get_config_state(int key, int64_t address, unsigned *n_values) {
    if (key != 6 || address < 0 || address >= NCLASS || always_malloc) {
        if (n_values) *n_values = 0;
        return NULL;
    }
    int64_t *state = malloc(3 * sizeof *state);
    if (!state) out_of_memory();
#ifdef BUG_TRIPLE
    state[0] = address * GRAIN;
#else
    state[0] = (address + 1) * GRAIN;
#endif
    state[1] = 0;
    state[2] = BATCH;
    if (n_values) *n_values = 3;
    return state;
}

void g_free(void *mem) { free(mem); }
