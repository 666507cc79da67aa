/* test_engine.c - the C core tested on its own, without Python.
 *
 * Uses only the public contract, src/cgrad.h. Every kernel is checked
 * against values computed here independently: closed forms with libm, and
 * central differences of the engine's own forward ops (gradcheck below).
 *
 * Adding a test: write `static void test_NAME(void)` using the CHECK*
 * macros (and gradcheck() for a new op: give it a builder that makes the op
 * from leaves), then add one line `TEST(NAME)` to the table at the bottom.
 *
 * Usage: test_engine [--chain N] [--list] [NAME...]
 *   --chain N   depth of the deep-chain test (default 1000000)
 *   NAME...     run only these tests
 * Prints one line per test and closes with "N passed, M failed"; exits 1 if
 * any test failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgrad.h"

/* ---- the harness --------------------------------------------------------- */

static int failures;          /* failed checks in the running test */
static jmp_buf test_abort;    /* REQUIRE failures jump here, ending the test */
static size_t chain_depth = 1000000;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    failures++;
    fprintf(stderr, "    FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A boolean check; the test goes on after a failure. */
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            fail_at(__FILE__, __LINE__, "%s", #cond);                      \
    } while (0)

/* A check that ends the test when it fails (what follows depends on it). */
#define REQUIRE(cond)                                                      \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fail_at(__FILE__, __LINE__, "required: %s", #cond);            \
            longjmp(test_abort, 1);                                        \
        }                                                                  \
    } while (0)

