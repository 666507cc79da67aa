"""Any node's `_backward` can be replaced, as in micrograd, and every node
micrograd's backward visits runs its `_backward`, leaves included: the sweep
hands such a node back to Python instead of running its C kernel."""
import math

import cgrad
from cgrad import Value, reference


def test_a_leaf_operand_of_an_all_leaf_node_runs_its_backward():
    """x * y has only leaf operands, which the walk normally does not look at;
    once a leaf has a Python backward it must (micrograd's topological sort
    reaches every leaf)."""
    x, y, z = Value(2.0), Value(3.0), Value(0.0)
    out = (x * y).tanh()
    seen = []

    def x_backward():
        seen.append(x.grad)
        z.grad += 10 * x.grad
    x._backward = x_backward
    out.backward()
    assert seen == [y.data * (1 - out.data ** 2)]
    assert z.grad == 10 * x.grad


def test_a_wrapper_around_the_old_backward_runs_the_kernel_once():
    a = Value(1.5)
    b = a.exp()
    c = b * b
    old = b._backward
    calls = []
    b._backward = lambda: (calls.append(b.grad), old())
    c.backward()
    assert calls == [2 * b.data]
    assert a.grad == 2 * b.data * b.data


def test_hooks_on_nodes_whose_op_keeps_state_beside_them():
    """A power's exponent, a softmax output's index and a cross-entropy's
    state use the node's spare field; their Python backwards live in the
    block's list of them."""
    xs = cgrad.values([0.5, -1.0, 2.0])
    p = cgrad.softmax(xs)
    sq = p[2] ** 2
    ce = cgrad.cross_entropy(xs, 1)
    loss = sq + ce
    log = []
    for v, name in ((sq, "pow"), (p[2], "pick"), (ce, "ce")):
        old = v._backward
        v._backward = (lambda old=old, name=name: (log.append(name), old()))
    loss.backward()
    assert sorted(log) == ["ce", "pick", "pow"]
    rx = [reference.Value(x.data) for x in xs]
    rp = [e / sum((u.exp() for u in rx), reference.Value(0.0)) for e in (u.exp() for u in rx)]
    rloss = rp[2] ** 2 + (-(rx[1].exp() / sum((u.exp() for u in rx), reference.Value(0.0))).log())
    rloss.backward()
    for v, r in zip(xs, rx):
        assert math.isclose(v.grad, r.grad, rel_tol=1e-12, abs_tol=1e-15)


def test_a_graph_with_hooked_nodes_replays():
    """A hook replaces a node's backward, not its forward: replay still
    recomputes the node (only custom nodes, whose data is Python's, refuse)."""
    w = Value(0.5)
    h = (w * 3.0).tanh()
    old = h._backward
    runs = []
    h._backward = lambda: (runs.append(1), old())
    loss = h * h
    loss.backward()
    first = w.grad
    w.data = -0.25
    loss.forward()
    w.grad = 0.0
    loss.backward()
    assert loss.data == math.tanh(-0.75) ** 2
    assert len(runs) == 2 and w.grad != first
    assert math.isclose(w.grad, 2 * math.tanh(-0.75) * (1 - math.tanh(-0.75) ** 2) * 3.0, rel_tol=1e-12)


def test_replacing_a_backward_twice_keeps_the_last():
    a = Value(2.0)
    b = a * 3
    b._backward = lambda: setattr(a, "grad", a.grad + 1)
    b._backward = lambda: setattr(a, "grad", a.grad + 100)
    b.backward()
    assert a.grad == 100
