"""cgrad's engine: every op's data and grad against torch (float64), central
differences and the pure-Python reference engine; micrograd's own engine
tests; the seed notebook's known answers; math errors."""
import math

import pytest

from cgrad import Value, gradcheck, numeric_grad
from cgrad import reference

from seed_data import (F_DATA, F_GRAD, F_POINT, MORE_OPS_A_GRAD, MORE_OPS_B_GRAD, MORE_OPS_G,
                       SOFTMAX_GRADS, SOFTMAX_LOGITS, SOFTMAX_LOSS, SOFTMAX_PROBS_ROUNDED,
                       f_floats, f_values, more_ops, same_float, softmax)


# ---- one op at a time --------------------------------------------------------

def _augmented(a, b):
    c = a
    c += b        # each of these makes a new node, as in micrograd
    c -= 0.25
    c *= a
    c /= b
    c **= 2
    return c


def _augmented_torch(a, b):  # what _augmented computes, without in-place ops on leaves
    return ((((a + b) - 0.25) * a) / b) ** 2


def _compound(a, b):
    """Shared subexpressions, every op at least once."""
    s = a * b + a
    t = (b - a).sigmoid()
    return ((s.tanh() * t + (s * s + 1).log() - b.sin() * a.cos() / (a.exp() + 1)).relu()
            + 2.0 ** t - 1 / (t + 0.5) + (s * s + 0.5) ** t) ** 2


# (id, fn on Values or torch tensors, inputs)
OPS = [
    ("value+value", lambda a, b: a + b, (0.7, -1.3)),
    ("value+float", lambda a: a + 2.5, (0.7,)),
    ("float+value", lambda a: 2.5 + a, (0.7,)),
    ("value+int", lambda a: a + 2, (0.7,)),
    ("int+value", lambda a: 2 + a, (0.7,)),
    ("value+self", lambda a: a + a, (0.7,)),
    ("value-value", lambda a, b: a - b, (0.7, -1.3)),
    ("value-float", lambda a: a - 2.5, (0.7,)),
    ("float-value", lambda a: 2.5 - a, (0.7,)),
    ("value*value", lambda a, b: a * b, (0.7, -1.3)),
    ("value*float", lambda a: a * 2.5, (0.7,)),
    ("float*value", lambda a: 2.5 * a, (0.7,)),
    ("value*self", lambda a: a * a, (0.7,)),
    ("value/value", lambda a, b: a / b, (0.7, -1.3)),
    ("value/float", lambda a: a / 2.5, (0.7,)),
    ("float/value", lambda a: 2.5 / a, (0.7,)),
    ("int/value", lambda a: 3 / a, (-1.3,)),
    ("-value", lambda a: -a, (0.7,)),
    ("value**2", lambda a: a**2, (0.7,)),
    ("value**3 negative base", lambda a: a**3, (-1.3,)),
    ("value**-1", lambda a: a**-1, (0.7,)),
    ("value**-2 negative base", lambda a: a**-2, (-1.3,)),
    ("value**0", lambda a: a**0, (0.7,)),
    ("value**0.5", lambda a: a**0.5, (1.7,)),
    ("value**2.5", lambda a: a**2.5, (1.7,)),
    ("value**-0.5", lambda a: a**-0.5, (1.7,)),
    ("value**1.5", lambda a: a**1.5, (0.3,)),
    ("value**value", lambda a, b: a**b, (1.7, -0.6)),
    ("value**value base below 1", lambda a, b: a**b, (0.3, 2.2)),
    ("float**value", lambda a: 2.0**a, (0.7,)),
    ("int**value", lambda a: 3**a, (-1.3,)),
    ("fraction**value", lambda a: 0.5**a, (0.7,)),
    ("relu of positive", lambda a: a.relu(), (0.7,)),
    ("relu of negative", lambda a: a.relu(), (-0.7,)),
    ("exp", lambda a: a.exp(), (0.7,)),
    ("exp of negative", lambda a: a.exp(), (-3.1,)),
    ("log", lambda a: a.log(), (1.7,)),
    ("log below 1", lambda a: a.log(), (0.2,)),
    ("tanh", lambda a: a.tanh(), (0.7,)),
    ("tanh of negative", lambda a: a.tanh(), (-1.9,)),
    ("sin", lambda a: a.sin(), (0.7,)),
    ("sin of negative", lambda a: a.sin(), (-2.4,)),
    ("cos", lambda a: a.cos(), (0.7,)),
    ("cos of negative", lambda a: a.cos(), (-2.4,)),
    ("sigmoid of positive", lambda a: a.sigmoid(), (0.7,)),
    ("sigmoid of negative", lambda a: a.sigmoid(), (-2.3,)),
    ("augmented assignment", _augmented, (0.7, -1.3)),
    ("compound", _compound, (0.7, -1.3)),
]
OP_IDS = [op[0] for op in OPS]
# torch refuses in-place ops on leaves that require grad
TORCH_VERSION = {"augmented assignment": _augmented_torch}