#define CHECK_INT(got, want)                                               \
    do {                                                                   \
        long long got_ = (long long)(got), want_ = (long long)(want);      \
        if (got_ != want_)                                                 \
            fail_at(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", \
                    #got, got_, #want, want_);                             \
    } while (0)

/* Bit-for-bit equality of doubles (NaN equals NaN). */
#define CHECK_EXACT(got, want) check_close(got, want, 0.0, #got, #want, __FILE__, __LINE__)
/* |got - want| <= tol * max(1, |want|) */
#define CHECK_CLOSE(got, want, tol) check_close(got, want, tol, #got, #want, __FILE__, __LINE__)

static int close_enough(double got, double want, double tol)
{
    if (got == want || (isnan(got) && isnan(want)))
        return 1;
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

static void check_close(double got, double want, double tol, const char *gs,
                        const char *ws, const char *file, int line)
{
    if (!close_enough(got, want, tol))
        fail_at(file, line, "%s == %.17g, expected %s == %.17g (tol %g)", gs, got, ws, want, tol);
}

/* A node from a creator's result: ends the test if it is a status instead. */
#define NODE(expr) node_at((expr), #expr, __FILE__, __LINE__)
static cg_ref node_at(cg_ref r, const char *expr, const char *file, int line)
{
    if (r < CG_REF_MIN) {
        fail_at(file, line, "%s returned status %d, not a node", expr, (int)r);
        longjmp(test_abort, 1);
    }
    return r;
}

static cg_block *new_block(size_t nodes)
{
    cg_block *blk = cg_block_new(nodes);
    if (!blk) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return blk;
}

/* ---- running backward, with custom (caller-defined) nodes ----------------- */

/* What a custom node's callback pointer points to in these tests: the
 * function to run and the node it belongs to (the sweep hands back only the
 * pointer, as it hands Python its handle). */
typedef struct custom_op {
    void (*backward)(struct custom_op *self);
    cg_ref node;
} custom_op;

/* Runs the kernels of a sweep's nodes, calling custom nodes' backwards.
 * Returns the status of cg_sweep_backward. */
static int run_sweep(const cg_sweep *sw)
{
    size_t cursor = 0;
    void *cb = NULL;
    int status;
    while ((status = cg_sweep_backward(sw, &cursor, &cb)) == CG_CALLBACK) {
        custom_op *op = cb;
        op->backward(op);
    }
    return status;
}

/* Backpropagates from root as Value.backward() does: cg_backward, and the
 * rest of the sweep if it stopped at a custom node. Returns the status; if
 * size is not NULL, *size gets the number of interior nodes reachable from
 * root (the size of cg_sweep_begin's order, counted first). */
static int backward(cg_ref root, size_t *size)
{
    if (size) {
        cg_sweep *sw = NULL;
        int status = cg_sweep_begin(root, &sw);
        if (status != CG_OK)
            return status;
        *size = cg_sweep_size(sw);
        cg_sweep_free(sw);
    }
    cg_sweep *rest = NULL;
    int status = cg_backward(root, &rest);
    if (status == CG_CALLBACK) {
        status = run_sweep(rest);
        cg_sweep_free(rest);
    }
    return status;
}

/* ---- gradcheck: analytic grads against central differences --------------- */

/* Builds an expression of the leaves x[0..n-1] in blk; returns its root or a
 * status. Builders must not keep state between calls. */
typedef cg_ref (*builder)(cg_block *blk, const cg_ref *x, size_t n);

enum { GC_MAX = 16, GC_BLOCK = 4096 };

/* The root's data for leaves at xs, built in a fresh block. */
static double evaluate(builder build, const double *xs, size_t n)
{
    cg_block *blk = new_block(GC_BLOCK);
    cg_ref x[GC_MAX];
    REQUIRE(cg_leaves(blk, xs, n, x) == CG_OK);
    cg_ref root = build(blk, x, n);
    double y = root >= CG_REF_MIN ? cg_data(root) : NAN;
    cg_block_free(blk);
    REQUIRE(!isnan(y) || root >= CG_REF_MIN);
    return y;
}

/* Checks every leaf's grad after backward against a central difference with
 * step h * max(1, |x|); tol is relative. */
static void gradcheck_at(const char *what, builder build, const double *xs, size_t n,
                         double tol, const char *file, int line)
{
    REQUIRE(n <= GC_MAX);
    cg_block *blk = new_block(GC_BLOCK);
    cg_ref x[GC_MAX];
    REQUIRE(cg_leaves(blk, xs, n, x) == CG_OK);
    cg_ref root = build(blk, x, n);
    if (root < CG_REF_MIN) {
        cg_block_free(blk);
        fail_at(file, line, "%s: builder returned status %d", what, (int)root);
        return;
    }
    REQUIRE(backward(root, NULL) == CG_OK);
    double xp[GC_MAX];
    for (size_t i = 0; i < n; i++) {
        double h = 1e-6 * fmax(1.0, fabs(xs[i]));
        memcpy(xp, xs, n * sizeof *xs);
        xp[i] = xs[i] + h;
        double up = evaluate(build, xp, n);
        xp[i] = xs[i] - h;
        double down = evaluate(build, xp, n);
        double numeric = (up - down) / (2.0 * h);
        double analytic = cg_grad(x[i]);
        if (!close_enough(analytic, numeric, tol))
            fail_at(file, line, "%s: d/dx%zu at x%zu=%g: analytic %.17g, numeric %.17g", what,
                    i, i, xs[i], analytic, numeric);
    }
    cg_block_free(blk);
}
#define gradcheck(what, build, xs, n, tol) gradcheck_at(what, build, xs, n, tol, __FILE__, __LINE__)

/* Sample points used by several tests. */
static const double POINTS[] = {-2.5, -0.3, 0.7, 1.9};
#define NPOINTS (sizeof POINTS / sizeof POINTS[0])

/* ---- tests: blocks and nodes ---------------------------------------------- */

static void test_block_new_free(void)
{
    cg_block *blk = cg_block_new(0);
    REQUIRE(blk != NULL);
    size_t empty = cg_block_bytes(blk);
    CHECK(empty >= 1024 * sizeof(double) * 2); /* default size: room for 1024 nodes */
    cg_block_free(blk);

    blk = new_block(3);
    CHECK(cg_block_bytes(blk) < empty);
    cg_block_free(blk);

    cg_block_free(NULL); /* a no-op */
    CHECK(cg_block_new(SIZE_MAX) == NULL); /* the size overflows: NULL, not a tiny block */
    CHECK(cg_block_new(SIZE_MAX / 8) == NULL);
}

static void test_leaf(void)
{
    cg_block *blk = new_block(0);
    cg_ref a = NODE(cg_leaf(blk, 2.5));
    CHECK_EXACT(cg_data(a), 2.5);
    CHECK_EXACT(cg_grad(a), 0.0);
    CHECK_INT(cg_op(a), CG_LEAF);
    CHECK_INT(cg_nargs(a), 0);
    CHECK_INT(cg_arg(a, 0), CG_INDEX);
    cg_set_data(a, -1.25);
    cg_set_grad(a, 4.0);
    CHECK_EXACT(cg_data(a), -1.25);
    CHECK_EXACT(cg_grad(a), 4.0);
    CHECK_INT(cg_node_backward(a), CG_OK); /* a leaf's backward does nothing */
    CHECK_EXACT(cg_grad(a), 4.0);

    cg_ref b = NODE(cg_leaf(blk, -0.0));
    CHECK(b != a);
    CHECK(signbit(cg_data(b)));
    cg_ref n = NODE(cg_leaf(blk, NAN));
    CHECK(isnan(cg_data(n)));
    cg_ref i = NODE(cg_leaf(blk, INFINITY));
    CHECK_EXACT(cg_data(i), INFINITY);
    cg_block_free(blk);
}

/* The typed reads Python makes: a float in one call, else 0.0 and the int. */
static void test_typed_reads(void)
{
    cg_block *blk = new_block(0);
    cg_ref f = NODE(cg_leaf(blk, 2.5));
    CHECK_EXACT(cg_float_data(f), 2.5);
    CHECK_INT(cg_int_data(f), INT64_MIN); /* a float is no int */
    CHECK_EXACT(cg_float_grad(f), 0.0); /* a new node's grad: the int 0 */
    CHECK_INT(cg_int_grad(f), 0);
    cg_ref i = NODE(cg_leaf(blk, -7.0));
    cg_set_int_data(i, -7.0);
    CHECK_EXACT(cg_float_data(i), 0.0);
    CHECK_INT(cg_int_data(i), -7);
    cg_set_int_data(i, 0x1p63); /* past int64: only cg_data reads it */
    CHECK_INT(cg_int_data(i), INT64_MIN);
    CHECK_EXACT(cg_data(i), 0x1p63);
    cg_set_int_data(i, -0x1p62);
    CHECK_INT(cg_int_data(i), -(INT64_C(1) << 62));
    cg_set_grad(i, -0.0);
    CHECK(signbit(cg_float_grad(i)));
    CHECK_INT(cg_int_grad(i), INT64_MIN);
    cg_block_free(blk);
}

static void test_leaves(void)
{
    cg_block *blk = new_block(4);
    const double xs[] = {1.0, 2.0, 3.0};
    cg_ref out[3] = {0, 0, 0};
    CHECK_INT(cg_leaves(blk, xs, 3, out), CG_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(out[i] >= CG_REF_MIN);
        CHECK_EXACT(cg_data(out[i]), xs[i]);
        CHECK_INT(cg_op(out[i]), CG_LEAF);
    }
    CHECK(out[0] != out[1] && out[1] != out[2]);
    /* all or nothing: one slot left, two asked for */
    cg_ref more[2] = {7, 7};
    CHECK_INT(cg_leaves(blk, xs, 2, more), CG_FULL);
    CHECK_INT(more[0], 7);
    CHECK_INT(more[1], 7);
    cg_block_free(blk);
    blk = new_block(1);
    CHECK_INT(cg_leaves(blk, xs, 0, more), CG_OK); /* zero leaves: nothing to do */
    CHECK_INT(more[0], 7);
    cg_block_free(blk);
}

/* ---- tests: each kernel against closed forms and central differences ----- */

static void test_add(void)
{
    cg_block *blk = new_block(0);
    for (size_t i = 0; i < NPOINTS; i++) {
        double x = POINTS[i], y = POINTS[NPOINTS - 1 - i] * 3.0;
        cg_ref a = NODE(cg_leaf(blk, x)), b = NODE(cg_leaf(blk, y));
        cg_ref c = NODE(cg_add(blk, a, b));
        CHECK_EXACT(cg_data(c), x + y);
        CHECK_INT(cg_op(c), CG_ADD);
        CHECK_INT(cg_nargs(c), 2);
        CHECK_INT(cg_arg(c, 0), a);
        CHECK_INT(cg_arg(c, 1), b);
        CHECK_INT(cg_arg(c, 2), CG_INDEX);
        cg_set_grad(c, 1.5);
        CHECK_INT(cg_node_backward(c), CG_OK);
        CHECK_EXACT(cg_grad(a), 1.5);
        CHECK_EXACT(cg_grad(b), 1.5);
    }
    /* a + a: the operand gets both contributions */
    cg_ref a = NODE(cg_leaf(blk, 3.0));
    cg_ref c = NODE(cg_add(blk, a, a));
    CHECK_INT(backward(c, NULL), CG_OK);
    CHECK_EXACT(cg_data(c), 6.0);
    CHECK_EXACT(cg_grad(a), 2.0);
    cg_block_free(blk);
}

static void test_mul(void)
{
    cg_block *blk = new_block(0);
    for (size_t i = 0; i < NPOINTS; i++) {
        double x = POINTS[i], y = POINTS[NPOINTS - 1 - i] * 3.0;
        cg_ref a = NODE(cg_leaf(blk, x)), b = NODE(cg_leaf(blk, y));
        cg_ref c = NODE(cg_mul(blk, a, b));
        CHECK_EXACT(cg_data(c), x * y);
        CHECK_INT(cg_op(c), CG_MUL);
        CHECK_INT(cg_arg(c, 0), a);
        CHECK_INT(cg_arg(c, 1), b);
        cg_set_grad(c, 2.0);
        CHECK_INT(cg_node_backward(c), CG_OK);
        CHECK_EXACT(cg_grad(a), y * 2.0);
        CHECK_EXACT(cg_grad(b), x * 2.0);
    }
    cg_ref a = NODE(cg_leaf(blk, 3.0));
    cg_ref c = NODE(cg_mul(blk, a, a)); /* d(a*a)/da = 2a */
    CHECK_INT(backward(c, NULL), CG_OK);
    CHECK_EXACT(cg_grad(a), 6.0);
    cg_block_free(blk);
}

static void test_const_ops(void)
{
    cg_block *blk = new_block(0);
    cg_ref a = NODE(cg_leaf(blk, 1.5));
    cg_ref s = NODE(cg_add_const(blk, a, -4.0, 0));
    CHECK_EXACT(cg_data(s), -2.5);
    CHECK_INT(cg_op(s), CG_ADD);
    CHECK_INT(cg_nargs(s), 2);
    CHECK_INT(cg_arg(s, 0), a);
    cg_ref k = cg_arg(s, 1); /* micrograd's constant leaf, operand 1 */
    REQUIRE(k >= CG_REF_MIN);
    CHECK_INT(cg_op(k), CG_LEAF);
    CHECK_EXACT(cg_data(k), -4.0);

    cg_ref p = NODE(cg_mul_const(blk, s, 3.0, 0));
    CHECK_EXACT(cg_data(p), -7.5);
    CHECK_INT(cg_op(p), CG_MUL);
    cg_ref k2 = cg_arg(p, 1);
    REQUIRE(k2 >= CG_REF_MIN);
    CHECK_EXACT(cg_data(k2), 3.0);
    CHECK_INT(backward(p, NULL), CG_OK);
    CHECK_EXACT(cg_grad(a), 3.0);
    CHECK_EXACT(cg_grad(s), 3.0);
    CHECK_EXACT(cg_grad(k2), -2.5); /* the constant's leaf gets its grad too, as in micrograd */
    CHECK_EXACT(cg_grad(k), 3.0);

    /* the pair is made whole or not at all: one slot is not enough */
    cg_block *one = new_block(2);
    cg_ref b = NODE(cg_leaf(one, 1.0));
    CHECK_INT(cg_add_const(one, b, 1.0, 0), CG_FULL);
    CHECK_INT(cg_mul_const(one, b, 1.0, 0), CG_FULL);
    cg_block_free(one);
    cg_block_free(blk);
}

static cg_ref build_add_const(cg_block *blk, const cg_ref *x, size_t n)
{
    (void)n;
    return cg_mul_const(blk, cg_add_const(blk, x[0], 0.75, 0), -1.5, 0);
}

static cg_ref build_mul(cg_block *blk, const cg_ref *x, size_t n)
{
    (void)n;
    return cg_mul(blk, cg_add(blk, x[0], x[1]), x[1]);
}

static void test_arith_gradcheck(void)
{
    for (size_t i = 0; i < NPOINTS; i++) {
        double xs[2] = {POINTS[i], POINTS[(i + 1) % NPOINTS]};
        gradcheck("(x+0.75)*-1.5", build_add_const, xs, 1, 1e-7);
        gradcheck("(x+y)*y", build_mul, xs, 2, 1e-7);
    }
}

/* One unary op: data and grad against closed forms, and a central difference. */
typedef struct {
    int op;
    const char *name;
    double (*f)(double);
    double (*df)(double);
    double lo, hi; /* domain sampled */
} unary_case;

static double relu_f(double x) { return x < 0.0 ? 0.0 : x; }
static double relu_df(double x) { return x > 0.0 ? 1.0 : 0.0; }
static double exp_df(double x) { return exp(x); }
static double log_df(double x) { return 1.0 / x; }
static double tanh_df(double x) { double t = tanh(x); return 1.0 - t * t; }
static double sin_df(double x) { return cos(x); }
static double cos_df(double x) { return -sin(x); }
/* sigmoid from its definition, not the engine's two-branch formula */
static double sigmoid_f(double x) { return 1.0 / (1.0 + exp(-x)); }
static double sigmoid_df(double x) { double e = exp(-x); return e / ((1.0 + e) * (1.0 + e)); }

static const unary_case UNARY[] = {
    {CG_EXP, "exp", exp, exp_df, -5.0, 5.0},
    {CG_LOG, "log", log, log_df, 0.05, 20.0},
    {CG_TANH, "tanh", tanh, tanh_df, -3.0, 3.0},
    {CG_RELU, "relu", relu_f, relu_df, -3.0, 3.0},
    {CG_SIN, "sin", sin, sin_df, -7.0, 7.0},
    {CG_COS, "cos", cos, cos_df, -7.0, 7.0},
    {CG_SIGMOID, "sigmoid", sigmoid_f, sigmoid_df, -8.0, 8.0},
};
#define NUNARY (sizeof UNARY / sizeof UNARY[0])

static int unary_op_for_builder; /* read by build_unary; set before each gradcheck */
static cg_ref build_unary(cg_block *blk, const cg_ref *x, size_t n)
{
    (void)n;
    return cg_unary(blk, unary_op_for_builder, x[0]);
}

static void test_unary(void)
{
    for (size_t u = 0; u < NUNARY; u++) {
        const unary_case *c = &UNARY[u];
        for (int k = 0; k <= 10; k++) {
            /* only the newest block makes nodes, and gradcheck makes blocks */
            cg_block *blk = new_block(0);
            double x = c->lo + (c->hi - c->lo) * k / 10.0 + 0.0123; /* avoids relu's kink at 0 */
            cg_ref a = NODE(cg_leaf(blk, x));
            cg_ref y = NODE(cg_unary(blk, c->op, a));
            CHECK_INT(cg_op(y), c->op);
            CHECK_INT(cg_nargs(y), 1);
            CHECK_INT(cg_arg(y, 0), a);
            if (!close_enough(cg_data(y), c->f(x), 1e-15))
                fail_at(__FILE__, __LINE__, "%s(%g) = %.17g, expected %.17g", c->name, x,
                        cg_data(y), c->f(x));
            cg_set_grad(y, 0.5);
            CHECK_INT(cg_node_backward(y), CG_OK);
            if (!close_enough(cg_grad(a), 0.5 * c->df(x), 1e-14))
                fail_at(__FILE__, __LINE__, "%s'(%g) = %.17g, expected %.17g", c->name, x,
                        cg_grad(a) / 0.5, c->df(x));
            unary_op_for_builder = c->op;
            gradcheck(c->name, build_unary, &x, 1, 1e-6);
            cg_block_free(blk);
        }
    }
    cg_block *blk = new_block(0);
    /* relu at and around its kink, and of -0.0 */
    cg_ref z = NODE(cg_leaf(blk, 0.0));
    cg_ref r = NODE(cg_unary(blk, CG_RELU, z));
    CHECK_EXACT(cg_data(r), 0.0);
    CHECK_INT(backward(r, NULL), CG_OK);
    CHECK_EXACT(cg_grad(z), 0.0); /* micrograd: (out.data > 0) * out.grad */
    /* sigmoid saturates without overflow at both ends */
    cg_ref big = NODE(cg_leaf(blk, 1000.0)), small = NODE(cg_leaf(blk, -1000.0));
    CHECK_EXACT(cg_data(NODE(cg_unary(blk, CG_SIGMOID, big))), 1.0);
    CHECK_EXACT(cg_data(NODE(cg_unary(blk, CG_SIGMOID, small))), 0.0);
    CHECK_EXACT(cg_data(NODE(cg_unary(blk, CG_TANH, big))), 1.0);
    cg_block_free(blk);
}

static void test_pow_const(void)
{
    static const struct {
        double x, p;
    } cases[] = {
        {1.7, 2.0}, {-1.3, 3.0}, {2.2, -1.0}, {0.6, 0.5},
        {3.0, -2.5}, {-2.0, -2.0}, {4.0, 0.0}, {0.0, 2.0},
        {0.0, 0.0}, /* constant: grad 0 (torch's rule), not 0 * pow(0, -1) = nan */
    };
    cg_block *blk = new_block(0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double x = cases[i].x, p = cases[i].p;
        cg_ref a = NODE(cg_leaf(blk, x));
        cg_ref y = NODE(cg_pow_const(blk, a, p, 0));
        CHECK_INT(cg_op(y), CG_POW_CONST);
        CHECK_INT(cg_nargs(y), 1);
        CHECK_INT(cg_arg(y, 0), a);
        CHECK_EXACT(cg_data(y), pow(x, p));
        CHECK_INT(backward(y, NULL), CG_OK);
        CHECK_CLOSE(cg_grad(a), x == 0.0 && p == 0.0 ? 0.0 : p * pow(x, p - 1.0), 1e-15);
    }
    cg_block_free(blk);
}

/* a ** p's backward is micrograd's (p * a**(p - 1)) * g, corner cases
 * included, with IEEE's inf or nan where Python's float ** raises, except
 * 0 ** 0: constant, torch's 0 (micrograd raises there). The same for a ** b
 * with b a node. */
static void test_pow_backward_corners(void)
{
    static const struct {
        double x, p, grad;
    } cases[] = {
        {NAN, 0.0, NAN},            /* 0 * nan ** -1 */
        {NAN, 2.0, NAN},
        {INFINITY, 0.0, 0.0},       /* 0 * inf ** -1 = 0 * 0.0 */
        {-INFINITY, 0.0, -0.0},     /* 0 * (-inf) ** -1 = 0 * -0.0 */
        {INFINITY, 2.0, INFINITY},
        {INFINITY, 0.5, 0.0},
        {2.0, INFINITY, INFINITY},  /* inf * 2 ** inf */
        {0.5, INFINITY, NAN},       /* inf * 0.5 ** inf = inf * 0.0 */
        {2.0, NAN, NAN},
        {0.0, 0.0, 0.0},            /* torch's rule: micrograd raises ZeroDivisionError */
        {-0.0, 0.0, 0.0},
        {0.0, 0.5, INFINITY},       /* 0.0 ** -0.5: inf where micrograd raises */
        {1e-300, -1.0, -INFINITY},  /* 1e-300 ** -2 overflows to inf */
    };
    cg_block *blk = new_block(0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int node_exponent = 0; node_exponent <= 1; node_exponent++) {
            double x = cases[i].x, p = cases[i].p;
            cg_ref a = NODE(cg_leaf(blk, x)), b = NODE(cg_leaf(blk, p));
            cg_ref y = NODE(node_exponent ? cg_pow(blk, a, b) : cg_pow_const(blk, a, p, 0));
            cg_ref root = NODE(cg_mul_const(blk, y, 3.0, 0));
            CHECK_INT(backward(root, NULL), CG_OK);
            CHECK_EXACT(cg_grad(a), cases[i].grad * 3.0);
        }
    }
    cg_block_free(blk);
}

/* cg_exponent and cg_exponent_is_int: what micrograd's f'**{p}' prints. */
static void test_exponent(void)
{
    cg_block *blk = new_block(0);
    cg_ref a = NODE(cg_leaf(blk, 3.0)), b = NODE(cg_leaf(blk, 2.0));
    cg_ref sq = NODE(cg_pow_const(blk, a, 2.0, 1)), sqf = NODE(cg_pow_const(blk, a, 2.0, 0));
    cg_ref root = NODE(cg_pow_const(blk, a, 0.5, 0));
    CHECK_EXACT(cg_exponent(sq), 2.0);
    CHECK_INT(cg_exponent_is_int(sq), 1);
    CHECK_EXACT(cg_exponent(sqf), 2.0);
    CHECK_INT(cg_exponent_is_int(sqf), 0);
    CHECK_EXACT(cg_exponent(root), 0.5);
    CHECK_INT(cg_exponent_is_int(root), 0);
    cg_ref q = NODE(cg_div(blk, a, b)); /* a * b**-1: the power is its operand 1 */
    cg_ref inv = cg_arg(q, 1);
    CHECK_INT(cg_op(inv), CG_POW_CONST);
    CHECK_EXACT(cg_exponent(inv), -1.0);
    CHECK_INT(cg_exponent_is_int(inv), 1);
    CHECK_EXACT(cg_exponent(q), 0.0); /* not a power */
    CHECK_INT(cg_exponent_is_int(q), 0);
    CHECK_EXACT(cg_exponent(a), 0.0);
    cg_block_free(blk);
    /* the default block holds CG_BLOCK_NODES nodes */
    blk = new_block(0);
    size_t made = 0;
    while (cg_leaf(blk, 0.0) >= CG_REF_MIN)
        made++;
    CHECK_INT(made, CG_BLOCK_NODES);
    cg_block_free(blk);
}

static double pow_exponent; /* read by build_pow_const */
static cg_ref build_pow_const(cg_block *blk, const cg_ref *x, size_t n)
{
    (void)n;
    return cg_pow_const(blk, x[0], pow_exponent, 0);
}

static cg_ref build_pow(cg_block *blk, const cg_ref *x, size_t n)
{
    (void)n;
    return cg_pow(blk, x[0], x[1]);
}

static void test_pow_gradcheck(void)
{
    static const double exps[] = {2.0, 3.0, -1.0, 0.5, -2.5, 1.7};
    for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++) {
        pow_exponent = exps[i];
        double x = 1.3;
        gradcheck("x ** p", build_pow_const, &x, 1, 1e-6);
        x = 0.4;
        gradcheck("x ** p", build_pow_const, &x, 1, 1e-6);
    }
    static const double pts[][2] = {{1.3, 2.0}, {0.4, -1.5}, {2.5, 0.3}, {3.0, -2.0}};
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++)
        gradcheck("x ** y", build_pow, pts[i], 2, 1e-6);
}

