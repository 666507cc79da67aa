/* sweep.c - the reverse sweep, in creation order.
 *
 * A node's operands exist before it is made, so creation order is a
 * topological order, and arena.c keeps it readable from memory: nodes in a
 * block in the order they were handed out, blocks in a list in the order they
 * were made. The sweep walks nodes backwards from the root, newest first.
 * The root is marked; each marked node met has its interior operands marked
 * and its kernel run; the walk stops when no marked node is left below it.
 * So a node's kernel runs after the kernels of every node that uses it (they
 * are newer), with no search and no sort, and nothing recurses.
 *
 * Only kernels of nodes reachable from the root run and only their operands'
 * grads change. Unmarked nodes on the way (another graph's, or dead ends such
 * as the softmax outputs a loss does not use) cost one read of their mark
 * byte: a maker never writes it (blocks are zeroed when made), so reading it
 * while another thread fills in that node is safe.
 *
 * Marks are shared state, and the walk reads blocks that another thread
 * could free, so a sweep holds the engine lock (arena.c) from start to end.
 * Sweeps take turns; a sweep never calls out (a node whose backward is
 * Python's stops the kernels, and the rest is handed back as an order). */
#include <stdlib.h>

#include "node.h"

struct cg_sweep {
    cg_node **order; /* interior nodes, newest first */
    size_t size;
};

/* Appends n to sw->order, growing it as needed. */
static int append(cg_sweep *sw, size_t *cap, cg_node *n)
{
    if (sw->size == *cap) {
        size_t cap2 = *cap ? 2 * *cap : 1024;
        cg_node **p = realloc(sw->order, cap2 * sizeof *p);
        if (!p)
            return CG_NOMEM;
        sw->order = p;
        *cap = cap2;
    }
    sw->order[sw->size++] = n;
    return CG_OK;
}

/* The live block holding node n (engine lock held). Usually the newest:
 * a root is mostly the node just made. */
static cg_block *block_of(const cg_node *n)
{
    uintptr_t at = (uintptr_t)n;
    cg_block *blk = cg__newest_block();
    while (blk && !(at >= (uintptr_t)blk->nodes &&
                    at < (uintptr_t)(blk->nodes + blk->capacity)))
        blk = blk->prev;
    return blk;
}

/* The newest node a walk must look at in blk (unused nodes are zero). */
static cg_node *last_node(cg_block *blk)
{
    size_t used = atomic_load_explicit(&blk->used, memory_order_acquire);
    return used ? &blk->nodes[(used < blk->capacity ? used : blk->capacity) - 1] : NULL;
}

/* The walk, engine lock held. With run set, runs the kernel of each reachable
 * interior node, newest first, until a node whose backward is Python's; from
 * there (or from the start, without run) appends the nodes to sw->order
 * instead. Leaves every mark clear. CG_OK, or CG_NOMEM if the order could
 * not grow (the walk still goes to the end, to clear the marks). */
static int walk_back(cg_node *root, int run, cg_sweep *sw)
{
    int status = CG_OK;
    size_t cap = 0, pending = 1; /* marked nodes the walk has not reached */
    cg_block *blk = block_of(root);
    cg_node *n = root;

    if (!root->nargs || !blk)
        return CG_OK;
    root->mark = 1;
    for (;;) {
        for (cg_node *first = blk->nodes;; n--) {
            if (n->mark) {
                n->mark = 0;
                if (!(n->flags & CG_F_LEAF_ARGS)) {
                    cg_node **args = cg__args(n);
                    for (uint32_t i = 0; i < n->nargs; i++) {
                        cg_node *a = args[i];
                        if (a->nargs && !a->mark) {
                            a->mark = 1;
                            pending++;
                        }
                    }
                }
                if (run && n->op != CG_CUSTOM) {
                    cg__backward(n);
                } else {
                    run = 0; /* from here the caller runs the kernels */
                    if (status == CG_OK)
                        status = append(sw, &cap, n);
                }
                if (--pending == 0)
                    return status;
            }
            if (n == first)
                break;
        }
        /* Marked nodes are left, and each is older than n: an older block
         * holds them, and blocks holding reachable nodes are alive. */
        do
            blk = blk->prev;
        while (!(n = last_node(blk)));
    }
}

/* A sweep from walk_back(root, run), or NULL if none is needed; *status is
 * walk_back's, or CG_NOMEM. */
static cg_sweep *walk(cg_ref root, int run, int *status)
{
    cg_sweep *sw = calloc(1, sizeof *sw);
    if (!sw) {
        *status = CG_NOMEM;
        return NULL;
    }
    cg__lock();
    *status = walk_back(cg__node(root), run, sw);
    cg__unlock();
    if (*status != CG_OK || (run && sw->size == 0)) {
        cg_sweep_free(sw);
        return NULL;
    }
    return sw;
}

int cg_backward(cg_ref root, cg_sweep **rest)
{
    int status;
    cg__node(root)->grad = 1.0;
    *rest = walk(root, 1, &status);
    return status == CG_OK && *rest ? CG_CALLBACK : status;
}

int cg_sweep_begin(cg_ref root, cg_sweep **out)
{
    int status;
    *out = walk(root, 0, &status);
    return status;
}

int cg_sweep_backward(const cg_sweep *sw, size_t *cursor, void **callback)
{
    while (*cursor < sw->size) {
        cg_node *n = sw->order[(*cursor)++];
        if (n->op != CG_CUSTOM) {
            cg__backward(n);
        } else if (n->x.callback) {
            *callback = n->x.callback;
            return CG_CALLBACK;
        }
    }
    return CG_OK;
}

int cg_sweep_replay(const cg_sweep *sw)
{
    for (size_t i = 0; i < sw->size; i++)
        if (sw->order[i]->op == CG_CUSTOM)
            return CG_NOREPLAY;
    for (size_t i = sw->size; i-- > 0;) {
        cg_node *n = sw->order[i];
        int status = cg__forward(n);
        if (status != CG_OK)
            return status;
        n->grad = 0.0;
    }
    return CG_OK;
}

size_t cg_sweep_size(const cg_sweep *sw)
{
    return sw->size;
}

void cg_sweep_free(cg_sweep *sw)
{
    if (!sw)
        return;
    free(sw->order);
    free(sw);
}

int cg_node_backward(cg_ref node)
{
    cg_node *n = cg__node(node);
    if (n->op == CG_CUSTOM)
        return CG_CALLBACK;
    cg__backward(n);
    return CG_OK;
}
