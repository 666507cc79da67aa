/* ops.c - creating nodes of the unary and binary ops, and reading nodes.
 *
 * Every creator computes and checks its result before it allocates (the ops
 * that can fail with their forward kernels, forward.h), so a failed call
 * leaves no half-made node. */
#include "forward.h"

/* Fills in node n, just handed out (zeroed), as op(a, b) with the given
 * flags, and types its data (a leaf's type is in flags); b is NULL for a
 * unary op, and both for a leaf. A CG_POW_CONST's exponent is set before.
 * Returns n. */
static cg_node *fill(cg_node *n, int op, double data, cg_node *a, cg_node *b, uint8_t flags)
{
    n->data = data;
    n->op = (uint8_t)op;
    n->in.pair[0] = a;
    n->in.pair[1] = b;
    n->nargs = (uint8_t)((a != NULL) + (b != NULL));
    n->flags = (uint8_t)(flags | cg__leaf_args_flag(n->in.pair, n->nargs));
    cg__type_data(n);
    return n;
}

static cg_ref new_node(cg_block *blk, int op, double data, cg_node *a, cg_node *b)
{
    cg_node *n = cg__alloc_nodes(blk, 1);
    return n ? cg__ref(fill(n, op, data, a, b, 0)) : CG_FULL;
}

/* The flags of a leaf holding a Python int (c_is_int) or float. */
static uint8_t leaf_flags(int c_is_int)
{
    return c_is_int ? 0 : CG_F_DATA_FLOAT;
}

/* A constant leaf holding c and, right after it in the same block, the node
 * op(a, leaf): micrograd's graph for `a + 2` or `a * 2`. */
static cg_ref new_node_with_const(cg_block *blk, int op, double data, cg_node *a, double c,
                                  int c_is_int)
{
    cg_node *n = cg__alloc_nodes(blk, 2);
    if (!n)
        return CG_FULL;
    fill(&n[0], CG_LEAF, c, NULL, NULL, leaf_flags(c_is_int));
    return cg__ref(fill(&n[1], op, data, a, &n[0], 0));
}

/* n, just handed out, as a ** p. */
static cg_node *fill_pow(cg_node *n, double data, cg_node *a, double p, int p_is_int)
{
    n->x.exponent = p;
    return fill(n, CG_POW_CONST, data, a, NULL, p_is_int ? CG_F_EXP_INT : 0);
}

cg_ref cg_leaf(cg_block *blk, double x)
{
    cg_node *n = cg__alloc_nodes(blk, 1);
    return n ? cg__ref(fill(n, CG_LEAF, x, NULL, NULL, CG_F_DATA_FLOAT)) : CG_FULL;
}