static void test_pow(void)
{
    cg_block *blk = new_block(0);
    double x = 1.8, e = -0.7;
    cg_ref a = NODE(cg_leaf(blk, x)), b = NODE(cg_leaf(blk, e));
    cg_ref y = NODE(cg_pow(blk, a, b));
    CHECK_INT(cg_op(y), CG_POW);
    CHECK_INT(cg_arg(y, 0), a);
    CHECK_INT(cg_arg(y, 1), b);
    CHECK_EXACT(cg_data(y), pow(x, e));
    CHECK_INT(backward(y, NULL), CG_OK);
    CHECK_CLOSE(cg_grad(a), e * pow(x, e - 1.0), 1e-15);
    CHECK_CLOSE(cg_grad(b), pow(x, e) * log(x), 1e-15);

    /* a negative base with an integer exponent: defined, grad wrt the base only */
    cg_ref n = NODE(cg_leaf(blk, -2.0)), three = NODE(cg_leaf(blk, 3.0));
    cg_ref c = NODE(cg_pow(blk, n, three));
    CHECK_EXACT(cg_data(c), -8.0);
    CHECK_INT(backward(c, NULL), CG_OK);
    CHECK_EXACT(cg_grad(n), 12.0);

    /* 0 ** b, b > 0: the grad wrt b is 0 (torch's convention), not NaN */
    cg_ref z = NODE(cg_leaf(blk, 0.0)), two = NODE(cg_leaf(blk, 2.0));
    cg_ref d = NODE(cg_pow(blk, z, two));
    CHECK_EXACT(cg_data(d), 0.0);
    CHECK_INT(backward(d, NULL), CG_OK);
    CHECK_EXACT(cg_grad(z), 0.0);
    CHECK_EXACT(cg_grad(two), 0.0);
    cg_block_free(blk);
}

/* a / b is micrograd's a * b**-1: both nodes, in one call */
static void test_div(void)
{
    cg_block *blk = new_block(0);
    cg_ref a = NODE(cg_leaf(blk, 3.0)), b = NODE(cg_leaf(blk, 0.7));
    cg_ref q = NODE(cg_div(blk, a, b));
    CHECK_INT(cg_op(q), CG_MUL);
    CHECK_INT(cg_arg(q, 0), a);
    cg_ref inv = cg_arg(q, 1);
    CHECK_INT(cg_op(inv), CG_POW_CONST);
    CHECK_INT(cg_arg(inv, 0), b);
    CHECK_EXACT(cg_data(inv), pow(0.7, -1.0));
    CHECK_EXACT(cg_data(q), 3.0 * pow(0.7, -1.0));
    size_t size = 0;
    CHECK_INT(backward(q, &size), CG_OK);
    CHECK_INT(size, 2);
    CHECK_EXACT(cg_grad(a), pow(0.7, -1.0));
    CHECK_EXACT(cg_grad(b), (-1.0 * pow(0.7, -2.0)) * (3.0 * 1.0));
    cg_ref z = NODE(cg_leaf(blk, 0.0));
    cg_block *one = new_block(1);
    CHECK_INT(cg_div(one, a, z), CG_ZERODIV);
    CHECK_INT(cg_div(one, a, b), CG_FULL); /* two nodes or none */
    NODE(cg_leaf(one, 0.0));              /* the one node is still free */
    cg_block_free(one);
    cg_block_free(blk);
}

/* ---- tests: errors leave nothing behind ---------------------------------- */

/* Checks that expr returns status want and allocated nothing in blk, whose
 * single free slot must still be there afterwards. */
#define CHECK_STATUS_NOALLOC(blk, expr, want)                                   \
    do {                                                                        \
        CHECK_INT((expr), (want));                                              \
        cg_ref probe_ = cg_leaf((blk), 0.0);                                    \
        if (probe_ < CG_REF_MIN)                                                \
            fail_at(__FILE__, __LINE__, "%s took a node though it failed", #expr); \
    } while (0)

static void test_errors(void)
{
    struct {
        double x;
        int op;
        int want;
    } unary[] = {
        {1000.0, CG_EXP, CG_RANGE},     {710.0, CG_EXP, CG_RANGE},
        {0.0, CG_LOG, CG_DOMAIN},       {-0.0, CG_LOG, CG_DOMAIN},
        {-1.0, CG_LOG, CG_DOMAIN},      {-INFINITY, CG_LOG, CG_DOMAIN},
        {INFINITY, CG_SIN, CG_DOMAIN},  {-INFINITY, CG_COS, CG_DOMAIN},
        {1.0, CG_ADD, CG_DOMAIN},       {1.0, CG_LEAF, CG_DOMAIN}, /* not unary ops */
        {1.0, CG_CUSTOM, CG_DOMAIN},    {1.0, 99, CG_DOMAIN},
        {1.0, -1, CG_DOMAIN},
    };
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++) {
        cg_block *src = new_block(1);
        cg_ref a = NODE(cg_leaf(src, unary[i].x));
        cg_block *blk = new_block(1);
        CHECK_STATUS_NOALLOC(blk, cg_unary(blk, unary[i].op, a), unary[i].want);
        cg_block_free(blk);
        cg_block_free(src);
    }
    /* what is not an error */
    cg_block *ok = new_block(0);
    CHECK_EXACT(cg_data(NODE(cg_unary(ok, CG_EXP, NODE(cg_leaf(ok, -1000.0))))), 0.0);
    CHECK_EXACT(cg_data(NODE(cg_unary(ok, CG_EXP, NODE(cg_leaf(ok, INFINITY))))), INFINITY);
    CHECK_EXACT(cg_data(NODE(cg_unary(ok, CG_LOG, NODE(cg_leaf(ok, INFINITY))))), INFINITY);
    CHECK(isnan(cg_data(NODE(cg_unary(ok, CG_EXP, NODE(cg_leaf(ok, NAN)))))));

    struct {
        double x, p;
        int want;
    } pows[] = {
        {0.0, -1.0, CG_ZERODIV}, {0.0, -0.5, CG_ZERODIV}, {-0.0, -2.0, CG_ZERODIV},
        {-8.0, 1.0 / 3.0, CG_DOMAIN}, {-1.0, 0.5, CG_DOMAIN},
        {10.0, 400.0, CG_RANGE}, {-10.0, 401.0, CG_RANGE}, {1e-300, -2.0, CG_RANGE},
    };
    for (size_t i = 0; i < sizeof pows / sizeof pows[0]; i++) {
        cg_block *src = new_block(2);
        cg_ref a = NODE(cg_leaf(src, pows[i].x)), p = NODE(cg_leaf(src, pows[i].p));
        cg_block *blk = new_block(1);
        CHECK_STATUS_NOALLOC(blk, cg_pow_const(blk, a, pows[i].p, 0), pows[i].want);
        cg_block_free(blk);
        blk = new_block(1);
        CHECK_STATUS_NOALLOC(blk, cg_pow(blk, a, p), pows[i].want);
        cg_block_free(blk);
        cg_block_free(src);
    }
    cg_block_free(ok); /* sealed by the blocks made since: only the newest makes nodes */
    ok = new_block(0);
    CHECK_EXACT(cg_data(NODE(cg_pow_const(ok, NODE(cg_leaf(ok, 0.0)), 0.0, 0))), 1.0);
    CHECK_EXACT(cg_data(NODE(cg_pow_const(ok, NODE(cg_leaf(ok, INFINITY)), 2.0, 0))), INFINITY);
    /* infinite exponents follow Python's float **: no error */
    CHECK_EXACT(cg_data(NODE(cg_pow_const(ok, NODE(cg_leaf(ok, 0.0)), -INFINITY, 0))), INFINITY);
    CHECK_EXACT(cg_data(NODE(cg_pow_const(ok, NODE(cg_leaf(ok, 2.0)), INFINITY, 0))), INFINITY);
    CHECK_EXACT(cg_data(NODE(cg_pow_const(ok, NODE(cg_leaf(ok, 0.5)), INFINITY, 0))), 0.0);
    CHECK_EXACT(cg_data(NODE(cg_pow_const(ok, NODE(cg_leaf(ok, -8.0)), -INFINITY, 0))), 0.0);
    cg_block_free(ok);
}

/* ---- tests: custom nodes -------------------------------------------------- */

/* f(a, b, c, d, e) = a*b*c + d - e, five operands (stored out of line) */
static void f5_backward(custom_op *self)
{
    cg_ref n = self->node;
    double g = cg_grad(n);
    cg_ref a = cg_arg(n, 0), b = cg_arg(n, 1), c = cg_arg(n, 2), d = cg_arg(n, 3), e = cg_arg(n, 4);
    cg_set_grad(a, cg_grad(a) + cg_data(b) * cg_data(c) * g);
    cg_set_grad(b, cg_grad(b) + cg_data(a) * cg_data(c) * g);
    cg_set_grad(c, cg_grad(c) + cg_data(a) * cg_data(b) * g);
    cg_set_grad(d, cg_grad(d) + g);
    cg_set_grad(e, cg_grad(e) - g);
}

/* q(a, b) = a / b, two operands (stored inline) */
static void q2_backward(custom_op *self)
{
    cg_ref n = self->node;
    double g = cg_grad(n);
    cg_ref a = cg_arg(n, 0), b = cg_arg(n, 1);
    cg_set_grad(a, cg_grad(a) + g / cg_data(b));
    cg_set_grad(b, cg_grad(b) - cg_data(a) / (cg_data(b) * cg_data(b)) * g);
}

/* Before any node has a Python backward, cg_backward_pure backpropagates;
 * after the first, it leaves everything as it was and says CG_CALLBACK.
 * (Runs before `custom` in the table: the count never goes down.) */
static void test_backward_pure(void)
{
    cg_block *blk = new_block(0);
    cg_ref a = NODE(cg_leaf(blk, 3.0)), b = NODE(cg_leaf(blk, -2.0));
    cg_ref ab = NODE(cg_mul(blk, a, b)), y = NODE(cg_add(blk, ab, a));
    CHECK_INT(cg_backward_pure(y), CG_OK);
    CHECK_EXACT(cg_grad(a), -2.0 + 1.0);
    CHECK_EXACT(cg_grad(b), 3.0);

    cg_set_grad(a, 0.0);
    cg_set_grad(b, 0.0);
    cg_set_grad(ab, 0.0);
    NODE(cg_custom(blk, 1.0, &a, 1)); /* the process's first Python backward */
    CHECK_INT(cg_backward_pure(y), CG_CALLBACK);
    CHECK_EXACT(cg_grad(a), 0.0);
    CHECK_EXACT(cg_grad(b), 0.0);
    cg_sweep *rest = NULL;
    CHECK_INT(cg_backward(y, &rest), CG_OK); /* the graph has none: done in one call */
    CHECK(rest == NULL);
    CHECK_EXACT(cg_grad(b), 3.0);
    cg_block_free(blk);
}

