"""Known answers and expression programs shared by the engine tests.

The known answers are copied from the micrograd lecture's exercise notebook
(the seed) and from micrograd's README, so that the tests need neither.

The programs are tiny straight-line "expression DAG" scripts: a list of steps,
each an op on earlier nodes (chosen by index, so subexpressions are shared) and
constants. `run_program` interprets one with any Value class, which is how the
property tests and the thread tests build *the same* graph in cgrad, in the
pure-Python reference engine and in several threads.
"""
import contextlib
import math
import struct

# ---- the seed notebook ---------------------------------------------------

# Exercise 1-3: f(a, b, c) at (2, 3, 4), its value and its gradient.
F_POINT = (2.0, 3.0, 4.0)
F_DATA = 6.336362190988558
F_GRAD = [-12.353553390593273, 10.25699027111255, 0.0625]


def f_floats(a, b, c):
    """The seed's f, on plain floats (exercise 1, as written there)."""
    return -a**3 + math.sin(3 * b) - 1.0 / c + b**2.5 - a**0.5


def f_values(a, b, c):
    """The same f on Values (any engine): sin is a method there."""
    return -a**3 + (3 * b).sin() - 1.0 / c + b**2.5 - a**0.5


# Exercise 4: the softmax / negative log likelihood cell.
SOFTMAX_LOGITS = [0.0, 3.0, -2.0, 1.0]
SOFTMAX_PROBS_ROUNDED = [0.04177, 0.83902, 0.00565, 0.11355]
SOFTMAX_LOSS = 2.1755153626167147
SOFTMAX_GRADS = [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986]


def softmax(logits):
    """The seed's softmax, op by op, exactly as the notebook writes it."""
    counts = [logit.exp() for logit in logits]
    denominator = sum(counts)
    out = [c / denominator for c in counts]
    return out


# micrograd's README example (the same expression as its test_more_ops).
def more_ops(a, b):
    """micrograd's test_more_ops expression of a and b (Values of any engine)."""
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g


MORE_OPS_G = 24.70408163265306
MORE_OPS_A_GRAD = 138.83381924198252
MORE_OPS_B_GRAD = 645.5772594752186


# ---- comparing floats bit for bit ------------------------------------------

