"""The Value API a micrograd user relies on: construction, data and grad,
backward's accumulation, the graph seen through _prev and _op, repr, hashing,
attributes, operand errors, and custom ops written in Python as the lecture
writes them."""
import copy
import math

import numpy as np
import pytest

from cgrad import Value
from cgrad import reference

import seed_data


def trace(root):
    """The lecture's trace (used by draw_dot): every node and edge reachable
    through _prev."""
    nodes, edges = set(), set()
    stack = [root]
    while stack:
        v = stack.pop()
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                stack.append(child)
    return nodes, edges


# ---- construction -----------------------------------------------------------

@pytest.mark.parametrize("x, expected", [
    (3, 3),
    (-2.5, -2.5),
    (True, 1),
    (False, 0),
    (np.float32(0.1), float(np.float32(0.1))),
    (np.float64(-0.3), -0.3),
    (np.int64(7), 7),
    (np.int32(-4), -4),
    (np.uint8(200), 200),
    (np.bool_(True), 1),
    (np.array(2.5), 2.5),
    (2**53 + 1, 2**53),  # past 2**53 an int is rounded to a float64's (README)
    (math.inf, math.inf),
], ids=lambda x: type(x).__name__)
def test_value_of_a_real_number_holds_an_int_or_a_float_as_micrograd_does(x, expected):
    """micrograd keeps what Python computes: ints stay ints (numpy's and bools
    among them), floats floats (float32 computed in float64); a new grad is
    the int 0."""
    v = Value(x)
    assert type(v.data) is type(expected)
    assert v.data == expected
    assert type(v.grad) is int and v.grad == 0


def test_value_of_nan_holds_nan():
    assert math.isnan(Value(math.nan).data)


@pytest.mark.parametrize("x, type_name", [
    ("x", "str"),
    (None, "NoneType"),
    (1j, "complex"),
    ([1.0], "list"),
    (np.complex128(1), "complex128"),
])
def test_value_of_anything_else_is_a_type_error_naming_the_type(x, type_name):
    with pytest.raises(TypeError, match=type_name):
        Value(x)


def test_value_of_a_value_is_a_type_error():
    with pytest.raises(TypeError, match="Value"):
        Value(Value(1.0))


def test_children_must_be_values():
    with pytest.raises(TypeError, match="float"):
        Value(1.0, (1.0,), 'x')


def test_label():
    assert Value(1.0, label='a').label == 'a'
    assert Value(1.0).label == ''
    assert Value(1.0, (), '', 'b').label == 'b'  # the lecture's positional form


# ---- data and grad ------------------------------------------------------------

def test_data_and_grad_read_and_write():
    p = Value(1.0)
    out = p * 3.0
    out.backward()
    assert p.grad == 3.0
    p.data -= 0.1 * p.grad
    assert p.data == 1.0 - 0.1 * 3.0
    p.grad = 0
    assert p.grad == 0 and type(p.grad) is int
    p.data = 2
    assert p.data == 2 and type(p.data) is int
    p.data = 2.0
    assert p.data == 2.0 and type(p.data) is float
    p.data = np.float32(0.5)
    assert p.data == 0.5 and type(p.data) is float
    p.grad = -1.25
    assert p.grad == -1.25


def test_data_and_grad_reject_non_numbers():
    p = Value(1.0)
    with pytest.raises(TypeError):
        p.data = "x"
    with pytest.raises(TypeError):
        p.grad = None
    assert (p.data, p.grad) == (1.0, 0.0)


def test_writing_data_changes_what_backward_sees():
    """As in micrograd: kernels read operands' current data."""
    a, b = Value(2.0), Value(3.0)
    out = a * b
    b.data = 10.0
    out.backward()
    assert a.grad == 10.0


def test_sgd_step_as_in_the_lecture():
    w = [Value(0.5), Value(-1.5)]
    ref_w = [reference.Value(0.5), reference.Value(-1.5)]
    for params in (w, ref_w):
        for step in range(20):
            loss = ((params[0] * 2.0 + params[1] - 1.0) ** 2).tanh()
            for p in params:
                p.grad = 0
            loss.backward()
            for p in params:
                p.data -= 0.1 * p.grad
    assert [p.data for p in w] == [p.data for p in ref_w]