static void test_custom(void)
{
    cg_block *blk = new_block(0);
    const double xs[5] = {0.5, -1.5, 2.0, 0.25, 3.0};
    cg_ref x[5];
    REQUIRE(cg_leaves(blk, xs, 5, x) == CG_OK);

    size_t before = cg_block_bytes(blk);
    double f = xs[0] * xs[1] * xs[2] + xs[3] - xs[4];
    cg_ref f5 = NODE(cg_custom(blk, f, x, 5));
    CHECK(cg_block_bytes(blk) > before); /* its operand array is the block's */
    CHECK_INT(cg_op(f5), CG_CUSTOM);
    CHECK_INT(cg_nargs(f5), 5);
    for (size_t i = 0; i < 5; i++)
        CHECK_INT(cg_arg(f5, i), x[i]);
    CHECK_INT(cg_arg(f5, 5), CG_INDEX);
    CHECK_EXACT(cg_data(f5), f);

    cg_ref q2 = NODE(cg_custom(blk, xs[3] / xs[1], (cg_ref[]){x[3], x[1]}, 2));
    CHECK_INT(cg_nargs(q2), 2);
    CHECK_INT(cg_arg(q2, 0), x[3]);
    CHECK_INT(cg_arg(q2, 1), x[1]);

    /* without a callback the sweep passes over a custom node; with one it stops there */
    CHECK_INT(cg_node_backward(f5), CG_CALLBACK);
    custom_op op5 = {f5_backward, f5}, op2 = {q2_backward, q2};
    cg_set_callback(f5, &op5);
    cg_set_callback(q2, &op2);

    /* root = tanh(f5) * q2 */
    cg_ref t = NODE(cg_unary(blk, CG_TANH, f5));
    cg_ref root = NODE(cg_mul(blk, t, q2));
    cg_sweep *sw = NULL;
    REQUIRE(cg_sweep_begin(root, &sw) == CG_OK);
    CHECK_INT(cg_sweep_size(sw), 4);
    /* cg_backward runs the kernels of root and t (newest first), then hands
     * back the rest from q2, the newest custom node, on: q2 and f5 */
    cg_sweep *rest = NULL;
    CHECK_INT(cg_backward(root, &rest), CG_CALLBACK);
    REQUIRE(rest != NULL);
    CHECK_INT(cg_sweep_size(rest), 2);
    CHECK_EXACT(cg_grad(root), 1.0);
    CHECK_EXACT(cg_grad(q2), tanh(f));
    CHECK_EXACT(cg_grad(t), xs[3] / xs[1]);
    CHECK(cg_grad(f5) != 0.0);
    CHECK_EXACT(cg_grad(x[0]), 0.0); /* f5's backward is the caller's */
    cg_sweep_free(rest);
    cg_set_grad(t, 0.0);
    cg_set_grad(q2, 0.0);
    cg_set_grad(f5, 0.0);
    /* the same by hand, from the kept order */
    cg_set_grad(root, 1.0);
    void *cb = NULL;
    int calls = 0;
    int status;
    size_t cursor = 0;
    while ((status = cg_sweep_backward(sw, &cursor, &cb)) == CG_CALLBACK) {
        CHECK(cb == &op5 || cb == &op2);
        ((custom_op *)cb)->backward(cb);
        calls++;
    }
    CHECK_INT(status, CG_OK);
    CHECK_INT(calls, 2);
    CHECK_INT(cursor, 4);
    /* a finished pass stays finished: no callback, no kernel, no grad reset */
    double before_grad = cg_grad(x[0]);
    cg_set_grad(root, 5.0);
    CHECK_INT(cg_sweep_backward(sw, &cursor, &cb), CG_OK);
    CHECK_EXACT(cg_grad(x[0]), before_grad);
    CHECK_EXACT(cg_grad(root), 5.0);
    cg_set_grad(root, 1.0);
    cg_sweep_free(sw);

    double th = tanh(f), q = xs[3] / xs[1];
    double df = (1.0 - th * th) * q; /* d root / d f5 */
    CHECK_CLOSE(cg_grad(f5), df, 1e-15);
    CHECK_CLOSE(cg_grad(q2), th, 1e-15);
    CHECK_CLOSE(cg_grad(x[0]), xs[1] * xs[2] * df, 1e-14);
    CHECK_CLOSE(cg_grad(x[1]), xs[0] * xs[2] * df - xs[3] / (xs[1] * xs[1]) * th, 1e-14);
    CHECK_CLOSE(cg_grad(x[2]), xs[0] * xs[1] * df, 1e-14);
    CHECK_CLOSE(cg_grad(x[3]), df + th / xs[1], 1e-14);
    CHECK_CLOSE(cg_grad(x[4]), -df, 1e-14);

    /* detached callback: the sweep skips the node, so its operands get nothing */
    for (int i = 0; i < 5; i++)
        cg_set_grad(x[i], 0.0);
    cg_set_callback(f5, NULL);
    cg_set_callback(q2, NULL);
    CHECK_INT(backward(root, NULL), CG_OK);
    for (int i = 0; i < 5; i++)
        CHECK_EXACT(cg_grad(x[i]), 0.0);

    /* a custom node with one operand and with none */
    cg_ref c1 = NODE(cg_custom(blk, 1.0, x, 1));
    CHECK_INT(cg_nargs(c1), 1);
    cg_ref c0 = NODE(cg_custom(blk, 2.0, NULL, 0));
    CHECK_INT(cg_nargs(c0), 0);
    CHECK_INT(cg_op(c0), CG_CUSTOM);
    size_t size = 99; /* its Python backward runs, as micrograd runs every node's: it is handed back */
    CHECK_INT(backward(c0, &size), CG_OK);
    CHECK_INT(size, 1);

    /* a full block: CG_FULL for both operand layouts */
    cg_block *full = new_block(1);
    NODE(cg_leaf(full, 0.0));
    CHECK_INT(cg_custom(full, 1.0, x, 5), CG_FULL);
    CHECK_INT(cg_custom(full, 1.0, x, 2), CG_FULL);
    cg_block_free(full);
    cg_block_free(blk);
}

/* ---- tests: the sweep ----------------------------------------------------- */

static void test_sweep_accumulates(void)
{
    cg_block *blk = new_block(0);
    cg_ref a = NODE(cg_leaf(blk, 3.0)), b = NODE(cg_leaf(blk, -2.0));
    cg_ref c = NODE(cg_mul(blk, a, b));
    cg_ref d = NODE(cg_add(blk, c, c)); /* a shared operand */
    size_t size = 0;
    CHECK_INT(backward(d, &size), CG_OK);
    CHECK_INT(size, 2); /* interior nodes only, each once */
    CHECK_EXACT(cg_grad(d), 1.0);
    CHECK_EXACT(cg_grad(c), 2.0);
    CHECK_EXACT(cg_grad(a), -4.0);
    CHECK_EXACT(cg_grad(b), 6.0);
    /* a second backward without zeroing: micrograd's accumulation */
    CHECK_INT(backward(d, NULL), CG_OK);
    CHECK_EXACT(cg_grad(d), 1.0);
    CHECK_EXACT(cg_grad(c), 4.0);
    CHECK_EXACT(cg_grad(a), -12.0);
    CHECK_EXACT(cg_grad(b), 18.0);

    /* from a leaf: nothing to order, and the leaf's grad becomes 1 */
    CHECK_INT(backward(a, &size), CG_OK);
    CHECK_INT(size, 0);
    CHECK_EXACT(cg_grad(a), 1.0);

    /* only nodes reachable from the root are touched */
    cg_ref e = NODE(cg_leaf(blk, 5.0));
    cg_ref other = NODE(cg_mul(blk, e, a)); /* uses a, not reachable from c */
    cg_set_grad(other, 7.0);
    cg_set_grad(e, 0.0);
    CHECK_INT(backward(c, &size), CG_OK);
    CHECK_INT(size, 1);
    CHECK_EXACT(cg_grad(e), 0.0);
    CHECK_EXACT(cg_grad(other), 7.0);

    /* a sweep freed unfinished leaks nothing, and the graph can be swept again */
    cg_sweep *sw = NULL;
    REQUIRE(cg_sweep_begin(d, &sw) == CG_OK);
    cg_sweep_free(sw);
    cg_sweep_free(NULL);
    CHECK_INT(backward(d, &size), CG_OK);
    CHECK_INT(size, 2);

    /* a sweep is kept and reused: ordering touches no grad, and each pass
     * runs the kernels from the grads as they are (accumulation) */
    cg_set_grad(a, 0.0);
    cg_set_grad(b, 0.0);
    cg_set_grad(c, 0.0);
    cg_set_grad(d, 0.5);
    REQUIRE(cg_sweep_begin(d, &sw) == CG_OK);
    CHECK_EXACT(cg_grad(d), 0.5);
    CHECK_EXACT(cg_grad(a), 0.0);
    cg_set_grad(d, 1.0);
    CHECK_INT(run_sweep(sw), CG_OK);
    CHECK_EXACT(cg_grad(a), -4.0);
    CHECK_INT(run_sweep(sw), CG_OK);
    CHECK_EXACT(cg_grad(c), 4.0);
    CHECK_EXACT(cg_grad(a), -12.0);
    cg_sweep_free(sw);
    cg_block_free(blk);
}

/* Every kind of node over the leaves x[0] (> 0) and x[1] (> 0). */
static cg_ref build_everything(cg_block *blk, const cg_ref *x, size_t n)
{
    (void)n;
#define TRY(var, expr)                                                     \
    cg_ref var = (expr);                                                   \
    if (var < CG_REF_MIN)                                                  \
        return var;
    TRY(m, cg_mul(blk, x[0], x[1]))
    TRY(p, cg_pow_const(blk, x[0], 2.0, 0))
    TRY(s, cg_add(blk, m, p))
    TRY(t, cg_unary(blk, CG_TANH, s))
    TRY(l, cg_unary(blk, CG_LOG, x[1]))
    TRY(q, cg_pow(blk, x[1], x[0]))
    TRY(k, cg_add_const(blk, q, -0.5, 0))
    TRY(k2, cg_mul_const(blk, k, 1.5, 0))
    cg_ref args[4] = {t, l, k2, x[0]};
    cg_ref out[4];
    TRY(g, cg_softmax(blk, args, 4, 0, out))
    (void)g;
    TRY(ce, cg_cross_entropy(blk, args, 4, 2))
    TRY(lse, cg_reduce(blk, CG_LOGSUMEXP, args, 4))
    TRY(mean, cg_reduce(blk, CG_MEAN, args, 4))
    cg_ref ws[3] = {out[0], out[3], lse}, vs[3] = {ce, mean, out[1]};
    TRY(d, cg_dot(blk, out[2], ws, vs, 3))
    TRY(e, cg_unary(blk, CG_SIGMOID, d))
    TRY(f, cg_unary(blk, CG_SIN, e))
    TRY(h, cg_unary(blk, CG_COS, f))
    TRY(r, cg_unary(blk, CG_RELU, h))
    TRY(x2, cg_unary(blk, CG_EXP, r))
    return x2;
#undef TRY
}

static void test_replay(void)
{
    const double at[2] = {0.7, 1.3}, moved[2] = {1.1, 0.4};
    cg_block *blk = new_block(0);
    cg_ref x[2];
    REQUIRE(cg_leaves(blk, at, 2, x) == CG_OK);
    cg_ref root = NODE(build_everything(blk, x, 2));
    cg_sweep *sw = NULL;
    REQUIRE(cg_sweep_begin(root, &sw) == CG_OK);
    CHECK_INT(backward(root, NULL), CG_OK);

    /* new leaf data, replayed: the same data and grads as a graph built there */
    cg_block *fresh = new_block(0);
    cg_ref y[2];
    REQUIRE(cg_leaves(fresh, moved, 2, y) == CG_OK);
    cg_ref froot = NODE(build_everything(fresh, y, 2));
    CHECK_INT(backward(froot, NULL), CG_OK);
    for (int round = 0; round < 2; round++) { /* twice: a replay starts clean */
        cg_set_data(x[0], moved[0]);
        cg_set_data(x[1], moved[1]);
        cg_set_grad(x[0], 0.0);
        cg_set_grad(x[1], 0.0);
        CHECK_INT(cg_sweep_replay(sw), CG_OK);
        CHECK_EXACT(cg_data(root), cg_data(froot));
        CHECK_EXACT(cg_grad(root), 0.0); /* interior grads zeroed */
        CHECK_INT(backward(root, NULL), CG_OK);
        CHECK_EXACT(cg_grad(x[0]), cg_grad(y[0]));
        CHECK_EXACT(cg_grad(x[1]), cg_grad(y[1]));
    }

    /* a math error stops the replay with the op's status; good data repairs it */
    cg_set_data(x[1], -1.0); /* log(-1) */
    CHECK_INT(cg_sweep_replay(sw), CG_DOMAIN);
    cg_set_data(x[1], moved[1]);
    CHECK_INT(cg_sweep_replay(sw), CG_OK);
    CHECK_EXACT(cg_data(root), cg_data(froot));
    cg_sweep_free(sw);

    /* a node whose data Python computed cannot be replayed: nothing changes */
    cg_ref c = NODE(cg_custom(fresh, 42.0, x, 2)); /* fresh is the newest block */
    cg_ref top = NODE(cg_mul(fresh, c, root));
    REQUIRE(cg_sweep_begin(top, &sw) == CG_OK);
    double before = cg_data(root);
    cg_set_data(x[0], at[0]);
    CHECK_INT(cg_sweep_replay(sw), CG_NOREPLAY);
    CHECK_EXACT(cg_data(root), before);
    CHECK_EXACT(cg_data(c), 42.0);
    cg_sweep_free(sw);

    /* gradcheck of the whole graph */
    gradcheck("every op", build_everything, at, 2, 1e-6);
    cg_block_free(fresh);
    cg_block_free(blk);
}

/* The order is micrograd's build_topo (postorder over operands, in operand
 * order), reversed: observed through custom nodes that log their turn. */
static int order_log[8], order_len;
static void log_backward(custom_op *self)
{
    order_len < 8 ? (void)(order_log[order_len++] = (int)cg_data(self->node)) : (void)0;
}

