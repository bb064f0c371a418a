/* The slice ABI over the C library's malloc, as GLib 2.76 implements it:
 * alloc(0) is NULL, a NULL free is a no-op, chains are walked reading each
 * node's link before freeing it.  Used to stress `--impl malloc` natively.
 * Written for memslice (API-001, API-007, API-008). */
#include <stdlib.h>
#include <string.h>

void *g_slice_alloc(size_t size) { return size ? malloc(size) : NULL; }
void *g_slice_alloc0(size_t size) { return size ? calloc(1, size) : NULL; }
void *g_slice_copy(size_t size, const void *block) {
    void *copy = g_slice_alloc(size);
    if (copy) memcpy(copy, block, size);
    return copy;
}
void g_slice_free1(size_t size, void *block) { (void)size; free(block); }
void g_slice_free_chain_with_offset(size_t size, void *chain, size_t next_offset) {
    (void)size;
    while (chain) {
        void *next;
        memcpy(&next, (char *)chain + next_offset, sizeof next);
        free(chain);
        chain = next;
    }
}
