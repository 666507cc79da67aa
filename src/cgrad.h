/* cgrad.h - the C core of cgrad: scalar reverse-mode autodiff.
 *
 * This header is the one contract between the C core and Python: build_ffi.py
 * reads it (minus preprocessor lines) as the cffi cdef, and the C compiler
 * checks the sources against it.
 *
 * Ownership in one paragraph: nodes live in blocks. A block is created and
 * freed by its owner (in Python, one cgrad._core.Block that every Value in
 * the block references). Freeing a block frees its nodes; the caller
 * guarantees that no node still in use points into it (Python does so
 * because a Value keeps the Values of its operands alive, and frees a block
 * only once nothing can reach its owner: docs/design.md).
 *
 * Threads: any function may be called from any thread. Nodes are handed out
 * without a lock; the block list, every sweep and every run of kernels take
 * one engine lock (a mutex: waiters sleep), which is held across fork() so
 * that a child starts with it free and no sweep half done. Functions that create nodes return
 * a cg_ref: the address of the new node, or, if the value is below
 * CG_REF_MIN, a cg_status saying why nothing was created. A failed call
 * creates nothing and changes nothing.
 */
#ifndef CGRAD_H
#define CGRAD_H

#include <stddef.h>
#include <stdint.h>

/* A node's address as an integer; values below CG_REF_MIN are cg_status codes.
 * Signed: user-space addresses are positive as intptr_t on the platforms cgrad
 * builds for, and a signed machine word is an unboxed int to PyPy's JIT, where
 * an unsigned 64-bit one becomes a big integer object on every call. */
typedef intptr_t cg_ref;

typedef struct cg_block cg_block;
typedef struct cg_sweep cg_sweep;

enum cg_status {
    CG_OK = 0,
    CG_FULL = 1,      /* the block has no room: retry with a fresh block */
    CG_NOMEM = 2,     /* malloc failed                      -> MemoryError */
    CG_DOMAIN = 3,    /* math domain error, e.g. log(-1)    -> ValueError */
    CG_RANGE = 4,     /* result overflows a double          -> OverflowError */
    CG_ZERODIV = 5,   /* 0.0 raised to a negative power     -> ZeroDivisionError */
    CG_CALLBACK = 6,  /* the sweep stopped at a Python-defined backward */
    CG_EMPTY = 7,     /* an n-ary op got no operands        -> ValueError */
    CG_INDEX = 8,     /* index out of range                 -> IndexError */
    CG_NOREPLAY = 9,  /* replay met a node Python computed  -> RuntimeError */
    CG_SHARED = 10,   /* the node's state is other nodes' too: it cannot change in place */
    CG_REF_MIN = 16
};

/* Operation codes, as stored in each node. */
enum cg_op {
    CG_LEAF = 0,
    CG_ADD,        /* a + b */
    CG_MUL,        /* a * b */
    CG_POW_CONST,  /* a ** p, p a number held in the node */
    CG_POW,        /* a ** b, both nodes */
    CG_EXP,
    CG_LOG,
    CG_TANH,
    CG_RELU,
    CG_SIN,
    CG_COS,
    CG_SIGMOID,
    CG_CUSTOM,     /* data given by the caller, backward run by Python */
    CG_SUM,        /* a0 + a1 + ... , left to right */
    CG_MEAN,       /* (a0 + a1 + ...) / n */
    CG_DOT,        /* start + w0*x0 + w1*x1 + ..., left to right */
    CG_LOGSUMEXP,  /* log(sum(exp(a_i))), the maximum subtracted first */
    CG_SOFTMAX,    /* hidden group node of softmax: data is logsumexp */
    CG_LOG_SOFTMAX,/* hidden group node of log_softmax: data is logsumexp */
    CG_PICK,       /* output i of a softmax or log_softmax group */
    CG_CROSS_ENTROPY, /* logsumexp(a) - a[target] */
    CG_OP_COUNT
};

/* ---- blocks (arena.c) ------------------------------------------------- */

/* Nodes in a default block (cg_block_new(0)): Python makes its blocks this
 * size, and a block of its own for an op that needs more. */
enum { CG_BLOCK_NODES = 1024 };