static void test_sweep_order(void)
{
    cg_block *blk = new_block(0);
    cg_ref a = NODE(cg_leaf(blk, 0.0));
    /* n1(a), n2(a), n3(n2), n4(n3, n1): the sweep runs newest first, 4 3 2 1
     * (micrograd's depth-first order would run 4 1 3 2) */
    cg_ref n1 = NODE(cg_custom(blk, 1.0, &a, 1));
    cg_ref n2 = NODE(cg_custom(blk, 2.0, &a, 1));
    cg_ref n3 = NODE(cg_custom(blk, 3.0, &n2, 1));
    cg_ref n4 = NODE(cg_custom(blk, 4.0, (cg_ref[]){n3, n1}, 2));
    custom_op ops[4] = {{log_backward, n1}, {log_backward, n2}, {log_backward, n3}, {log_backward, n4}};
    cg_set_callback(n1, &ops[0]);
    cg_set_callback(n2, &ops[1]);
    cg_set_callback(n3, &ops[2]);
    cg_set_callback(n4, &ops[3]);
    order_len = 0;
    CHECK_INT(backward(n4, NULL), CG_OK);
    CHECK_INT(order_len, 4);
    CHECK(order_len == 4 && order_log[0] == 4 && order_log[1] == 3 && order_log[2] == 2 &&
          order_log[3] == 1);
    cg_block_free(blk);
}

/* Making a block seals the one before it, so nodes are made in creation
 * order across blocks, and the sweep walks back across blocks (past freed
 * ones, and past nodes of other graphs, which it leaves alone). */
static void test_blocks_in_creation_order(void)
{
    cg_block *old = new_block(0);
    cg_ref a = NODE(cg_leaf(old, 1.0));
    cg_ref stray = NODE(cg_mul(old, a, a)); /* another graph's node */
    cg_block *young = new_block(0);
    CHECK_INT(cg_leaf(old, 2.0), CG_FULL);
    cg_ref b = NODE(cg_add(young, a, a));
    cg_block *gone = new_block(0);
    NODE(cg_leaf(gone, 3.0));
    cg_block_free(gone); /* the newest freed: the sealed ones stay sealed */
    CHECK_INT(cg_leaf(young, 0.0), CG_FULL);
    cg_block *last = new_block(0);
    cg_ref other = NODE(cg_mul(last, a, a)); /* not reachable from c */
    cg_ref c = NODE(cg_mul(last, b, stray)); /* (a + a) * (a * a) = 2 a**3 */
    cg_set_grad(other, 5.0);
    size_t size = 0;
    CHECK_INT(backward(c, &size), CG_OK);
    CHECK_INT(size, 3);
    CHECK_EXACT(cg_grad(a), 6.0);
    CHECK_EXACT(cg_grad(b), 1.0);
    CHECK_EXACT(cg_grad(stray), 2.0);
    CHECK_EXACT(cg_grad(other), 5.0);
    cg_block_free(last);
    cg_block_free(young);
    cg_block_free(old);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(start, bytes) ASAN_POISON_MEMORY_REGION((void *)(start), (bytes))
#define UNPOISON(start, bytes) ASAN_UNPOISON_MEMORY_REGION((void *)(start), (bytes))
#else
#define POISON(start, bytes) ((void)(start), (void)(bytes))
#define UNPOISON(start, bytes) ((void)(start), (void)(bytes))
#endif

/* The sweep passes over a block that holds none of the nodes it still has
 * to reach without reading that block's nodes, and in a block sealed before
 * it filled up it starts at the last node handed out. Under AddressSanitizer
 * (`make asan`) the nodes it must not read are poisoned, so reading one of
 * them ends the run; elsewhere this checks the grads only. */
static void test_walk_skips_blocks_without_reachable_nodes(void)
{
    enum { FIRST_NODES = 64, MIDDLE_NODES = 128 };
    cg_block *first = new_block(FIRST_NODES);
    cg_ref a = NODE(cg_leaf(first, 2.0));
    cg_ref b = NODE(cg_mul(first, a, a));
    cg_block *middle = new_block(MIDDLE_NODES); /* another graph, interior nodes and all */
    cg_ref m0 = NODE(cg_leaf(middle, 1.0));
    cg_ref m = NODE(cg_add(middle, m0, m0));
    size_t node_bytes = (size_t)(m - m0); /* made one after the other */
    for (int i = 0; i < MIDDLE_NODES / 2; i++)
        m = NODE(cg_add(middle, m, m0));
    cg_block *last = new_block(0);
    cg_ref c = NODE(cg_add(last, b, a)); /* a * a + a */
    size_t poisoned = MIDDLE_NODES * node_bytes; /* m0 is the block's first node */
    cg_ref unused = b + node_bytes;                /* first's nodes past b, never handed out */
    size_t unused_bytes = (FIRST_NODES - 2) * node_bytes;
    POISON(m0, poisoned);
    POISON(unused, unused_bytes);
    CHECK_INT(backward(c, NULL), CG_OK);
    UNPOISON(m0, poisoned);
    UNPOISON(unused, unused_bytes);
    CHECK_EXACT(cg_grad(a), 5.0);
    CHECK_EXACT(cg_grad(b), 1.0);
    CHECK_EXACT(cg_grad(m), 0.0);
    cg_block_free(last);
    cg_block_free(middle);
    cg_block_free(first);
}

/* Blocks allocated as Python does it: a fresh default block when one fills. */
typedef struct {
    cg_block **blocks;
    size_t count, cap;
} block_list;

static cg_block *block_list_add(block_list *l)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        cg_block **p = realloc(l->blocks, cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        l->blocks = p;
        l->cap = cap;
    }
    return l->blocks[l->count++] = new_block(0);
}

static void block_list_free(block_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        cg_block_free(l->blocks[i]);
    free(l->blocks);
}

static void test_deep_chain(void)
{
    /* chain_depth ops alternating *1 and +1, spread over ~2*depth/1024
     * default blocks. A recursive ordering would overflow the C stack. */
    block_list bl = {0};
    cg_block *blk = block_list_add(&bl);
    cg_ref x = NODE(cg_leaf(blk, 0.5));
    cg_ref v = x;
    for (size_t i = 0; i < chain_depth; i++) {
        cg_ref next = (i & 1) ? cg_add_const(blk, v, 1.0, 0) : cg_mul_const(blk, v, 1.0, 0);
        if (next == CG_FULL) {
            blk = block_list_add(&bl);
            next = (i & 1) ? cg_add_const(blk, v, 1.0, 0) : cg_mul_const(blk, v, 1.0, 0);
        }
        v = NODE(next);
    }
    CHECK_EXACT(cg_data(v), 0.5 + (double)(chain_depth / 2));
    CHECK(bl.count > chain_depth / 1024);
    size_t size = 0;
    CHECK_INT(backward(v, &size), CG_OK);
    CHECK_INT(size, chain_depth);
    CHECK_EXACT(cg_grad(x), 1.0);
    /* again without zeroing: as in micrograd, every interior grad was left at
     * 1 and accumulates, so x gets 1 + depth */
    CHECK_INT(backward(v, NULL), CG_OK);
    CHECK_EXACT(cg_grad(x), 1.0 + (double)chain_depth);
    block_list_free(&bl);
}

/* ---- tests: blocks filling up --------------------------------------------- */

static void test_full(void)
{
    cg_block *blk = new_block(3);
    cg_ref a = NODE(cg_leaf(blk, 2.0)), b = NODE(cg_leaf(blk, 5.0));
    cg_ref c = NODE(cg_add(blk, a, b));
    /* full: every creator says so, and creates nothing */
    CHECK_INT(cg_leaf(blk, 1.0), CG_FULL);
    CHECK_INT(cg_add(blk, a, b), CG_FULL);
    CHECK_INT(cg_mul(blk, a, b), CG_FULL);
    CHECK_INT(cg_add_const(blk, a, 1.0, 0), CG_FULL);
    CHECK_INT(cg_mul_const(blk, a, 1.0, 0), CG_FULL);
    CHECK_INT(cg_pow_const(blk, a, 2.0, 0), CG_FULL);
    CHECK_INT(cg_pow(blk, a, b), CG_FULL);
    CHECK_INT(cg_unary(blk, CG_EXP, a), CG_FULL);
    CHECK_INT(cg_custom(blk, 1.0, &a, 1), CG_FULL);
    cg_ref out[1] = {0};
    CHECK_INT(cg_leaves(blk, (double[]){1.0}, 1, out), CG_FULL);
    CHECK_INT(out[0], 0);
    /* a math error is reported before any allocation, even by a full block */
    cg_block *more = new_block(0);
    cg_ref neg = NODE(cg_mul_const(more, a, -1.0, 0));
    CHECK_INT(cg_unary(blk, CG_LOG, neg), CG_DOMAIN);
    CHECK_INT(cg_pow_const(blk, neg, 0.5, 0), CG_DOMAIN);

    /* retried in a fresh block, a graph spans blocks and sweeps as one */
    cg_ref d = cg_mul(blk, c, neg);
    CHECK_INT(d, CG_FULL);
    d = NODE(cg_mul(more, c, neg));
    CHECK_EXACT(cg_data(d), -14.0);
    CHECK_INT(backward(d, NULL), CG_OK);
    CHECK_EXACT(cg_grad(a), -2.0 + -7.0); /* d = (a+b) * -a */
    CHECK_EXACT(cg_grad(b), -2.0);

    /* a block that was exactly filled, and one of a single node */
    cg_block *one = new_block(1);
    NODE(cg_leaf(one, 1.0));
    CHECK_INT(cg_leaf(one, 1.0), CG_FULL);
    cg_block_free(one);

    /* an absurd request fails without wrapping the block's counter: the
     * next node is a new one, not the block's first again */
    cg_block *wrap = new_block(4);
    cg_ref first = NODE(cg_leaf(wrap, 1.0));
    CHECK_INT(cg_leaves(wrap, (double[]){0.0}, SIZE_MAX, out), CG_FULL);
    cg_ref next = cg_leaf(wrap, 2.0);
    CHECK(next != first);
    CHECK_EXACT(cg_data(first), 1.0);
    cg_block_free(wrap);
    cg_block_free(more);
    cg_block_free(blk);
}

/* ---- tests: fused n-ary ops (fused.c) ------------------------------------ */

static const double XS7[] = {0.3, -1.2, 2.5, 0.0, -0.7, 1.1, 3.2};

/* log(sum(exp(x))) straight from the definition (fine for these small xs) */
static double naive_lse(const double *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += exp(x[i]);
    return log(s);
}

static void test_reduce(void)
{
    cg_block *blk = new_block(0);
    cg_ref x[7];
    REQUIRE(cg_leaves(blk, XS7, 7, x) == CG_OK);
    static const int ops[] = {CG_SUM, CG_MEAN, CG_LOGSUMEXP};
    for (size_t o = 0; o < 3; o++) {
        for (size_t n = 1; n <= 7; n += 3) {
            CHECK_INT(cg_fused_nodes(ops[o], n), 1);
            for (size_t i = 0; i < n; i++)
                cg_set_grad(x[i], 0.0);
            cg_ref r = NODE(cg_reduce(blk, ops[o], x, n));
            CHECK_INT(cg_op(r), ops[o]);
            CHECK_INT(cg_nargs(r), n);
            for (size_t i = 0; i < n; i++)
                CHECK_INT(cg_arg(r, i), x[i]);
            CHECK_INT(cg_arg(r, n), CG_INDEX);
            double sum = XS7[0]; /* left to right, as Python's sum */
            for (size_t i = 1; i < n; i++)
                sum += XS7[i];
            double want = ops[o] == CG_SUM ? sum : ops[o] == CG_MEAN ? sum / (double)n
                                                                    : naive_lse(XS7, n);
            CHECK_CLOSE(cg_data(r), want, ops[o] == CG_LOGSUMEXP ? 1e-15 : 0.0);
            cg_set_grad(r, 2.0);
            CHECK_INT(cg_node_backward(r), CG_OK);
            for (size_t i = 0; i < n; i++) {
                double g = ops[o] == CG_SUM    ? 2.0
                           : ops[o] == CG_MEAN ? 2.0 / (double)n
                                               : 2.0 * exp(XS7[i] - naive_lse(XS7, n));
                CHECK_CLOSE(cg_grad(x[i]), g, 1e-15);
            }
        }
        CHECK_INT(cg_reduce(blk, ops[o], x, 0), CG_EMPTY);
    }
    CHECK_INT(cg_reduce(blk, CG_ADD, x, 2), CG_DOMAIN);
    CHECK_INT(cg_reduce(blk, CG_SOFTMAX, x, 2), CG_DOMAIN);

    /* logsumexp of large operands: the maximum is taken out, no overflow */
    cg_ref big[2] = {NODE(cg_leaf(blk, 1000.0)), NODE(cg_leaf(blk, 1000.0))};
    cg_ref l = NODE(cg_reduce(blk, CG_LOGSUMEXP, big, 2));
    CHECK_CLOSE(cg_data(l), 1000.0 + log(2.0), 1e-15);
    CHECK_INT(backward(l, NULL), CG_OK);
    /* exp(x - lse) with lse rounded at 1000's ulp: torch's formula, as precise */
    CHECK_CLOSE(cg_grad(big[0]), 0.5, 1e-12);

    /* no room: CG_FULL, and a fresh block takes it */
    cg_block *one = new_block(1);
    NODE(cg_leaf(one, 0.0));
    CHECK_INT(cg_reduce(one, CG_SUM, x, 3), CG_FULL);
    cg_block_free(one);
    cg_block_free(blk);
}

