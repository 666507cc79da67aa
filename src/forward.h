/* forward.h - the forward kernel of every built-in op: a node's data from
 * its operands' data.
 *
 * Creators (ops.c, fused.c) compute a new node's data with these, and a
 * replay (sweep.c) recomputes a graph's data with cg__forward, so both give
 * the same bits. Math errors follow Python's float operations: a kernel that
 * fails returns the status naming the exception Python raises for the same
 * operation (see enum cg_status) and writes nothing.
 *
 * A header of static inline functions, like kernels.h (the backward
 * kernels): the kernels depend on nothing but the node layout, and every
 * file that uses them sits on top of them, so no .c file calls back into a
 * creator's. */
#ifndef CGRAD_FORWARD_H
#define CGRAD_FORWARD_H

#include <math.h>
#include <string.h>

#include "node.h"

/* x ** p as Python's float.__pow__ does it, but a negative base with a
 * non-integer exponent is a domain error (Python would give a complex). */
static inline int cg__checked_pow(double x, double p, double *out)
{
    if (isinf(p)) { /* Python: 0.0 ** -inf is inf, not an error */
        *out = pow(x, p);
        return CG_OK;
    }
    if (x == 0.0 && p < 0.0)
        return CG_ZERODIV;
    if (x < 0.0 && isfinite(x) && isfinite(p) && p != floor(p))
        return CG_DOMAIN;
    double r = pow(x, p);
    if (isinf(r) && isfinite(x) && isfinite(p))
        return CG_RANGE;
    *out = r;
    return CG_OK;
}

/* The forward kernel of a unary op, with math.* error semantics; *out is
 * written only on success. */
static inline int cg__unary_forward(int op, double x, double *out)
{
    switch (op) {
    case CG_EXP: {
        double r = exp(x);
        if (isinf(r) && isfinite(x))
            return CG_RANGE;
        *out = r;
        return CG_OK;
    }
    case CG_LOG:
        if (x <= 0.0)
            return CG_DOMAIN;
        *out = log(x);
        return CG_OK;
    case CG_TANH:
        *out = tanh(x);
        return CG_OK;
    case CG_RELU:
        *out = x < 0.0 ? 0.0 : x;
        return CG_OK;
    case CG_SIN:
    case CG_COS:
        if (isinf(x))
            return CG_DOMAIN;
        *out = op == CG_SIN ? sin(x) : cos(x);
        return CG_OK;
    case CG_SIGMOID:
        /* Two branches so that exp never overflows. */
        if (x >= 0.0) {
            *out = 1.0 / (1.0 + exp(-x));
        } else {
            double e = exp(x);
            *out = e / (1.0 + e);
        }
        return CG_OK;
    default:
        return CG_DOMAIN;
    }
}

/* log(sum(exp(a_i))) with the maximum subtracted, so that large operands do
 * not overflow; probs (if not NULL) gets the softmax, exp(a_i - max) / sum,
 * from the same exponentials (one exp per operand). */
static inline double cg__logsumexp(cg_node **a, size_t n, double *probs)
{
    double m = a[0]->data;
    for (size_t i = 1; i < n; i++)
        if (a[i]->data > m)
            m = a[i]->data;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = exp(a[i]->data - m);
        if (probs)
            probs[i] = e;
        s += e;
    }
    if (probs)
        for (size_t i = 0; i < n; i++)
            probs[i] /= s;
    return isinf(m) ? m : m + log(s);
}

/* Computes the data (and state) of a fused node from its operands: a
 * softmax group also sets its outputs' data and clears its gout. */
