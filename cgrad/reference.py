"""cgrad.reference: the pure-Python reference engine.

micrograd's algorithm as it is: closures for the backward of each op and a
depth-first topological sort, made iterative so that deep graphs do not hit
the recursion limit, and deterministic (operands are visited in the order they
were given rather than in a set's order). Same API, ops, float operations, number
types (Python's ints and floats, as micrograd keeps them) and errors as
cgrad.Value: the oracle of the differential tests and the baseline of the
speed comparison.

It imports nothing of cgrad (tests/test_reference.py checks): an oracle that
shared code with the engine it checks could not catch a bug in that code.
"""
import math
import random

import numpy as np


def _pow(x, p):
    """x ** p with cgrad's errors (a negative base with a non-integer
    exponent is a ValueError, as math.pow has it, not a complex), and
    CPython's on every interpreter: a finite x ** p that overflows is an
    OverflowError (PyPy's float power gives inf for some, 1e200 ** 2)."""
    if x < 0.0 and math.isfinite(x) and math.isfinite(p) and p != math.floor(p):
        raise ValueError("math domain error")
    y = x**p
    if math.isinf(y) and math.isfinite(x) and math.isfinite(p):
        raise OverflowError("math range error")
    return y


def _ieee(fn, *args):
    """fn(*args) as C's libm gives it: inf or nan where Python raises. Backward
    follows IEEE (as cgrad's C and torch do), so that a graph whose forward
    succeeded can always be backpropagated."""
    try:
        return fn(*args)
    except (ValueError, ZeroDivisionError, OverflowError):
        with np.errstate(all="ignore"):
            return float({math.pow: np.power, math.log: np.log}[fn](*args))


def _as_number(x):
    """x as micrograd holds it: an int (bools, numpy's integer scalars and
    0-d arrays too) or a float (numpy's too); TypeError for anything else.
    An int goes through a float64, as cgrad keeps it (exact up to 2**53 in
    magnitude: README, "Differences")."""
    if type(x) is float:
        return x
    if isinstance(x, int):
        return int(float(x))
    if isinstance(x, float):
        return float(x)
    if isinstance(x, (np.generic, np.ndarray)) and x.dtype.kind in "biuf":
        if x.ndim == 0:
            return int(float(x)) if x.dtype.kind != "f" else float(x)
        raise TypeError(f"a Value holds one number, not an array of shape {x.shape}: "
                        "cgrad.values(array) makes a Value for each of its numbers")
    raise TypeError(f"a Value holds a real number, not {type(x).__name__!r}")


def _power_factor(x, q):
    """x ** q in micrograd's backward of a ** p (q = p - 1): an int for an
    int x and an int q >= 0, else a float, as libm gives it where Python
    raises (0 ** -1: inf)."""
    if type(x) is int and type(q) is int and q >= 0:
        return x**q
    return _ieee(math.pow, x, q)


def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class Value:
    """ stores a single scalar value and its gradient """

    def __init__(self, data, _children=(), _op='', label=''):
        self.data = _as_number(data)
        self.grad = 0
        # internal variables used for autograd graph construction
        self._backward = lambda: None
        self._children = tuple(_children)  # ordered: the sort is deterministic
        self._op = _op  # the op that produced this node, for graphviz / debugging / etc
        self.label = label

    @property
    def _prev(self):
        return set(self._children)

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), '+')

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward

        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), '*')

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward

        return out

    def __pow__(self, other):
        if isinstance(other, Value):
            out = Value(_pow(self.data, other.data), (self, other), '**')

            def _backward():
                if other.data != 0.0 or self.data != 0.0:  # 0 ** 0 is constant (torch's rule)
                    self.grad += (other.data * _ieee(math.pow, self.data, other.data - 1.0)) * out.grad
                if not (self.data == 0.0 and other.data >= 0.0):
                    other.grad += (out.data * _ieee(math.log, self.data)) * out.grad
            out._backward = _backward
            return out
        assert isinstance(other, (int, float)), "only supporting int/float powers for now"
        p = _as_number(other)
        out = Value(_pow(self.data, p), (self,), f'**{other}')

        def _backward():
            if p != 0 or self.data != 0:  # 0 ** 0 is constant (torch's rule; micrograd raises)
                self.grad += (p * _power_factor(self.data, p - 1)) * out.grad
            else:  # micrograd's 0 * 0**-1 raises; a float 0, as torch gives
                self.grad = float(self.grad)
        out._backward = _backward

        return out

    def __rpow__(self, other):  # other ** self
        return Value(other) ** self

    def _unary(self, data, op, local_grad):
        """out = op(self); local_grad(x, out_data) is d out / d self."""
        out = Value(data, (self,), op)

        def _backward():
            self.grad += local_grad(self.data, out.data) * out.grad
        out._backward = _backward

        return out

    def relu(self):
        out = Value(0 if self.data < 0 else self.data, (self,), 'ReLU')

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward

        return out

    def exp(self):
        return self._unary(math.exp(self.data), 'exp', lambda x, y: y)

    def log(self):
        out = Value(math.log(self.data), (self,), 'log')

        def _backward():
            self.grad += out.grad / self.data
        out._backward = _backward

        return out

    def tanh(self):
        return self._unary(math.tanh(self.data), 'tanh', lambda x, y: 1.0 - y * y)

    def sin(self):
        return self._unary(math.sin(self.data), 'sin', lambda x, y: math.cos(x))

    def cos(self):
        return self._unary(math.cos(self.data), 'cos', lambda x, y: -math.sin(x))

    def sigmoid(self):
        return self._unary(_sigmoid(self.data), 'sigmoid', lambda x, y: y * (1.0 - y))

    def backward(self):

        # topological order all of the children in the graph: micrograd's
        # depth-first search, with an explicit stack instead of recursion
        topo = []
        visited = {self}
        stack = [(self, iter(self._children))]
        while stack:
            v, children = stack[-1]
            for child in children:
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child._children)))
                    break
            else:
                stack.pop()
                topo.append(v)

        # go one variable at a time and apply the chain rule to get its gradient
        self.grad = 1
        for v in reversed(topo):
            v._backward()

    # micrograd's derived and reflected ops, each built from the ones above

    def __neg__(self):  # -self
        return self * -1

    def __radd__(self, other):  # other + self
        return self + other

    def __sub__(self, other):  # self - other
        return self + (-other)

    def __rsub__(self, other):  # other - self
        return other + (-self)

    def __rmul__(self, other):  # other * self
        return self * other

    def __truediv__(self, other):  # self / other
        return self * other**-1

    def __rtruediv__(self, other):  # other / self
        return other * self**-1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def build_nn(Value):
    """micrograd's nn, op by op, over the given Value class: the reference
    engine's own (cgrad.reference.MLP, ...) and, over cgrad.Value, the
    "micrograd script run on cgrad" baseline of the bench."""

    class Module:

        def zero_grad(self):
            for p in self.parameters():
                p.grad = 0

        def parameters(self):
            return []

    class Neuron(Module):

        def __init__(self, nin, nonlin=True):
            self.w = [Value(random.uniform(-1,1)) for _ in range(nin)]
            self.b = Value(0)
            self.nonlin = nonlin

        def __call__(self, x):
            act = sum((wi*xi for wi,xi in zip(self.w, x)), self.b)
            return act.relu() if self.nonlin else act

        def parameters(self):
            return self.w + [self.b]

        def __repr__(self):
            return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"

    class Layer(Module):

        def __init__(self, nin, nout, **kwargs):
            self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

        def __call__(self, x):
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

    return Module, Neuron, Layer, MLP


Module, Neuron, Layer, MLP = build_nn(Value)
