"""Graph replay: root.forward() re-runs a recorded graph in C."""
import math
import random

import numpy as np
import pytest

import cgrad
from cgrad import Value, demo, nn, optim

UNARY = ["exp", "log", "tanh", "relu", "sin", "cos", "sigmoid"]


def build_every_op(a, b):
    """An expression using every op on leaves a, b (b > 0)."""
    terms = [a + b, a * b, a - 2.0, 3.0 - a, a / b, 2.0 / b, -a, a ** 2, b ** 0.5, b ** a, 2.0 ** a]
    terms += [getattr(b if name == "log" else a, name)() for name in UNARY]
    return sum(terms, Value(0.0))


def grads(values):
    return [v.grad for v in values]


@pytest.mark.parametrize("new", [(0.3, 1.7), (-1.2, 0.4), (2.0, 3.0)])
def test_replay_of_every_op_equals_rebuild(new):
    a, b = Value(0.5), Value(1.5)
    out = build_every_op(a, b)
    out.backward()
    a.data, b.data = new
    out.forward()
    a.grad = b.grad = 0
    out.backward()
    a2, b2 = Value(new[0]), Value(new[1])
    fresh = build_every_op(a2, b2)
    fresh.backward()
    assert out.data == fresh.data
    assert grads([a, b]) == grads([a2, b2])


def test_forward_resets_non_leaf_grads_and_keeps_leaf_grads():
    a = Value(1.0)
    h = a * 3.0
    out = h.tanh()
    out.backward()
    assert h.grad != 0 and a.grad != 0
    leaf_grad = a.grad
    out.forward()
    assert h.grad == 0.0 and out.grad == 0.0
    assert a.grad == leaf_grad  # zeroing leaves is the user's, as in micrograd


def mlp_loss(model, X, y):
    scores = [model(row) for row in X]
    losses = [(1 + -yi * s).relu() for yi, s in zip(y, scores)]
    return sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())


def test_minibatch_replay_equals_rebuild_over_steps():
    rng = np.random.default_rng(5)
    X_all, y_all = demo.make_moons(64, noise=0.1, random_state=5)
    y_all = y_all * 2 - 1
    random.seed(5)
    replayed = nn.MLP(2, [8, 8, 1])
    random.seed(5)
    rebuilt = nn.MLP(2, [8, 8, 1])
    batch = 16
    x_leaves = [cgrad.values(row) for row in X_all[:batch]]
    y_leaves = cgrad.values(y_all[:batch])
    loss = mlp_loss(replayed, x_leaves, y_leaves)
    opt_replay = optim.Adam(replayed.parameters(), lr=0.02)
    opt_rebuild = optim.Adam(rebuilt.parameters(), lr=0.02)
    for step in range(6):
        idx = rng.choice(len(X_all), batch, replace=False)
        cgrad.set_data([v for row in x_leaves for v in row], X_all[idx])
        cgrad.set_data(y_leaves, y_all[idx])
        loss.forward()
        opt_replay.zero_grad()
        loss.backward()
        opt_replay.step()

        fresh = mlp_loss(rebuilt, [list(row) for row in X_all[idx]], [float(v) for v in y_all[idx]])
        opt_rebuild.zero_grad()
        fresh.backward()
        opt_rebuild.step()
        assert loss.data == fresh.data
        assert [p.data for p in replayed.parameters()] == [p.data for p in rebuilt.parameters()]


def test_replay_of_fused_ops():
    xs = np.linspace(-2, 3, 7)
    logits = cgrad.values(xs)
    w = cgrad.values(np.arange(7.0))

    def build(logits, w):
        return (cgrad.cross_entropy(logits, 2) + cgrad.dot(w, cgrad.softmax(logits))
                + cgrad.dot(cgrad.log_softmax(logits), w, start=1.0) + cgrad.logsumexp(logits)
                + cgrad.mean(logits) * cgrad.sum(w))

    out = build(logits, w)
    out.backward()
    for shift in (0.5, -3.0, 900.0):
        cgrad.set_data(logits, xs + shift)
        out.forward()
        for v in list(logits) + list(w):
            v.grad = 0
        out.backward()
        fresh_logits, fresh_w = cgrad.values(xs + shift), cgrad.values(np.arange(7.0))
        fresh = build(fresh_logits, fresh_w)
        fresh.backward()
        assert out.data == fresh.data
        assert cgrad.grads(logits).tolist() == cgrad.grads(fresh_logits).tolist()
        assert cgrad.grads(w).tolist() == cgrad.grads(fresh_w).tolist()


def test_replay_raises_like_building_and_stays_usable():
    x = Value(2.0)
    out = (x.log() + x.exp()) * 2.0
    for bad, error in [(-1.0, ValueError), (0.0, ValueError), (1000.0, OverflowError)]:
        x.data = bad
        with pytest.raises(error):
            out.forward()
    x.data = 3.0
    out.forward()
    assert out.data == (math.log(3.0) + math.exp(3.0)) * 2.0
    x.grad = 0
    out.backward()
    assert x.grad == pytest.approx((1 / 3.0 + math.exp(3.0)) * 2.0, rel=1e-15)
    z = Value(0.0)
    q = (z + 1.0) ** -1
    z.data = -1.0
    with pytest.raises(ZeroDivisionError):
        q.forward()


def test_branches_inside_ops_are_reevaluated_python_branches_are_not():
    x = Value(2.0)
    inside = x.relu() * 3.0                        # relu's branch is C's
    outside = x * 3.0 if x.data > 0 else x * 0.0   # this `if` ran once, in Python
    x.data = -2.0
    inside.forward()
    outside.forward()
    assert inside.data == 0.0
    assert outside.data == -6.0  # the graph recorded x * 3.0; rebuilding would give 0.0


def test_custom_ops_cannot_be_replayed():
    x = Value(1.0)

    def cube(v):
        out = Value(v.data ** 3, (v,), "cube")

        def _backward():
            v.grad += 3 * v.data ** 2 * out.grad
        out._backward = _backward
        return out

    y = cube(x) + 1.0
    with pytest.raises(RuntimeError, match="custom op"):
        y.forward()
    assert y.data == 2.0  # nothing changed
    y.backward()
    assert x.grad == 3.0


def test_demo_replay_gives_the_losses_of_rebuilding():
    _, _, replayed, replay_acc = demo.train_replayed(steps=12)
    _, _, rebuilt, rebuild_acc = demo.train("cgrad", steps=12)
    assert replayed == pytest.approx(rebuilt, rel=1e-12, abs=0)
    assert replay_acc == rebuild_acc
