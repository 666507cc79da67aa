/* arena.c - storage: blocks that hand out nodes by bumping a counter.
 *
 * Nodes never move and are never freed one by one: a block is freed whole
 * when its owner (Python) drops it. Allocation is one atomic add, so threads
 * that share a block need no lock. */
#include <stdlib.h>
#include <string.h>

#include "node.h"

enum { CG_DEFAULT_BLOCK_NODES = 1024 }; /* engine.py's _BLOCK_NODES */

cg_block *cg_block_new(size_t nodes)
{
    if (nodes == 0)
        nodes = CG_DEFAULT_BLOCK_NODES;
    if (nodes > (SIZE_MAX - sizeof(cg_block)) / sizeof(cg_node))
        return NULL;
    /* Not calloc: nodes are zeroed as they are handed out, so the pages of
     * a large block are touched only when used. */
    cg_block *blk = malloc(sizeof(cg_block) + nodes * sizeof(cg_node));
    if (!blk)
        return NULL;
    atomic_init(&blk->used, 0);
    blk->capacity = nodes;
    atomic_init(&blk->extras, NULL);
    return blk;
}

void cg_block_free(cg_block *blk)
{
    if (!blk)
        return;
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
    cg_node *n = &blk->nodes[start];
    memset(n, 0, count * sizeof(cg_node));
    return n;
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