/* A new empty block with room for at least `nodes` nodes (0: the default
 * size). Returns NULL if out of memory. Safe to allocate from concurrently.
 * Only the newest block makes nodes: a new block seals the one before it
 * (which then answers CG_FULL), so that creation order is the order of
 * blocks, then of nodes in a block, and the sweep can walk it. A block takes
 * side allocations (operand arrays, softmax state) up to its nodes' bytes;
 * an op that needs more answers CG_FULL there, and a fresh block takes it
 * and is then sealed behind it, so that small nodes never share a block
 * with a big op's buffers. */
cg_block *cg_block_new(size_t nodes);

/* Frees the block, its nodes and everything they allocated. NULL is a no-op. */
void cg_block_free(cg_block *blk);

/* Bytes of memory held by the block (header, nodes and side allocations;
 * not its table of Python backwards, which cg_set_callback may replace
 * meanwhile). */
size_t cg_block_bytes(const cg_block *blk);

/* ---- creating nodes (ops.c) -------------------------------------------- */

/* A leaf holding the float x (cg_set_int_data makes it an int). */
cg_ref cg_leaf(cg_block *blk, double x);

/* n leaves holding xs[0..n-1], written to out[0..n-1]; all or nothing.
 * Returns CG_OK, CG_FULL (room for fewer than n nodes) or CG_NOMEM. */
int cg_leaves(cg_block *blk, const double *xs, size_t n, cg_ref *out);

/* a + b and a * b of two existing nodes. */
cg_ref cg_add(cg_block *blk, cg_ref a, cg_ref b);
cg_ref cg_mul(cg_block *blk, cg_ref a, cg_ref b);

/* a + c and a * c for a number c (a Python int if c_is_int, else a float):
 * creates a constant leaf for c and the result node, both in blk (the leaf
 * is operand 1 of the result, as in micrograd). */
cg_ref cg_add_const(cg_block *blk, cg_ref a, double c, int c_is_int);
cg_ref cg_mul_const(cg_block *blk, cg_ref a, double c, int c_is_int);

/* a ** p for a number p (a Python int if p_is_int). CG_ZERODIV for
 * 0 ** negative (finite), CG_DOMAIN for a negative base with a non-integer
 * exponent, CG_RANGE on overflow. */
cg_ref cg_pow_const(cg_block *blk, cg_ref a, double p, int p_is_int);

/* a ** b for two nodes; errors as cg_pow_const. */
cg_ref cg_pow(cg_block *blk, cg_ref a, cg_ref b);

/* a / b as micrograd computes it, a * b**-1: the node b ** -1, then, right
 * after it in blk, the result a * (b ** -1), returned. Errors as
 * cg_pow_const(b, -1): CG_ZERODIV for b == 0. */
cg_ref cg_div(cg_block *blk, cg_ref a, cg_ref b);

/* A unary op (CG_EXP .. CG_SIGMOID) of a. CG_RANGE if exp overflows,
 * CG_DOMAIN for log of x <= 0 and sin/cos of an infinity. */
cg_ref cg_unary(cg_block *blk, int op, cg_ref a);

/* A node with the given (float) data and operands whose backward is run by
 * Python (see cg_sweep_backward). CG_NOMEM if the operand array cannot be allocated. */
cg_ref cg_custom(cg_block *blk, double data, const cg_ref *args, size_t n);


/* ---- fused n-ary ops (fused.c) -----------------------------------------
 * Each builds one node over n operands in one call, whatever n is, and its
 * backward is one kernel. All return CG_EMPTY for n == 0; CG_FULL if blk
 * lacks room (retry with a block of at least cg_fused_nodes(op, n) nodes). */

/* Nodes a fused op of n operands needs in one block. */
size_t cg_fused_nodes(int op, size_t n);

/* CG_SUM, CG_MEAN or CG_LOGSUMEXP over args[0..n-1]. */
cg_ref cg_reduce(cg_block *blk, int op, const cg_ref *args, size_t n);

/* start + ws[0]*xs[0] + ... + ws[n-1]*xs[n-1], added left to right: the same
 * float operations as micrograd's sum((w*x for ...), start). n may be 0. */
cg_ref cg_dot(cg_block *blk, cg_ref start, const cg_ref *ws, const cg_ref *xs, size_t n);

/* A layer of n_out neurons over the inputs xs[0..n_in-1], in one call: for
 * each neuron j, the node cg_dot(bs[j], ws[j*n_in ..], xs, n_in) and, if
 * relu, a CG_RELU node of it. Writes the k = n_out * (relu ? 2 : 1) new nodes
 * to out[0..k-1] (each neuron's dot, then its relu) and returns the first;
 * all or nothing. Needs k nodes in blk. */
