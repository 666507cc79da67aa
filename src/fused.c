/* fused.c - n-ary ops built as one node (or one group) in one call, and
 * bulk reads and writes of many nodes. Their kernels are cg__fused_forward
 * (forward.h) and cg__fused_backward (kernels.h), one each.
 *
 * Every n-ary node keeps its operands in an array in its block's extras.
 * softmax and log_softmax are a hidden group node (data: logsumexp) and n
 * CG_PICK outputs; a pick's backward only adds its grad to the group's gout
 * buffer, and the group's kernel, which the sweep runs after every pick that
 * uses it, turns the buffer into the operands' grads in O(n) and clears it. */
#include <string.h>

#include "forward.h"

size_t cg_fused_nodes(int op, size_t n)
{
    return (op == CG_SOFTMAX || op == CG_LOG_SOFTMAX) ? n + 1 : 1;
}

/* An n-ary node with a fresh operand array (filled by the caller) and
 * `picks` output nodes right after it in the block. NULL and *status set if
 * there is no room; what was allocated stays with blk, unreachable. */
static cg_node *new_nary(cg_block *blk, int op, size_t nargs, size_t picks, int *status)
{
    cg_args *array = cg__alloc_args(blk, nargs);
    if (!array) {
        *status = CG_NOMEM;
        return NULL;
    }
    cg_node *n = cg__alloc_nodes(blk, 1 + picks);
    if (!n) {
        *status = CG_FULL;
        return NULL;
    }
    cg__close_if_over_budget(blk);
    n->op = (uint8_t)op;
    n->flags = CG_F_ARRAY;
    n->nargs = CG_NARGS_ARRAY;
    n->in.array = array;
    return n;
}

static void copy_args(cg_node **dst, const cg_ref *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = cg__node(src[i]);
}

cg_ref cg_reduce(cg_block *blk, int op, const cg_ref *args, size_t n)
{
    if (n == 0)
        return CG_EMPTY;
    if (op != CG_SUM && op != CG_MEAN && op != CG_LOGSUMEXP)
        return CG_DOMAIN;
    if (!cg__extra_fits(blk, cg__args_bytes(n)))
        return CG_FULL;
    int status;
    cg_node *node = new_nary(blk, op, n, 0, &status);
    if (!node)
        return (cg_ref)status;
    copy_args(node->in.array->at, args, n);
    node->flags |= cg__leaf_args_flag(node->in.array->at, n);
    cg__fused_forward(node);
    cg__type_data(node);
    return cg__ref(node);
}

cg_ref cg_dot(cg_block *blk, cg_ref start, const cg_ref *ws, const cg_ref *xs, size_t n)
{
    if (n > (SIZE_MAX - 1) / 2)
        return CG_NOMEM;
    if (!cg__extra_fits(blk, cg__args_bytes(1 + 2 * n)))
        return CG_FULL;
    int status;
    cg_node *node = new_nary(blk, CG_DOT, 1 + 2 * n, 0, &status);
    if (!node)
        return (cg_ref)status;
    node->in.array->at[0] = cg__node(start);
    copy_args(node->in.array->at + 1, ws, n);
    copy_args(node->in.array->at + 1 + n, xs, n);
    node->flags |= cg__leaf_args_flag(node->in.array->at, 1 + 2 * n);
    cg__fused_forward(node);
    cg__type_data(node);
    return cg__ref(node);
}

cg_ref cg_layer(cg_block *blk, const cg_ref *ws, const cg_ref *bs, const cg_ref *xs,
                size_t n_in, size_t n_out, int relu, cg_ref *out)
{
    if (n_out == 0)
        return CG_EMPTY;
    size_t per_neuron = 1 + 2 * n_in, stride = relu ? 2 : 1;
    /* one allocation: n_out operand arrays of per_neuron operands each */
    size_t max_words = SIZE_MAX / sizeof(cg_node *) / n_out; /* per neuron; a count is a word */
    if (max_words < 2 || n_in > (max_words - 2) / 2)
        return CG_NOMEM;
    size_t array_bytes = sizeof(cg_args) + per_neuron * sizeof(cg_node *);
    if (!cg__extra_fits(blk, n_out * array_bytes))
        return CG_FULL;
    unsigned char *arrays = cg__alloc_extra(blk, n_out * array_bytes);
    if (!arrays)
        return CG_NOMEM;
    cg_node *nodes = cg__alloc_nodes(blk, n_out * stride);
    if (!nodes)
        return CG_FULL;
    cg__close_if_over_budget(blk);
    for (size_t j = 0; j < n_out; j++) {
        cg_node *dot = &nodes[j * stride];
        cg_args *args = (cg_args *)(arrays + j * array_bytes);
        args->count = per_neuron;
        args->at[0] = cg__node(bs[j]);
        copy_args(args->at + 1, ws + j * n_in, n_in);
        copy_args(args->at + 1 + n_in, xs, n_in);
        dot->op = CG_DOT;
        dot->flags = CG_F_ARRAY | cg__leaf_args_flag(args->at, per_neuron);
        dot->nargs = CG_NARGS_ARRAY;
        dot->in.array = args;
        cg__fused_forward(dot);
        cg__type_data(dot);
        out[j * stride] = cg__ref(dot);
        if (relu) {
            cg_node *act = dot + 1;
            act->op = CG_RELU;
            act->nargs = 1;
            act->in.pair[0] = dot;
            cg__forward(act);
            out[j * stride + 1] = cg__ref(act);
        }
    }
    return cg__ref(nodes);
}

