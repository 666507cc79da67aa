/* kernels.h - the backward kernel of every built-in op (forward.h has the
 * forward ones).
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
#include <string.h>

#include "node.h"

#if defined(__GNUC__) || defined(__clang__)
#define CG_ALWAYS_INLINE static inline __attribute__((always_inline))
#define CG_OUT_OF_LINE static __attribute__((noinline, unused)) /* unused: not every includer calls it */
#else
#define CG_ALWAYS_INLINE static inline
#define CG_OUT_OF_LINE static
#endif

/* The buffer of softmax group n (engine lock held), where its outputs'
 * kernels push their grads for its own kernel to use and clear. Emptied
 * first if what it holds was pushed in an earlier backward: one abandoned
 * between an output's kernel and the group's (a Python backward raised
 * there) must leave nothing that a later one adds to the operands' grads. */
static inline double *cg__gout(cg_node *n)
{
    cg_fused *f = n->x.fused;
    if (f->epoch != cg__backward_epoch) {
        memset(f->gout, 0, n->in.array->count * sizeof(double));
        f->epoch = cg__backward_epoch;
    }
    return f->gout;
}

/* The backward kernel of a fused node (the n-ary ops of fused.c). Out of
 * line, as when it lived in fused.c: inlined, its loops would grow the
 * sweep's loop, which every node goes through and which is measured as it
 * is. */
CG_OUT_OF_LINE void cg__fused_backward(cg_node *n)
{
    cg_node **a = cg__args(n);
    size_t k = cg__nargs(n);
    double g = n->grad;
    uint8_t t = n->flags & CG_F_GRAD_FLOAT; /* g's type: sums of ints stay ints */
    switch (n->op) {
    case CG_SUM:
        for (size_t i = 0; i < k; i++) {
            a[i]->grad += g;
            a[i]->flags |= t;
        }
        break;
    case CG_MEAN: {
        double share = g / (double)k;
        for (size_t i = 0; i < k; i++) {
            a[i]->grad += share;
            a[i]->flags |= CG_F_GRAD_FLOAT;
        }
        break;
    }
    case CG_DOT: {
        size_t m = (k - 1) / 2;
        a[0]->grad += g;
        a[0]->flags |= t;
        for (size_t i = 0; i < m; i++) {
            cg_node *w = a[1 + i], *x = a[1 + m + i];
            w->grad += x->data * g;
            x->grad += w->data * g;
            w->flags |= cg__product_grad_type(t, x);
            x->flags |= cg__product_grad_type(t, w);
        }
        break;
    }
    case CG_LOGSUMEXP:
        for (size_t i = 0; i < k; i++) {
            a[i]->grad += exp(a[i]->data - n->data) * g;
            a[i]->flags |= CG_F_GRAD_FLOAT;
        }
        break;
    case CG_PICK:
        cg__gout(a[0])[n->x.index] += g;
        break;
    case CG_SOFTMAX: { /* torch's form: p_i * (g_i - sum_j g_j p_j) */
        double *p = n->x.fused->probs, *gout = cg__gout(n);
        double dot = 0.0;
        for (size_t i = 0; i < k; i++)
            dot += gout[i] * p[i];
        for (size_t i = 0; i < k; i++) {
            a[i]->grad += p[i] * (gout[i] - dot);
            a[i]->flags |= CG_F_GRAD_FLOAT;
            gout[i] = 0.0;
        }
        break;
    }
    case CG_LOG_SOFTMAX: { /* torch's form: g_i - exp(out_i) * sum_j g_j */
        double *p = n->x.fused->probs, *gout = cg__gout(n);
        double total = 0.0;
        for (size_t i = 0; i < k; i++)
            total += gout[i];
        for (size_t i = 0; i < k; i++) {
            a[i]->grad += gout[i] - p[i] * total;
            a[i]->flags |= CG_F_GRAD_FLOAT;
            gout[i] = 0.0;
        }
        break;
    }
    case CG_CROSS_ENTROPY: { /* log_softmax's backward with gout = -g at target */
        double *p = n->x.fused->probs, s = -g;
        size_t target = n->x.fused->target;
        for (size_t i = 0; i < k; i++) {
            a[i]->grad += (i == target ? s : 0.0) - p[i] * s;
            a[i]->flags |= CG_F_GRAD_FLOAT;
        }
        break;
    }
    default:
        break;
    }
}

