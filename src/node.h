/* node.h - private to the C core: the node and block layouts.
 * Python never sees these; it holds nodes as cg_ref addresses. */
#ifndef CGRAD_NODE_H
#define CGRAD_NODE_H

#include <stdatomic.h>
#include <stdint.h>

#include "cgrad.h"

typedef struct cg_node cg_node;

/* State shared by the nodes of a fused softmax-like op. */
typedef struct {
    size_t target;              /* CG_CROSS_ENTROPY */
    double *probs;              /* softmax of the operands, from the forward */
    double *gout;               /* grads pushed by CG_PICK outputs, summed by the group */
} cg_fused;

/* 48 bytes. Operands of nodes with at most two of them sit inline; nodes
 * with more (custom and fused ops) point to an array in the block's extras. */
struct cg_node {
    double data;
    double grad;
    union {
        cg_node *pair[2];
        cg_node **array;        /* when flags & CG_F_ARRAY */
    } in;
    union {
        double exponent;        /* CG_POW_CONST */
        void *callback;         /* CG_CUSTOM: handed back to Python by the sweep */
        cg_fused *fused;        /* softmax groups, cross-entropy: shared state */
        size_t index;           /* CG_PICK: which output of its group */
    } x;
    uint32_t nargs;
    uint8_t op;                 /* enum cg_op */
    uint8_t flags;              /* CG_F_* bits, fixed at creation */
    uint8_t mark;               /* set only by a sweep, under the engine lock; never by a maker */
};

enum {
    CG_F_ARRAY = 1,             /* operands in in.array */
    CG_F_LEAF_ARGS = 2,         /* every operand is a leaf: ordering need not look at them */
};

/* A side allocation (operand arrays, fused-op state), freed with its block. */
typedef struct cg_extra {
    struct cg_extra *next;
    size_t bytes;
    _Alignas(max_align_t) unsigned char data[];
} cg_extra;

struct cg_block {
    atomic_size_t used;         /* nodes handed out; may pass capacity once full or sealed */
    size_t capacity;            /* nodes the block holds */
    _Atomic(cg_extra *) extras; /* lock-free stack of side allocations */
    cg_block *prev, *next;      /* the list of live blocks, oldest first (engine lock) */
    cg_node nodes[];            /* zeroed at creation; unused ones stay zero */
};

static inline cg_node *cg__node(cg_ref ref) { return (cg_node *)ref; }
static inline cg_ref cg__ref(cg_node *n) { return (cg_ref)n; }

static inline cg_node **cg__args(cg_node *n)
{
    return (n->flags & CG_F_ARRAY) ? n->in.array : n->in.pair;
}

/* CG_F_LEAF_ARGS if all n operands are leaves, else 0. */
static inline uint8_t cg__leaf_args_flag(cg_node *const *args, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (args[i]->nargs)
            return 0;
    return CG_F_LEAF_ARGS;
}

/* The engine lock (arena.c): held to change the block list and to sweep. */
void cg__lock(void);
void cg__unlock(void);

/* The newest block, or NULL; call with the engine lock held. */
cg_block *cg__newest_block(void);

/* count consecutive zeroed nodes from blk, or NULL if it has no room (it is
 * full, or sealed because a newer block exists). */
cg_node *cg__alloc_nodes(cg_block *blk, size_t count);

/* bytes of uninitialised memory owned by blk, or NULL if out of memory. */
void *cg__alloc_extra(cg_block *blk, size_t bytes);

/* The backward kernel of one built-in node (kernels.c). */
void cg__backward(cg_node *n);

/* The backward kernel of a fused node (fused.c). */
void cg__fused_backward(cg_node *n);

/* Recomputes the data (and state) of a fused node from its operands (fused.c). */
void cg__fused_forward(cg_node *n);

/* Recomputes an interior node's data from its operands (ops.c): CG_OK or the
 * status its creation would give for these operands. */
int cg__forward(cg_node *n);

#endif
