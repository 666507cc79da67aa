"""cgrad.nn: micrograd's nn, with each neuron's weighted sum one fused node.

The classes, their parameters, initialisation (random.uniform(-1, 1) drawn in
micrograd's order, bias Value(0)) and reprs are micrograd's. The change is
inside: `sum((wi*xi for wi, xi in zip(self.w, x)), self.b)` is cgrad.dot,
which does the same float operations in the same order in one C call, and a
Layer makes all of its neurons' nodes in one call (cg_layer). So a micrograd
script gets the same numbers, faster.

Code that looks at the graph (`_prev`, `_op`, draw_dot) still sees
micrograd's: a neuron's fused sum is a NeuronSum, which shows itself as the
last '+' of `((b + w0*x0) + w1*x1) + ...` and makes the products and partial
sums before it (NeuronSumParts) when first looked at.
"""
import random
from itertools import chain

from . import _nodes
from ._core import ffi, lib
from .engine import Value
from ._values import ValueList, same_values, operand, operands, snapshot


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
            act = _neuron_dot(self.w[:n], x[:n], self.b)
        else:
            act = _neuron_dot(self.w, x, self.b)
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
    so the numbers, that calling them one by one makes, each neuron a
    NeuronSum and a 'ReLU'. None when the neurons do not all take len(x) inputs with
    one nonlinearity, or a weight or bias is not a Value; then they are called one by one."""
    xs, x_nodes = snapshot(x)
    params = _layer_params(layer)
    if params is None or params[0] != len(xs) or not xs:
        return None
    # params holds the weights and biases whose nodes it passes to C, so
    # they live through the call whatever happens to the neurons meanwhile
    n_in, relu, weights, w_nodes, biases, b_nodes = params
    n_out = len(biases)
    nodes = n_out * (2 if relu else 1)
    out = ffi.new("cg_ref[]", nodes)
    args = (w_nodes, b_nodes, x_nodes, n_in, n_out, relu, out)
    h, blk = _nodes.create(lib.cg_layer, *args, nodes=nodes, own_block=nodes > _nodes.OWN_BLOCK_NODES)
    dots = [_nodes.make(NeuronSum, out[j * (1 + relu)], blk, (b,) + w + xs)  # dot's operands, as cg_dot's
            for j, (b, w) in enumerate(zip(biases, weights))]
    if not relu:
        return dots
    return [_nodes.make(Value, out[2 * j + 1], blk, d) for j, d in enumerate(dots)]


def _neuron_dot(ws, xs, b):
    """cgrad.dot(ws, xs, b) for equally long ws and xs, as a NeuronSum."""
    ws, w_refs = operands(ws, "ws")
    xs, x_refs = operands(xs, "xs")
    b = operand(b)
    h, blk = _nodes.create(lib.cg_dot, b._cg_h, w_refs, x_refs, len(ws),
                           own_block=2 * len(ws) >= _nodes.OWN_BLOCK_OPERANDS)
    return _nodes.make(NeuronSum, h, blk, (b, *ws, *xs))


def _layer_params(layer):
    """(n_in, relu, weight tuples, weight node array, bias tuple, bias node
    array) of a layer whose neurons agree in size and nonlinearity and whose
    weights and biases are Values, else None. Kept on the layer while its
    neurons have the same weight lists holding the same weights, the same
    biases and nonlinearities: all compared by identity (_values.same_values:
    a Value subclass may define == by data, and an equal Value is still
    another node), the weights in one pass over them all (heapq and other C
    code change a list without calling its methods)."""
    neurons = layer.neurons
    weight_lists = [n.w for n in neurons]
    key = weight_lists + [n.b for n in neurons] + [n.nonlin for n in neurons]
    cached = layer.__dict__.get("_params")
    if (cached is not None and same_values(key, cached[0])
            and same_values(list(chain.from_iterable(weight_lists)), cached[1])):
        return cached[2]
    try:
        snaps = [snapshot(w) for w in weight_lists]
        biases = snapshot(key[len(neurons):2 * len(neurons)])
    except TypeError:  # a weight or bias that is a number: one neuron at a time
        snaps = None
    params = None
    weights_seen = list(chain.from_iterable(weight_lists if snaps is None else (s[0] for s in snaps)))
    if snaps is not None and len({len(s[0]) for s in snaps}) == 1 and len({n.nonlin for n in neurons}) == 1:
        n_in = len(snaps[0][0])
        weights = ffi.new("cg_ref[]", n_in * len(neurons))  # each neuron's array, in turn
        for j, (_, w_nodes) in enumerate(snaps):
            ffi.memmove(weights + j * n_in, w_nodes, ffi.sizeof(w_nodes))
        params = (n_in, int(neurons[0].nonlin), [s[0] for s in snaps], weights, *biases)
    layer.__dict__["_params"] = (key, weights_seen, params)
    return params


# ---- the graph as micrograd shows it ------------------------------------------

class NeuronSum(Value):
    """A neuron's weighted sum, `sum((wi*xi for wi, xi in zip(w, x)), b)`:
    one fused C 'dot' node, whose forward and backward do all the work.
    Seen through `_prev` and `_op` it is what micrograd makes, the last '+'
    of `((b + w0*x0) + w1*x1) + ...`: its operands are the partial sum
    before it (b itself for one input) and the last product. The first look
    makes that chain of products and partial sums (NeuronSumParts) and keeps
    it, so identity is stable from then on. The chain is never made by
    training, only by looking."""

    __slots__ = ()  # a Value's layout: nn makes these as cheaply as Values
    _cg_copy_class = Value  # a copy is a leaf: no fused node behind it

    def _operands(self):
        if type(self._cg_a) is not tuple:  # re-initialised (Value.__init__ again): a Value like any
            return Value._operands(self)
        st = _nodes.state(self)
        if st.shown is None:
            made = _micrograd_chain(self)
            with _nodes.graph_lock:
                if st.shown is None:  # (unless a finalizer or a thread looked meanwhile)
                    st.shown = made
        return st.shown

    @property
    def _op(self):
        state = getattr(self, "_cg_state", None)
        if state is not None and state.op is not None:  # assigned by the user
            return state.op
        return "+" if type(self._cg_a) is tuple else Value._op.fget(self)

    _op = _op.setter(Value._op.fset)


class NeuronSumPart(Value):
    """A product w_k*x_k or a partial sum of a NeuronSum's chain, made on
    the sum's first look: a real C '*' or '+' node over the Values micrograd
    would use, so its data, `_prev` and `_op` are micrograd's (its data is
    computed from its operands' data at that moment: see NeuronSum).

    Its grad is micrograd's too. There each part has one user, the next
    part, so its grad is the sum's grad; here the fused node's backward does
    the work and never visits the parts, so a part reads the sum's grad,
    live, plus what its own node got from any other use (an expression built
    on it, a backward started from it). Setting a part's grad sets the sum's
    (the whole chain shares it) and clears the part's own: so code that
    zeroes every node it walks to (`for v in topo: v.grad = 0`) still
    works."""

    __slots__ = ("_cg_sum",)  # a Value on the sum's node; not the sum: no reference cycle
    _cg_copy_class = Value

    @property
    def grad(self):
        own = Value.grad.fget(self)
        return self._cg_sum.grad if own == 0 else own + self._cg_sum.grad  # (the sum's, as it is, if alone)

    @grad.setter
    def grad(self, g):
        self._cg_sum.grad = g
        Value.grad.fset(self, 0)


def _micrograd_chain(total):
    """The operands micrograd's sum has for the NeuronSum `total`: (partial
    sum before the last product, last product), made now with the engine's
    C '*' and '+' in micrograd's order, which give the fused node's floats:
    cg_dot adds left to right from b."""
    b, *rest = total._cg_a  # (b, *ws, *xs), as nn makes it
    n = len(rest) // 2
    shared = _nodes.make(Value, total._cg_h, total._cg_blk)  # the sum's grad, for the parts
    products = [_part(lib.cg_mul, w, x, shared) for w, x in zip(rest[:n], rest[n:])]
    partial = b
    for product in products[:-1]:
        partial = _part(lib.cg_add, partial, product, shared)
    return partial, products[-1]


def _part(c_op, a, b, shared):
    """A NeuronSumPart: the node c_op(a, b), as the engine's binary ops make it."""
    h, blk = _nodes.create(c_op, a._cg_h, b._cg_h)
    part = _nodes.make(NeuronSumPart, h, blk, a, b)
    part._cg_sum = shared
    return part
