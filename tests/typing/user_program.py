"""A user's program over cgrad's whole public API, written as a typed
project would write it: tests/test_typing.py runs `mypy --strict` on it,
which must pass (and runs it, so that it is also a working program)."""
from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt

import cgrad
from cgrad import Value
from cgrad.nn import MLP, Layer, Module, Neuron
from cgrad.optim import SGD, Adam


def neuron_by_hand() -> Value:
    """The lecture's neuron, with labels and micrograd's graph attributes."""
    x1, w1, b = Value(2.0, label="x1"), Value(-3.0, label="w1"), Value(6.88)
    x2, w2 = Value(0), Value(1)  # ints are numbers too
    n = x1 * w1 + x2 * w2 + b
    n.label = "n"
    o = n.tanh()
    o.backward()
    prev: set[Value] = o._prev
    op: str = o._op
    assert prev == {n} and op == "tanh"
    o._backward()
    return o


def every_op(a: Value, b: Value) -> Value:
    c = a + b + 1 + 2.5 - a - 3 + (2 - b)
    c = c * b * 2 * 0.5 / a / 4 + 1 / b + (-c)
    c = c ** 2 + a ** b + 2 ** a + np.int64(3) * a
    c = c ** np.float64(0.5) + c ** a
    return c.relu() + c.exp().log() + c.tanh() + c.sin() + c.cos() + c.sigmoid()


def micrograd_habits(v: Value) -> None:
    """What micrograd users do to data and grad: ints mix with floats."""
    v.data += 1
    v.grad = 0
    v.grad += 0.5
    v.data = np.float64(2.0)
    data: float = v.data
    assert data == 2.0


def custom_op(a: Value) -> Value:
    """An op written as the lecture writes them: data from Python, and a
    backward assigned to the result."""
    out = Value(a.data * 3, (a,), "triple")

    def _backward() -> None:
        a.grad += 3 * out.grad

    out._backward = _backward
    return out


def fused_and_bulk(logits_array: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    logits = cgrad.values(logits_array)
    probs = cgrad.softmax(logits)
    logprobs = cgrad.log_softmax(logits)
    loss = (cgrad.cross_entropy(logits, 1) + cgrad.sum(probs, start=0.0) + cgrad.mean(logprobs)
            + cgrad.logsumexp([logits[0], 2.0]) + cgrad.dot(probs, logprobs, start=1))
    loss.backward()
    loss.forward()
    cgrad.set_data(logits, logits_array * 2)
    grads: npt.NDArray[np.float64] = cgrad.grads(logits)
    return cgrad.data(probs) + grads


def as_value(out: Value | list[Value]) -> Value:
    """A Layer or an MLP gives one Value when its last layer has one neuron."""
    assert isinstance(out, Value)
    return out


def train(model: MLP, steps: int) -> float:
    xs = [[random.uniform(-1, 1) for _ in range(3)] for _ in range(8)]
    ys = [1.0 if x[0] > 0 else -1.0 for x in xs]
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = Value(0)
    for step in range(steps):
        scores = [as_value(model(x)) for x in xs]
        loss = cgrad.mean([(1 + -y * s).relu() for y, s in zip(ys, scores)])
        model.zero_grad()
        loss.backward()
        opt.lr = 0.1 * (1 - step / steps)
        opt.step()
    return loss.data


def other_modules() -> list[Module]:
    neuron = Neuron(3, nonlin=False)
    act: Value = neuron([1.0, 2.0, Value(3.0)])
    layer = Layer(3, 2, nonlin=True)
    outs = layer(np.array([1.0, 2.0, 3.0]))
    assert isinstance(outs, list) and act.data == act.data
    adam = Adam(layer.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-4)
    outs[0].backward()
    adam.step()
    adam.zero_grad()
    return [neuron, layer]


def checks() -> None:
    def f(x: Value, y: Value) -> Value:
        return (x * y).tanh() + x ** 2

    assert cgrad.gradcheck(f, [0.5, -1.5])
    grads: list[float] = cgrad.numeric_grad(f, [Value(0.5), Value(-1.5)], method="forward")
    assert len(grads) == 2


def drawing(root: Value) -> str:
    dot = cgrad.draw_dot(root, format="svg", rankdir="TB", max_nodes=None)
    source: str = dot.source
    return source


def main() -> None:
    random.seed(0)
    o = neuron_by_hand()
    every_op(Value(1.5), Value(0.5)).backward()
    micrograd_habits(Value(1.0))
    custom_op(o).backward()
    fused_and_bulk(np.array([0.5, -1.0, 2.0]))
    print("loss", train(MLP(3, [8, 1]), steps=5))
    other_modules()
    checks()
    try:
        drawing(o)
    except ImportError:  # graphviz is optional
        pass


if __name__ == "__main__":
    main()
