/* sweep.c - ordering the graph and the reverse sweep.
 *
 * The order is a depth-first postorder over operands in operand order: the
 * order micrograd's build_topo gives, made deterministic (micrograd iterates
 * a set) and iterative (an explicit stack, so depth is bounded by memory, not
 * by the C stack). Only interior nodes are ordered; leaves have no kernel.
 * Creation order is topological too, but block order is not creation order
 * (a fused op's own block, or one another thread made current, can be newer
 * than the current block), and the sweep must touch only nodes reachable from
 * the root (docs/design.md). */
#include <stdatomic.h>
#include <stdlib.h>

#include "node.h"

/* The search marks nodes in the nodes themselves, so two searches over graphs
 * that share nodes must not run at once: a spinlock (C11, so portable)
 * serialises them. A search is short, pure C and never calls back into
 * Python, so waiting threads spin briefly; the kernels run unlocked. */
static atomic_flag ordering_lock = ATOMIC_FLAG_INIT;

struct cg_sweep {
    cg_node *root;
    cg_node **order;  /* interior nodes, operands before the nodes using them */
    size_t size;
};

typedef struct {
    cg_node *node;
    uint32_t next_arg;
} frame;

/* Grows *buf (of *cap elements of elem bytes) to hold at least need. */
static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return CG_OK;
    size_t cap2 = *cap ? *cap : 1024;
    while (cap2 < need)
        cap2 *= 2;
    void *p = realloc(*buf, cap2 * elem);
    if (!p)
        return CG_NOMEM;
    *buf = p;
    *cap = cap2;
    return CG_OK;
}

/* Appends the interior nodes reachable from root to *order in postorder.
 * Marks visited nodes and clears the marks before returning. */
static int topological_order(cg_node *root, cg_node ***order, size_t *size)
{
    size_t n = 0, order_cap = 0, depth = 0, stack_cap = 0;
    cg_node **out = NULL;
    frame *stack = NULL;
    int status = CG_OK;

    if (root->nargs) {
        if ((status = grow((void **)&stack, &stack_cap, 1, sizeof *stack)) != CG_OK)
            goto done;
        root->mark = 1;
        stack[depth++] = (frame){root, 0};
    }
    while (depth) {
        frame *top = &stack[depth - 1];
        cg_node *node = top->node;
        cg_node **args = cg__args(node);
        /* Leaves and visited operands need nothing: skip them here rather
         * than in a trip round the outer loop each (and leaves unseen, when
         * the node knows it has only leaves). */
        uint32_t i = (node->flags & CG_F_LEAF_ARGS) ? node->nargs : top->next_arg;
        while (i < node->nargs && (!args[i]->nargs || args[i]->mark))
            i++;
        if (i < node->nargs) {
            top->next_arg = i + 1;
            if (depth == stack_cap &&
                (status = grow((void **)&stack, &stack_cap, depth + 1, sizeof *stack)) != CG_OK)
                goto done;
            args[i]->mark = 1;
            stack[depth++] = (frame){args[i], 0};
        } else {
            if (n == order_cap && (status = grow((void **)&out, &order_cap, n + 1, sizeof *out)) != CG_OK)
                goto done;
            out[n++] = node;
            depth--;
        }
    }
done:
    /* Every marked node is either in out or still on the stack. */
    for (size_t i = 0; i < n; i++)
        out[i]->mark = 0;
    for (size_t i = 0; i < depth; i++)
        stack[i].node->mark = 0;
    free(stack);
    if (status != CG_OK) {
        free(out);
        return status;
    }
    *order = out;
    *size = n;
    return CG_OK;
}

int cg_sweep_begin(cg_ref root, cg_sweep **out)
{
    *out = NULL;
    cg_sweep *sw = malloc(sizeof *sw);
    if (!sw)
        return CG_NOMEM;
    while (atomic_flag_test_and_set_explicit(&ordering_lock, memory_order_acquire))
        ;
    int status = topological_order(cg__node(root), &sw->order, &sw->size);
    atomic_flag_clear_explicit(&ordering_lock, memory_order_release);
    if (status != CG_OK) {
        free(sw);
        return status;
    }
    sw->root = cg__node(root);
    *out = sw;
    return CG_OK;
}

int cg_sweep_backward(const cg_sweep *sw, size_t *cursor, void **callback)
{
    if (*cursor == 0)
        sw->root->grad = 1.0;
    while (*cursor < sw->size) {
        cg_node *n = sw->order[sw->size - 1 - (*cursor)++];
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
    for (size_t i = 0; i < sw->size; i++) {
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
