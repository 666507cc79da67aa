"""cgrad.nn: micrograd's nn, with each neuron's weighted sum one fused node.

The classes, their parameters, initialisation (random.uniform(-1, 1) drawn in
micrograd's order, bias Value(0)) and reprs are micrograd's. The one change is
inside: `sum((wi*xi for wi, xi in zip(self.w, x)), self.b)` is cgrad.dot,
which does the same float operations in the same order in one C call, so a
micrograd script gets the same numbers, faster.
"""
import random

from .engine import Value
from .functional import ValueList, dot


def _as_inputs(x):
    """A layer's input as a ValueList (numbers and numpy arrays become leaf
    Values), so that every neuron reuses one snapshot of it."""
    if type(x) is ValueList:
        return x
    x = list(x)
    if all(isinstance(xi, Value) for xi in x):
        return ValueList(x)
    return ValueList(xi if isinstance(xi, Value) else Value(xi) for xi in x)


class Module:

    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0

    def parameters(self):
        return []


class Neuron(Module):

    def __init__(self, nin, nonlin=True):
        self.w = ValueList(Value(random.uniform(-1, 1)) for _ in range(nin))
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x):
        x = _as_inputs(x)
        if len(x) != len(self.w):  # zip's truncation, as in micrograd
            n = min(len(x), len(self.w))
            act = dot(self.w[:n], x[:n], self.b) if n else self.b + 0
        else:
            act = dot(self.w, x, self.b)
        return act.relu() if self.nonlin else act

    def parameters(self):
        return self.w + [self.b]

    def __setstate__(self, state):  # a pickled ValueList comes back a list
        self.__dict__.update(state)
        self.w = ValueList(self.w)

    def __repr__(self):
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):

    def __init__(self, nin, nout, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        x = _as_inputs(x)
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self):
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):

    def __init__(self, nin, nouts):
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i+1], nonlin=i!=len(nouts)-1) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self):
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