static int reduce_op_for_builder;
static cg_ref build_reduce(cg_block *blk, const cg_ref *x, size_t n)
{
    /* reduce(x) * x[0], so that the grads differ from operand to operand */
    cg_ref r = cg_reduce(blk, reduce_op_for_builder, x, n);
    return r < CG_REF_MIN ? r : cg_mul(blk, r, x[0]);
}

static cg_ref build_dot(cg_block *blk, const cg_ref *x, size_t n)
{
    size_t m = (n - 1) / 2; /* x: start, w[0..m-1], v[0..m-1] */
    cg_ref d = cg_dot(blk, x[0], x + 1, x + 1 + m, m);
    return d < CG_REF_MIN ? d : cg_unary(blk, CG_TANH, d);
}

static void test_fused_gradcheck(void)
{
    static const int ops[] = {CG_SUM, CG_MEAN, CG_LOGSUMEXP};
    for (size_t o = 0; o < 3; o++) {
        reduce_op_for_builder = ops[o];
        gradcheck("reduce", build_reduce, XS7, 7, 1e-6);
        gradcheck("reduce of one", build_reduce, XS7 + 2, 1, 1e-6);
    }
    gradcheck("dot", build_dot, XS7, 7, 1e-6);
    gradcheck("dot of nothing", build_dot, XS7, 1, 1e-6);
}

/* cg_layer makes the nodes that cg_dot and a relu per neuron make: same data,
 * same grads, bit for bit. */
static void test_layer(void)
{
    enum { NIN = 3, NOUT = 4 };
    double wv[NOUT * NIN], bv[NOUT], xv[NIN];
    for (int i = 0; i < NOUT * NIN; i++)
        wv[i] = 0.37 * (i % 5) - 0.8;
    for (int j = 0; j < NOUT; j++)
        bv[j] = 0.25 * j - 0.3;
    for (int i = 0; i < NIN; i++)
        xv[i] = 0.6 - 0.45 * i;
    for (int relu = 0; relu <= 1; relu++) {
        cg_block *blk = new_block(0); /* the small block below seals it */
        cg_ref w[NOUT * NIN], b[NOUT], x[NIN], w2[NOUT * NIN], b2[NOUT], x2[NIN];
        REQUIRE(cg_leaves(blk, wv, NOUT * NIN, w) == CG_OK);
        REQUIRE(cg_leaves(blk, bv, NOUT, b) == CG_OK);
        REQUIRE(cg_leaves(blk, xv, NIN, x) == CG_OK);
        REQUIRE(cg_leaves(blk, wv, NOUT * NIN, w2) == CG_OK);
        REQUIRE(cg_leaves(blk, bv, NOUT, b2) == CG_OK);
        REQUIRE(cg_leaves(blk, xv, NIN, x2) == CG_OK);
        cg_ref out[2 * NOUT], one_by_one[NOUT];
        cg_ref first = NODE(cg_layer(blk, w, b, x, NIN, NOUT, relu, out));
        CHECK_INT(first, out[0]);
        for (int j = 0; j < NOUT; j++) {
            cg_ref d = NODE(cg_dot(blk, b2[j], w2 + j * NIN, x2, NIN));
            one_by_one[j] = relu ? NODE(cg_unary(blk, CG_RELU, d)) : d;
            cg_ref dot = out[j * (relu ? 2 : 1)], y = relu ? out[2 * j + 1] : dot;
            CHECK_INT(cg_op(dot), CG_DOT);
            CHECK_INT(cg_nargs(dot), 1 + 2 * NIN);
            CHECK_INT(cg_arg(dot, 0), b[j]);
            CHECK_INT(cg_arg(dot, 1 + NIN), x[0]);
            if (relu) {
                CHECK_INT(cg_op(y), CG_RELU);
                CHECK_INT(cg_arg(y, 0), dot);
            }
            CHECK_EXACT(cg_data(y), cg_data(one_by_one[j]));
        }
        /* a loss over every output: the same grads both ways */
        cg_ref outs[NOUT];
        for (int j = 0; j < NOUT; j++)
            outs[j] = relu ? out[2 * j + 1] : out[j];
        cg_ref loss = NODE(cg_reduce(blk, CG_SUM, outs, NOUT));
        cg_ref loss2 = NODE(cg_reduce(blk, CG_SUM, one_by_one, NOUT));
        CHECK_INT(backward(loss, NULL), CG_OK);
        CHECK_INT(backward(loss2, NULL), CG_OK);
        for (int i = 0; i < NOUT * NIN; i++)
            CHECK_EXACT(cg_grad(w[i]), cg_grad(w2[i]));
        for (int i = 0; i < NIN; i++)
            CHECK_EXACT(cg_grad(x[i]), cg_grad(x2[i]));
        for (int j = 0; j < NOUT; j++)
            CHECK_EXACT(cg_grad(b[j]), cg_grad(b2[j]));
        /* all or nothing: room for the dots but not their relus is CG_FULL,
         * no neurons CG_EMPTY */
        cg_block *small = new_block(NOUT);
        CHECK_INT(cg_layer(small, w, b, x, NIN, NOUT, 1, out), CG_FULL);
        cg_block_free(small);
        CHECK_INT(cg_layer(blk, w, b, x, NIN, 0, relu, out), CG_EMPTY);
        cg_block_free(blk);
    }
}

static void test_dot(void)
{
    cg_block *blk = new_block(0);
    cg_ref x[7];
    REQUIRE(cg_leaves(blk, XS7, 7, x) == CG_OK);
    /* start x0, ws x1..x3, xs x4..x6 */
    cg_ref d = NODE(cg_dot(blk, x[0], x + 1, x + 4, 3));
    CHECK_INT(cg_op(d), CG_DOT);
    CHECK_INT(cg_nargs(d), 7);
    CHECK_INT(cg_arg(d, 0), x[0]);
    double want = XS7[0];
    for (int i = 0; i < 3; i++)
        want += XS7[1 + i] * XS7[4 + i]; /* micrograd's sum(w*x, start), same order */
    CHECK_EXACT(cg_data(d), want);
    CHECK_INT(backward(d, NULL), CG_OK);
    CHECK_EXACT(cg_grad(x[0]), 1.0);
    for (int i = 0; i < 3; i++) {
        CHECK_EXACT(cg_grad(x[1 + i]), XS7[4 + i]);
        CHECK_EXACT(cg_grad(x[4 + i]), XS7[1 + i]);
    }
    /* the same operand as weight and input: both contributions */
    cg_ref sq = NODE(cg_dot(blk, x[0], &x[2], &x[2], 1));
    cg_set_grad(x[2], 0.0);
    CHECK_INT(backward(sq, NULL), CG_OK);
    CHECK_EXACT(cg_grad(x[2]), 2.0 * XS7[2]);
    /* n == 0: just start */
    cg_ref s = NODE(cg_dot(blk, x[3], NULL, NULL, 0));
    CHECK_EXACT(cg_data(s), XS7[3]);
    CHECK_INT(cg_nargs(s), 1);
    CHECK_INT(cg_dot(blk, x[0], x, x, SIZE_MAX / 2 + 1), CG_NOMEM);
    cg_block_free(blk);
}

/* sum_i c_i * out_i over the n outputs of a (log_)softmax, with c_i = i + 1 */
static int softmax_log_for_builder;
static cg_ref build_softmax(cg_block *blk, const cg_ref *x, size_t n)
{
    cg_ref out[GC_MAX];
    cg_ref g = cg_softmax(blk, x, n, softmax_log_for_builder, out);
    if (g < CG_REF_MIN)
        return g;
    cg_ref acc = cg_mul_const(blk, out[0], 1.0, 0);
    for (size_t i = 1; i < n && acc >= CG_REF_MIN; i++) {
        cg_ref t = cg_mul_const(blk, out[i], (double)(i + 1), 0);
        acc = t < CG_REF_MIN ? t : cg_add(blk, acc, t);
    }
    return acc;
}

static void test_softmax(void)
{
    for (int log_ = 0; log_ <= 1; log_++) {
        int group_op = log_ ? CG_LOG_SOFTMAX : CG_SOFTMAX;
        size_t n = 5;
        CHECK_INT(cg_fused_nodes(group_op, n), n + 1);
        cg_block *blk = new_block(0);
        cg_ref x[5], out[5];
        REQUIRE(cg_leaves(blk, XS7, n, x) == CG_OK);
        cg_ref g = NODE(cg_softmax(blk, x, n, log_, out));
        CHECK_INT(cg_op(g), group_op);
        CHECK_INT(cg_nargs(g), n);
        double lse = naive_lse(XS7, n), total = 0.0;
        CHECK_CLOSE(cg_data(g), lse, 1e-15); /* the group's data is logsumexp */
        for (size_t i = 0; i < n; i++) {
            CHECK_INT(cg_op(out[i]), CG_PICK);
            CHECK_INT(cg_index(out[i]), i);
            CHECK_INT(cg_nargs(out[i]), 1);
            CHECK_INT(cg_arg(out[i], 0), g);
            double p = exp(XS7[i] - lse);
            CHECK_CLOSE(cg_data(out[i]), log_ ? XS7[i] - lse : p, 1e-14);
            total += cg_data(out[i]);
        }
        if (!log_)
            CHECK_CLOSE(total, 1.0, 1e-15);

        /* root = sum_i c_i out_i: d/dx_j = p_j (c_j - sum_i c_i p_i) for softmax,
         * c_j - p_j sum_i c_i for log_softmax */
        softmax_log_for_builder = log_;
        cg_ref root = NODE(build_softmax(blk, x, n));
        double cp = 0.0, csum = 0.0;
        for (size_t i = 0; i < n; i++) {
            cp += (double)(i + 1) * exp(XS7[i] - lse);
            csum += (double)(i + 1);
        }
        for (size_t i = 0; i < n; i++)
            cg_set_grad(x[i], 0.0);
        CHECK_INT(backward(root, NULL), CG_OK);
        for (size_t j = 0; j < n; j++) {
            double p = exp(XS7[j] - lse), c = (double)(j + 1);
            CHECK_CLOSE(cg_grad(x[j]), log_ ? c - p * csum : p * (c - cp), 1e-13);
        }
        gradcheck(log_ ? "log_softmax" : "softmax", build_softmax, XS7, n, 1e-6);
        gradcheck(log_ ? "log_softmax of one" : "softmax of one", build_softmax, XS7, 1, 1e-6);

        /* one output as the root, through the same group: what the first
         * sweep pushed into the group was used up and cleared */
        for (size_t i = 0; i < n; i++)
            cg_set_grad(x[i], 0.0);
        CHECK_INT(backward(out[2], NULL), CG_OK);
        for (size_t j = 0; j < n; j++) {
            double p = exp(XS7[j] - lse), d = j == 2 ? 1.0 : 0.0;
            CHECK_CLOSE(cg_grad(x[j]), log_ ? d - p : exp(XS7[2] - lse) * (d - p), 1e-14);
        }

        CHECK_INT(cg_softmax(blk, x, 0, log_, out), CG_EMPTY);
        cg_block *small = new_block(n); /* needs n + 1 */
        CHECK_INT(cg_softmax(small, x, n, log_, out), CG_FULL);
        cg_block_free(small);
        small = new_block(n + 1);
        NODE(cg_softmax(small, x, n, log_, out));
        cg_block_free(small);
        cg_block_free(blk);
    }
}

static size_t ce_target_for_builder;
static cg_ref build_cross_entropy(cg_block *blk, const cg_ref *x, size_t n)
{
    return cg_cross_entropy(blk, x, n, ce_target_for_builder);
}

static void test_cross_entropy(void)
{
    size_t n = 6;
    cg_block *blk = new_block(0);
    cg_ref x[6];
    REQUIRE(cg_leaves(blk, XS7, n, x) == CG_OK);
    double lse = naive_lse(XS7, n);
    for (size_t t = 0; t < n; t += 5) {
        for (size_t i = 0; i < n; i++)
            cg_set_grad(x[i], 0.0);
        cg_block *round = new_block(0); /* gradcheck below makes blocks */
        cg_ref ce = NODE(cg_cross_entropy(round, x, n, t));
        CHECK_INT(cg_op(ce), CG_CROSS_ENTROPY);
        CHECK_INT(cg_index(ce), t);
        CHECK_INT(cg_nargs(ce), n);
        CHECK_CLOSE(cg_data(ce), lse - XS7[t], 1e-14);
        CHECK_INT(backward(ce, NULL), CG_OK);
        for (size_t i = 0; i < n; i++)
            CHECK_CLOSE(cg_grad(x[i]), exp(XS7[i] - lse) - (i == t ? 1.0 : 0.0), 1e-14);
        ce_target_for_builder = t;
        gradcheck("cross_entropy", build_cross_entropy, XS7, n, 1e-6);
        cg_block_free(round);
    }
    cg_block *tail = new_block(0); /* blk, holding x, is sealed */
    CHECK_INT(cg_cross_entropy(tail, x, n, n), CG_INDEX);
    CHECK_INT(cg_cross_entropy(tail, x, 0, 0), CG_EMPTY);
    /* large logits: no overflow */
    cg_ref big[2] = {NODE(cg_leaf(tail, 800.0)), NODE(cg_leaf(tail, -800.0))};
    CHECK_CLOSE(cg_data(NODE(cg_cross_entropy(tail, big, 2, 0))), 0.0, 1e-15);
    CHECK_CLOSE(cg_data(NODE(cg_cross_entropy(tail, big, 2, 1))), 1600.0, 1e-15);
    cg_block_free(tail);
    cg_block_free(blk);
}