cg_ref cg_layer(cg_block *blk, const cg_ref *ws, const cg_ref *bs, const cg_ref *xs,
                size_t n_in, size_t n_out, int relu, cg_ref *out);

/* softmax (log != 0: log_softmax) of args[0..n-1]: a hidden group node and n
 * output nodes that share its computation. Writes the outputs to out[0..n-1]
 * and returns the group node. */
cg_ref cg_softmax(cg_block *blk, const cg_ref *args, size_t n, int log, cg_ref *out);

/* -log_softmax(args)[target] as one node. CG_INDEX if target >= n. */
cg_ref cg_cross_entropy(cg_block *blk, const cg_ref *args, size_t n, size_t target);

/* ---- bulk reads and writes (fused.c) ----------------------------------- */

/* out[i] = data (grad) of nodes[i], for i < n. */
void cg_gather_data(const cg_ref *nodes, size_t n, double *out);
void cg_gather_grad(const cg_ref *nodes, size_t n, double *out);
/* data (grad) of nodes[i] = xs[i] (floats), for i < n. */
void cg_scatter_data(const cg_ref *nodes, size_t n, const double *xs);
void cg_scatter_grad(const cg_ref *nodes, size_t n, const double *xs);
/* grad of nodes[i] = the int 0 (micrograd's zero_grad: p.grad = 0), i < n. */
void cg_zero_grads(const cg_ref *nodes, size_t n);

/* ---- optimizers (optim.c) ----------------------------------------------
 * Update the data of params[0..n-1] from their grads, as torch.optim does
 * (same formulas, same order of operations). State arrays have n doubles,
 * start zeroed, and belong to the caller. */

/* SGD: with momentum, buf = momentum * buf + grad (buf = grad on the first
 * step), then p -= lr * buf; without, p -= lr * grad. */
void cg_sgd_step(const cg_ref *params, size_t n, double lr, double momentum,
                 double *buf, int first_step);

/* Adam (step counts from 1): m and v are the first and second moments. */
void cg_adam_step(const cg_ref *params, size_t n, double lr, double beta1, double beta2,
                  double eps, double weight_decay, long step, double *m, double *v);

/* ---- reading and writing nodes (ops.c) ---------------------------------
 * micrograd keeps whatever Python computes in data and grad: an int or a
 * float. A node records which, following Python's rules (int + int is an
 * int, int / int a float, ...; see forward.h and kernels.h), with its value
 * as a double: ints are exact up to 2**53 in magnitude. A new node's grad is
 * the int 0; cg_backward makes the root's the int 1, as micrograd does. */

double cg_data(cg_ref node);
double cg_grad(cg_ref node);
/* The data (grad) if it is a float, else 0.0. Python reads a Value in this
 * one call unless it gets a zero (every zero is false in Python), and only
 * then asks the _int_ form: a nonzero float, the common case, costs one
 * call. */
double cg_float_data(cg_ref node);
double cg_float_grad(cg_ref node);
/* The data (grad) if it is an int of magnitude below 2**63, else INT64_MIN:
 * a float, or an int that only cg_data (cg_grad) reads. */
int64_t cg_int_data(cg_ref node);
int64_t cg_int_grad(cg_ref node);
/* Writes the data (grad) as a float; the _int_ forms as an int. */
void cg_set_data(cg_ref node, double x);
void cg_set_grad(cg_ref node, double g);
void cg_set_int_data(cg_ref node, double x);
void cg_set_int_grad(cg_ref node, double g);
/* Makes node a leaf again, in place, holding the float x (Value.__init__
 * called again on a used Value, as micrograd allows): grad the int 0, no
 * operands, no Python backward. Nodes made from it keep it as an operand, so
 * their backward still reaches it, as micrograd's closures reach the
 * re-initialised object; its old operands must stay alive (other nodes'
 * kept orders may list them). CG_OK; CG_SHARED, changing nothing, for a
 * softmax group or output, whose data and state other nodes share. */
int cg_reset_leaf(cg_ref node, double x);
int cg_op(cg_ref node);
size_t cg_nargs(cg_ref node);
/* Operand i (0 <= i < cg_nargs(node)). */
cg_ref cg_arg(cg_ref node, size_t i);
/* The output index of a CG_PICK node, or the target of a CG_CROSS_ENTROPY one. */
size_t cg_index(cg_ref node);
/* The exponent p of a CG_POW_CONST node (a ** p, and the b ** -1 of a / b),
 * and whether it is a Python int (cg_pow_const's p_is_int): micrograd names
 * the node f'**{p}', '**2' for the int 2 and '**2.0' for the float. An int
 * exponent is exact below 2**53 in magnitude. Any other node: 0.0 and 0. */
