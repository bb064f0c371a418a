/* memslice-stress: a native multi-thread stress driver for any library exporting
 * GLib's slice ABI (g_slice_alloc, g_slice_free1, g_slice_free_chain_with_offset).
 *
 * Theory of operation
 * -------------------
 * Python threads calling a C allocator through ctypes almost never overlap inside
 * it (the GIL serialises everything but the few nanoseconds of the call), so a
 * thread-unsafe allocator passes any Python-level thread test.  This driver runs
 * real POSIX threads that call the library directly:
 *
 *   generation g:  T0 .. T(n-1) each run OPS operations, then exit; a new
 *                  generation starts while blocks of the old one are still live
 *   each op:       alloc a random size, stamp every byte, register the block;
 *                  or verify + free one of its own blocks;
 *                  or verify + hand one to another thread's mailbox (that thread
 *                  frees it: cross-thread free); or free a chain of its blocks
 *   registry:      a lock-free open-addressing set of live addresses; inserting an
 *                  address already present means the allocator handed out a block
 *                  that is still live (a double hand-out)
 *   stamps:        byte k of a block holds (seed ^ k ^ size) & 0xff; a changed byte
 *                  means some other block overlapped it or the allocator wrote into it
 *   bursts:        now and then a thread allocates BURST blocks of the generation's
 *                  hot size and hands them all to its neighbour, which frees them:
 *                  one thread's cache overflows into shared lists while another's
 *                  refills from them, the moment a publish-before-link race needs
 *   rings:         every thread logs its last RING operations (a global sequence
 *                  number, the call, size, address); on the first violation, or on
 *                  a crash signal, the rings are printed as JSON lines ("ring"), so
 *                  the interleaving that led there can be read
 *
 * Violations are printed as JSON lines on stdout; the last line is a summary.
 * Exit status: 0 no violation, 1 violations, 2 usage or load error.
 * Spec: API-004 (no overlap), API-005 (integrity), API-009 (cross-thread free),
 * EXIT-001 and EXIT-005 (threads come and go).  Written for memslice; no GLib code is used.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void *(*alloc_fn)(size_t);
typedef void (*free_fn)(size_t, void *);
typedef void (*chain_fn)(size_t, void *, size_t);

static alloc_fn slice_alloc;
static free_fn slice_free1;
static chain_fn slice_free_chain;

#define REGISTRY_BITS 20
#define REGISTRY_SIZE (1u << REGISTRY_BITS)
#define MAX_THREADS 64
#define LOCAL_BLOCKS 256
#define MAILBOX 512
#define BURST 96
#define RING 48

static _Atomic uintptr_t registry[REGISTRY_SIZE];
static atomic_long violations;
static atomic_long operations;
static long max_violations = 20;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    unsigned char *address;
    size_t size;
    unsigned seed;
} Block;

typedef struct {
    pthread_mutex_t lock;
    Block items[MAILBOX];
    int count;
} Mailbox;

/* One logged call: its place in the global order, what, how big, where. */
typedef struct {
    unsigned long seq;
    char op; /* 'a' alloc, 'f' free, 'x' free of a block from another thread, 'c' chain */
    unsigned size;
    uintptr_t address;
} Entry;

typedef struct {
    Entry entries[RING];
    unsigned long next;
} Ring;

static Ring rings[MAX_THREADS];
static atomic_ulong sequence;
static atomic_int rings_dumped;
static int current_generation;
static _Thread_local int my_index = -1;

static void note(char op, size_t size, const void *address) {
    if (my_index < 0) return;
    Ring *ring = &rings[my_index];
    Entry *entry = &ring->entries[ring->next % RING];
    entry->seq = atomic_fetch_add_explicit(&sequence, 1, memory_order_relaxed);
    entry->op = op;
    entry->size = (unsigned)size;
    entry->address = (uintptr_t)address;
    ring->next++;
}