# ---- backward -------------------------------------------------------------

def test_backward_sets_the_root_grad_to_one():
    a = Value(2.0)
    out = a * a
    out.grad = 5.0
    out.backward()
    assert out.grad == 1.0
    assert a.grad == 4.0


def test_backward_of_a_leaf():
    a = Value(2.0)
    a.backward()
    assert a.grad == 1.0


def test_grads_accumulate_across_backward_calls_as_in_micrograd():
    """micrograd never zeroes: a second backward adds again at every node,
    interior ones included (so the leaf's grad is not simply doubled)."""
    def build(V):
        x = V(1.5)
        t = x * x
        y = t + x
        return x, t, y

    x, t, y = build(Value)
    y.backward()
    assert (x.grad, t.grad) == (4.0, 1.0)
    y.backward()
    # second call: t.grad 1 -> 2, then x gets 1 (from +) and 2 * 1.5 * 2 (from *)
    assert t.grad == 2.0
    assert x.grad == 4.0 + 1.0 + 6.0

    rx, rt, ry = build(reference.Value)
    ry.backward()
    ry.backward()
    assert (x.grad, t.grad, y.grad) == (rx.grad, rt.grad, ry.grad)


def test_accumulation_matches_reference_on_a_bigger_graph():
    def build(V):
        xs = [V(0.1 * i - 0.4) for i in range(8)]
        h = [(x * 1.5 + 0.2).tanh() for x in xs]
        s = sum(hi * hj for hi, hj in zip(h, h[1:]))
        return xs, h, (s.sigmoid() * h[0]).exp()

    xs, h, out = build(Value)
    rxs, rh, rout = build(reference.Value)
    for root, rroot in [(out, rout), (out, rout), (h[3], rh[3])]:
        root.backward()
        rroot.backward()
        assert [x.grad for x in xs] == [x.grad for x in rxs]
        assert [v.grad for v in h] == [v.grad for v in rh]


def test_grads_add_up_in_reverse_creation_order():
    """A node's grad is the sum of what its users push, added newest user
    first: the order of the sweep. Here that order shows in the last bit:
    x's users push 2**-53, 2**-53 and 1.0, newest first, which sums to
    1 + 2**-52; micrograd's depth-first order (reference engine) adds the
    1.0 between the two small ones, and the sum rounds to 1.0."""
    def build(V):
        x = V(1.0)
        y1, y2, y3 = x * 1.0, x * 2.0**-53, x * 2.0**-53
        return x, y3 + (y1 + y2)

    x, root = build(Value)
    root.backward()
    assert x.grad == 1.0 + 2.0**-52
    rx, rroot = build(reference.Value)
    rroot.backward()
    assert rx.grad == 1.0


def test_backward_reaches_only_nodes_below_the_root():
    a, b = Value(2.0), Value(3.0)
    below = a * b
    beside = a + b
    above = below.tanh()
    below.backward()
    assert (a.grad, b.grad) == (3.0, 2.0)
    assert beside.grad == 0.0 and above.grad == 0.0


def test_ops_carry_their_method_names():
    # for tracebacks and help(Value): the ops are made by factories
    for name in ("__add__", "__mul__", "__truediv__", "exp", "log", "tanh", "relu", "sigmoid"):
        method = getattr(Value, name)
        assert (method.__name__, method.__qualname__) == (name, f"Value.{name}")