int cg_leaves(cg_block *blk, const double *xs, size_t n, cg_ref *out)
{
    cg_node *nodes = cg__alloc_nodes(blk, n);
    if (!nodes)
        return CG_FULL;
    for (size_t i = 0; i < n; i++) {
        nodes[i].data = xs[i];
        nodes[i].flags = CG_F_DATA_FLOAT;
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

cg_ref cg_add_const(cg_block *blk, cg_ref a, double c, int c_is_int)
{
    cg_node *na = cg__node(a);
    return new_node_with_const(blk, CG_ADD, na->data + c, na, c, c_is_int);
}

cg_ref cg_mul_const(cg_block *blk, cg_ref a, double c, int c_is_int)
{
    cg_node *na = cg__node(a);
    return new_node_with_const(blk, CG_MUL, na->data * c, na, c, c_is_int);
}

cg_ref cg_pow_const(cg_block *blk, cg_ref a, double p, int p_is_int)
{
    cg_node *na = cg__node(a);
    double r;
    int status = cg__checked_pow(na->data, p, &r);
    if (status != CG_OK)
        return (cg_ref)status;
    cg_node *n = cg__alloc_nodes(blk, 1);
    return n ? cg__ref(fill_pow(n, r, na, p, p_is_int)) : CG_FULL;
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
    /* volatile: given the constant, GCC turns pow(x, -1.0) into 1.0 / x,
     * which can differ from libm's pow (Python's x ** -1) in the last bit */
    volatile double minus_one = -1.0;
    double inv;
    int status = cg__checked_pow(nb->data, minus_one, &inv);
    if (status != CG_OK)
        return (cg_ref)status;
    cg_node *n = cg__alloc_nodes(blk, 2);
    if (!n)
        return CG_FULL;
    fill_pow(&n[0], inv, nb, -1.0, 1); /* micrograd's other**-1: an int exponent */
    return cg__ref(fill(&n[1], CG_MUL, na->data * inv, na, &n[0], 0));
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
    node->flags = CG_F_DATA_FLOAT; /* an int's maker says so (cg_set_int_data) */
    node->nargs = array ? CG_NARGS_ARRAY : (uint8_t)n;
    if (array) {
        node->flags |= CG_F_ARRAY;
        node->in.array = array;
    }
    cg_node **dst = cg__args(node);
    for (size_t i = 0; i < n; i++)
        dst[i] = cg__node(args[i]);
    node->flags |= cg__leaf_args_flag(dst, n);
    cg__count_python_backward(n == 0); /* with none, visited as a leaf with one is (sweep.c) */
    node->nargs |= CG_N_PYTHON;
    return cg__ref(node);
}

double cg_data(cg_ref node) { return cg__node(node)->data; }
double cg_grad(cg_ref node) { return cg__node(node)->grad; }

double cg_float_data(cg_ref node)
{
    cg_node *n = cg__node(node);
    return (n->flags & CG_F_DATA_FLOAT) ? n->data : 0.0;
}

double cg_float_grad(cg_ref node)
{
    cg_node *n = cg__node(node);
    return (n->flags & CG_F_GRAD_FLOAT) ? n->grad : 0.0;
}

/* x as an int64, if it is an int (not is_float) that int64 holds exactly. */
static int64_t as_int64(double x, int is_float)
{
    return !is_float && fabs(x) < 0x1p63 ? (int64_t)x : INT64_MIN;
}

int64_t cg_int_data(cg_ref node)
{
    cg_node *n = cg__node(node);
    return as_int64(n->data, n->flags & CG_F_DATA_FLOAT);
}

int64_t cg_int_grad(cg_ref node)
{
    cg_node *n = cg__node(node);
    return as_int64(n->grad, n->flags & CG_F_GRAD_FLOAT);
}

void cg_set_data(cg_ref node, double x)
{
    cg_node *n = cg__node(node);
    n->data = x;
    n->flags |= CG_F_DATA_FLOAT;
}

void cg_set_grad(cg_ref node, double g)
{
    cg_node *n = cg__node(node);
    n->grad = g;
    n->flags |= CG_F_GRAD_FLOAT;
}

void cg_set_int_data(cg_ref node, double x)
{
    cg_node *n = cg__node(node);
    n->data = x;
    n->flags &= (uint8_t)~CG_F_DATA_FLOAT;
}

void cg_set_int_grad(cg_ref node, double g)
{
    cg_node *n = cg__node(node);
    n->grad = g;
    n->flags &= (uint8_t)~CG_F_GRAD_FLOAT;
}
int cg_reset_leaf(cg_ref node, double x)
{
    cg_node *n = cg__node(node);
    if (n->op == CG_PICK || n->op == CG_SOFTMAX || n->op == CG_LOG_SOFTMAX)
        return CG_SHARED;
    cg__lock(); /* a sweep or a replay may be reading this node's operands and flags */
    n->in.pair[0] = n->in.pair[1] = NULL; /* an operand array stays in the block, freed with it */
    n->x.callback = NULL;
    n->data = x;
    n->grad = 0.0;
    n->op = CG_LEAF;
    n->nargs = 0;
    n->flags = CG_F_DATA_FLOAT;
    cg__unlock();
    return CG_OK;
}

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

double cg_exponent(cg_ref node)
{
    cg_node *n = cg__node(node);
    return n->op == CG_POW_CONST ? n->x.exponent : 0.0;
}

int cg_exponent_is_int(cg_ref node)
{
    cg_node *n = cg__node(node);
    return n->op == CG_POW_CONST && (n->flags & CG_F_EXP_INT);
}
