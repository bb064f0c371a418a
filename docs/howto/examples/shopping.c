/* shopping.c: a small GLib program for `python -m memslice record`.
 *
 * It keeps a shopping list twice: once as its own linked list of Item
 * structs made with g_slice_new0 (calls the recorder sees, because the
 * program calls libglib through the dynamic linker), and once as a GList
 * (whose nodes GLib allocates inside libglib, where the recorder cannot
 * look).  A worker thread builds a few receipts and ends, so its
 * magazines are handed back.
 *
 * Build:  gcc shopping.c -o shopping $(pkg-config --cflags --libs glib-2.0)
 */
#include <glib.h>

typedef struct Item {
    struct Item *next;  /* first: the link g_slice_free_chain follows */
    const char *name;
    int quantity;
} Item;

typedef struct {
    double total;
    int lines;
} Receipt;

static Item *push(Item *list, const char *name, int quantity) {
    Item *item = g_slice_new0(Item);  /* g_slice_alloc0 (24): seen */
    item->name = name;
    item->quantity = quantity;
    item->next = list;
    return item;
}

static gpointer cashier(gpointer unused) {
    Receipt *receipts[6];
    for (int i = 0; i < 6; i++) {
        /* g_slice_alloc (16), on another thread */
        receipts[i] = g_slice_new(Receipt);
        receipts[i]->total = 1.5 * i;
        receipts[i]->lines = i;
    }
    for (int i = 0; i < 6; i++)
        g_slice_free(Receipt, receipts[i]);  /* g_slice_free1 (16) */
    (void)unused;
    return NULL;  /* the thread ends: its magazines go back */
}

int main(void) {
    const char *names[] = {"bread", "milk", "eggs",
                           "apples", "rice", "tea"};
    Item *list = NULL;
    GList *also = NULL;
    for (int i = 0; i < 6; i++) {
        list = push(list, names[i], i + 1);
        /* not seen: GList nodes are allocated inside libglib */
        also = g_list_prepend(also, (gpointer)names[i]);
    }

    /* Cross "milk" off: one node freed on its own. */
    Item **link = &list;
    while (*link && g_strcmp0((*link)->name, "milk") != 0)
        link = &(*link)->next;
    Item *milk = *link;
    *link = milk->next;
    g_slice_free(Item, milk);  /* g_slice_free1 (24) */

    /* A copy of the first item, then a thread using another size. */
    Item *spare = g_slice_dup(Item, list);  /* g_slice_copy (24) */
    GThread *thread = g_thread_new("cashier", cashier, NULL);
    g_thread_join(thread);

    g_slice_free(Item, spare);
    /* g_slice_free_chain_with_offset (24, list, 0) */
    g_slice_free_chain(Item, list, next);
    g_list_free(also);  /* not seen */
    return 0;
}