static void test_bulk(void)
{
    cg_block *blk = new_block(0);
    cg_ref x[7];
    double out[7], in[7];
    REQUIRE(cg_leaves(blk, XS7, 7, x) == CG_OK);
    cg_gather_data(x, 7, out);
    for (int i = 0; i < 7; i++)
        CHECK_EXACT(out[i], XS7[i]);
    for (int i = 0; i < 7; i++)
        in[i] = -2.0 * i;
    cg_scatter_grad(x, 7, in);
    cg_gather_grad(x, 7, out);
    for (int i = 0; i < 7; i++) {
        CHECK_EXACT(out[i], -2.0 * i);
        CHECK_EXACT(cg_grad(x[i]), -2.0 * i);
    }
    cg_scatter_data(x, 3, in);
    CHECK_EXACT(cg_data(x[2]), -4.0);
    CHECK_EXACT(cg_data(x[3]), XS7[3]); /* only n written */
    cg_gather_data(x, 0, NULL);         /* n == 0 touches nothing */
    cg_block_free(blk);
}

/* ---- tests: optimizers (optim.c) ------------------------------------------ */

static void test_sgd(void)
{
    cg_block *blk = new_block(0);
    const double p0[3] = {1.0, -2.0, 0.5}, g[3] = {0.1, -0.4, 2.0};
    cg_ref p[3];
    REQUIRE(cg_leaves(blk, p0, 3, p) == CG_OK);
    cg_scatter_grad(p, 3, g);
    cg_sgd_step(p, 3, 0.1, 0.0, NULL, 1); /* plain: p -= lr * g */
    for (int i = 0; i < 3; i++)
        CHECK_CLOSE(cg_data(p[i]), p0[i] - 0.1 * g[i], 1e-16);

    /* momentum: buf = g on the first step, then buf = m * buf + g */
    double buf[3] = {0, 0, 0}, want[3], b[3];
    cg_scatter_data(p, 3, p0);
    for (int i = 0; i < 3; i++) {
        b[i] = g[i];
        want[i] = p0[i] - 0.05 * b[i];
    }
    cg_sgd_step(p, 3, 0.05, 0.9, buf, 1);
    for (int i = 0; i < 3; i++) {
        CHECK_EXACT(buf[i], g[i]);
        CHECK_CLOSE(cg_data(p[i]), want[i], 1e-15);
    }
    cg_sgd_step(p, 3, 0.05, 0.9, buf, 0);
    for (int i = 0; i < 3; i++) {
        b[i] = 0.9 * b[i] + g[i];
        want[i] -= 0.05 * b[i];
        CHECK_CLOSE(buf[i], b[i], 1e-15);
        CHECK_CLOSE(cg_data(p[i]), want[i], 1e-15);
    }
    cg_block_free(blk);
}

static void test_adam(void)
{
    cg_block *blk = new_block(0);
    const double p0[3] = {1.0, -2.0, 0.5};
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    cg_ref p[3];
    REQUIRE(cg_leaves(blk, p0, 3, p) == CG_OK);
    double m[3] = {0, 0, 0}, v[3] = {0, 0, 0};
    double rp[3], rm[3] = {0, 0, 0}, rv[3] = {0, 0, 0}; /* the textbook algorithm */
    memcpy(rp, p0, sizeof rp);
    for (long step = 1; step <= 5; step++) {
        for (int i = 0; i < 3; i++) { /* grads of sum(p_i^2 * (i + 1)) */
            cg_set_grad(p[i], 2.0 * (i + 1) * cg_data(p[i]));
            double gi = 2.0 * (i + 1) * rp[i] + wd * rp[i];
            rm[i] = b1 * rm[i] + (1.0 - b1) * gi;
            rv[i] = b2 * rv[i] + (1.0 - b2) * gi * gi;
            double mhat = rm[i] / (1.0 - pow(b1, (double)step));
            double vhat = rv[i] / (1.0 - pow(b2, (double)step));
            rp[i] -= lr * mhat / (sqrt(vhat) + eps);
        }
        cg_adam_step(p, 3, lr, b1, b2, eps, wd, step, m, v);
        for (int i = 0; i < 3; i++) {
            CHECK_CLOSE(m[i], rm[i], 1e-13);
            CHECK_CLOSE(v[i], rv[i], 1e-13);
            CHECK_CLOSE(cg_data(p[i]), rp[i], 1e-13);
        }
    }
    cg_block_free(blk);
}

/* ---- tests: threads sharing a block --------------------------------------- */

enum { THREAD_STEPS = 2000, THREADS = 4 };

typedef struct {
    cg_block *shared;  /* allocated from concurrently until full */
    block_list own;    /* fresh blocks once the shared one is full */
    double result[3];  /* data and grads of the last step */
} thread_job;

/* var = expr, in a private block if the shared one is full; ends the thread
 * on an error. A fresh block can be sealed by another thread's before this
 * one gets a node from it (only the newest block hands out nodes), so the
 * retry is a loop. */
#define MAKE(var, expr)                                   \
    do {                                                  \
        var = (expr);                                     \
        while (var == CG_FULL) {                          \
            blk = block_list_add(&job->own);              \
            var = (expr);                                 \
        }                                                 \
        if (var < CG_REF_MIN)                             \
            return NULL;                                  \
    } while (0)

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    cg_block *blk = job->shared;
    for (int step = 0; step < THREAD_STEPS; step++) {
        cg_ref x, w, m, t, y;
        MAKE(x, cg_leaf(blk, 0.001 * step));
        MAKE(w, cg_leaf(blk, -0.5));
        MAKE(m, cg_mul(blk, x, w));
        MAKE(t, cg_unary(blk, CG_TANH, m));
        MAKE(y, cg_add(blk, t, x));
        if (backward(y, NULL) != CG_OK)
            return NULL;
        job->result[0] += cg_data(y);
        job->result[1] += cg_grad(x);
        job->result[2] += cg_grad(w);
    }
    return job;
}

