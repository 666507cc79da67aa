/* node.h - private to the C core: the node and block layouts.
 * Python never sees these; it holds nodes as cg_ref addresses. */
#ifndef CGRAD_NODE_H
#define CGRAD_NODE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cgrad.h"

typedef struct cg_node cg_node;

/* State shared by the nodes of a fused softmax-like op. */
typedef struct {
    size_t target;              /* CG_CROSS_ENTROPY */
    double *probs;              /* softmax of the operands, from the forward */
    double *gout;               /* grads pushed by CG_PICK outputs, summed by the group */
    size_t epoch;               /* the backward whose pushes gout holds (kernels.h's cg__gout) */
} cg_fused;

/* The operands of a node with more than two (custom and fused ops), in its
 * block's extras. */
typedef struct {
    size_t count;
    cg_node *at[];
} cg_args;

/* 48 bytes. Operands of nodes with at most two of them sit inline; nodes
 * with more point to a cg_args. */
struct cg_node {
    double data;
    double grad;
    union {
        cg_node *pair[2];       /* in order; NULL where there is none (a unary
                                 * op's pair[1]: nodes are zeroed when handed out) */
        cg_args *array;         /* when flags & CG_F_ARRAY */
    } in;
    union {
        double exponent;        /* CG_POW_CONST */
        void *callback;         /* a Python backward (CG_N_PYTHON) of a node whose op uses
                                 * no other field here; else in its block's hooks */
        cg_fused *fused;        /* softmax groups, cross-entropy: shared state */
        size_t index;           /* CG_PICK: which output of its group */
    } x;
    uint32_t slot;              /* its place in its block, which cg__block_of finds from it */
    uint8_t op;                 /* enum cg_op */
    uint8_t flags;              /* CG_F_* bits */
    uint8_t mark;               /* set only by a sweep, under the engine lock; never by a maker */
    uint8_t nargs;              /* CG_N_COUNT: operands inline (0 to 2), or CG_NARGS_ARRAY;
                                 * and CG_N_PYTHON */
};
_Static_assert(sizeof(void *) != 8 || sizeof(cg_node) == 48, "a node is 48 bytes on 64-bit platforms");

/* The nargs byte: the operand count, and whether the node's backward is
 * Python's. The byte is nonzero exactly for the nodes a walk visits:
 * interior nodes, and leaves given a Python backward (sweep.c). */
enum {
    CG_NARGS_ARRAY = 3,         /* the count of a node whose operands are a cg_args */
    CG_N_COUNT = 3,             /* the bits of the count */
    /* its backward is Python's: custom nodes, and nodes given one (sweep.c's
     * cg_set_callback, under the engine lock); the sweep hands it back. Not
     * in flags, which setters write without a lock (below): a setter's
     * read-modify-write of that byte racing cg_set_callback could drop it,
     * and the node's Python backward with it. */
    CG_N_PYTHON = 4,
};

enum {
    CG_F_ARRAY = 1,             /* operands in in.array */
    CG_F_LEAF_ARGS = 2,         /* every operand is a leaf: ordering need not look at them */
    CG_F_EXP_INT = 4,           /* CG_POW_CONST: the exponent is a Python int */
    /* Python's number types, as micrograd holds them: whether data and grad
     * are floats (else ints). Creators and replay set the data's from the
     * operands' (forward.h), kernels make an operand's grad a float once a
     * float is added to it (kernels.h), and setters (cg_set_data,
     * cg_zero_grads, ...) write them without a lock. Unlike the bits above,
     * these change after creation; writes of them never change the others,
     * which no one changes after creation. */
    CG_F_DATA_FLOAT = 8,
    CG_F_GRAD_FLOAT = 16,
};

_Static_assert(CG_F_DATA_FLOAT << 1 == CG_F_GRAD_FLOAT, "a data bit shifted is the grad bit");

/* CG_F_GRAD_FLOAT if n's data is a float, else 0: what a kernel adds to a
 * grad when it multiplies by n's data. */
static inline uint8_t cg__float_grad_if_data_float(const cg_node *n)
{
    return (uint8_t)((n->flags & CG_F_DATA_FLOAT) << 1);
}

/* The grad type g * other.data adds to an operand, g's type being t: a
 * float g gives a float (with no need to read other's type), else other's
 * data type decides. */
static inline uint8_t cg__product_grad_type(uint8_t t, const cg_node *other)
{
    return t ? t : cg__float_grad_if_data_float(other);
}

/* The Python backwards of a block's nodes whose x is taken (a power's
 * exponent, a fused node's state, a pick's index): an open-addressing hash
 * table keyed by slot, with linear probing (sweep.c), so that finding one
 * costs the same however many a block has (every output of a big softmax
 * may have one). Entries are never removed (a detached hook is a NULL
 * callback). Malloc'd, freed with its block; read and written under the
 * engine lock. */
typedef struct {
    uint32_t key;               /* the node's slot + 1; 0: an empty entry */
    void *callback;
} cg_hook;

typedef struct {
    size_t count;               /* entries in use */
    unsigned bits;              /* the table has 2**bits entries */
    cg_hook at[];
} cg_hooks;

