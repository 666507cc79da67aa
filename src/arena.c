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
 * first.
 *
 * Side allocations (operand arrays, softmax buffers) belong to a block too,
 * and live as long as it does, so a block takes at most as many bytes of them
 * as its nodes take (extra_budget): one small Value kept alive must not pin
 * the megabytes of a big op made next to it. An op over that budget gets a
 * fresh block (its creator answers CG_FULL), and a block it overfills is
 * sealed behind it. */
#include <stdlib.h>

#include "node.h"

static cg_block *newest; /* the tail of the list; guarded by the engine lock (lock.c) */

/* Nodes given a Python backward so far in this process (custom nodes, and
 * nodes given a hook), and those of them with no operands (micrograd runs
 * every node's _backward, leaves' too). Both counts only grow.
 *
 * While there are none, no sweep stops to call out, so none is ever left
 * half done for Python to finish: cg_backward_pure runs whole sweeps without
 * the caller's lock. A node is counted before it is handed out (or, by
 * cg_set_callback, under the engine lock), so a sweep that can reach one
 * sees the count.
 *
 * While there are no leaves among them, the walk need not look at the
 * operands of a node whose operands are all leaves (CG_F_LEAF_ARGS); after
 * the first, it must. */
static atomic_size_t python_backwards, hooked_leaves;

void cg__count_python_backward(int leaf)
{
    if (leaf)
        atomic_fetch_add_explicit(&hooked_leaves, 1, memory_order_relaxed);
    atomic_fetch_add(&python_backwards, 1);
}

int cg__python_backwards(void)
{
    return atomic_load(&python_backwards) != 0;
}

int cg__hooked_leaves(void)
{
    return atomic_load_explicit(&hooked_leaves, memory_order_relaxed) != 0;
}

cg_block *cg__newest_block(void)
{
    return newest;
}

/* From now on blk is full; what it handed out stays known (engine lock held). */
static void seal(cg_block *blk)
{
    if (blk->sealed_used == SIZE_MAX)
        blk->sealed_used = atomic_exchange(&blk->used, blk->capacity + 1);
}

cg_block *cg_block_new(size_t nodes)
{
    if (nodes == 0)
        nodes = CG_BLOCK_NODES;
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
    blk->hooks = NULL;
    blk->extra_budget = nodes * sizeof(cg_node);
    atomic_init(&blk->extra_bytes, 0);
    cg__lock_init();
    cg__lock();
    if (newest)
        seal(newest);
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
    free(blk->hooks);
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

int cg__extra_fits(cg_block *blk, size_t bytes)
{
    size_t held = atomic_load_explicit(&blk->extra_bytes, memory_order_relaxed);
    if (held == 0 && atomic_load_explicit(&blk->used, memory_order_relaxed) == 0)
        return 1; /* a fresh block takes any op; cg__close_if_over_budget closes it behind */
    return bytes <= blk->extra_budget && held <= blk->extra_budget - bytes;
}

void cg__close_if_over_budget(cg_block *blk)
{
    if (atomic_load_explicit(&blk->extra_bytes, memory_order_relaxed) <= blk->extra_budget)
        return;
    cg__lock();
    seal(blk);
    cg__unlock();
}

/* The first chunk of side allocations a block makes, in bytes (less if its
 * budget is smaller); each next one doubles, up to the budget. */
enum { CG_FIRST_EXTRA_CHUNK = 1024 };

/* Side allocations are carved from chunks in the order they are asked for,
 * not malloc'd one by one: the sweep and replay read a node's operand array
 * right after the previous node's, so those arrays must lie one after
 * another. One malloc each put them wherever the interpreter's own
 * allocations left room: under PyPy, whose raw allocations interleave with
 * the core's, the moons demo's arrays spread over 299 pages against 216
 * under CPython (docs/design.md). Chunks
 * double from CG_FIRST_EXTRA_CHUNK (a block with a few small ones takes
 * little), up to the block's budget; an allocation bigger than the next
 * chunk gets a chunk of its own size. What a full chunk has left is not
 * used. Lock-free, like the node counter: a bump of the newest chunk's
 * counter, or a new chunk pushed with a compare-and-swap (a thread that loses
 * the push frees its chunk and bumps the winner's). */
void *cg__alloc_extra(cg_block *blk, size_t bytes)
{
    const size_t align = _Alignof(max_align_t);
    if (bytes > SIZE_MAX - sizeof(cg_extra) - align)
        return NULL;
    size_t rounded = (bytes + align - 1) & ~(align - 1); /* keeps the next one aligned */
    for (;;) {
        cg_extra *head = atomic_load_explicit(&blk->extras, memory_order_acquire);
        if (head && rounded <= head->bytes) { /* (so that failed bumps cannot wrap the counter) */
            size_t at = atomic_fetch_add_explicit(&head->used, rounded, memory_order_relaxed);
            if (at <= head->bytes && rounded <= head->bytes - at) {
                atomic_fetch_add_explicit(&blk->extra_bytes, bytes, memory_order_relaxed);
                return head->data + at;
            }
        }
        size_t chunk = head ? 2 * head->bytes : CG_FIRST_EXTRA_CHUNK;
        if (chunk > blk->extra_budget)
            chunk = blk->extra_budget;
        if (chunk < rounded)
            chunk = rounded;
        cg_extra *fresh = malloc(sizeof(cg_extra) + chunk); /* callers fill it: no zeroing */
        if (!fresh)
            return NULL;
        fresh->bytes = chunk;
        atomic_init(&fresh->used, rounded);
        fresh->next = head;
        if (atomic_compare_exchange_strong_explicit(&blk->extras, &fresh->next, fresh,
                                                    memory_order_release, memory_order_acquire)) {
            atomic_fetch_add_explicit(&blk->extra_bytes, bytes, memory_order_relaxed);
            return fresh->data;
        }
        free(fresh); /* another thread pushed a chunk first: try that one */
    }
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