def same_float(x, y):
    """True if x and y are the same float64, bit for bit (so 0.0 and -0.0
    differ); every NaN counts as the same NaN."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return struct.pack("<d", x) == struct.pack("<d", y)


# ---- cgrad's order of accumulation, in the reference engine -----------------

@contextlib.contextmanager
def creation_log(V):
    """Yields a list that gets every V (a reference engine class, whose ops
    make their results with V(...)) made inside the block, in order."""
    log = []
    init = V.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        log.append(self)
    V.__init__ = recording_init
    try:
        yield log
    finally:
        V.__init__ = init


def backward_in_creation_order(root, log):
    """micrograd's backward on reference Values, with reverse creation order
    (newest first, from `log`) as its reverse topological order: the order in
    which cgrad's sweep runs the same closures' arithmetic. Only nodes
    reachable from root run, as in micrograd."""
    reachable, stack = {id(root)}, [root]
    while stack:
        for child in stack.pop()._children:
            if id(child) not in reachable:
                reachable.add(id(child))
                stack.append(child)
    root.grad = 1.0
    for v in reversed(log):
        if id(v) in reachable:
            v._backward()


# ---- expression programs --------------------------------------------------

CONSTANTS = [2.0, -1.5, 0.5, 3, -2, 0.25, 1e-3, 7.0, True]
POSITIVE_BASES = [0.5, 2.0, 3, 10.0]


def custom_fma(V, a, b, c):
    """A three-operand op written the way the lecture writes custom ops:
    data from Python, `_backward` a Python closure."""
    out = V(a.data * b.data + c.data, (a, b, c), 'fma')

    def _backward():
        a.grad += b.data * out.grad
        b.grad += a.data * out.grad
        c.grad += out.grad
    out._backward = _backward
    return out


def _augmented(x, y, c):
    t = x
    t += y
    t *= c
    t -= y
    return t


# Each step is f(V, x, y, z, c, p): x, y, z earlier nodes, c a constant from
# CONSTANTS, p one from POSITIVE_BASES. Every step either stays where both
# engines' backward passes are plain float arithmetic, or may fail in its
# forward pass (log of a negative, exp overflow, sin of inf, ...), which both
# engines must then report with the same exception. (Backward passes that
# raise in the reference engine but not in cgrad are a known divergence with
# tests of their own; the steps avoid them: bases of non-integer, negative and
# Value exponents are kept >= 0.5, and number ** Value has a positive base.)
STEPS = {
    "add": lambda V, x, y, z, c, p: x + y,
    "sub": lambda V, x, y, z, c, p: x - y,
    "mul": lambda V, x, y, z, c, p: x * y,
    "square_self": lambda V, x, y, z, c, p: x * x,
    "add_const": lambda V, x, y, z, c, p: x + c,
    "const_add": lambda V, x, y, z, c, p: c + x,
    "sub_const": lambda V, x, y, z, c, p: x - c,
    "const_sub": lambda V, x, y, z, c, p: c - x,
    "mul_const": lambda V, x, y, z, c, p: x * c,
    "const_mul": lambda V, x, y, z, c, p: c * x,
    "div_const": lambda V, x, y, z, c, p: x / c,
    "const_div": lambda V, x, y, z, c, p: c / (y * y + 1),
    "div": lambda V, x, y, z, c, p: x / (y * y + 1),
    "neg": lambda V, x, y, z, c, p: -x,
    "pow2": lambda V, x, y, z, c, p: x**2,
    "pow3": lambda V, x, y, z, c, p: x**3,
    "pow_minus1": lambda V, x, y, z, c, p: (y * y + 1) ** -1,
    "pow_minus2": lambda V, x, y, z, c, p: (y * y + 1) ** -2,
    "pow_half": lambda V, x, y, z, c, p: (y * y + 0.5) ** 0.5,
    "pow_minus_half": lambda V, x, y, z, c, p: (y * y + 0.5) ** -0.5,
    "pow_2_5": lambda V, x, y, z, c, p: (y * y + 0.5) ** 2.5,
    "pow_value": lambda V, x, y, z, c, p: (x * x + 0.5) ** y.tanh(),
    "number_pow_value": lambda V, x, y, z, c, p: p ** y.tanh(),
    "relu": lambda V, x, y, z, c, p: x.relu(),
    "exp": lambda V, x, y, z, c, p: x.exp(),
    "log": lambda V, x, y, z, c, p: x.log(),
    "tanh": lambda V, x, y, z, c, p: x.tanh(),
    "sin": lambda V, x, y, z, c, p: x.sin(),
    "cos": lambda V, x, y, z, c, p: x.cos(),
    "sigmoid": lambda V, x, y, z, c, p: x.sigmoid(),
    "custom_fma": lambda V, x, y, z, c, p: custom_fma(V, x, y, z),
    "augmented": lambda V, x, y, z, c, p: _augmented(x, y, c),
}
STEP_NAMES = sorted(STEPS)

# Steps whose results stay moderate, for long programs (threads) whose
# values should stay mostly finite.
TAME_STEP_NAMES = ["add", "sub", "mul", "mul_const", "add_const", "const_sub", "div",
                   "tanh", "sigmoid", "sin", "cos", "relu", "neg", "pow2",
                   "pow_half", "pow_minus1", "number_pow_value", "custom_fma", "augmented"]


def run_program(V, inputs, program):
    """Builds the program's graph with Value class V.

    program is a list of (step name, i, j, k, ci, pi): i, j, k pick operands
    among the nodes made so far (modulo their number, so a negative index
    counts from the latest node), ci and pi pick the
    constants. Returns (leaves, nodes, outcomes): nodes are the inputs' leaves
    followed by every step's result; outcomes has one entry per step, None if
    it made a node, else the type of the exception it raised (the step then
    adds nothing).
    """
    leaves = [V(x) for x in inputs]
    nodes = list(leaves)
    outcomes = []
    for name, i, j, k, ci, pi in program:
        n = len(nodes)
        args = (nodes[i % n], nodes[j % n], nodes[k % n],
                CONSTANTS[ci % len(CONSTANTS)], POSITIVE_BASES[pi % len(POSITIVE_BASES)])
        try:
            out = STEPS[name](V, *args)
        except (ArithmeticError, ValueError) as exc:
            outcomes.append(type(exc))
        else:
            outcomes.append(None)
            nodes.append(out)
    return leaves, nodes, outcomes


def random_program(rng, n_steps, names=STEP_NAMES, recent=8):
    """A program of n_steps steps drawn with random.Random rng; operands are
    mostly among the `recent` latest nodes, so chains get deep and shared."""
    program = []
    for s in range(n_steps):
        def pick():
            if rng.random() < 0.75:
                return -1 - rng.randrange(recent)  # counted from the end
            return rng.randrange(10**6)
        program.append((rng.choice(names), pick(), pick(), pick(),
                        rng.randrange(len(CONSTANTS)), rng.randrange(len(POSITIVE_BASES))))
    return program