/* Runs the backward kernel of the built-in node n. Each also keeps the
 * operands' grad types as Python would (node.h): a grad becomes a float once
 * a float is added to it, and what is added is a float when g is, or when an
 * operand's data it is multiplied by is, or when the op's derivative is
 * (exp, tanh, ...). */
CG_ALWAYS_INLINE void cg__backward(cg_node *n)
{
    cg_node *a = n->in.pair[0], *b = n->in.pair[1];
    double g = n->grad;
    uint8_t t = n->flags & CG_F_GRAD_FLOAT;
    switch (n->op) {
    case CG_ADD:
        a->grad += g;
        b->grad += g;
        a->flags |= t;
        b->flags |= t;
        break;
    case CG_MUL:
        a->grad += b->data * g;
        b->grad += a->data * g;
        a->flags |= cg__product_grad_type(t, b);
        b->flags |= cg__product_grad_type(t, a);
        break;
    case CG_POW_CONST: {
        /* micrograd's (other * self.data**(other-1)) * out.grad, with IEEE's
         * inf or nan where Python's float ** raises (0.0 ** -1: inf), so that
         * nan ** 0 gives its nan (0 * nan ** -1) and inf ** 0 its 0; but a ** 0
         * at a == 0, where micrograd raises, is constant (torch's rule), not
         * 0 * inf = nan */
        double p = n->x.exponent;
        if (p != 0.0 || a->data != 0.0)
            a->grad += (p * pow(a->data, p - 1.0)) * g;
        /* micrograd's p * a**(p - 1) is an int for int a and int p >= 1 */
        if ((n->flags & CG_F_EXP_INT) && p >= 1.0)
            a->flags |= t | cg__float_grad_if_data_float(a);
        else
            a->flags |= CG_F_GRAD_FLOAT;
        break;
    }
    case CG_POW: /* as CG_POW_CONST for a, with b's data as p */
        if (b->data != 0.0 || a->data != 0.0) {
            a->grad += (b->data * pow(a->data, b->data - 1.0)) * g;
            a->flags |= CG_F_GRAD_FLOAT;
        }
        /* d(a**b)/db = a**b * log(a); torch's convention: 0 where a == 0 and b >= 0 */
        if (!(a->data == 0.0 && b->data >= 0.0)) {
            b->grad += (n->data * log(a->data)) * g;
            b->flags |= CG_F_GRAD_FLOAT;
        }
        break;
    case CG_EXP:
        a->grad += n->data * g;
        a->flags |= CG_F_GRAD_FLOAT;
        break;
    case CG_LOG:
        a->grad += g / a->data;
        a->flags |= CG_F_GRAD_FLOAT;
        break;
    case CG_TANH:
        a->grad += (1.0 - n->data * n->data) * g;
        a->flags |= CG_F_GRAD_FLOAT;
        break;
    case CG_RELU: /* micrograd: (out.data > 0) * out.grad, a bool times g */
        a->grad += (double)(n->data > 0.0) * g;
        a->flags |= t;
        break;
    case CG_SIN:
        a->grad += cos(a->data) * g;
        a->flags |= CG_F_GRAD_FLOAT;
        break;
    case CG_COS:
        a->grad += -sin(a->data) * g;
        a->flags |= CG_F_GRAD_FLOAT;
        break;
    case CG_SIGMOID:
        a->grad += (n->data * (1.0 - n->data)) * g;
        a->flags |= CG_F_GRAD_FLOAT;
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