def test_backward_across_blocks_past_other_live_graphs():
    """Two graphs built interleaved, over many blocks, both kept alive (with
    their dead ends): each backward must give exactly what micrograd's
    closures give run newest first over that graph's own nodes, and leave the
    other graph alone. The sweep skips blocks holding none of the nodes it
    still has to reach, so this crosses many such blocks."""
    def build(V, n):
        xs = [V(0.01 * i - 1.0) for i in range(n)]
        left, right, dead = xs[0], xs[1], []
        for i, x in enumerate(xs):
            left = left + x.tanh() * x            # graph one
            right = (right * 0.5 + x.exp()).sigmoid()  # graph two, interleaved
            dead.append(left * right)               # neither reaches these
        return xs, left, right, dead

    n = 3 * 1024  # several default blocks of nodes
    xs, left, right, dead = build(Value, n)
    with seed_data.creation_log(reference.Value) as log:
        rxs, rleft, rright, rdead = build(reference.Value, n)
    left.backward()
    seed_data.backward_in_creation_order(rleft, log)
    assert [x.grad for x in xs] == [x.grad for x in rxs]
    assert right.grad == 0.0 and all(d.grad == 0.0 for d in dead)
    for x, rx in zip(xs, rxs):
        x.grad, rx.grad = 0.0, 0.0
    right.backward()
    seed_data.backward_in_creation_order(rright, log)
    assert [x.grad for x in xs] == [x.grad for x in rxs]
    assert left.grad == 1.0  # from its own backward, untouched since


# ---- the graph, as micrograd shows it -------------------------------------

def test_prev_holds_the_users_own_objects():
    a, b = Value(2.0), Value(3.0)
    c = a * b
    d = c + a
    assert c._prev == {a, b}
    assert d._prev == {c, a}
    assert {id(v) for v in d._prev} == {id(c), id(a)}
    assert a._prev == set()
    assert isinstance(c._prev, set)


def test_prev_of_an_op_with_itself():
    a = Value(2.0)
    assert (a * a)._prev == {a}
    assert (a + a)._prev == {a}


@pytest.mark.parametrize("op, const", [
    (lambda a: a + 5, 5.0),
    (lambda a: 5 + a, 5.0),
    (lambda a: a * 2.5, 2.5),
    (lambda a: 2.5 * a, 2.5),
    (lambda a: a - 2, -2.0),
    (lambda a: a / 4, 0.25),
    (lambda a: -a, -1.0),
])
def test_constants_appear_as_leaf_values(op, const):
    a = Value(3.0)
    out = op(a)
    prev = out._prev
    assert len(prev) == 2 and a in prev
    (c,) = prev - {a}
    assert isinstance(c, Value)
    assert c.data == const
    assert c._prev == set() and c._op == ''
    # the same object on every look
    assert out._prev == prev
    assert all(any(p is q for q in out._prev) for p in prev)


def test_division_shows_micrograds_graph():
    """a / b is one call into C, but seen through _prev it is micrograd's
    a * b**-1: the '**-1' node gets its Value on first look, keeps b alive
    and keeps its identity."""
    a, b = Value(3.0), Value(0.7)
    q = a / b
    assert q._op == "*"
    b_id = id(b)
    del b
    (inv,) = q._prev - {a}
    assert inv._op == "**-1" and inv.data == 0.7 ** -1
    (b,) = inv._prev
    assert id(b) == b_id and b.data == 0.7
    assert q._prev == {a, inv} and (q._prev - {a}).pop() is inv
    q.backward()
    ra, rb = reference.Value(3.0), reference.Value(0.7)
    rq = ra / rb
    rq.backward()
    assert (q.data, a.grad, b.grad, inv.grad) == (rq.data, ra.grad, rb.grad, 3.0)


def test_constant_leaf_gets_its_grad():
    a = Value(3.0)
    out = a * 2.5
    (c,) = out._prev - {a}
    out.backward()
    assert a.grad == 2.5
    assert c.grad == 3.0
    # looked up only after backward, a constant has its grad too
    b = Value(-2.0)
    out2 = (b + 4.0) * b
    out2.backward()
    (s,) = [v for v in out2._prev if v is not b]
    (k,) = s._prev - {b}
    assert k.data == 4.0 and k.grad == -2.0


def test_neg_is_times_minus_one():
    a = Value(3.0)
    n = -a
    assert n._op == '*'
    (m,) = n._prev - {a}
    assert a in n._prev and m.data == -1.0
    n.backward()
    assert a.grad == -1.0 and m.grad == 3.0


