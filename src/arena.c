/* arena.c - storage: blocks that hand out nodes by bumping a counter, kept
 * in a list in the order they were made.
 *
 * Nodes never move and are never freed one by one: a block is freed whole
 * when its owner (Python) drops it. Allocation is one atomic add, so threads
 * that share a block need no lock.
 *
 * Creation order is what the reverse sweep walks (sweep.c), so it must be
 * readable from memory: only the newest block hands out nodes. Making a block
 * seals the one before it, so that a node never lands in an older block than
 * its operands, and in a block nodes are handed out in order. Walking the
 * list back from any node therefore meets every node made before it, newest
 * first. */
#include <stdlib.h>

#include "node.h"

enum { CG_DEFAULT_BLOCK_NODES = 1024 }; /* engine.py's _BLOCK_NODES */

/* The engine lock guards the block list and the marks the sweep sets in
 * nodes. C11's atomic_flag is the one lock-free primitive every C11 platform
 * has; holders never call out, and hold it briefly (a list update, or one
 * sweep), so waiters spin. */
static atomic_flag engine_lock = ATOMIC_FLAG_INIT;
static cg_block *newest; /* the tail of the list; guarded by engine_lock */

void cg__lock(void)
{
    while (atomic_flag_test_and_set_explicit(&engine_lock, memory_order_acquire))
        ;
}

void cg__unlock(void)
{
    atomic_flag_clear_explicit(&engine_lock, memory_order_release);
}

cg_block *cg__newest_block(void)
{
    return newest;
}

cg_block *cg_block_new(size_t nodes)
{
    if (nodes == 0)
        nodes = CG_DEFAULT_BLOCK_NODES;
    if (nodes > CG_BLOCK_MAX_NODES || nodes > (SIZE_MAX - sizeof(cg_block)) / sizeof(cg_node))
        return NULL;
    /* Zeroed once here (large blocks come zeroed from the OS, page by page
     * as they are used), not node by node: a node's mark is then 0 from the
     * start and never written by its maker, so a sweep may read the marks of
     * nodes another thread is still filling in. */
    cg_block *blk = calloc(1, sizeof(cg_block) + nodes * sizeof(cg_node));
    if (!blk)
        return NULL;
    atomic_init(&blk->used, 0);
    blk->capacity = nodes;
    blk->sealed_used = SIZE_MAX;
    atomic_init(&blk->extras, NULL);
    cg__lock();
    if (newest) /* sealed: it is full from now on; what it handed out stays known */
        newest->sealed_used = atomic_exchange(&newest->used, newest->capacity + 1);
    blk->prev = newest;
    if (newest)
        newest->next = blk;
    newest = blk;
    cg__unlock();
    return blk;
}

void cg_block_free(cg_block *blk)
{
    if (!blk)
        return;
    cg__lock();
    if (blk->next)
        blk->next->prev = blk->prev;
    else
        newest = blk->prev;
    if (blk->prev)
        blk->prev->next = blk->next;
    cg__unlock();
    cg_extra *e = atomic_load(&blk->extras);
    while (e) {
        cg_extra *next = e->next;
        free(e);
        e = next;
    }
    free(blk);
}

size_t cg_block_bytes(const cg_block *blk)
{
    size_t total = sizeof(cg_block) + blk->capacity * sizeof(cg_node);
    for (cg_extra *e = atomic_load(&((cg_block *)blk)->extras); e; e = e->next)
        total += sizeof(cg_extra) + e->bytes;
    return total;
}

cg_node *cg__alloc_nodes(cg_block *blk, size_t count)
{
    if (count > blk->capacity) /* before the add, so that the counter cannot wrap */
        return NULL;
    size_t start = atomic_fetch_add_explicit(&blk->used, count, memory_order_relaxed);
    if (start > blk->capacity || count > blk->capacity - start)
        return NULL;
    cg_node *nodes = &blk->nodes[start];
    for (size_t i = 0; i < count; i++)
        nodes[i].slot = (uint32_t)(start + i);
    return nodes;
}

void *cg__alloc_extra(cg_block *blk, size_t bytes)
{
    cg_extra *e = malloc(sizeof(cg_extra) + bytes); /* callers fill it: no zeroing */
    if (!e)
        return NULL;
    e->bytes = bytes;
    e->next = atomic_load_explicit(&blk->extras, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&blk->extras, &e->next, e,
                                                  memory_order_release,
                                                  memory_order_relaxed))
        ;
    return e->data;
}

cg_args *cg__alloc_args(cg_block *blk, size_t count)
{
    if (count > (SIZE_MAX - sizeof(cg_args)) / sizeof(cg_node *))
        return NULL;
    cg_args *args = cg__alloc_extra(blk, sizeof(cg_args) + count * sizeof(cg_node *));
    if (args)
        args->count = count;
    return args;
}
