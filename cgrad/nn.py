"""cgrad.nn: micrograd's nn, with each neuron's weighted sum one fused node.

The classes, their parameters, initialisation (random.uniform(-1, 1) drawn in
micrograd's order, bias Value(0)) and reprs are micrograd's. The change is
inside: `sum((wi*xi for wi, xi in zip(self.w, x)), self.b)` is cgrad.dot,
which does the same float operations in the same order in one C call, and a
Layer makes all of its neurons' nodes in one call (cg_layer). So a micrograd
script gets the same numbers, faster.
"""
import random

from . import engine
from ._core import REF_MIN, Block, ffi, lib
from .engine import Value, _wrap
from .functional import ValueList, dot, node_array, snapshot


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
        n = min(len(x), len(self.w))  # zip's truncation, as in micrograd
        if n == 0:
            act = self.b  # micrograd's sum((), self.b) is self.b itself
        elif n != len(x) or n != len(self.w):
            act = dot(self.w[:n], x[:n], self.b)
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
        out = _all_neurons_at_once(self, x) or [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]

    def __getstate__(self):  # _params (C arrays, kept for speed) is remade on demand
        return {k: v for k, v in self.__dict__.items() if k != "_params"}

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


def _all_neurons_at_once(layer, x):
    """layer's neurons called on x in one C call (cg_layer): the nodes, and
    so the numbers, that calling them one by one makes, each neuron a 'dot'
    and a 'ReLU'. None when the neurons do not all take len(x) inputs with
    one nonlinearity; then they are called one by one."""
    neurons = layer.neurons
    xs, x_nodes = snapshot(x)
    params = _layer_params(layer)
    if params is None or params[0] != len(xs) or not xs:
        return None
    n_in, relu, weights, w_nodes, b_nodes = params
    n_out = len(neurons)
    nodes = n_out * (2 if relu else 1)
    out = ffi.new("cg_ref[]", nodes)
    args = (w_nodes, b_nodes, x_nodes, n_in, n_out, relu, out)
    # Unlike functional's big fused ops, a layer's nodes share the current
    # block: a block per layer call (a malloc and a finalizer each) measured
    # nearly twice the demo's step time. Its operand arrays (a few KB) are
    # freed with that block.
    blk = engine._block if nodes <= engine._BLOCK_NODES // 4 else Block(nodes)
    h = lib.cg_layer(blk.ptr, *args)
    if h < REF_MIN:
        h, blk = engine._retry(h, lib.cg_layer, *args, nodes=nodes)
    dots = [_wrap(out[j * (1 + relu)], blk, (n.b,) + w + xs, None)  # dot's operands, as cg_dot's
            for j, (n, w) in enumerate(zip(neurons, weights))]
    if not relu:
        return dots
    return [_wrap(out[2 * j + 1], blk, d, None) for j, d in enumerate(dots)]


def _layer_params(layer):
    """(n_in, relu, weight tuples, weight node array, bias node array) of a
    layer whose neurons agree in size and nonlinearity, else None. Kept on
    the layer while no neuron's weights or bias change."""
    neurons = layer.neurons
    snaps = [snapshot(n.w) for n in neurons]  # kept by each ValueList
    key = [s[1] for s in snaps] + [n.b for n in neurons] + [n.nonlin for n in neurons]
    cached = layer.__dict__.get("_params")
    if cached is not None and cached[0] == key:
        return cached[1]
    sizes = {len(s[0]) for s in snaps}
    if len(sizes) != 1 or len({n.nonlin for n in neurons}) != 1 or not neurons:
        params = None
    else:
        n_in = sizes.pop()
        weights = ffi.new("cg_ref[]", n_in * len(neurons))  # each neuron's array, in turn
        for j, (_, w_nodes) in enumerate(snaps):
            ffi.memmove(weights + j * n_in, w_nodes, ffi.sizeof(w_nodes))
        params = (n_in, int(neurons[0].nonlin), [s[0] for s in snaps], weights,
                  node_array([n.b for n in neurons]))
    layer.__dict__["_params"] = (key, params)
    return params