@pytest.mark.parametrize("op, name", [
    (lambda a, b: a + b, '+'),
    (lambda a, b: a + 1, '+'),
    (lambda a, b: a - b, '+'),
    (lambda a, b: a * b, '*'),
    (lambda a, b: 2 * a, '*'),
    (lambda a, b: a / b, '*'),
    (lambda a, b: a**2, '**2'),
    (lambda a, b: a**3, '**3'),
    (lambda a, b: a**-1, '**-1'),
    (lambda a, b: a**0.5, '**0.5'),
    (lambda a, b: a**2.0, '**2.0'),
    (lambda a, b: a**-0.5, '**-0.5'),
    (lambda a, b: a**b, '**'),
    (lambda a, b: 2**a, '**'),
    (lambda a, b: a.relu(), 'ReLU'),
    (lambda a, b: a.exp(), 'exp'),
    (lambda a, b: a.log(), 'log'),
    (lambda a, b: a.tanh(), 'tanh'),
    (lambda a, b: a.sin(), 'sin'),
    (lambda a, b: a.cos(), 'cos'),
    (lambda a, b: a.sigmoid(), 'sigmoid'),
    (lambda a, b: a, ''),
])
def test_op_names(op, name):
    assert op(Value(1.5), Value(2.0))._op == name
    assert op(reference.Value(1.5), reference.Value(2.0))._op == name


def test_division_by_a_value_is_times_its_inverse():
    a, b = Value(3.0), Value(4.0)
    q = a / b
    assert q._op == '*'
    (inv,) = q._prev - {a}
    assert inv._op == '**-1' and inv._prev == {b}


def test_op_name_of_a_bool_exponent_is_micrograds():
    assert (Value(2.0) ** True)._op == (reference.Value(2.0) ** True)._op == '**True'


def _graph_signature(root):
    nodes, edges = trace(root)
    return (len(nodes), len(edges),
            sorted((v._op, v.data, len(v._prev)) for v in nodes),
            sorted((c._op, c.data, p._op, p.data) for c, p in edges))


@pytest.mark.parametrize("expr", [
    lambda a, b: -a,
    lambda a, b: a - b,
    lambda a, b: 2 - a,
    lambda a, b: a / b,
    lambda a, b: 3 / a,
    lambda a, b: 2**a,
    lambda a, b: (a * b + 1).tanh() * -a + (b / 2.0).exp() - (a - 1) ** 2,
], ids=["neg", "sub", "rsub", "div", "rdiv", "rpow", "mixed"])
def test_graph_seen_through_prev_is_micrograds(expr):
    """Nodes, edges, ops and data reachable through _prev are those of the
    same expression in the reference engine (micrograd's graph)."""
    assert _graph_signature(expr(Value(1.5), Value(-2.0))) == \
        _graph_signature(expr(reference.Value(1.5), reference.Value(-2.0)))


def test_prev_keeps_operands_alive():
    def build():
        a = Value(2.0)
        return (a + 1) * 3
    out = build()
    (s,) = [v for v in out._prev if v._op == '+']
    (a,) = [v for v in s._prev if v.data == 2.0]
    out.backward()
    assert a.grad == 3.0


# ---- repr, hashing, attributes ----------------------------------------------

def test_repr_is_micrograds():
    a = Value(2.0)
    assert repr(a) == "Value(data=2.0, grad=0)"  # a new grad is micrograd's int 0
    b = a * -1.5
    b.backward()
    assert repr(a) == "Value(data=2.0, grad=-1.5)"
    assert repr(b) == "Value(data=-3.0, grad=1)"  # backward's self.grad = 1
    assert str(Value(0.1)) == "Value(data=0.1, grad=0)"
    assert repr(Value(2) * 3) == "Value(data=6, grad=0)"


def test_hash_and_equality_are_identity():
    a, b = Value(1.0), Value(1.0)
    assert a == a
    assert not (a == b)
    assert a != b
    assert len({a, b}) == 2
    assert hash(a) == object.__hash__(a)
    assert Value.__eq__ is object.__eq__
    d = {a: 'a'}
    a.data = 5.0
    assert d[a] == 'a'  # data changes do not change the hash