/* Bytes of the state of a softmax-like node over n operands, and of its
 * operand array (SIZE_MAX if that overflows). */
static size_t fused_bytes(size_t n, int with_gout)
{
    size_t args = cg__args_bytes(n);
    if (n > (SIZE_MAX - sizeof(cg_fused)) / (2 * sizeof(double)) || args == SIZE_MAX)
        return SIZE_MAX;
    size_t state = sizeof(cg_fused) + (with_gout ? 2 : 1) * n * sizeof(double);
    return args > SIZE_MAX - state ? SIZE_MAX : args + state;
}

/* State for a softmax-like node over n operands (gout only for groups). */
static cg_fused *new_fused(cg_block *blk, size_t n, int with_gout)
{
    if (n > SIZE_MAX / (2 * sizeof(double)))
        return NULL;
    cg_fused *f = cg__alloc_extra(blk, sizeof(cg_fused) + (with_gout ? 2 : 1) * n * sizeof(double));
    if (!f)
        return NULL;
    f->target = 0;
    f->epoch = 0;
    f->probs = (double *)(f + 1);
    f->gout = NULL;
    if (with_gout) {
        f->gout = f->probs + n;
        memset(f->gout, 0, n * sizeof(double));
    }
    return f;
}

cg_ref cg_softmax(cg_block *blk, const cg_ref *args, size_t n, int log, cg_ref *out)
{
    if (n == 0)
        return CG_EMPTY;
    if (!cg__extra_fits(blk, fused_bytes(n, 1)))
        return CG_FULL;
    cg_fused *f = new_fused(blk, n, 1);
    if (!f)
        return CG_NOMEM;
    int status;
    cg_node *group = new_nary(blk, log ? CG_LOG_SOFTMAX : CG_SOFTMAX, n, n, &status);
    if (!group)
        return (cg_ref)status;
    group->x.fused = f;
    copy_args(group->in.array->at, args, n);
    group->flags |= cg__leaf_args_flag(group->in.array->at, n);
    for (size_t i = 0; i < n; i++) {
        cg_node *pick = group + 1 + i;
        pick->op = CG_PICK;
        pick->flags = CG_F_DATA_FLOAT;
        pick->nargs = 1;
        pick->in.pair[0] = group;
        pick->x.index = i;
        out[i] = cg__ref(pick);
    }
    cg__fused_forward(group);
    cg__type_data(group);
    return cg__ref(group);
}

cg_ref cg_cross_entropy(cg_block *blk, const cg_ref *args, size_t n, size_t target)
{
    if (n == 0)
        return CG_EMPTY;
    if (target >= n)
        return CG_INDEX;
    if (!cg__extra_fits(blk, fused_bytes(n, 0)))
        return CG_FULL;
    cg_fused *f = new_fused(blk, n, 0);
    if (!f)
        return CG_NOMEM;
    int status;
    cg_node *node = new_nary(blk, CG_CROSS_ENTROPY, n, 0, &status);
    if (!node)
        return (cg_ref)status;
    f->target = target;
    node->x.fused = f;
    copy_args(node->in.array->at, args, n);
    node->flags |= cg__leaf_args_flag(node->in.array->at, n);
    cg__fused_forward(node);
    cg__type_data(node);
    return cg__ref(node);
}

void cg_gather_data(const cg_ref *nodes, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = cg__node(nodes[i])->data;
}

void cg_gather_grad(const cg_ref *nodes, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = cg__node(nodes[i])->grad;
}

void cg_scatter_data(const cg_ref *nodes, size_t n, const double *xs)
{
    for (size_t i = 0; i < n; i++) {
        cg__node(nodes[i])->data = xs[i];
        cg__node(nodes[i])->flags |= CG_F_DATA_FLOAT;
    }
}

void cg_scatter_grad(const cg_ref *nodes, size_t n, const double *xs)
{
    for (size_t i = 0; i < n; i++) {
        cg__node(nodes[i])->grad = xs[i];
        cg__node(nodes[i])->flags |= CG_F_GRAD_FLOAT;
    }
}

void cg_zero_grads(const cg_ref *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cg__node(nodes[i])->grad = 0.0;
        cg__node(nodes[i])->flags &= (uint8_t)~CG_F_GRAD_FLOAT;
    }
}