/* A chunk of side allocations (operand arrays, fused-op state), handed out
 * by bumping used; freed with its block (arena.c). */
typedef struct cg_extra {
    struct cg_extra *next;
    size_t bytes;               /* capacity of data */
    atomic_size_t used;         /* bytes handed out; may pass bytes once full */
    _Alignas(max_align_t) unsigned char data[];
} cg_extra;

struct cg_block {
    atomic_size_t used;         /* nodes handed out; may pass capacity once full or sealed */
    size_t capacity;            /* nodes the block holds, at most CG_BLOCK_MAX_NODES */
    size_t sealed_used;         /* used when it was sealed; SIZE_MAX before (engine lock) */
    size_t marked;              /* marked nodes in it, during a sweep (engine lock); else 0 */
    _Atomic(cg_extra *) extras; /* lock-free stack of side-allocation chunks, newest first */
    atomic_size_t extra_bytes;  /* bytes of side allocations asked for */
    cg_hooks *hooks;            /* Python backwards of nodes whose x is taken, or NULL (engine lock) */
    size_t extra_budget;        /* extras it takes before it refuses (CG_FULL): its nodes' bytes */
    cg_block *prev, *next;      /* the list of live blocks, oldest first (engine lock) */
    cg_node nodes[];            /* zeroed at creation; unused ones stay zero */
};

static inline cg_node *cg__node(cg_ref ref) { return (cg_node *)ref; }
static inline cg_ref cg__ref(cg_node *n) { return (cg_ref)n; }

/* A node's slot is 32 bits. */
#define CG_BLOCK_MAX_NODES ((size_t)UINT32_MAX)

static inline cg_node **cg__args(cg_node *n)
{
    return (n->flags & CG_F_ARRAY) ? n->in.array->at : n->in.pair;
}

/* The count in n's nargs byte: 0 to 2, or CG_NARGS_ARRAY. */
static inline unsigned cg__nargs_inline(const cg_node *n)
{
    return n->nargs & CG_N_COUNT;
}

static inline size_t cg__nargs(const cg_node *n)
{
    return (n->flags & CG_F_ARRAY) ? n->in.array->count : cg__nargs_inline(n);
}

/* The block n lives in: nodes are handed out once and never move, so a node
 * finds its block from its own place in it, with no lookup. */
static inline cg_block *cg__block_of(cg_node *n)
{
    return (cg_block *)((char *)(n - n->slot) - offsetof(cg_block, nodes));
}

/* CG_F_LEAF_ARGS if all n operands are leaves, else 0. */
static inline uint8_t cg__leaf_args_flag(cg_node *const *args, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cg__nargs_inline(args[i])) /* nonzero for every interior node */
            return 0;
    return CG_F_LEAF_ARGS;
}

/* Counts backwards (sweep.c), under the engine lock: a walk that runs
 * kernels, or a kept sweep's pass from the start, begins a new one. */
extern size_t cg__backward_epoch;

/* The engine lock (lock.c): held to change the block list, by every sweep's
 * walk, and around every run of kernels (backward and replay), so that
 * threads sharing nodes never write a grad or a datum at the same time.
 * Holders never call out of C. cg__lock_init registers its fork handlers
 * (once; cg_block_new calls it). */
void cg__lock(void);
void cg__unlock(void);
void cg__lock_init(void);

/* Counts a node given a Python backward (a custom node, a hook), with no
 * operands if leaf (arena.c). Whether there has been one in this process:
 * any (backward then takes the caller's lock), and one with no operands (the
 * sweep then visits such nodes among operands too). */
void cg__count_python_backward(int leaf);
int cg__python_backwards(void);
int cg__hooked_leaves(void);

/* The newest block, or NULL; call with the engine lock held. */
cg_block *cg__newest_block(void);

/* count consecutive zeroed nodes from blk, or NULL if it has no room (it is
 * full, or sealed because a newer block exists). */
cg_node *cg__alloc_nodes(cg_block *blk, size_t count);

/* Whether blk takes `bytes` more of side allocations within its budget (a
 * fresh block takes any). Creators ask before allocating, and answer CG_FULL
 * if not. */
int cg__extra_fits(cg_block *blk, size_t bytes);

/* Seals blk if its side allocations passed its budget: creators call it once
 * their nodes are made, so that nothing else shares an overfilled block. */
void cg__close_if_over_budget(cg_block *blk);

/* bytes of uninitialised memory owned by blk, or NULL if out of memory. */
void *cg__alloc_extra(cg_block *blk, size_t bytes);

/* Bytes of a cg_args of count operands (SIZE_MAX if that overflows). */
static inline size_t cg__args_bytes(size_t count)
{
    if (count > (SIZE_MAX - sizeof(cg_args)) / sizeof(cg_node *))
        return SIZE_MAX;
    return sizeof(cg_args) + count * sizeof(cg_node *);
}

/* An operand array for count (> 2) operands, owned by blk, or NULL if out of
 * memory; the caller fills in ->at. */
cg_args *cg__alloc_args(cg_block *blk, size_t count);

#endif