def test_arbitrary_attributes():
    v = Value(1.0)
    v.label = 'x'
    v.m = 0.0
    v.m = 0.9 * v.m + 0.1 * 2.0
    v.velocity = [1, 2]
    assert v.label == 'x' and v.m == pytest.approx(0.2) and v.velocity == [1, 2]
    out = v * 2
    out.label = 'out'
    out.backward()
    assert v.grad == 2.0 and out.label == 'out'
    assert Value(1.0).label == ''  # setting one Value's label touched no other


# ---- operators with operands a Value does not take ----------------------------

BAD_OPERANDS = ["s", None, [1.0], object(), 1j, {}]
BINARY_OPS = [
    ("+", lambda x, y: x + y),
    ("-", lambda x, y: x - y),
    ("*", lambda x, y: x * y),
    ("/", lambda x, y: x / y),
    ("**", lambda x, y: x ** y),
]


@pytest.mark.parametrize("bad", BAD_OPERANDS, ids=lambda b: type(b).__name__)
@pytest.mark.parametrize("name, op", BINARY_OPS, ids=[n for n, _ in BINARY_OPS])
def test_unsupported_operand_is_a_type_error(name, op, bad):
    v = Value(1.0)
    with pytest.raises(TypeError):
        op(v, bad)
    with pytest.raises(TypeError):
        op(bad, v)
    out = v * 2  # still fine
    out.backward()
    assert v.grad == 2.0


# ---- augmented assignment -------------------------------------------------

def test_augmented_assignment_makes_a_new_node():
    a0 = a = Value(2.0)
    b = Value(3.0)
    a += b
    assert a is not a0 and a0.data == 2.0
    assert a._op == '+' and a._prev == {a0, b}
    a *= 2
    a -= b
    a /= 2
    a **= 2
    a.backward()
    r0 = r = reference.Value(2.0)
    rb = reference.Value(3.0)
    r += rb
    r *= 2
    r -= rb
    r /= 2
    r **= 2
    r.backward()
    assert (a.data, a0.grad, b.grad) == (r.data, r0.grad, rb.grad)


# ---- custom ops written in Python, as the lecture writes them ----------------

def my_exp(self):
    out = Value(math.exp(self.data), (self,), 'myexp')

    def _backward():
        self.grad += out.data * out.grad
    out._backward = _backward
    return out


def _graph_with_exp(x, y):
    h = (x * 2 + y).tanh()
    e = (h - 0.5 * x).exp()
    return (e * y + e / (x * x + 1)).sigmoid() + e.log()


def test_custom_op_monkeypatched_onto_the_class(monkeypatch):
    x, y = Value(0.3), Value(-1.2)
    builtin = _graph_with_exp(x, y)
    builtin.backward()

    monkeypatch.setattr(Value, "exp", my_exp)
    cx, cy = Value(0.3), Value(-1.2)
    custom = _graph_with_exp(cx, cy)
    custom.backward()

    assert custom.data == builtin.data
    assert (cx.grad, cy.grad) == (x.grad, y.grad)
    exps = [v for v in trace(custom)[0] if v._op == 'myexp']
    assert len(exps) == 1 and len(exps[0]._prev) == 1


def test_custom_op_node_api():
    x = Value(0.5)
    out = my_exp(x)
    assert out._op == 'myexp'
    assert out._prev == {x}
    assert out.data == math.exp(0.5)
    out.backward()
    assert x.grad == math.exp(0.5)
    # calling its _backward by hand runs the Python function once more
    out._backward()
    assert x.grad == 2 * math.exp(0.5)


