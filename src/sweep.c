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
 * grads change. Each block counts the marked nodes in it, so blocks with none
 * are passed over, and unmarked nodes (another graph's, or dead ends such as
 * the softmax outputs a loss does not use) cost a read of their mark byte
 * only in a block that still holds a marked node. A maker never writes the
 * mark (blocks are zeroed when made), so reading it while another thread
 * fills in that node is safe.
 *
 * Marks are shared state, and the walk reads blocks that another thread
 * could free, so a sweep holds the engine lock (lock.c) from start to end.
 * Sweeps take turns; a sweep never calls out (a node whose backward is
 * Python's stops the kernels, and the rest is handed back as an order). The
 * kernels of that order, and replay's forward kernels, run under the same
 * lock, between the caller's Python backwards: two threads never write one
 * grad at the same time. */
#include <stdlib.h>

#include "forward.h"
#include "kernels.h"

struct cg_sweep {
    cg_node **order; /* interior nodes, newest first */
    size_t size;
    int kept;        /* made by cg_sweep_begin: each pass runs the whole order */
    size_t epoch;    /* the rest of a backward: that backward's (cg__backward_epoch) */
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

/* The newest node blk handed out (engine lock held; blk has one). */
static cg_node *last_node(cg_block *blk)
{
    size_t used = atomic_load_explicit(&blk->used, memory_order_acquire);
    if (used > blk->sealed_used) /* a sealed block: not the nodes it never handed out */
        used = blk->sealed_used;
    return &blk->nodes[(used < blk->capacity ? used : blk->capacity) - 1];
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_FOR_WRITE(p) __builtin_prefetch((p), 1)
#define PREFETCH_FOR_READ(p) __builtin_prefetch((p), 0)
#else
#define PREFETCH_FOR_WRITE(p) ((void)(p))
#define PREFETCH_FOR_READ(p) ((void)(p))
#endif

/* How far ahead of the walk, in nodes, its own nodes are prefetched: the
 * hardware follows a backward stream too, but later (measured on the seed's
 * softmax-NLL; 16 and 32 nodes do less). */
enum { WALK_AHEAD = 64 };

/* Cache lines of a newly marked node's operand array prefetched at once: its
 * kernel reads all of them, and a 16-wide layer's dots have 33 operands (272
 * bytes). With the first line only, the moons demo's backward ran 3% slower
 * once the arrays were carved from chunks (arena.c), where they had been
 * malloc'd one layer at a time (in-process A/B on CPython, heap shifted six
 * ways; with all five lines, 0.99 to 1.02x). Longer arrays are read in order,
 * which the hardware follows. */
enum { ARRAY_PREFETCH_LINES = 5 };

/* Whether the walk visits a: interior nodes, and leaves whose backward is
 * Python's (node.h: the nodes whose nargs byte is nonzero). */
static inline int visited(const cg_node *a)
{
    return a->nargs != 0;
}

/* The backward whose kernels run now (engine lock held), for softmax groups
 * to tell their pushes from an older one's (kernels.h), and the last one
 * handed out: each backward gets a new one, and the rest of a backward
 * (cg_sweep_backward) takes its own back, so that a backward run in the
 * middle of another (by a Python backward, a finalizer, a signal handler)
 * does not make the other's pushes look old. */
size_t cg__backward_epoch;
static size_t last_epoch;

/* Marks operand a of the node the walk is at, if it is visited and not
 * marked yet, adding it to *pending: to *here, the walk's count for its
 * block, if a lies in that block below the node ([start, start + span)),
 * else to a's own block's count.
 *
 * A newly marked operand's kernel will write its own operands' grads, so
 * they are prefetched now: on a graph that no longer fits in the cache the
 * walk otherwise waits for each of them (its own nodes come in order, and
 * are prefetched by WALK_AHEAD); of an n-ary one, its operand array
 * (ARRAY_PREFETCH_LINES). A prefetch never faults, so the null second operand
 * of a unary node, or lines past a short array's end, are harmless. */
static inline void mark(cg_node *a, uintptr_t start, uintptr_t span, size_t *pending, size_t *here)
{
    if (visited(a) && !a->mark) {
        a->mark = 1;
        if (a->flags & CG_F_ARRAY) {
            const char *array = (const char *)a->in.array;
            for (int line = 0; line < ARRAY_PREFETCH_LINES; line++)
                PREFETCH_FOR_READ(array + 64 * line);
        } else {
            PREFETCH_FOR_WRITE(a->in.pair[0]);
            PREFETCH_FOR_WRITE(a->in.pair[1]);
        }
        ++*pending;
        if ((uintptr_t)a - start < span)
            ++*here;
        else
            cg__block_of(a)->marked++;
    }
}

/* Marks the operands of n, which lies in the block whose first node is
 * first. Inline operands get no loop: they are most nodes' operands, and the
 * walk's cost is in what it does per node (a second operand is told by its
 * pointer, loaded anyway, not by the nargs byte: 4% of the seed's backward
 * in tools/ab.py). Always inlined: GCC's heuristics
 * made it a call after small changes to the walk (a third more instructions
 * per node). */
CG_ALWAYS_INLINE void mark_operands(cg_node *n, cg_node *first, size_t *pending, size_t *here)
{
    uintptr_t start = (uintptr_t)first, span = (uintptr_t)n - start;
    if (!(n->flags & CG_F_ARRAY)) {
        mark(n->in.pair[0], start, span, pending, here);
        if (n->in.pair[1])
            mark(n->in.pair[1], start, span, pending, here);
        return;
    }
    cg_args *args = n->in.array;
    for (size_t i = 0, k = args->count; i < k; i++)
        mark(args->at[i], start, span, pending, here);
}

/* The walk, engine lock held. With run set, runs the kernel of each reachable
 * interior node, newest first, until a node whose backward is Python's; from
 * there (or from the start, without run) appends the nodes to sw->order
 * instead. Blocks count their marked nodes, so the walk leaves a block as
 * soon as none is left in it, and passes blocks with none without reading
 * their nodes: dead ends (the softmax outputs a loss does not use) cost
 * little. (The count of the block being walked is kept in a local: one
 * counter in memory that every node updates would be a chain of dependent
 * writes.) Leaves every mark and count clear. CG_OK, or CG_NOMEM if the order
 * could not grow (the walk still goes to the end, to clear the marks).
 * hooked (a constant at each call, so the compiler makes two walks): visit
 * leaves given a Python backward too, which means looking at every operand. */
CG_ALWAYS_INLINE int walk_back(cg_node *root, int run, cg_sweep *sw, const int hooked)
{
    int status = CG_OK;
    size_t cap = 0;
    size_t pending = 1, here = 1; /* marked nodes not reached yet: in all, in blk */
    cg_block *blk = cg__block_of(root);
    cg_node *n = root, *first = blk->nodes;
    if (!visited(root))
        return CG_OK;
    root->mark = 1;
    for (;;) {
        for (;; n--) { /* a marked node is left in blk: n or older */
            if (!n->mark)
                continue;
            if (n - first >= WALK_AHEAD)
                PREFETCH_FOR_WRITE(n - WALK_AHEAD);
            n->mark = 0;
            if (hooked ? cg__nargs_inline(n) != 0 : !(n->flags & CG_F_LEAF_ARGS))
                mark_operands(n, first, &pending, &here);
            if (run && !(n->nargs & CG_N_PYTHON)) {
                cg__backward(n);
            } else {
                run = 0; /* from here the caller runs the kernels */
                if (status == CG_OK)
                    status = append(sw, &cap, n);
            }
            if (--pending == 0)
                return status;
            if (--here == 0)
                break;
        }
        /* The marked nodes left are in older blocks (operands are older than
         * their users), and blocks holding reachable nodes are alive. */
        do
            blk = blk->prev;
        while (!blk->marked);
        here = blk->marked;
        blk->marked = 0;
        n = last_node(blk);
        first = blk->nodes;
    }
}

/* A sweep from walk_back(root, run), or NULL if none is needed; *status is
 * walk_back's, or CG_NOMEM. With pure, walks only if no node in the process
 * has a Python backward (else *status is CG_CALLBACK, and nothing changed). */
static cg_sweep *walk(cg_ref root, int run, int pure, int *status)
{
    cg_sweep *sw = calloc(1, sizeof *sw);
    if (!sw) {
        *status = CG_NOMEM;
        return NULL;
    }
    cg__lock();
    if (pure && cg__python_backwards()) {
        cg__unlock();
        free(sw);
        *status = CG_CALLBACK;
        return NULL;
    }
    if (run) { /* micrograd's self.grad = 1: an int */
        cg__backward_epoch = ++last_epoch; /* a new backward: softmax groups start it empty */
        sw->epoch = cg__backward_epoch;
        cg__node(root)->grad = 1.0;
        cg__node(root)->flags &= (uint8_t)~CG_F_GRAD_FLOAT;
    }
    /* two copies of the walk: the one for processes where no leaf has a
     * Python backward (nearly all) does not look for one */
    if (cg__hooked_leaves())
        *status = walk_back(cg__node(root), run, sw, 1);
    else
        *status = walk_back(cg__node(root), run, sw, 0);
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
    *rest = walk(root, 1, 0, &status);
    return status == CG_OK && *rest ? CG_CALLBACK : status;
}

int cg_backward_pure(cg_ref root)
{
    int status;
    walk(root, 1, 1, &status); /* no sweep back: with no Python backward, none stops */
    return status;
}

int cg_sweep_begin(cg_ref root, cg_sweep **out)
{
    int status;
    *out = walk(root, 0, 0, &status);
    if (*out)
        (*out)->kept = 1;
    return status;
}

/* Whether the op of n uses its x field (then a Python backward given to n
 * is kept in its block's hooks). */
static int x_taken(const cg_node *n)
{
    switch (n->op) {
    case CG_POW_CONST:
    case CG_SOFTMAX:
    case CG_LOG_SOFTMAX:
    case CG_PICK:
    case CG_CROSS_ENTROPY:
        return 1;
    default:
        return 0;
    }
}

/* Where the entry for slot is, or would be, in a table of 2**bits entries:
 * from its home (Fibonacci hashing: the top bits of slot times 2**64 / phi,
 * which spreads strided slots, such as every other node's, over the table)
 * to the first entry that holds it or is empty. */
static cg_hook *probe(cg_hook *at, unsigned bits, uint32_t slot)
{
    size_t mask = ((size_t)1 << bits) - 1;
    size_t i = (size_t)(((uint64_t)slot * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - bits));
    while (at[i].key != 0 && at[i].key != slot + 1)
        i = (i + 1) & mask;
    return &at[i];
}

/* n's hook in its block (engine lock held), or NULL. */
static cg_hook *find_hook(cg_node *n)
{
    cg_hooks *hooks = cg__block_of(n)->hooks;
    if (!hooks)
        return NULL;
    cg_hook *h = probe(hooks->at, hooks->bits, n->slot);
    return h->key ? h : NULL;
}

/* First size of a block's hook table, in entries; it doubles when half full. */
enum { FIRST_HOOKS_BITS = 3 };

/* n's hook in its block, made (empty) if it has none (engine lock held); NULL
 * if the table had to grow and could not (then nothing changed). */
static cg_hook *add_hook(cg_node *n)
{
    cg_block *blk = cg__block_of(n);
    cg_hooks *old = blk->hooks;
    cg_hook *h = find_hook(n);
    if (h)
        return h;
    if (!old || 2 * (old->count + 1) > ((size_t)1 << old->bits)) {
        unsigned bits = old ? old->bits + 1 : FIRST_HOOKS_BITS;
        cg_hooks *grown = calloc(1, sizeof(cg_hooks) + ((size_t)1 << bits) * sizeof(cg_hook));
        if (!grown)
            return NULL;
        grown->bits = bits;
        if (old) {
            for (size_t i = 0, k = (size_t)1 << old->bits; i < k; i++)
                if (old->at[i].key)
                    *probe(grown->at, bits, old->at[i].key - 1) = old->at[i];
            grown->count = old->count;
            free(old);
        }
        blk->hooks = old = grown;
    }
    h = probe(old->at, old->bits, n->slot);
    h->key = n->slot + 1;
    h->callback = NULL;
    old->count++;
    return h;
}

/* The Python backward of n (CG_N_PYTHON; engine lock held), or NULL. */
static void *callback_of(cg_node *n)
{
    if (!x_taken(n))
        return n->x.callback;
    cg_hook *h = find_hook(n);
    return h ? h->callback : NULL;
}

int cg_set_callback(cg_ref node, void *callback)
{
    cg_node *n = cg__node(node);
    cg__lock();
    if (x_taken(n)) {
        cg_hook *h = add_hook(n);
        if (!h) {
            cg__unlock();
            return CG_NOMEM;
        }
        h->callback = callback;
    } else {
        n->x.callback = callback;
    }
    if (!(n->nargs & CG_N_PYTHON))
        cg__count_python_backward(!cg__nargs_inline(n));
    n->nargs |= CG_N_PYTHON;
    cg__unlock();
    return CG_OK;
}

int cg_sweep_backward(const cg_sweep *sw, size_t *cursor, void **callback)
{
    int status = CG_OK;
    cg__lock(); /* kernels write operands' grads, which other sweeps may share */
    if (!sw->kept) /* the rest of a backward: its own, whatever ran meanwhile */
        cg__backward_epoch = sw->epoch;
    else if (*cursor == 0) /* a pass from the start: a new backward, as a walk's */
        cg__backward_epoch = ++last_epoch;
    while (*cursor < sw->size) {
        cg_node *n = sw->order[(*cursor)++];
        if (!(n->nargs & CG_N_PYTHON)) {
            cg__backward(n);
        } else if ((*callback = callback_of(n)) != NULL) {
            status = CG_CALLBACK;
            break;
        }
    }
    cg__unlock();
    return status;
}

int cg_sweep_replay(const cg_sweep *sw)
{
    for (size_t i = 0; i < sw->size; i++)
        if (sw->order[i]->op == CG_CUSTOM)
            return CG_NOREPLAY;
    int status = CG_OK;
    cg__lock(); /* graphs share nodes: a softmax's state, a shared operand's data */
    for (size_t i = sw->size; i-- > 0;) {
        cg_node *n = sw->order[i];
        status = cg__forward(n);
        if (status != CG_OK)
            break;
        if (n->op == CG_LEAF) /* a leaf with a Python backward: its grad is the user's */
            continue;
        n->grad = 0.0; /* as a rebuilt node's: the int 0 */
        n->flags &= (uint8_t)~CG_F_GRAD_FLOAT;
    }
    cg__unlock();
    return status;
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
    cg__lock();
    cg__backward(n);
    cg__unlock();
    return CG_OK;
}