/* Print every thread's ring, once; async-signal-tolerant (snprintf + write). */
static void dump_rings(void) {
    if (atomic_exchange(&rings_dumped, 1)) return;
    char line[RING * 48 + 128];
    for (int k = 0; k < MAX_THREADS; k++) {
        Ring *ring = &rings[k];
        if (!ring->next) continue;
        int used = snprintf(line, sizeof line, "{\"ring\": %d, \"generation\": %d, \"ops\": [", k,
                            current_generation);
        /* Other threads go on while this one prints: take the end once. */
        unsigned long end = ring->next;
        unsigned long first = end > RING ? end - RING : 0;
        for (unsigned long i = first; i < end && used < (int)sizeof line - 64; i++) {
            Entry *entry = &ring->entries[i % RING];
            used += snprintf(line + used, sizeof line - (size_t)used, "%s[%lu, \"%c\", %u, %lu]",
                             i == first ? "" : ", ", entry->seq, entry->op, entry->size,
                             (unsigned long)entry->address);
        }
        used += snprintf(line + used, sizeof line - (size_t)used, "]}\n");
        ssize_t written = write(1, line, (size_t)used);
        (void)written;
    }
}

static void on_crash(int signal_number) {
    char line[64];
    int used = snprintf(line, sizeof line, "{\"crashed_thread\": %d}\n", my_index);
    ssize_t written = write(1, line, (size_t)used);
    (void)written;
    dump_rings();
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

static Mailbox mailboxes[MAX_THREADS];
static int n_threads = 4;
static long ops_per_thread = 20000;
static int generations = 4;
static unsigned base_seed = 1;

static const size_t SIZES[] = {1,  8,   16,  17,  24,  32,  40,  48,  63,  64,  100, 112,
                               128, 250, 256, 500, 512, 700, 1000, 1008, 1009, 1500, 4000};
#define N_SIZES (sizeof SIZES / sizeof SIZES[0])
#define N_HOT_SIZES 15 /* SIZES[0..14]: 1 to 256 bytes */

static void report(const char *kind, const void *address, size_t size, const char *detail) {
    long seen = atomic_fetch_add(&violations, 1);
    if (seen >= max_violations) return;
    pthread_mutex_lock(&print_lock);
    printf("{\"violation\": \"%s\", \"address\": %lu, \"size\": %zu, \"detail\": \"%s\", "
           "\"thread\": %d}\n", kind, (unsigned long)(uintptr_t)address, size, detail, my_index);
    fflush(stdout);
    if (seen == 0) dump_rings();
    pthread_mutex_unlock(&print_lock);
}

static size_t slot_of(uintptr_t key) {
    return (size_t)((key >> 3) * 0x9E3779B97F4A7C15ull >> (64 - REGISTRY_BITS));
}

/* Insert a live block; false if it was already live (double hand-out). */
static int registry_insert(uintptr_t key) {
    for (size_t i = slot_of(key), probes = 0; probes < REGISTRY_SIZE; i = (i + 1) & (REGISTRY_SIZE - 1), probes++) {
        uintptr_t current = atomic_load(&registry[i]);
        if (current == key) return 0;
        if (current == 0 || current == 1) {
            /* Slot 1 is a tombstone; claim empty or tombstone slots. */
            uintptr_t expected = current;
            if (atomic_compare_exchange_strong(&registry[i], &expected, key)) {
                /* make sure the key is not also present further along the chain */
                for (size_t j = (i + 1) & (REGISTRY_SIZE - 1), p = probes + 1; p < REGISTRY_SIZE;
                     j = (j + 1) & (REGISTRY_SIZE - 1), p++) {
                    uintptr_t other = atomic_load(&registry[j]);
                    if (other == 0) break;
                    if (other == key) {
                        atomic_store(&registry[i], 1);
                        return 0;
                    }
                }
                return 1;
            }
            if (expected == key) return 0;
        }
    }
    return 1; /* registry full: cannot judge, treat as fine */
}

static void registry_remove(uintptr_t key) {
    for (size_t i = slot_of(key), probes = 0; probes < REGISTRY_SIZE; i = (i + 1) & (REGISTRY_SIZE - 1), probes++) {
        uintptr_t current = atomic_load(&registry[i]);
        if (current == 0) return;
        if (current == key) {
            atomic_store(&registry[i], 1);
            return;
        }
    }
}

static unsigned next_random(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static void stamp(Block *block) {
    for (size_t k = 0; k < block->size; k++) block->address[k] = (unsigned char)(block->seed ^ k ^ block->size);
}

static int intact(const Block *block) {
    for (size_t k = 0; k < block->size; k++)
        if (block->address[k] != (unsigned char)(block->seed ^ k ^ block->size)) return 0;
    return 1;
}

static int new_block(Block *block, unsigned *state) {
    block->size = SIZES[next_random(state) % N_SIZES];
    block->seed = next_random(state);
    block->address = slice_alloc(block->size);
    note('a', block->size, block->address);
    atomic_fetch_add(&operations, 1);
    if (!block->address) {
        report("null", NULL, block->size, "g_slice_alloc returned NULL for a nonzero size");
        return 0;
    }
    if ((uintptr_t)block->address % sizeof(void *)) report("misaligned", block->address, block->size, "not pointer-aligned");
    if (!registry_insert((uintptr_t)block->address))
        report("double-handout", block->address, block->size, "address handed out while still live");
    stamp(block);
    return 1;
}

static void release(Block *block, const char *who) {
    if (!intact(block)) report("corrupted", block->address, block->size, who);
    registry_remove((uintptr_t)block->address);
    note(who[0] == 'c' && strstr(who, "cross") ? 'x' : 'f', block->size, block->address);
    slice_free1(block->size, block->address);
    atomic_fetch_add(&operations, 1);
}

typedef struct {
    int index;
    unsigned seed;
    Block blocks[LOCAL_BLOCKS];
    int count;
} Worker;

static void drain_mailbox(int index) {
    Mailbox *box = &mailboxes[index];
    Block taken[MAILBOX];
    pthread_mutex_lock(&box->lock);
    int count = box->count;
    memcpy(taken, box->items, (size_t)count * sizeof(Block));
    box->count = 0;
    pthread_mutex_unlock(&box->lock);
    for (int k = 0; k < count; k++) release(&taken[k], "corrupted before a cross-thread free");
}

static size_t hot_size = 16;

/* BURST blocks of the hot size, stamped and handed to the neighbour to free. */
static void burst(Worker *worker) {
    Mailbox *box = &mailboxes[(worker->index + 1) % n_threads];
    for (int k = 0; k < BURST; k++) {
        Block block = {slice_alloc(hot_size), hot_size, next_random(&worker->seed)};
        note('a', block.size, block.address);
        atomic_fetch_add(&operations, 1);
        if (!block.address) {
            report("null", NULL, block.size, "g_slice_alloc returned NULL for a nonzero size");
            return;
        }
        if (!registry_insert((uintptr_t)block.address))
            report("double-handout", block.address, block.size, "address handed out while still live");
        stamp(&block);
        pthread_mutex_lock(&box->lock);
        if (box->count < MAILBOX) {
            box->items[box->count++] = block;
            block.address = NULL;
        }
        pthread_mutex_unlock(&box->lock);
        if (block.address) release(&block, "corrupted (mailbox full)");
    }
}

static void *run_worker(void *argument) {
    Worker *worker = argument;
    my_index = worker->index;
    unsigned *state = &worker->seed;
    for (long op = 0; op < ops_per_thread; op++) {
        unsigned choice = next_random(state) % 100;
        if (choice >= 90) {
            burst(worker);
            drain_mailbox(worker->index);
        } else if (worker->count < LOCAL_BLOCKS && (choice < 50 || worker->count == 0)) {
            if (new_block(&worker->blocks[worker->count], state)) worker->count++;
        } else if (choice < 80) {
            int k = (int)(next_random(state) % (unsigned)worker->count);
            release(&worker->blocks[k], "corrupted while live in its own thread");
            worker->blocks[k] = worker->blocks[--worker->count];
        } else if (choice < 92) {
            int k = (int)(next_random(state) % (unsigned)worker->count);
            Block block = worker->blocks[k];
            worker->blocks[k] = worker->blocks[--worker->count];
            if (!intact(&block)) report("corrupted", block.address, block.size, "corrupted before hand-off");
            Mailbox *box = &mailboxes[next_random(state) % (unsigned)n_threads];
            pthread_mutex_lock(&box->lock);
            if (box->count < MAILBOX) {
                box->items[box->count++] = block;
                block.address = NULL;
            }
            pthread_mutex_unlock(&box->lock);
            if (block.address) release(&block, "corrupted (mailbox full)");
        } else if (slice_free_chain && worker->count >= 3) {
            /* chain up to 4 blocks of one size through offset 0 and free them together */
            Block *first = &worker->blocks[worker->count - 1];
            int length = 0;
            unsigned char *head = NULL;
            for (int k = worker->count - 1; k >= 0 && length < 4; k--) {
                Block *block = &worker->blocks[k];
                if (block->size != first->size || block->size < sizeof(void *)) continue;
                if (!intact(block)) report("corrupted", block->address, block->size, "corrupted before a chain free");
                registry_remove((uintptr_t)block->address);
                memcpy(block->address, &head, sizeof head);
                head = block->address;
                worker->blocks[k] = worker->blocks[--worker->count];
                length++;
            }
            note('c', first->size, head);
            if (head) slice_free_chain(first->size, head, 0);
            atomic_fetch_add(&operations, length);
        }
        if ((op & 63) == 0) drain_mailbox(worker->index);
    }
    drain_mailbox(worker->index);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: memslice-stress LIBRARY [threads] [ops-per-thread] [generations] [seed]\n");
        return 2;
    }
    if (argc > 2) n_threads = atoi(argv[2]);
    if (argc > 3) ops_per_thread = atol(argv[3]);
    if (argc > 4) generations = atoi(argv[4]);
    if (argc > 5) base_seed = (unsigned)strtoul(argv[5], NULL, 10);
    if (n_threads < 1 || n_threads > MAX_THREADS) n_threads = 4;
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        printf("{\"error\": \"cannot load library\", \"detail\": \"%s\"}\n", dlerror());
        return 2;
    }
    slice_alloc = (alloc_fn)dlsym(library, "g_slice_alloc");
    slice_free1 = (free_fn)dlsym(library, "g_slice_free1");
    slice_free_chain = (chain_fn)dlsym(library, "g_slice_free_chain_with_offset");
    if (!slice_alloc || !slice_free1) {
        printf("{\"error\": \"library lacks g_slice_alloc or g_slice_free1\"}\n");
        return 2;
    }
    for (int k = 0; k < MAX_THREADS; k++) pthread_mutex_init(&mailboxes[k].lock, NULL);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGABRT, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGFPE, on_crash);
    static Worker workers[MAX_THREADS];
    Block leftovers[MAX_THREADS * LOCAL_BLOCKS];
    int n_leftovers = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int generation = 0; generation < generations; generation++) {
        pthread_t threads[MAX_THREADS];
        current_generation = generation;
        unsigned pick = base_seed * 2654435761u + (unsigned)generation * 40503u;
        /* small slab sizes only: bursts are about flush/refill traffic, not bytes */
        hot_size = SIZES[(pick >> 7) % N_HOT_SIZES];
        for (int k = 0; k < n_threads; k++) {
            workers[k].index = k;
            workers[k].seed = base_seed * 7919u + (unsigned)(generation * MAX_THREADS + k) * 104729u;
            workers[k].count = 0;
            pthread_create(&threads[k], NULL, run_worker, &workers[k]);
        }
        for (int k = 0; k < n_threads; k++) pthread_join(threads[k], NULL);
        /* blocks of exited threads stay live across the next generation, then are
         * checked and freed by the main thread (EXIT-003) */
        for (int k = 0; k < n_leftovers; k++) release(&leftovers[k], "corrupted after its thread exited");
        n_leftovers = 0;
        for (int k = 0; k < n_threads; k++)
            for (int b = 0; b < workers[k].count; b++) leftovers[n_leftovers++] = workers[k].blocks[b];
        for (int k = 0; k < n_threads; k++) drain_mailbox(k);
    }
    for (int k = 0; k < n_leftovers; k++) release(&leftovers[k], "corrupted after its thread exited");
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    long found = atomic_load(&violations);
    printf("{\"summary\": true, \"threads\": %d, \"generations\": %d, \"operations\": %ld, "
           "\"violations\": %ld, \"seconds\": %.3f}\n",
           n_threads, generations, atomic_load(&operations), found, seconds);
    return found ? 1 : 0;
}