def run(V, fn, inputs):
    """fn's data and the grads of its inputs, in engine V."""
    xs = [V(x) for x in inputs]
    out = fn(*xs)
    out.backward()
    return out.data, [x.grad for x in xs]


def run_torch(torch, fn, inputs):
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    out = fn(*ts)
    out.backward()
    return out.item(), [0.0 if t.grad is None else t.grad.item() for t in ts]


@pytest.mark.parametrize("name, fn, inputs", OPS, ids=OP_IDS)
def test_op_matches_torch(torch, name, fn, inputs):
    data, grads = run(Value, fn, inputs)
    t_data, t_grads = run_torch(torch, TORCH_VERSION.get(name, fn), inputs)
    assert data == pytest.approx(t_data, rel=1e-12, abs=1e-12)
    assert grads == pytest.approx(t_grads, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name, fn, inputs", OPS, ids=OP_IDS)
def test_op_matches_central_differences(name, fn, inputs):
    assert gradcheck(fn, list(inputs))
    data, grads = run(Value, fn, inputs)
    numeric = numeric_grad(fn, [Value(x) for x in inputs])
    assert grads == pytest.approx(numeric, rel=1e-5, abs=1e-6)
    assert data == fn(*[reference.Value(x) for x in inputs]).data


@pytest.mark.parametrize("name, fn, inputs", OPS, ids=OP_IDS)
def test_op_is_bit_identical_to_reference(name, fn, inputs):
    data, grads = run(Value, fn, inputs)
    ref_data, ref_grads = run(reference.Value, fn, inputs)
    assert same_float(data, ref_data), (data, ref_data)
    assert len(grads) == len(ref_grads)
    for g, r in zip(grads, ref_grads):
        assert same_float(g, r), (grads, ref_grads)


def test_gradcheck_catches_a_wrong_gradient():
    """The numeric check the op tests rely on can fail: a custom op with a
    deliberately wrong backward is reported."""
    def bad_square(x):
        out = Value(x.data**2, (x,), 'badsq')

        def _backward():
            x.grad += 3 * x.data * out.grad  # should be 2 * x.data
        out._backward = _backward
        return out

    with pytest.raises(AssertionError, match="input 0"):
        gradcheck(bad_square, [1.5])


def test_value_pow_value_grad_of_exponent_at_zero_base():
    """d(a**b)/db at a == 0, b > 0 is 0 (torch's convention), not nan."""
    a, b = Value(0.0), Value(2.0)
    out = a**b
    out.backward()
    assert out.data == 0.0
    assert a.grad == 0.0
    assert b.grad == 0.0


# ---- micrograd's own engine tests, against torch ---------------------------

def test_sanity_check(torch):
    x = Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    xmg, ymg = x, y

    x = torch.Tensor([-4.0]).double()
    x.requires_grad = True
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    xpt, ypt = x, y

    # forward pass went well
    assert ymg.data == ypt.data.item()
    # backward pass went well
    assert xmg.grad == xpt.grad.item()


def test_more_ops(torch):
    a = Value(-4.0)
    b = Value(2.0)
    g = more_ops(a, b)
    g.backward()
    amg, bmg, gmg = a, b, g

    a = torch.Tensor([-4.0]).double()
    b = torch.Tensor([2.0]).double()
    a.requires_grad = True
    b.requires_grad = True
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    apt, bpt, gpt = a, b, g

    tol = 1e-6
    # forward pass went well
    assert abs(gmg.data - gpt.data.item()) < tol
    # backward pass went well
    assert abs(amg.grad - apt.grad.item()) < tol
    assert abs(bmg.grad - bpt.grad.item()) < tol


def test_more_ops_prints_micrograds_readme_numbers():
    """micrograd's README prints these for the same expression (4 decimals)."""
    a, b = Value(-4.0), Value(2.0)
    g = more_ops(a, b)
    g.backward()
    assert f"{g.data:.4f}" == "24.7041"
    assert f"{a.grad:.4f}" == "138.8338"
    assert f"{b.grad:.4f}" == "645.5773"
    assert g.data == pytest.approx(MORE_OPS_G, rel=1e-12)
    assert a.grad == pytest.approx(MORE_OPS_A_GRAD, rel=1e-12)
    assert b.grad == pytest.approx(MORE_OPS_B_GRAD, rel=1e-12)


# ---- the seed notebook's cells -------------------------------------------

@pytest.mark.parametrize("V", [Value, reference.Value], ids=["cgrad", "reference"])
def test_seed_softmax_nll(V):
    logits = [V(x) for x in SOFTMAX_LOGITS]
    probs = softmax(logits)
    assert [round(p.data, 5) for p in probs] == SOFTMAX_PROBS_ROUNDED
    loss = -probs[3].log()  # dim 3 acts as the label for this input example
    loss.backward()
    assert abs(loss.data - SOFTMAX_LOSS) < 1e-12
    for logit, expected in zip(logits, SOFTMAX_GRADS):
        assert abs(logit.grad - expected) < 1e-12


def test_seed_softmax_nll_against_torch(torch):
    logits = [Value(x) for x in SOFTMAX_LOGITS]
    loss = -softmax(logits)[3].log()
    loss.backward()

    t = torch.tensor([SOFTMAX_LOGITS], dtype=torch.float64, requires_grad=True)
    t_loss = -torch.softmax(t, dim=1)[0][3].log()
    t_loss.backward()
    assert loss.data == pytest.approx(t_loss.item(), rel=1e-12)
    assert [x.grad for x in logits] == pytest.approx(t.grad[0].tolist(), rel=1e-12, abs=1e-15)


def test_seed_softmax_nll_bit_identical_to_reference():
    logits = [Value(x) for x in SOFTMAX_LOGITS]
    loss = -softmax(logits)[3].log()
    loss.backward()
    ref_logits = [reference.Value(x) for x in SOFTMAX_LOGITS]
    ref_loss = -softmax(ref_logits)[3].log()
    ref_loss.backward()
    assert loss.data == ref_loss.data
    assert [x.grad for x in logits] == [x.grad for x in ref_logits]


def test_seed_f_data_and_gradient():
    assert f_floats(*F_POINT) == F_DATA
    a, b, c = (Value(x) for x in F_POINT)
    out = f_values(a, b, c)
    out.backward()
    assert abs(out.data - F_DATA) < 1e-12
    for got, expected in zip([a.grad, b.grad, c.grad], F_GRAD):
        assert abs(got - expected) < 1e-12


@pytest.mark.parametrize("make_input", [float, Value], ids=["floats", "Values"])
def test_seed_f_numeric_gradients(make_input):
    """Exercises 2 and 3: both formulas within 1e-5 of the answer, and the
    symmetric (central) one closer than the forward one in every dimension."""
    f = f_floats if make_input is float else f_values
    inputs = [make_input(x) for x in F_POINT]
    forward = numeric_grad(f, inputs, h=1e-6, method="forward")
    central = numeric_grad(f, inputs, h=1e-6, method="central")
    for dim in range(3):
        assert abs(forward[dim] - F_GRAD[dim]) < 1e-5
        assert abs(central[dim] - F_GRAD[dim]) < 1e-5
        assert abs(central[dim] - F_GRAD[dim]) < abs(forward[dim] - F_GRAD[dim])


def test_seed_f_numeric_gradients_are_the_seed_formulas():
    """numeric_grad computes exactly the notebook's gradf_numeric (forward)
    and gradf_numeric2 (central) for the same h."""
    h = 1e-6
    a, b, c = F_POINT
    f = f_floats
    forward = [(f(a + h, b, c) - f(a, b, c)) / h,
               (f(a, b + h, c) - f(a, b, c)) / h,
               (f(a, b, c + h) - f(a, b, c)) / h]
    central = [(f(a + h, b, c) - f(a - h, b, c)) / (2 * h),
               (f(a, b + h, c) - f(a, b - h, c)) / (2 * h),
               (f(a, b, c + h) - f(a, b, c - h)) / (2 * h)]
    assert numeric_grad(f, list(F_POINT), method="forward") == forward
    assert numeric_grad(f, list(F_POINT), method="central") == central


def test_numeric_grad_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="method"):
        numeric_grad(f_floats, list(F_POINT), method="backward")