def test_custom_op_with_many_children():
    def weighted_sum(*xs):
        out = Value(sum((i + 1) * x.data for i, x in enumerate(xs)), xs, 'wsum')

        def _backward():
            for i, x in enumerate(xs):
                x.grad += (i + 1) * out.grad
        out._backward = _backward
        return out

    def prod3(a, b, c):
        out = Value(a.data * b.data * c.data, (a, b, c), 'prod3')

        def _backward():
            a.grad += b.data * c.data * out.grad
            b.grad += a.data * c.data * out.grad
            c.grad += a.data * b.data * out.grad
        out._backward = _backward
        return out

    a, b, c = Value(1.5), Value(-2.0), Value(4.0)
    p = prod3(a, b, c)
    assert p._prev == {a, b, c} and p.data == -12.0
    (p * 0.5).backward()
    assert (a.grad, b.grad, c.grad) == (-4.0, 3.0, -1.5)

    xs = [Value(float(i)) for i in range(6)]
    s = weighted_sum(*xs)
    assert s._prev == set(xs) and s.data == sum((i + 1) * i for i in range(6))
    out = (s * xs[2]).tanh()
    out.backward()
    d = 1 - out.data**2
    for i, x in enumerate(xs):
        expected = (i + 1) * xs[2].data * d + (s.data * d if i == 2 else 0.0)
        assert x.grad == pytest.approx(expected, rel=1e-12)


def test_custom_op_with_thousands_of_children():
    """Operand arrays of custom nodes live beside the block's nodes; a node
    with more children than a block holds nodes still works."""
    xs = [Value(float(i)) for i in range(3000)]
    out = Value(sum(x.data for x in xs), xs, 'sum')

    def _backward():
        for x in xs:
            x.grad += out.grad
    out._backward = _backward
    assert len(out._prev) == 3000
    ((out * 2).tanh() + out * 0.001).backward()
    assert all(x.grad == 0.001 for x in xs)


def test_custom_op_twin_of_reference():
    """A custom op used identically in both engines gives identical grads."""
    def my_sq(V):
        def sq(self):
            out = V(self.data**2, (self,), 'sq')

            def _backward():
                self.grad += 2 * self.data * out.grad
            out._backward = _backward
            return out
        return sq

    results = []
    for V in (Value, reference.Value):
        sq = my_sq(V)
        x, y = V(0.7), V(-0.4)
        z = sq(x * y + 1) + sq(sq(x)).tanh() * y
        z.backward()
        results.append((z.data, x.grad, y.grad))
    assert results[0] == results[1]


class Boom(Exception):
    pass


def test_custom_backward_that_raises():
    x = Value(2.0)
    out = Value(x.data * 3, (x,), 'bad')

    def _backward():
        raise Boom("from a custom backward")
    out._backward = _backward
    s = out + 1
    root = s.tanh()
    with pytest.raises(Boom):
        root.backward()
    # the nodes above it got their grads before it raised; below it, none
    assert root.grad == 1.0 and s.grad != 0.0 and out.grad != 0.0
    assert x.grad == 0.0

    # the engine keeps working, and so does this graph once fixed
    def fixed():
        x.grad += 3 * out.grad
    out._backward = fixed
    s.grad = out.grad = 0.0
    root.backward()
    assert x.grad == pytest.approx(3 * (1 - root.data**2))
    y = Value(1.0)
    z = (y * 2).exp()
    z.backward()
    assert y.grad == 2 * math.exp(2.0)


def test_custom_backward_can_build_and_backprop_another_graph():
    """A Python backward runs in the middle of the C sweep; it may use the
    engine (even another backward) without disturbing the sweep."""
    x = Value(0.5)
    side = []
    out = Value(x.data * 2, (x,), 'twice')

    def _backward():
        a = Value(3.0)
        b = (a * a).tanh()
        b.backward()
        side.append(a.grad)
        x.grad += 2 * out.grad
    out._backward = _backward
    root = (out * out + x).sin()
    root.backward()
    assert side == [pytest.approx(6 * (1 - math.tanh(9.0) ** 2))]
    # root = sin(4x^2 + x): d/dx = cos(4x^2 + x) * (8x + 1)
    assert x.grad == pytest.approx(math.cos(4 * 0.25 + 0.5) * (8 * 0.5 + 1), rel=1e-12)


def test_custom_node_without_backward_passes_no_grad():
    x = Value(2.0)
    out = Value(5.0, (x,), 'opaque')
    (out * 2).backward()
    assert out.grad == 2.0 and x.grad == 0.0


def test_calling_backward_of_custom_node_without_one_is_a_no_op():
    x = Value(2.0)
    out = Value(5.0, (x,), 'opaque')
    out.grad = 1.0
    out._backward()
    assert x.grad == 0.0


