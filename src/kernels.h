/* kernels.h - the backward kernel of every built-in op.
 *
 * Each kernel adds the local derivative times the node's grad to its
 * operands' grads, with the same float operations in the same order as
 * micrograd's closures (and cgrad.reference), so grads match bit for bit.
 *
 * A header, not a .c file: the sweep runs a kernel for every node it
 * reaches, and inlined into the sweep's loop a kernel costs a few
 * instructions instead of a call. */
#ifndef CGRAD_KERNELS_H
#define CGRAD_KERNELS_H

#include <math.h>

#include "node.h"

#if defined(__GNUC__) || defined(__clang__)
#define CG_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define CG_ALWAYS_INLINE static inline
#endif

/* Runs the backward kernel of the built-in node n. */
CG_ALWAYS_INLINE void cg__backward(cg_node *n)
{
    cg_node *a = n->in.pair[0], *b = n->in.pair[1];
    double g = n->grad;
    switch (n->op) {
    case CG_ADD:
        a->grad += g;
        b->grad += g;
        break;
    case CG_MUL:
        a->grad += b->data * g;
        b->grad += a->data * g;
        break;
    case CG_POW_CONST: {
        double p = n->x.exponent;
        if (p != 0.0) /* a ** 0 is constant; torch's rule, where 0 * pow(0, -1) would be nan */
            a->grad += (p * pow(a->data, p - 1.0)) * g;
        break;
    }
    case CG_POW:
        if (b->data != 0.0)
            a->grad += (b->data * pow(a->data, b->data - 1.0)) * g;
        /* d(a**b)/db = a**b * log(a); torch's convention: 0 where a == 0 and b >= 0 */
        if (!(a->data == 0.0 && b->data >= 0.0))
            b->grad += (n->data * log(a->data)) * g;
        break;
    case CG_EXP:
        a->grad += n->data * g;
        break;
    case CG_LOG:
        a->grad += g / a->data;
        break;
    case CG_TANH:
        a->grad += (1.0 - n->data * n->data) * g;
        break;
    case CG_RELU:
        a->grad += (double)(n->data > 0.0) * g;
        break;
    case CG_SIN:
        a->grad += cos(a->data) * g;
        break;
    case CG_COS:
        a->grad += -sin(a->data) * g;
        break;
    case CG_SIGMOID:
        a->grad += (n->data * (1.0 - n->data)) * g;
        break;
    case CG_LEAF:
    case CG_CUSTOM: /* leaves have nothing to do; custom nodes are Python's */
        break;
    default:
        cg__fused_backward(n);
        break;
    }
}

#endif