# ---- math errors ------------------------------------------------------------

# (id, operands' data, the failing op, the exception Python's float math raises)
ERRORS = [
    ("log(0)", (0.0,), lambda a: a.log(), ValueError),
    ("log(-1)", (-1.0,), lambda a: a.log(), ValueError),
    ("log(-inf)", (-math.inf,), lambda a: a.log(), ValueError),
    ("exp(1000)", (1000.0,), lambda a: a.exp(), OverflowError),
    ("0**-1", (0.0,), lambda a: a**-1, ZeroDivisionError),
    ("0**-0.5", (0.0,), lambda a: a**-0.5, ZeroDivisionError),
    ("value/0", (1.0,), lambda a: a / 0, ZeroDivisionError),
    ("value/0.0", (1.0,), lambda a: a / 0.0, ZeroDivisionError),
    ("number/Value(0)", (0.0,), lambda a: 1 / a, ZeroDivisionError),
    ("value/Value(0)", (1.0, 0.0), lambda a, b: a / b, ZeroDivisionError),
    ("Value(0)**Value(-1)", (0.0, -1.0), lambda a, b: a**b, ZeroDivisionError),
    ("(-8)**0.5", (-8.0,), lambda a: a**0.5, ValueError),
    ("Value(-8)**Value(0.5)", (-8.0, 0.5), lambda a, b: a**b, ValueError),
    ("1e200**2", (1e200,), lambda a: a**2, OverflowError),
    ("2**Value(5000)", (5000.0,), lambda a: 2**a, OverflowError),
    ("sin(inf)", (math.inf,), lambda a: a.sin(), ValueError),
    ("cos(-inf)", (-math.inf,), lambda a: a.cos(), ValueError),
]
ERROR_IDS = [e[0] for e in ERRORS]