double cg_exponent(cg_ref node);
int cg_exponent_is_int(cg_ref node);

/* ---- backward (sweep.c) ------------------------------------------------ */

/* Gives a node a Python backward: an opaque pointer (a cffi handle) that the
 * sweep hands back instead of running the node's kernel, as it does for
 * custom nodes (micrograd lets any node's _backward be replaced, leaves'
 * included, and runs it). NULL: the node's backward does nothing. Returns
 * CG_OK, or CG_NOMEM (nothing changed). Once a leaf has one, every walk in
 * the process looks at leaf operands too (a little slower). */
int cg_set_callback(cg_ref node, void *callback);

/* Runs the backward kernel of one node: its operands' grads += local
 * derivative * its grad, under the engine lock (the C kernel, also for a
 * node given a Python backward). A no-op for leaves; CG_CALLBACK for
 * custom nodes. */
int cg_node_backward(cg_ref node);

/* Backpropagation from root, in one call: sets root's grad to 1 (as
 * micrograd does) and runs the backward kernel of every interior node
 * reachable from root (and of every reachable leaf given a Python backward),
 * in reverse creation order (sweep.c), so that every
 * node's grad is complete before its kernel runs. Sweeps from several threads
 * take turns (the engine lock; a sweep never calls out). Returns CG_OK when
 * done. If the sweep meets a node with a Python backward, it stops
 * there and returns CG_CALLBACK with *rest set to the nodes left, that node
 * first: the caller finishes with cg_sweep_backward and frees *rest.
 * CG_NOMEM if that order cannot be allocated (some grads are then updated).
 * A sweep the caller abandons (stops calling cg_sweep_backward on: its Python
 * backward raised) leaves no state that a later one uses: each backward
 * starts the softmax groups it reaches with nothing pushed into them. */
int cg_backward(cg_ref root, cg_sweep **rest);

/* cg_backward when no node in the process has ever been given a Python
 * backward (cg_custom, cg_set_callback), as in most programs: then no sweep
 * anywhere stops to call out, so this one runs whole, taking turns with the
 * others under the engine lock alone, and returns CG_OK (or CG_NOMEM). Else
 * it changes nothing and returns CG_CALLBACK: the caller must then run
 * cg_backward under its own lock, so that the Python backwards of one sweep
 * and the kernels of another do not interleave. */
int cg_backward_pure(cg_ref root);

/* The order of root's graph, kept for graph replay (or a custom backward):
 * every interior node reachable from root, newest first. A graph never
 * changes once built, so a sweep can be kept, reused and shared by threads.
 * On success *out is a sweep to free with cg_sweep_free. Returns CG_OK or
 * CG_NOMEM (then *out is NULL). */
int cg_sweep_begin(cg_ref root, cg_sweep **out);

/* Runs the backward kernels of the sweep's nodes in order, under the engine
 * lock (released at each callback). *cursor counts
 * the nodes already run and belongs to the caller (0 at first; a kept
 * sweep's pass from 0 starts its softmax groups clean, as cg_backward does). Returns CG_OK
 * when done, or CG_CALLBACK when the next node has a Python backward: then
 * *callback is its pointer, and the caller runs it and calls
 * again with the same cursor to go on. */
int cg_sweep_backward(const cg_sweep *sw, size_t *cursor, void **callback);

/* Graph replay: recomputes the data of every interior node of the sweep's
 * graph from its operands' current data, oldest first, and sets
 * their grads to 0, under the engine lock. Math errors stop the replay with the status the op
 * gives when built (the failing node and those after it keep their old data;
 * a later replay with good data repairs everything). CG_NOREPLAY, before
 * anything changes, if the graph has a node whose data Python computed (a
 * custom node); a node merely given a Python backward replays. */
int cg_sweep_replay(const cg_sweep *sw);

/* Number of interior nodes in the sweep's order. */
size_t cg_sweep_size(const cg_sweep *sw);

/* Frees a sweep (finished or not). NULL is a no-op. */
void cg_sweep_free(cg_sweep *sw);

#endif