static void test_threads(void)
{
    /* the same work alone, for the expected results */
    thread_job alone = {new_block(0), {0}, {0}};
    REQUIRE(thread_main(&alone) == &alone);
    cg_block_free(alone.shared);
    block_list_free(&alone.own);

    cg_block *shared = new_block(THREADS * THREAD_STEPS); /* fills up part way */
    thread_job jobs[THREADS];
    pthread_t tids[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (thread_job){shared, {0}, {0}};
        REQUIRE(pthread_create(&tids[i], NULL, thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *ret = NULL;
        REQUIRE(pthread_join(tids[i], &ret) == 0);
        CHECK(ret == &jobs[i]);
        for (int k = 0; k < 3; k++)
            CHECK_EXACT(jobs[i].result[k], alone.result[k]);
        block_list_free(&jobs[i].own);
    }
    cg_block_free(shared);
}

/* ---- tests: side allocations ---------------------------------------------- */

/* Whether node r has exactly the operands xs[0..n-1]. */
static int has_operands(cg_ref r, const cg_ref *xs, size_t n)
{
    if (cg_nargs(r) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (cg_arg(r, i) != xs[i])
            return 0;
    return 1;
}

static void test_side_allocations_share_chunks(void)
{
    cg_block *blk = new_block(0);
    cg_ref xs[128];
    double vals[128] = {0};
    REQUIRE(cg_leaves(blk, vals, 128, xs) == CG_OK);
    size_t empty = cg_block_bytes(blk);
    cg_ref first = NODE(cg_custom(blk, 0.0, xs, 3));
    size_t one_chunk = cg_block_bytes(blk);
    CHECK(one_chunk > empty);
    /* small operand arrays after it are carved from the same chunk, not malloc'd one by one */
    cg_ref small[8];
    for (size_t k = 0; k < 8; k++)
        small[k] = NODE(cg_custom(blk, 0.0, xs + k, 3));
    CHECK(cg_block_bytes(blk) == one_chunk);
    /* one bigger than what is left of it goes to the next chunk */
    cg_ref big = NODE(cg_custom(blk, 0.0, xs, 128));
    CHECK(cg_block_bytes(blk) >= one_chunk + 128 * sizeof(cg_ref));
    /* and no array overlaps another */
    CHECK(has_operands(first, xs, 3));
    for (size_t k = 0; k < 8; k++)
        CHECK(has_operands(small[k], xs + k, 3));
    CHECK(has_operands(big, xs, 128));
    cg_block_free(blk);
}

enum { CHUNK_THREADS = 4, CHUNK_OPS = 500 };

typedef struct {
    cg_block *shared;
    const cg_ref *xs;  /* 16 leaves */
    size_t offset;     /* this thread's operands: xs + offset, as many as the op's index says */
    cg_ref made[CHUNK_OPS];
} chunk_job;

static size_t chunk_op_operands(size_t k)
{
    return 3 + k % 6;
}

static void *chunk_thread_main(void *arg)
{
    chunk_job *job = arg;
    for (size_t k = 0; k < CHUNK_OPS; k++) {
        job->made[k] = cg_custom(job->shared, 0.0, job->xs + job->offset, chunk_op_operands(k));
        if (job->made[k] < CG_REF_MIN)
            return NULL;
    }
    return job;
}

static void test_side_allocations_from_threads(void)
{
    /* threads carving operand arrays from one block's chunks at once never
     * get overlapping ones */
    /* room for the nodes, and a budget of side allocations that takes the arrays */
    cg_block *blk = new_block(4 * CHUNK_THREADS * CHUNK_OPS);
    cg_ref xs[16];
    double vals[16] = {0};
    REQUIRE(cg_leaves(blk, vals, 16, xs) == CG_OK);
    chunk_job jobs[CHUNK_THREADS];
    pthread_t tids[CHUNK_THREADS];
    for (int i = 0; i < CHUNK_THREADS; i++) {
        jobs[i].shared = blk;
        jobs[i].xs = xs;
        jobs[i].offset = (size_t)i;
        REQUIRE(pthread_create(&tids[i], NULL, chunk_thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; i < CHUNK_THREADS; i++) {
        void *ret = NULL;
        REQUIRE(pthread_join(tids[i], &ret) == 0);
        REQUIRE(ret == &jobs[i]);
    }
    for (int i = 0; i < CHUNK_THREADS; i++)
        for (size_t k = 0; k < CHUNK_OPS; k++)
            CHECK(has_operands(jobs[i].made[k], xs + i, chunk_op_operands(k)));
    cg_block_free(blk);
}

/* ---- tests: freeing ------------------------------------------------------- */

static void test_free(void)
{
    /* blocks with side allocations (operand arrays) free them; valgrind and
     * LeakSanitizer see to it that nothing is left */
    for (int round = 0; round < 50; round++) {
        cg_block *blk = new_block(64);
        cg_ref xs[16];
        double vals[16];
        for (int i = 0; i < 16; i++)
            vals[i] = i;
        REQUIRE(cg_leaves(blk, vals, 16, xs) == CG_OK);
        size_t bytes = cg_block_bytes(blk);
        for (size_t n = 3; n <= 16; n++)
            NODE(cg_custom(blk, 0.0, xs, n));
        CHECK(cg_block_bytes(blk) >= bytes + (3 + 16) * 14 / 2 * sizeof(cg_ref));
        /* fill the block: the failing custom op's array still belongs to it */
        while (cg_custom(blk, 0.0, xs, 8) >= CG_REF_MIN)
            ;
        cg_block_free(blk);
    }
    /* a graph across blocks freed in creation order and in reverse */
    for (int reverse = 0; reverse < 2; reverse++) {
        block_list bl = {0};
        cg_block *blk = block_list_add(&bl);
        cg_ref v = NODE(cg_leaf(blk, 1.0));
        for (int i = 0; i < 5000; i++) {
            cg_ref next = cg_unary(blk, CG_SIN, v);
            if (next == CG_FULL)
                next = cg_unary(blk = block_list_add(&bl), CG_SIN, v);
            v = NODE(next);
        }
        CHECK_INT(backward(v, NULL), CG_OK);
        if (reverse)
            for (size_t i = 0; i < bl.count / 2; i++) {
                cg_block *t = bl.blocks[i];
                bl.blocks[i] = bl.blocks[bl.count - 1 - i];
                bl.blocks[bl.count - 1 - i] = t;
            }
        block_list_free(&bl);
    }
}

/* ---- tests: Python backwards on softmax outputs ---------------------------- */

/* A softmax's output with a Python backward that runs the output's own
 * kernel (as a wrapper of the old _backward does). */
static void pick_kernel_backward(custom_op *self)
{
    cg_node_backward(self->node);
}

/* A loss over a softmax of five leaves: 2 * out[0] + 3 * out[1]; out gets
 * the outputs. */
static cg_ref softmax_loss(cg_block *blk, cg_ref *x, cg_ref *out, int log_)
{
    static const double xs[5] = {0.0, 1.0, 2.0, 3.0, 4.0};
    REQUIRE(cg_leaves(blk, xs, 5, x) == CG_OK);
    NODE(cg_softmax(blk, x, 5, log_, out));
    cg_ref m0 = NODE(cg_mul_const(blk, out[0], 2.0, 1)), m1 = NODE(cg_mul_const(blk, out[1], 3.0, 1));
    return NODE(cg_add(blk, m0, m1));
}

/* Zeroes the grad of every node of blk's softmax_loss (made first in it). */
static void zero_softmax_loss(cg_ref *x, cg_ref *out, cg_ref root)
{
    cg_zero_grads(x, 5);
    cg_zero_grads(out, 5);
    cg_ref m[2] = {cg_arg(root, 0), cg_arg(root, 1)};
    cg_zero_grads(m, 2);
    cg_zero_grads(&root, 1);
}

/* A sweep abandoned between a softmax output's kernel and its group's (the
 * caller's Python backward raised there) leaves nothing behind: after
 * zeroing the grads, the next backward gives a fresh graph's grads. The
 * first output's kernel pushed its grad into the group's buffer; the second
 * output's backward is the caller's, and the sweep stops there. */
static void test_abandoned_sweep_leaves_no_group_state(void)
{
    for (int log_ = 0; log_ <= 1; log_++) {
        cg_block *fresh = new_block(0);
        cg_ref fx[5], fout[5];
        REQUIRE(backward(softmax_loss(fresh, fx, fout, log_), NULL) == CG_OK);

        for (int kept = 0; kept <= 1; kept++) {
            cg_block *blk = new_block(0);
            cg_ref x[5], out[5];
            cg_ref root = softmax_loss(blk, x, out, log_);
            custom_op op = {pick_kernel_backward, out[0]};
            REQUIRE(cg_set_callback(out[0], &op) == CG_OK);
            cg_sweep *sw = NULL;
            size_t cursor = 0;
            void *cb = NULL;
            if (kept) { /* a kept order, its first pass abandoned */
                REQUIRE(cg_sweep_begin(root, &sw) == CG_OK);
                cg_set_grad(root, 1.0);
                CHECK_INT(cg_sweep_backward(sw, &cursor, &cb), CG_CALLBACK);
            } else {
                CHECK_INT(cg_backward(root, &sw), CG_CALLBACK);
                CHECK_INT(cg_sweep_size(sw), 2); /* out[0], then the group */
            }
            REQUIRE(sw != NULL);
            CHECK(cg_grad(out[1]) != 0.0); /* its kernel ran, into the group's buffer */
            zero_softmax_loss(x, out, root);
            if (kept) {
                cursor = 0;
                cg_set_grad(root, 1.0);
                CHECK_INT(run_sweep(sw), CG_OK);
            } else {
                CHECK_INT(backward(root, NULL), CG_OK);
            }
            cg_sweep_free(sw);
            for (int i = 0; i < 5; i++)
                CHECK_EXACT(cg_grad(x[i]), cg_grad(fx[i]));
            cg_block_free(blk);
        }
        cg_block_free(fresh);
    }
}

enum { WIDE_SOFTMAX = 20000 };
static size_t wide_calls;

static void counting_pick_backward(custom_op *self)
{
    wide_calls++;
    cg_node_backward(self->node);
}

/* Every output of a wide softmax given a Python backward: each is found (in
 * the block's hook table), called once, and the leaves' grads are those of
 * the same graph without them. Setting one again replaces it. */
static void test_hooks_on_every_softmax_output(void)
{
    size_t n = WIDE_SOFTMAX;
    double *xs = malloc(n * sizeof *xs), *want = malloc(n * sizeof *want);
    cg_ref *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out);
    custom_op *ops = malloc(n * sizeof *ops);
    REQUIRE(xs && want && x && out && ops);
    for (size_t i = 0; i < n; i++)
        xs[i] = sin((double)i);
    for (int hooked = 0; hooked <= 1; hooked++) {
        cg_block *leaves = new_block(n + 1);
        REQUIRE(cg_leaves(leaves, xs, n, x) == CG_OK);
        cg_ref w = NODE(cg_leaf(leaves, 1.0));
        cg_block *blk = new_block(cg_fused_nodes(CG_SOFTMAX, n));
        NODE(cg_softmax(blk, x, n, 0, out));
        cg_block *rest = new_block(1); /* a fresh block takes the dot's operand array */
        cg_ref *weights = malloc(n * sizeof *weights);
        REQUIRE(weights);
        for (size_t i = 0; i < n; i++)
            weights[i] = w;
        cg_ref root = NODE(cg_dot(rest, w, weights, out, n));
        free(weights);
        if (hooked) {
            for (size_t i = 0; i < n; i++) {
                ops[i] = (custom_op){NULL, out[i]};
                REQUIRE(cg_set_callback(out[i], &ops[i]) == CG_OK);
            }
            for (size_t i = 0; i < n; i++) {
                ops[i].backward = counting_pick_backward;
                REQUIRE(cg_set_callback(out[i], &ops[i]) == CG_OK); /* replaces */
            }
        }
        wide_calls = 0;
        CHECK_INT(backward(root, NULL), CG_OK);
        CHECK_INT(wide_calls, hooked ? n : 0);
        for (size_t i = 0; i < n; i++) {
            if (!hooked)
                want[i] = cg_grad(x[i]);
            else if (cg_grad(x[i]) != want[i]) {
                CHECK_EXACT(cg_grad(x[i]), want[i]);
                break;
            }
        }
        cg_block_free(rest);
        cg_block_free(blk);
        cg_block_free(leaves);
    }
    free(xs);
    free(want);
    free(x);
    free(out);
    free(ops);
}

/* Powers given Python backwards at strided slots of one block (every third
 * node): each found, none confused with another. */
static void counting_pow_backward(custom_op *self)
{
    wide_calls += (size_t)cg_exponent(self->node);
}

static void test_hooks_on_strided_powers(void)
{
    enum { POWERS = 300 };
    cg_block *blk = new_block(0);
    cg_ref a = NODE(cg_leaf(blk, 1.5)), pows[POWERS];
    custom_op ops[POWERS];
    for (size_t i = 0; i < POWERS; i++) {
        pows[i] = NODE(cg_pow_const(blk, a, (double)(i + 1), 1));
        NODE(cg_leaf(blk, 0.0));
        NODE(cg_leaf(blk, 0.0));
    }
    for (size_t i = 0; i < POWERS; i += 2) { /* every other one */
        ops[i] = (custom_op){counting_pow_backward, pows[i]};
        REQUIRE(cg_set_callback(pows[i], &ops[i]) == CG_OK);
    }
    cg_ref root = NODE(cg_reduce(blk, CG_SUM, pows, POWERS));
    wide_calls = 0;
    CHECK_INT(backward(root, NULL), CG_OK);
    size_t want = 0;
    for (size_t i = 0; i < POWERS; i += 2)
        want += i + 1;
    CHECK_INT(wide_calls, want);
    /* the others ran their kernels: d/da of the sum of a**(i+1), i odd */
    double grad = 0.0;
    for (size_t i = 1; i < POWERS; i += 2)
        grad += (double)(i + 1) * pow(1.5, (double)i);
    CHECK_CLOSE(cg_grad(a), grad, 1e-12);
    cg_block_free(blk);
}

/* ---- tests: setters racing cg_set_callback --------------------------------- */

enum { RACE_NODES = 64, RACE_ROUNDS = 20000, RACE_SETTERS = 3 };

typedef struct {
    cg_ref *nodes;
    atomic_int *stop;   /* set once the callbacks are in */
    int which;
} race_job;

static void *race_setter_main(void *arg)
{
    race_job *job = arg;
    /* writes to data and grad and their types, without a lock, of this
     * thread's share of the nodes (two threads writing one grad would be the
     * caller's race) */
    for (int round = 0; round < RACE_ROUNDS || !atomic_load(job->stop); round++) {
        for (size_t i = (size_t)job->which; i < RACE_NODES; i += RACE_SETTERS) {
            cg_ref n = job->nodes[i];
            switch ((round + (int)i + job->which) % 4) {
            case 0: cg_set_data(n, 1.0); break;
            case 1: cg_set_int_data(n, 2.0); break;
            case 2: cg_set_grad(n, 0.5); break;
            default: cg_zero_grads(&n, 1); break;
            }
        }
    }
    return job;
}

static void *race_callback_main(void *arg)
{
    race_job *job = arg;
    for (size_t i = 0; i < RACE_NODES; i++)
        if (cg_set_callback(job->nodes[i], job) != CG_OK)
            return NULL;
    atomic_store(job->stop, 1);
    return job;
}

/* Setters of data and grad, which write the nodes' number types without a
 * lock, racing cg_set_callback on the same nodes: no node loses the mark of
 * its Python backward. (ThreadSanitizer, `make tsan`, reports the race if the
 * two share a byte; without it the test catches a lost mark only when the
 * race happens to drop it.) */
static void test_setters_race_set_callback(void)
{
    cg_block *blk = new_block(0);
    cg_ref nodes[RACE_NODES];
    cg_ref a = NODE(cg_leaf(blk, 1.0)), b = NODE(cg_leaf(blk, 2.0));
    for (size_t i = 0; i < RACE_NODES; i++)
        nodes[i] = i % 2 ? NODE(cg_mul(blk, a, b)) : NODE(cg_leaf(blk, (double)i));
    atomic_int stop = 0;
    race_job jobs[RACE_SETTERS + 1];
    pthread_t tids[RACE_SETTERS + 1];
    for (int t = 0; t <= RACE_SETTERS; t++) {
        jobs[t] = (race_job){nodes, &stop, t};
        REQUIRE(pthread_create(&tids[t], NULL, t < RACE_SETTERS ? race_setter_main : race_callback_main,
                               &jobs[t]) == 0);
    }
    for (int t = 0; t <= RACE_SETTERS; t++) {
        void *ret = NULL;
        REQUIRE(pthread_join(tids[t], &ret) == 0);
        CHECK(ret == &jobs[t]);
    }
    /* each node's backward is handed back: the node first, with its callback */
    for (size_t i = 0; i < RACE_NODES; i++) {
        cg_sweep *rest = NULL;
        CHECK_INT(cg_backward(nodes[i], &rest), CG_CALLBACK);
        if (!rest)
            continue;
        size_t cursor = 0;
        void *cb = NULL;
        CHECK_INT(cg_sweep_backward(rest, &cursor, &cb), CG_CALLBACK);
        CHECK(cb == &jobs[RACE_SETTERS]);
        cg_sweep_free(rest);
    }
    cg_block_free(blk);
}

/* ---- the table of tests: add one line per new test ------------------------ */

#define TEST(name) {#name, test_##name}
static const struct {
    const char *name;
    void (*fn)(void);
} TESTS[] = {
    TEST(block_new_free),
    TEST(leaf),
    TEST(typed_reads),
    TEST(leaves),
    TEST(add),
    TEST(mul),
    TEST(const_ops),
    TEST(arith_gradcheck),
    TEST(unary),
    TEST(pow_const),
    TEST(pow_backward_corners),
    TEST(exponent),
    TEST(pow),
    TEST(div),
    TEST(pow_gradcheck),
    TEST(errors),
    TEST(backward_pure),
    TEST(custom),
    TEST(sweep_accumulates),
    TEST(sweep_order),
    TEST(blocks_in_creation_order),
    TEST(walk_skips_blocks_without_reachable_nodes),
    TEST(replay),
    TEST(reduce),
    TEST(dot),
    TEST(layer),
    TEST(fused_gradcheck),
    TEST(softmax),
    TEST(cross_entropy),
    TEST(bulk),
    TEST(sgd),
    TEST(adam),
    TEST(deep_chain),
    TEST(full),
    TEST(threads),
    TEST(side_allocations_share_chunks),
    TEST(side_allocations_from_threads),
    TEST(free),
    TEST(abandoned_sweep_leaves_no_group_state),
    TEST(hooks_on_every_softmax_output),
    TEST(hooks_on_strided_powers),
    TEST(setters_race_set_callback),
};
#define NTESTS (sizeof TESTS / sizeof TESTS[0])

int main(int argc, char **argv)
{
    const char *only[NTESTS + 1];
    size_t nonly = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--chain") == 0 && i + 1 < argc) {
            chain_depth = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--list") == 0) {
            for (size_t t = 0; t < NTESTS; t++)
                puts(TESTS[t].name);
            return 0;
        } else if (argv[i][0] == '-' || nonly == NTESTS) {
            fprintf(stderr, "usage: %s [--chain N] [--list] [NAME...]\n", argv[0]);
            return 2;
        } else {
            only[nonly++] = argv[i];
        }
    }
    int passed = 0, failed = 0;
    for (size_t t = 0; t < NTESTS; t++) {
        int selected = nonly == 0;
        for (size_t k = 0; k < nonly; k++)
            selected |= strcmp(only[k], TESTS[t].name) == 0;
        if (!selected)
            continue;
        failures = 0;
        if (setjmp(test_abort) == 0)
            TESTS[t].fn();
        printf("%-20s %s\n", TESTS[t].name, failures ? "FAILED" : "ok");
        fflush(stdout);
        if (failures)
            failed++;
        else
            passed++;
    }
    if (passed + failed == 0) {
        fprintf(stderr, "no test matched\n");
        return 2;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