def _small_graph_works():
    a, b = Value(2.0), Value(-3.0)
    out = (a * b + a.exp()).tanh() + (a**2).log()
    out.backward()
    ref_a, ref_b = reference.Value(2.0), reference.Value(-3.0)
    ref_out = (ref_a * ref_b + ref_a.exp()).tanh() + (ref_a**2).log()
    ref_out.backward()
    assert out.data == ref_out.data
    assert (a.grad, b.grad) == (ref_a.grad, ref_b.grad)


@pytest.mark.parametrize("name, operands, op, exc", ERRORS, ids=ERROR_IDS)
def test_math_error_raises_pythons_exception(name, operands, op, exc):
    values = [Value(x) for x in operands]
    with pytest.raises(exc):
        op(*values)
    # the engine is intact: the operands still work, and so does a new graph
    assert [v.data for v in values] == [float(x) for x in operands]
    out = values[0] * 2 + 1
    out.backward()
    assert values[0].grad == 2.0
    _small_graph_works()


@pytest.mark.parametrize("name, operands, op, exc", ERRORS, ids=ERROR_IDS)
def test_math_error_is_the_references(name, operands, op, exc):
    with pytest.raises(exc):
        op(*[reference.Value(x) for x in operands])


@pytest.mark.parametrize("name, operands, op, exc", ERRORS, ids=ERROR_IDS)
def test_failed_op_makes_no_node(name, operands, op, exc):
    """White-box: nodes come from a bump allocator, so if the failing op had
    allocated anything, the node made after it would not sit right after the
    one made before it. (number ** Value makes the number's leaf, as micrograd
    does, before the power fails: that leaf is a whole node.)"""
    leaves_made = 1 if name == "2**Value(5000)" else 0
    for _ in range(5):  # retry if a block boundary falls between the nodes
        values = [Value(x) for x in operands]
        before = Value(1.0)
        with pytest.raises(exc):
            op(*values)
        after = Value(2.0)
        if after._cg_blk is before._cg_blk:
            break
    else:
        pytest.fail("could not get two consecutive nodes into one block")
    probe = Value(3.0)
    if probe._cg_blk is after._cg_blk:
        node_size = probe._cg_h - after._cg_h
        assert after._cg_h - before._cg_h == (1 + leaves_made) * node_size