static inline void cg__fused_forward(cg_node *n)
{
    cg_node **a = cg__args(n);
    size_t k = cg__nargs(n);
    double acc;
    switch (n->op) {
    case CG_SUM:
    case CG_MEAN:
        acc = a[0]->data;
        for (size_t i = 1; i < k; i++)
            acc += a[i]->data;
        n->data = n->op == CG_MEAN ? acc / (double)k : acc;
        break;
    case CG_DOT: {
        size_t m = (k - 1) / 2; /* operands: start, w[0..m-1], x[0..m-1] */
        acc = a[0]->data;
        for (size_t i = 0; i < m; i++)
            acc += a[1 + i]->data * a[1 + m + i]->data;
        n->data = acc;
        break;
    }
    case CG_LOGSUMEXP:
        n->data = cg__logsumexp(a, k, NULL);
        break;
    case CG_SOFTMAX:
    case CG_LOG_SOFTMAX: {
        n->data = cg__logsumexp(a, k, n->x.fused->probs);
        memset(n->x.fused->gout, 0, k * sizeof(double)); /* a replay starts clean */
        cg_node *pick = n + 1; /* the outputs follow their group */
        for (size_t i = 0; i < k; i++)
            pick[i].data = n->op == CG_SOFTMAX ? n->x.fused->probs[i] : a[i]->data - n->data;
        break;
    }
    case CG_PICK: /* computed by its group */
        break;
    case CG_CROSS_ENTROPY:
        n->data = cg__logsumexp(a, k, n->x.fused->probs) - a[n->x.fused->target]->data;
        break;
    default:
        break;
    }
}

/* CG_F_DATA_FLOAT if the data of the interior node n (computed already) is a
 * Python float, else 0: what Python gives for micrograd's expression on
 * operands of these types. int + int and int * int are ints, int ** int is
 * an int for an exponent >= 0, relu of a negative number is micrograd's
 * literal 0 (an int), and sum/dot of ints are ints; everything else (exp,
 * tanh, division, softmax, ...) is a float. A custom node's data type is
 * Python's, set by its maker. */
static inline uint8_t cg__data_float(cg_node *n)
{
    cg_node *a = n->in.pair[0], *b = n->in.pair[1];
    uint8_t any = 0;
    switch (n->op) {
    case CG_ADD:
    case CG_MUL:
        return (a->flags | b->flags) & CG_F_DATA_FLOAT;
    case CG_POW_CONST:
        if (!(n->flags & CG_F_EXP_INT) || n->x.exponent < 0.0)
            return CG_F_DATA_FLOAT;
        return a->flags & CG_F_DATA_FLOAT;
    case CG_POW:
        return b->data < 0.0 ? CG_F_DATA_FLOAT : (a->flags | b->flags) & CG_F_DATA_FLOAT;
    case CG_RELU:
        return a->data < 0.0 ? 0 : a->flags & CG_F_DATA_FLOAT;
    case CG_SUM:
    case CG_DOT: { /* a float as soon as one operand is (most often the first) */
        cg_node **args = cg__args(n);
        for (size_t i = 0, k = cg__nargs(n); i < k && !(any & CG_F_DATA_FLOAT); i++)
            any |= args[i]->flags;
        return any & CG_F_DATA_FLOAT;
    }
    case CG_LEAF:
    case CG_CUSTOM:
        return n->flags & CG_F_DATA_FLOAT;
    default:
        return CG_F_DATA_FLOAT;
    }
}

/* Sets the data type bit of the interior node n from its operands'. An int
 * has no negative zero: where double arithmetic gave one (0 * -2), the int
 * is 0, and later float ops on it must see +0.0, as Python's do. */
static inline void cg__type_data(cg_node *n)
{
    uint8_t type = cg__data_float(n);
    n->flags = (uint8_t)((n->flags & ~CG_F_DATA_FLOAT) | type);
    if (!type && n->data == 0.0)
        n->data = 0.0;
}

/* Recomputes an interior node's data from its operands: CG_OK or the status
 * its creation would give for these operands. */
static inline int cg__compute(cg_node *n)
{
    cg_node *a = n->in.pair[0], *b = n->in.pair[1];
    switch (n->op) {
    case CG_LEAF:
        return CG_OK;
    case CG_ADD:
        n->data = a->data + b->data;
        return CG_OK;
    case CG_MUL:
        n->data = a->data * b->data;
        return CG_OK;
    case CG_POW_CONST:
        return cg__checked_pow(a->data, n->x.exponent, &n->data);
    case CG_POW:
        return cg__checked_pow(a->data, b->data, &n->data);
    case CG_CUSTOM:
        return CG_NOREPLAY;
    default:
        if (n->op < CG_CUSTOM)
            return cg__unary_forward(n->op, a->data, &n->data);
        cg__fused_forward(n);
        return CG_OK;
    }
}

/* Recomputes an interior node's data (and its type) from its operands, for a
 * replay: CG_OK or the status its creation would give for these operands. */
static inline int cg__forward(cg_node *n)
{
    int status = cg__compute(n);
    if (status == CG_OK)
        cg__type_data(n);
    return status;
}

#endif
