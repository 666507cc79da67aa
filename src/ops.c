/* ops.c - creating nodes of the unary and binary ops, and reading nodes.
 *
 * Every creator computes and checks its result before it allocates (the ops
 * that can fail with their forward kernels, forward.h), so a failed call
 * leaves no half-made node. */
#include "forward.h"

/* Fills in node n, just handed out (zeroed), as op(a, b); b is NULL for a
 * unary op, and both for a leaf. Returns n. */
static cg_node *fill(cg_node *n, int op, double data, cg_node *a, cg_node *b)
{
    n->data = data;
    n->op = (uint8_t)op;
    n->in.pair[0] = a;
    n->in.pair[1] = b;
    n->nargs = (uint8_t)((a != NULL) + (b != NULL));
    n->flags = cg__leaf_args_flag(n->in.pair, n->nargs);
    return n;
}

static cg_ref new_node(cg_block *blk, int op, double data, cg_node *a, cg_node *b)
{
    cg_node *n = cg__alloc_nodes(blk, 1);
    return n ? cg__ref(fill(n, op, data, a, b)) : CG_FULL;
}

/* A constant leaf holding c and, right after it in the same block, the node
 * op(a, leaf): micrograd's graph for `a + 2` or `a * 2`. */
static cg_ref new_node_with_const(cg_block *blk, int op, double data, cg_node *a, double c)
{
    cg_node *n = cg__alloc_nodes(blk, 2);
    if (!n)
        return CG_FULL;
    fill(&n[0], CG_LEAF, c, NULL, NULL);
    return cg__ref(fill(&n[1], op, data, a, &n[0]));
}

cg_ref cg_leaf(cg_block *blk, double x)
{
    return new_node(blk, CG_LEAF, x, NULL, NULL);
}

int cg_leaves(cg_block *blk, const double *xs, size_t n, cg_ref *out)
{
    cg_node *nodes = cg__alloc_nodes(blk, n);
    if (!nodes)
        return CG_FULL;
    for (size_t i = 0; i < n; i++) {
        nodes[i].data = xs[i];
        out[i] = cg__ref(&nodes[i]);
    }
    return CG_OK;
}

cg_ref cg_add(cg_block *blk, cg_ref a, cg_ref b)
{
    cg_node *na = cg__node(a), *nb = cg__node(b);
    return new_node(blk, CG_ADD, na->data + nb->data, na, nb);
}

cg_ref cg_mul(cg_block *blk, cg_ref a, cg_ref b)
{
    cg_node *na = cg__node(a), *nb = cg__node(b);
    return new_node(blk, CG_MUL, na->data * nb->data, na, nb);
}

cg_ref cg_add_const(cg_block *blk, cg_ref a, double c)
{
    cg_node *na = cg__node(a);
    return new_node_with_const(blk, CG_ADD, na->data + c, na, c);
}

cg_ref cg_mul_const(cg_block *blk, cg_ref a, double c)
{
    cg_node *na = cg__node(a);
    return new_node_with_const(blk, CG_MUL, na->data * c, na, c);
}

cg_ref cg_pow_const(cg_block *blk, cg_ref a, double p)
{
    cg_node *na = cg__node(a);
    double r;
    int status = cg__checked_pow(na->data, p, &r);
    if (status != CG_OK)
        return (cg_ref)status;
    cg_ref ref = new_node(blk, CG_POW_CONST, r, na, NULL);
    if (ref >= CG_REF_MIN)
        cg__node(ref)->x.exponent = p;
    return ref;
}

cg_ref cg_pow(cg_block *blk, cg_ref a, cg_ref b)
{
    cg_node *na = cg__node(a), *nb = cg__node(b);
    double r;
    int status = cg__checked_pow(na->data, nb->data, &r);
    if (status != CG_OK)
        return (cg_ref)status;
    return new_node(blk, CG_POW, r, na, nb);
}

cg_ref cg_div(cg_block *blk, cg_ref a, cg_ref b)
{
    cg_node *na = cg__node(a), *nb = cg__node(b);
    double inv;
    int status = cg__checked_pow(nb->data, -1.0, &inv);
    if (status != CG_OK)
        return (cg_ref)status;
    cg_node *n = cg__alloc_nodes(blk, 2);
    if (!n)
        return CG_FULL;
    fill(&n[0], CG_POW_CONST, inv, nb, NULL)->x.exponent = -1.0;
    return cg__ref(fill(&n[1], CG_MUL, na->data * inv, na, &n[0]));
}

cg_ref cg_unary(cg_block *blk, int op, cg_ref a)
{
    cg_node *na = cg__node(a);
    double r;
    int status = cg__unary_forward(op, na->data, &r);
    if (status != CG_OK)
        return (cg_ref)status;
    return new_node(blk, op, r, na, NULL);
}

cg_ref cg_custom(cg_block *blk, double data, const cg_ref *args, size_t n)
{
    cg_args *array = NULL;
    if (n > 2) {
        if (!cg__extra_fits(blk, cg__args_bytes(n)))
            return CG_FULL;
        array = cg__alloc_args(blk, n);
        if (!array)
            return CG_NOMEM;
    }
    cg_node *node = cg__alloc_nodes(blk, 1);
    if (!node)
        return CG_FULL; /* the array, if any, is freed with blk */
    cg__close_if_over_budget(blk);
    node->data = data;
    node->op = CG_CUSTOM;
    node->nargs = array ? CG_NARGS_ARRAY : (uint8_t)n;
    if (array) {
        node->flags = CG_F_ARRAY;
        node->in.array = array;
    }
    cg_node **dst = cg__args(node);
    for (size_t i = 0; i < n; i++)
        dst[i] = cg__node(args[i]);
    node->flags |= cg__leaf_args_flag(dst, n);
    return cg__ref(node);
}

void cg_set_callback(cg_ref node, void *callback)
{
    cg__node(node)->x.callback = callback;
}

double cg_data(cg_ref node) { return cg__node(node)->data; }
double cg_grad(cg_ref node) { return cg__node(node)->grad; }
void cg_set_data(cg_ref node, double x) { cg__node(node)->data = x; }
void cg_set_grad(cg_ref node, double g) { cg__node(node)->grad = g; }
int cg_op(cg_ref node) { return cg__node(node)->op; }
size_t cg_nargs(cg_ref node) { return cg__nargs(cg__node(node)); }

cg_ref cg_arg(cg_ref node, size_t i)
{
    cg_node *n = cg__node(node);
    return i < cg__nargs(n) ? cg__ref(cg__args(n)[i]) : (cg_ref)CG_INDEX;
}


size_t cg_index(cg_ref node)
{
    cg_node *n = cg__node(node);
    return n->op == CG_CROSS_ENTROPY ? n->x.fused->target : n->x.index;
}
