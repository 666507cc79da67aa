"""Fused n-ary ops (cgrad.functional) and numpy bulk I/O (cgrad.bulk). The comparisons
with torch take the `torch` fixture (they skip where torch is not installed,
as on PyPy); everything else runs on every interpreter."""
import copy
import gc
import math
import pickle

import numpy as np
import pytest

import cgrad
from cgrad import Value
from cgrad.functional import ValueList

RNG = np.random.default_rng(1234)
XS = RNG.normal(size=9) * 3
WS = RNG.normal(size=9)
TOL = 1e-12


def torch_result(torch, fn, xs=XS):
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    out = fn(torch, t)
    out.backward()
    return out.item(), t.grad.numpy()


def cgrad_result(fn, xs=XS):
    vs = cgrad.values(xs)
    out = fn(vs)
    out.backward()
    return out.data, cgrad.grads(vs)


def W(torch):
    return torch.tensor(WS, dtype=torch.float64)

# name: (torch expression, fused cgrad expression, the same built op by op)
CASES = {
    "sum": (lambda torch, t: t.sum() + 0.5,
            lambda v: cgrad.sum(v, start=0.5),
            lambda v: sum(v, 0.5)),
    "mean": (lambda torch, t: t.mean(),
             lambda v: cgrad.mean(v),
             lambda v: sum(v) / len(v)),
    "dot": (lambda torch, t: (t * W(torch)).sum() + 1.5,
            lambda v: cgrad.dot(WS.tolist(), v, start=1.5),
            lambda v: sum((w * x for w, x in zip(WS.tolist(), v)), Value(1.5))),
    "logsumexp": (lambda torch, t: torch.logsumexp(t, 0),
                  lambda v: cgrad.logsumexp(v),
                  lambda v: sum(x.exp() for x in v).log()),
    "softmax": (lambda torch, t: (torch.softmax(t, 0) * W(torch)).sum(),
                lambda v: cgrad.dot(cgrad.softmax(v), WS.tolist()),
                lambda v: sum(w * (x.exp() / sum(u.exp() for u in v)) for w, x in zip(WS.tolist(), v))),
    "log_softmax": (lambda torch, t: (torch.log_softmax(t, 0) * W(torch)).sum(),
                    lambda v: cgrad.dot(WS.tolist(), cgrad.log_softmax(v)),
                    lambda v: sum(w * (x - sum(u.exp() for u in v).log()) for w, x in zip(WS.tolist(), v))),
    "cross_entropy": (lambda torch, t: -torch.log_softmax(t, 0)[4],
                      lambda v: cgrad.cross_entropy(v, 4),
                      lambda v: -(v[4].exp() / sum(x.exp() for x in v)).log()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_op_matches_torch(name, torch):
    torch_fn, fused_fn, _ = CASES[name]
    expected_data, expected_grad = torch_result(torch, torch_fn)
    data, grad = cgrad_result(fused_fn)
    assert data == pytest.approx(expected_data, rel=TOL, abs=TOL)
    np.testing.assert_allclose(grad, expected_grad, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_op_matches_op_by_op(name):
    _, fused_fn, op_by_op_fn = CASES[name]
    data, grad = cgrad_result(fused_fn)
    ref_data, ref_grad = cgrad_result(op_by_op_fn)
    assert data == pytest.approx(ref_data, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


def test_dot_is_bit_identical_to_micrograds_neuron_sum():
    # cgrad.nn relies on this: same float operations, same order.
    ws, xs = cgrad.values(WS), cgrad.values(XS)
    b = Value(0.25)
    fused = cgrad.dot(ws, xs, start=b)
    fused.backward()
    fused_grads = cgrad.grads(ws + xs + [b])
    ws2, xs2 = cgrad.values(WS), cgrad.values(XS)
    b2 = Value(0.25)
    chained = sum((w * x for w, x in zip(ws2, xs2)), b2)
    chained.backward()
    assert fused.data == chained.data
    assert fused_grads.tolist() == cgrad.grads(ws2 + xs2 + [b2]).tolist()


def stable_log_softmax(xs):
    """log_softmax of xs and its softmax, computed stably in numpy: the
    oracle of the fused ops where torch is not needed."""
    xs = np.asarray(xs, dtype=np.float64)
    shifted = xs - xs.max()
    lse = np.log(np.exp(shifted).sum())
    return shifted - lse, np.exp(shifted - lse)


@pytest.mark.parametrize("extreme", [1000.0, -1000.0])
def test_stable_for_large_logits(extreme):
    xs = [extreme, 0.0, -extreme, extreme - 1.0]
    log_probs, probs = stable_log_softmax(xs)
    onehot = np.eye(4)[1]
    for fused_fn, expected_data, expected_grad in [
        (lambda v: cgrad.cross_entropy(v, 1), -log_probs[1], probs - onehot),
        (lambda v: cgrad.logsumexp(v), max(xs) + np.log(np.exp(np.subtract(xs, max(xs))).sum()), probs),
    ]:
        data, grad = cgrad_result(fused_fn, xs)
        assert math.isfinite(data)
        assert data == pytest.approx(expected_data, rel=TOL, abs=TOL)
        np.testing.assert_allclose(grad, expected_grad, rtol=TOL, atol=TOL)
    # The seed's op-by-op formula overflows where the fused op does not.
    with pytest.raises(OverflowError):
        [Value(x).exp() for x in xs]


@pytest.mark.parametrize("extreme", [1000.0, -1000.0])
def test_stable_for_large_logits_matches_torch(extreme, torch):
    xs = [extreme, 0.0, -extreme, extreme - 1.0]
    for torch_fn, fused_fn in [
        (lambda torch, t: -torch.log_softmax(t, 0)[1], lambda v: cgrad.cross_entropy(v, 1)),
        (lambda torch, t: torch.logsumexp(t, 0), lambda v: cgrad.logsumexp(v)),
        (lambda torch, t: (torch.softmax(t, 0) * torch.arange(4.0, dtype=torch.float64)).sum(),
         lambda v: cgrad.dot(cgrad.softmax(v), [0.0, 1.0, 2.0, 3.0])),
    ]:
        expected_data, expected_grad = torch_result(torch, torch_fn, xs)
        data, grad = cgrad_result(fused_fn, xs)
        assert math.isfinite(data)
        assert data == pytest.approx(expected_data, rel=TOL, abs=TOL)
        np.testing.assert_allclose(grad, expected_grad, rtol=TOL, atol=TOL)


def test_softmax_outputs_share_one_group_and_backprop_only_when_reached():
    logits = cgrad.values(XS)
    probs = cgrad.softmax(logits)
    assert isinstance(probs, list) and len(probs) == len(XS)
    assert math.isclose(sum(p.data for p in probs), 1.0, rel_tol=1e-15)
    (group,) = probs[0]._prev
    assert all(p._prev == {group} for p in probs)
    assert group._op == "softmax" and group._prev == set(logits)
    assert probs[3]._op == "softmax[3]"
    # Two losses on different outputs, one backward each: grads accumulate
    # as the sum of the two separate gradients, as in micrograd.
    (-probs[3].log()).backward()
    first = cgrad.grads(logits)
    (-probs[5].log()).backward()
    both = cgrad.grads(logits)
    alone_logits = cgrad.values(XS)
    (-cgrad.softmax(alone_logits)[5].log()).backward()
    np.testing.assert_allclose(both - first, cgrad.grads(alone_logits), rtol=1e-12, atol=1e-15)


def test_fused_node_shows_its_operands():
    a, b = Value(1.0), Value(2.0)
    s = cgrad.sum([a, b, 3.0])
    assert s._op == "sum"
    prev = s._prev
    assert a in prev and b in prev
    assert sorted(v.data for v in prev) == [0.0, 1.0, 2.0, 3.0]  # start 0 is a constant leaf too
    d = cgrad.dot([a, 2.0], [b, a])
    assert d._op == "dot" and d.data == 1.0 * 2.0 + 2.0 * 1.0
    ce = cgrad.cross_entropy([a, b], 0)
    assert ce._op == "cross_entropy" and ce._prev == {a, b}


def test_numbers_are_constants():
    a = Value(2.0)
    out = cgrad.sum([a, 1.0, np.float32(0.5), 2])
    out.backward()
    assert out.data == 5.5 and a.grad == 1.0


def test_errors_leave_nothing_half_built():
    v = [Value(1.0), Value(2.0)]
    for fn in (cgrad.mean, cgrad.logsumexp, cgrad.softmax, cgrad.log_softmax,
               lambda xs: cgrad.cross_entropy(xs, 0), lambda xs: cgrad.dot(xs, xs)):
        with pytest.raises(ValueError):
            fn([])
    with pytest.raises(ValueError):
        cgrad.sum([])
    with pytest.raises(IndexError):
        cgrad.cross_entropy(v, 2)
    with pytest.raises(IndexError):
        cgrad.cross_entropy(v, -3)
    with pytest.raises(TypeError):
        cgrad.cross_entropy(v, 0.5)
    with pytest.raises(ValueError):
        cgrad.dot(v, [1.0])
    for bad in ("x", None, object(), 1j):
        with pytest.raises(TypeError):
            cgrad.sum([Value(1.0), bad])
    # The engine goes on working, and the same inputs still give the right answer.
    loss = cgrad.cross_entropy(v, -1)
    loss.backward()
    assert loss.data == pytest.approx(math.log(1 + math.exp(-1.0)))
    assert [x.grad for x in v] == pytest.approx([1 / (1 + math.e), -1 / (1 + math.e)])


def test_bulk_io_round_trip():
    xs = RNG.normal(size=1000)
    vs = cgrad.values(xs)
    assert isinstance(vs, ValueList) and len(vs) == 1000
    assert all(type(v) is Value for v in vs)
    np.testing.assert_array_equal(cgrad.data(vs), xs)
    np.testing.assert_array_equal(cgrad.grads(vs), np.zeros(1000))
    cgrad.set_data(vs, xs * 2)
    assert [v.data for v in vs] == (xs * 2).tolist()
    cgrad.set_data(vs[:3], [1, 2, 3])  # any sequence of Values, any numbers
    assert [v.data for v in vs[:3]] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        cgrad.set_data(vs, xs[:10])
    with pytest.raises(TypeError):
        cgrad.data([1.0, 2.0])
    grid = cgrad.values(np.arange(6.0).reshape(2, 3))
    assert [[v.data for v in row] for row in grid] == [[0, 1, 2], [3, 4, 5]]
    assert cgrad.values([]) == []


def test_big_bulk_and_fused_ops_span_blocks():
    n = 5000  # larger than one default block
    vs = cgrad.values(np.linspace(-3, 3, n))
    probs = cgrad.softmax(vs)
    loss = -probs[0].log() + cgrad.logsumexp(vs) * 0.0
    loss.backward()
    log_probs, probs = stable_log_softmax(np.linspace(-3, 3, n))
    expected_data, expected_grad = -log_probs[0], probs - np.eye(n)[0]
    assert loss.data == pytest.approx(expected_data, rel=1e-12)
    np.testing.assert_allclose(cgrad.grads(vs), expected_grad, rtol=1e-10, atol=1e-15)


def test_value_list_snapshot_follows_mutation():
    vs = cgrad.values([1.0, 2.0, 3.0])
    assert cgrad.sum(vs).data == 6.0
    vs.append(Value(10.0))
    assert cgrad.sum(vs).data == 16.0
    vs[0] = Value(-1.0)
    assert cgrad.sum(vs).data == 14.0
    del vs[1]
    assert cgrad.data(vs).tolist() == [-1.0, 3.0, 10.0]
    vs += [Value(1.0)]
    vs.sort(key=lambda v: v.data)
    assert cgrad.data(vs).tolist() == [-1.0, 1.0, 3.0, 10.0]
    # Dropping the list does not free what a fused node still uses.
    total = cgrad.sum(vs)
    del vs
    gc.collect()
    total.backward()
    assert sorted(v.data for v in total._prev) == [-1.0, 0.0, 1.0, 3.0, 10.0]
    assert pickle.loads(pickle.dumps(cgrad.values([1.0]) * 0)) == []
    assert type(copy.copy(cgrad.values([1.0]))) is list


GENERATOR_CASES = {
    "sum": (cgrad.sum, lambda xs: sum(xs)),
    "mean": (cgrad.mean, lambda xs: sum(xs) / len(xs)),
    "logsumexp": (cgrad.logsumexp, lambda xs: math.log(sum(math.exp(x) for x in xs))),
    "softmax": (lambda g: cgrad.softmax(g)[1],
                lambda xs: math.exp(xs[1]) / sum(math.exp(x) for x in xs)),
    "log_softmax": (lambda g: cgrad.log_softmax(g)[1],
                    lambda xs: xs[1] - math.log(sum(math.exp(x) for x in xs))),
    "cross_entropy": (lambda g: cgrad.cross_entropy(g, 0),
                      lambda xs: math.log(sum(math.exp(x) for x in xs)) - xs[0]),
    "dot": (lambda g: cgrad.dot(g, (w for w in [3.0, -1.0])), lambda xs: 3.0 * xs[0] - xs[1]),
}


@pytest.mark.parametrize("name", sorted(GENERATOR_CASES))
def test_fused_ops_read_a_generator_once(name):
    """A generator of Values and numbers works as the list would (it used to
    be read twice: 'values must not be empty')."""
    fused, expected = GENERATOR_CASES[name]
    a = Value(1.0)
    out = fused(x for x in [a, 2.0])
    assert out.data == pytest.approx(expected([1.0, 2.0]), rel=1e-15)
    same = fused([a, 2.0])
    assert out.data == same.data
    out.backward()
    grad = a.grad
    a.grad = 0.0
    same.backward()
    assert grad == a.grad != 0.0