def test_lecture_manual_stepping():
    """The lecture's neuron, backpropagated by calling each node's _backward
    by hand, gives the grads backward() gives (and the reference's)."""
    def neuron(V):
        x1 = V(2.0, label='x1')
        x2 = V(0.0, label='x2')
        w1 = V(-3.0, label='w1')
        w2 = V(1.0, label='w2')
        b = V(6.8813735870195432, label='b')
        x1w1 = x1 * w1
        x1w1.label = 'x1*w1'
        x2w2 = x2 * w2
        x2w2.label = 'x2*w2'
        x1w1x2w2 = x1w1 + x2w2
        x1w1x2w2.label = 'x1*w1 + x2*w2'
        n = x1w1x2w2 + b
        n.label = 'n'
        o = n.tanh()
        o.label = 'o'
        return [x1, x2, w1, w2, b, x1w1, x2w2, x1w1x2w2, n, o]

    def by_hand(nodes):
        x1, x2, w1, w2, b, x1w1, x2w2, x1w1x2w2, n, o = nodes
        o.grad = 1.0
        o._backward()
        n._backward()
        b._backward()
        x1w1x2w2._backward()
        x2w2._backward()
        x1w1._backward()
        return [v.grad for v in nodes]

    # one _backward() runs just that node's kernel
    x1, x2, w1, w2, b, x1w1, x2w2, x1w1x2w2, n, o = neuron(Value)
    o.grad = 1.0
    o._backward()
    assert n.grad == 1 - o.data**2
    assert x1w1x2w2.grad == b.grad == 0.0
    n._backward()
    assert x1w1x2w2.grad == b.grad == n.grad
    assert x1w1.grad == x2w2.grad == 0.0

    manual = by_hand(neuron(Value))
    assert manual[:4] == pytest.approx([-1.5, 0.5, 1.0, 0.0], abs=1e-12)
    auto_nodes = neuron(Value)
    auto_nodes[-1].backward()
    assert manual == [v.grad for v in auto_nodes]
    assert manual == by_hand(neuron(reference.Value))


def test_lecture_topological_sort_over_prev():
    """The lecture's build_topo over _prev, then _backward() in reverse: the
    same grads as backward(), constants' leaves included."""
    def build():
        a, b = Value(1.5), Value(-0.5)
        return a, b, ((a * b + 2).tanh() * -a + b**2 / 4).exp()

    a, b, out = build()
    topo, visited = [], set()

    def build_topo(v):
        if v not in visited:
            visited.add(v)
            for child in v._prev:
                build_topo(child)
            topo.append(v)
    build_topo(out)
    out.grad = 1.0
    for node in reversed(topo):
        node._backward()

    a2, b2, out2 = build()
    out2.backward()
    assert a.grad == pytest.approx(a2.grad, rel=1e-12)
    assert b.grad == pytest.approx(b2.grad, rel=1e-12)
    assert len(topo) == len(trace(out)[0])


# ---- copying, as micrograd allows ---------------------------------------------

def test_copy_is_independent():
    a = Value(2.0)
    b = copy.copy(a)
    b.data = 5.0
    assert a.data == 2.0


def test_deepcopy_of_parameters():
    params = [Value(0.5, label='w'), Value(-1.0, label='b')]
    snapshot = copy.deepcopy(params)
    params[0].data = 9.0
    assert [p.data for p in snapshot] == [0.5, -1.0]
    assert snapshot[0].label == 'w'
    out = snapshot[0] * snapshot[1]
    out.backward()
    assert snapshot[0].grad == -1.0


def test_value_over_value_is_micrograds_power_of_minus_one():
    """a / b is micrograd's a * b**-1, and b**-1 is libm's pow, which for this
    b differs in the last bit from 1.0 / b (what a compiler makes of
    pow(b, -1.0) if it sees the constant)."""
    b = 1.1186638600993815
    assert b**-1 != 1.0 / b
    q = Value(1.0) / Value(b)
    assert q.data == 1.0 * b**-1
    assert [v for v in q._prev if v._op == "**-1"][0].data == b**-1