def test_float_overflow_in_plus_and_times_is_inf_as_in_python():
    """Python's + and * on floats overflow to inf without raising; so do
    Values (only **, exp and the like raise OverflowError)."""
    big = Value(1e308)
    assert (big * 10).data == 1e308 * 10 == math.inf
    assert (big + big).data == math.inf
    assert (-big - big).data == -math.inf
    assert ((big * 10) - (big * 10)).data != ((big * 10) - (big * 10)).data  # inf - inf is nan


def test_errors_do_not_leave_a_sweep_or_graph_half_done():
    """Many failing ops in a row, interleaved with working ones: every
    working graph is still exact."""
    leaf = a = Value(0.5)
    for i in range(200):
        for name, operands, op, exc in ERRORS:
            with pytest.raises(exc):
                op(*[Value(x) for x in operands])
        a = (a * 1.01 + 0.001).tanh()
    a.backward()
    ref_leaf = r = reference.Value(0.5)
    for i in range(200):
        r = (r * 1.01 + 0.001).tanh()
    r.backward()
    assert a.data == r.data
    assert leaf.grad == ref_leaf.grad


# ---- edge cases where cgrad once diverged --------------------------------------

@pytest.mark.parametrize("base", [0.0, -0.0])
def test_zero_to_the_minus_infinity_is_inf(base):
    assert base ** -math.inf == math.inf
    assert (reference.Value(base) ** -math.inf).data == math.inf
    assert (Value(base) ** -math.inf).data == math.inf
    assert (Value(base) ** Value(-math.inf)).data == math.inf


def _backward_outcome(V, operands, op):
    """('grads', [...]) after a backward from op(*operands), or ('raises', type)."""
    values = [V(x) for x in operands]
    out = op(*values)
    try:
        out.backward()
    except (ArithmeticError, ValueError) as exc:
        return ("raises", type(exc))
    return ("grads", [v.grad for v in values])


# Forward passes that both engines compute, whose local derivative is not a
# finite float: both engines follow IEEE in backward (inf or nan, as torch
# does) rather than raising as micrograd's Python float math would.
BACKWARD_DIVERGENCES = [
    ("d/dx x**0.5 at 0", (0.0,), lambda a: a**0.5),
    ("d/dx x**-1 at 1e-200", (1e-200,), lambda a: a**-1),
    ("d/da a**b at a=0, b=0.5", (0.0, 0.5), lambda a, b: a**b),
    ("d/db a**b at a=-2, b=2", (-2.0, 2.0), lambda a, b: a**b),
]


@pytest.mark.parametrize("name, operands, op", BACKWARD_DIVERGENCES,
                         ids=[d[0] for d in BACKWARD_DIVERGENCES])
def test_backward_of_pow_outside_the_domain_matches_reference(name, operands, op):
    cg = _backward_outcome(Value, operands, op)
    ref = _backward_outcome(reference.Value, operands, op)
    assert cg[0] == ref[0]
    if cg[0] == "raises":
        assert cg[1] is ref[1]
    else:
        assert all(same_float(x, y) for x, y in zip(cg[1], ref[1]))


@pytest.mark.parametrize("build", [lambda a, b: a ** 0, lambda a, b: a ** b],
                         ids=["x**0", "x**Value(0)"])
def test_constant_power_at_zero_has_grad_zero_as_in_torch(build, torch):
    """x ** 0 at x = 0: 0 * pow(0, -1) would be nan; torch (and both engines) say 0."""
    for V in (Value, reference.Value):
        a, b = V(0.0), V(0.0)
        build(a, b).backward()
        assert (a.grad, b.grad) == (0.0, 0.0)
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    (t ** 0).backward()
    assert t.grad.item() == 0.0
