"""cgrad.engine: micrograd's Value, with the graph living in C.

Each Value holds the address of its C node (`_cg_h`), the block that node lives
in (`_cg_blk`, which frees the block once no Value needs it) and its operand
Values (`_cg_a`, `_cg_b`), so that `_prev` gives back the very objects the user
built with and operands outlive the nodes that use them. Nothing refers back
from an operand to its result, so a graph is never a reference cycle.

Every op reads as in micrograd: coerce the operand, make `out` (one call into
C, which also does the math), done; the backward kernels are C's.
"""
import copyreg
import functools
import os
import threading
import weakref

import numpy as np

from ._core import REF_MIN, Block, Sweep, _parked, check, ffi, lib, raise_status, release_parked

_new = object.__new__
# The C functions the hot paths call, bound once: `lib.name` is a lookup.
_cg_leaf = lib.cg_leaf
_cg_unary = lib.cg_unary
_cg_pow_const = lib.cg_pow_const
_cg_float_data = lib.cg_float_data
_cg_float_grad = lib.cg_float_grad
_cg_int_data = lib.cg_int_data
_cg_int_grad = lib.cg_int_grad
_NOT_INT = -(2 ** 63)  # what cg_int_data (cg_int_grad) reads from a float: INT64_MIN
_cg_set_data = lib.cg_set_data
_cg_set_grad = lib.cg_set_grad
_cg_backward_pure = lib.cg_backward_pure
_cg_sweep_replay = lib.cg_sweep_replay
_CG_CALLBACK = lib.CG_CALLBACK

# Nodes are allocated from the current block until it is full; then a fresh
# one replaces it. Values keep their own block alive.
_BLOCK_NODES = 1024  # nodes in a default block (arena.c's default)
_block = Block()


def _retry(status, fn, *args, nodes=1):
    """Slow path of creating a node: `status` came back from fn(block.ptr,
    *args) instead of a node. While the block is full, makes the node in a
    fresh block, and only then publishes that block as the current one (so
    that another thread cannot fill it first); raises for any other status.
    An op needing more `nodes` than a default block holds gets a block of its
    own. Returns (node, block).

    It takes no lock: a finalizer or a signal handler may build Values in the
    middle of it (making a block allocates, and so may run the collector), and
    other threads may race it. Making a block seals the one before it
    (arena.c), so whoever loses a race finds its block sealed and goes round
    again; at worst a block is left with few nodes."""
    global _block
    while status == lib.CG_FULL:
        if nodes > _BLOCK_NODES:
            blk = Block(nodes)
            status = fn(blk.ptr, *args)
            continue
        blk = _block  # another thread, or a finalizer, may have replaced it
        status = fn(blk.ptr, *args)
        if status == lib.CG_FULL:
            blk = Block()
            status = fn(blk.ptr, *args)
            if status >= REF_MIN:
                _block = blk
    if status < REF_MIN:
        raise_status(status)
    return status, blk


def _create_in(blk, fn, *args, nodes=1):
    """Creates `nodes` nodes with fn(blk.ptr, *args), in blk (the current
    block, or one of the op's own), or where _retry puts them when blk is
    full. Returns (node, block)."""
    h = fn(blk.ptr, *args)
    if h < REF_MIN:
        h, blk = _retry(h, fn, *args, nodes=nodes)
    return h, blk


# Backward passes and replays take turns, whole: a custom op's Python
# backward updates grads between C's kernels, and another thread's sweep over
# the same nodes must not run in between (C's engine lock covers only C's
# kernels). Re-entrant, so that a custom backward, a finalizer or a signal
# handler may call backward() again in the same thread. Held across fork(),
# so that a child starts with it free and no backward half done.
_graph_lock = threading.RLock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_graph_lock.acquire, after_in_parent=_graph_lock.release,
                        after_in_child=_graph_lock.release)


def _number_kind(x):
    """(x as a float64, whether Python holds it as an int) for the numbers a
    Value takes: ints (bools among them, as in Python), floats, numpy real
    scalars and 0-d arrays; None for anything else. Ints are kept as floats
    in C, exact up to 2**53 in magnitude (README, "Differences")."""
    if type(x) is float:
        return x, 0
    if isinstance(x, int):
        return float(x), 1
    if isinstance(x, float):
        return float(x), 0
    if isinstance(x, (np.generic, np.ndarray)) and x.ndim == 0 and x.dtype.kind in "biuf":
        return float(x), int(x.dtype.kind != "f")
    return None


def _number(x):
    """_number_kind(x), or the TypeError Value(x) raises."""
    kind = _number_kind(x)
    if kind is not None:
        return kind
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        raise TypeError(f"a Value holds one number, not an array of shape {x.shape}: "
                        "cgrad.values(array) makes a Value for each of its numbers")
    raise TypeError(f"a Value holds a real number, not {type(x).__name__!r}")


def as_float(x):
    """x as a float64, for the numbers a Value takes; TypeError naming the
    type for anything else."""
    return _number(x)[0]


def _zero_or_big_int(x):
    """A node's data (grad) x, read with cg_data (cg_grad) when it is neither
    a nonzero float nor an int that int64 holds: a float zero (its sign kept),
    or an int that big (micrograd keeps ints), stored as a double; an int past
    float64's range is inf and stays a float."""
    return x if x == 0.0 or x - x != 0.0 else int(x)


def _set_number(h, x, set_float, set_int):
    """Writes the number x to a node's data or grad, with its type."""
    x, is_int = _number(x)
    (set_int if is_int else set_float)(h, x)


def _wrap(h, blk, a, b):
    """A Value for the new node h in blk, with operands a and b (or None)."""
    out = _new(Value)
    out._cg_h = h
    out._cg_blk = blk
    out._cg_a = a
    out._cg_b = b
    return out


def _named(op, name):
    """op, named as the Value method it becomes (for tracebacks and help)."""
    op.__name__ = name
    op.__qualname__ = f"Value.{name}"
    return op


def _binary_op(name, c_op, c_op_const):
    """micrograd's binary op `self <op> other` on a C node: c_op(block, a, b)
    for a Value operand; c_op_const(block, a, c, c_is_int) for a number c,
    which makes micrograd's Value(c) in the same call (its leaf gets a Value
    only if someone looks, see `_prev`); no c_op_const: the number case is
    DerivedOps' (a / 2 is micrograd's a * 2**-1). One call into C, one small
    object: these are the hot ops, so the body is spelt out here rather than
    split into helpers (each Python call is a sizeable part of an op's cost,
    and on PyPy a longer trace)."""
    def op(self, other):
        if isinstance(other, Value):
            blk = _block
            h = c_op(blk.ptr, self._cg_h, other._cg_h)
            if h < REF_MIN:
                h, blk = _retry(h, c_op, self._cg_h, other._cg_h)
            out = _new(Value)
            out._cg_h = h
            out._cg_blk = blk
            out._cg_a = self
            out._cg_b = other
            return out
        if c_op_const is None:
            return getattr(DerivedOps, name)(self, other)
        if type(other) is float:
            c, c_is_int = other, 0
        else:
            kind = _number_kind(other)
            if kind is None:
                return NotImplemented
            c, c_is_int = kind
        blk = _block
        h = c_op_const(blk.ptr, self._cg_h, c, c_is_int)
        if h < REF_MIN:
            h, blk = _retry(h, c_op_const, self._cg_h, c, c_is_int)
        out = _new(Value)
        out._cg_h = h
        out._cg_blk = blk
        out._cg_a = self
        out._cg_b = None
        return out
    return _named(op, name)


def _unary_op(name, code):
    """micrograd-style unary op (exp, tanh, relu, ...) `code` on a C node,
    spelt out as _binary_op's is."""
    def op(self):
        blk = _block
        h = _cg_unary(blk.ptr, code, self._cg_h)
        if h < REF_MIN:
            h, blk = _retry(h, _cg_unary, code, self._cg_h)
        out = _new(Value)
        out._cg_h = h
        out._cg_blk = blk
        out._cg_a = self
        out._cg_b = None
        return out
    return _named(op, name)


def _no_backward():
    """The backward of a custom node that was given none."""


def _run_kernel(value):
    """A built-in node's `_backward`: runs its C kernel once. It is handed the
    Value, not the node's address, so that the callable keeps the node (and
    its operands) alive, as micrograd's closure does."""
    check(lib.cg_node_backward(value._cg_h))


class _State:
    """What few Values carry besides their node: a custom op's name, a Python
    backward, a kept order for replay, what a re-initialised Value keeps of
    its old node. In a slot of its own (not in the Value's __dict__, which
    belongs to the user), so that nothing a user sets or deletes can break
    the engine."""

    __slots__ = ("op", "hook", "order", "retired")

    def __init__(self):
        self.op = None  # the name _op shows, when given (else the node's own)
        self.hook = None  # the node's _PythonBackward, once it has one
        self.order = None  # a Sweep, once forward() needs one
        self.retired = None  # (node, block, operands) of the node it had before a re-initialisation


class _PythonBackward:
    """The Python backward C calls back for one node: `fn`, or the node's own
    backward until fn is set. The Value keeps it (_State.hook). C holds
    `handle`, a cffi handle to (node, a weak reference to this object),
    which the node's block keeps (Block.handles): so C never holds a handle
    that Python has freed, whatever interrupts or threads do between the
    calls, and nothing a block keeps leads back to a Value."""

    __slots__ = ("node", "fn", "handle", "__weakref__")

    def __init__(self, node):
        self.node = node
        self.fn = None
        self.handle = ffi.new_handle((node, weakref.ref(self)))

    def __call__(self):
        if self.fn is not None:
            self.fn()
        else:
            _run_own_backward(self.node)


def _run_own_backward(node):
    """The node's own backward, C's kernel (a custom node's does nothing)."""
    lib.cg_node_backward(node)  # (CG_OK, or CG_CALLBACK for a custom node: nothing to run)


def _state(value):
    """value's _State, made on first need (under the graph lock, so that two
    threads cannot each make one and lose the other's)."""
    state = getattr(value, "_cg_state", None)
    if state is None:
        with _graph_lock:
            state = getattr(value, "_cg_state", None)
            if state is None:
                state = value._cg_state = _State()
    return state


_OP_NAMES = {
    lib.CG_LEAF: "",
    lib.CG_ADD: "+",
    lib.CG_MUL: "*",
    lib.CG_POW: "**",
    lib.CG_EXP: "exp",
    lib.CG_LOG: "log",
    lib.CG_TANH: "tanh",
    lib.CG_RELU: "ReLU",
    lib.CG_SIN: "sin",
    lib.CG_COS: "cos",
    lib.CG_SIGMOID: "sigmoid",
    lib.CG_SUM: "sum",
    lib.CG_MEAN: "mean",
    lib.CG_DOT: "dot",
    lib.CG_LOGSUMEXP: "logsumexp",
    lib.CG_SOFTMAX: "softmax",
    lib.CG_LOG_SOFTMAX: "log_softmax",
    lib.CG_CROSS_ENTROPY: "cross_entropy",
}


class DerivedOps:
    """micrograd's derived and reflected ops, each built from the forward
    ones, and its repr: shared by cgrad.Value and cgrad.reference.Value."""

    __slots__ = ()  # adds nothing to a Value's memory

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


class Value(DerivedOps):
    """ stores a single scalar value and its gradient """

    # _cg_state: a _State, set only on the few Values that need one
    __slots__ = ("_cg_h", "_cg_blk", "_cg_a", "_cg_b", "_cg_state", "__dict__")
    label = ""

    def __init_subclass__(cls, **kwargs):
        """A subclass's __init__ must make the node (super().__init__): say so
        at once, not at the first op, when it does not."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            cls.__init__ = _checked_init(init)

    def __init__(self, data, _children=(), _op="", label=""):
        x, is_int = (data, 0) if type(data) is float else _number(data)
        if hasattr(self, "_cg_h"):  # called again: a `reset()` in a subclass
            self._reinit(x, is_int, _children, _op, label)
            return
        blk = _block
        if _children:
            children = tuple(_children)
            for child in children:
                if not isinstance(child, Value):
                    raise TypeError(f"_children must be Values, not {type(child).__name__!r}")
            # A custom op, as the lecture writes them: its data comes from
            # Python, and its backward is the `_backward` assigned to it.
            refs = ffi.new("cg_ref[]", [c._cg_h for c in children])
            h, blk = _create_in(blk, lib.cg_custom, x, refs, len(children))
            self._cg_a = children
        else:
            h = _cg_leaf(blk.ptr, x)
            if h < REF_MIN:
                h, blk = _retry(h, _cg_leaf, x)
            self._cg_a = None
        if is_int:
            lib.cg_set_int_data(h, x)
        self._cg_h = h
        self._cg_blk = blk
        self._cg_b = None
        if _op:
            _state(self).op = _op
        if label:
            self.label = label

    def _reinit(self, x, is_int, children, op, label):
        """Value.__init__ on a Value that has a node, as micrograd allows: the
        Value becomes what __init__ makes (data x, grad 0, its own backward,
        these children), and the nodes made from it keep using it. A leaf is
        remade in place (cg_reset_leaf), so their backward reaches this
        Value, as micrograd's closures reach the re-initialised object. With
        children, or for a softmax output (whose data its group writes), a
        new node is made; nodes made before keep the old one. Either way the
        Value keeps what its old node used (nodes, kept orders), so nothing
        another Value still reaches is freed."""
        state = _state(self)
        old = (self._cg_h, self._cg_blk, self._cg_a, self._cg_b)
        if children or lib.cg_reset_leaf(self._cg_h, x) != lib.CG_OK:
            fresh = _new(Value)
            Value.__init__(fresh, x, children)
            self._cg_h, self._cg_blk, self._cg_a = fresh._cg_h, fresh._cg_blk, fresh._cg_a
            state.retired = (old, state.retired)
        else:
            self._cg_a = None
            if old[2] is not None:  # (a leaf made a leaf again keeps nothing)
                state.retired = (old, state.retired)
        if is_int:
            lib.cg_set_int_data(self._cg_h, x)
        self._cg_b = None
        state.op = op or None
        state.hook = state.order = None
        if label:
            self.label = label
        else:
            self.__dict__.pop("label", None)

    # ---- data and grad live in C -------------------------------------------

    # data and grad are an int or a float, as micrograd holds them: C keeps
    # which (node.h). The common case, a float other than zero, takes one
    # call; a zero (false) asks again: the int, if it is one that int64
    # holds, else the stored double (spelt out: a Python call would cost an
    # int read a third more).

    @property
    def data(self):
        return _cg_float_data(self._cg_h) or (
            i if (i := _cg_int_data(self._cg_h)) != _NOT_INT else _zero_or_big_int(lib.cg_data(self._cg_h)))

    @data.setter
    def data(self, x):
        if type(x) is float:
            _cg_set_data(self._cg_h, x)
        else:
            _set_number(self._cg_h, x, _cg_set_data, lib.cg_set_int_data)

    @property
    def grad(self):
        return _cg_float_grad(self._cg_h) or (
            i if (i := _cg_int_grad(self._cg_h)) != _NOT_INT else _zero_or_big_int(lib.cg_grad(self._cg_h)))

    @grad.setter
    def grad(self, g):
        if type(g) is float:
            _cg_set_grad(self._cg_h, g)
        else:
            _set_number(self._cg_h, g, _cg_set_grad, lib.cg_set_int_grad)

    # ---- ops ---------------------------------------------------------------

    __add__ = _binary_op("__add__", lib.cg_add, lib.cg_add_const)
    __mul__ = _binary_op("__mul__", lib.cg_mul, lib.cg_mul_const)
    # self / other is micrograd's self * other**-1. For a Value, C makes both
    # nodes in one call, and the result keeps `other` in _cg_b until _prev gives
    # other**-1 its Value; for a number, other**-1 is Python's.
    __truediv__ = _binary_op("__truediv__", lib.cg_div, None)

    def __pow__(self, other):
        if isinstance(other, Value):
            h, blk = _create_in(_block, lib.cg_pow, self._cg_h, other._cg_h)
            return _wrap(h, blk, self, other)
        kind = _number_kind(other)
        if kind is None:
            return NotImplemented
        blk = _block
        h = _cg_pow_const(blk.ptr, self._cg_h, *kind)
        if h < REF_MIN:
            h, blk = _retry(h, _cg_pow_const, self._cg_h, *kind)
        return _wrap(h, blk, self, other)  # the exponent as given, for '**2'-style names

    def __rpow__(self, other):  # other ** self
        return NotImplemented if _number_kind(other) is None else Value(other) ** self

    relu = _unary_op("relu", lib.CG_RELU)
    exp = _unary_op("exp", lib.CG_EXP)
    log = _unary_op("log", lib.CG_LOG)
    tanh = _unary_op("tanh", lib.CG_TANH)
    sin = _unary_op("sin", lib.CG_SIN)
    cos = _unary_op("cos", lib.CG_COS)
    sigmoid = _unary_op("sigmoid", lib.CG_SIGMOID)

    # ---- backward ----------------------------------------------------------

    def backward(self):
        """Sets this node's grad to 1 and accumulates every reachable node's
        grad, in one C sweep (stopping only to run Python-defined backwards)."""
        status = _cg_backward_pure(self._cg_h)
        if status == _CG_CALLBACK:  # the process has Python backwards: take turns
            status = _backward_taking_turns(self._cg_h)
        if _parked:
            release_parked()
        if status:
            raise_status(status)

    def forward(self):
        """Graph replay: recomputes, in C, the data of every node this Value
        depends on from the current data of the leaves, in order, and sets
        the grads of the non-leaf nodes to 0. After changing leaves (an
        optimizer step, cgrad.set_data for a new minibatch),
        `loss.forward(); model.zero_grad(); loss.backward()` gives what
        rebuilding the graph and calling backward gives.

        Only the ops are replayed, not the Python that built them: code that
        read `.data` to choose what to build (`x if x.data > 0 else -x`)
        keeps the choice it made then. Ops that branch inside, such as relu,
        are evaluated afresh. Math errors raise as building would; the graph
        stays usable. Graphs with custom (Python-computed) ops cannot be
        replayed: RuntimeError."""
        order = self._sweep()
        with _graph_lock:
            status = _cg_sweep_replay(order.sweep)
        check(status)

    def _sweep(self):
        """The order of this Value's graph for replay (a Sweep), computed once:
        a graph never changes once built, so the order is kept for the next
        forward."""
        state = _state(self)
        order = state.order
        if order is None:
            order = Sweep()  # owns what C makes, from the moment C makes it
            check(lib.cg_sweep_begin(self._cg_h, order.ptr))
            if state.order is None:  # (unless a finalizer or a thread made one meanwhile)
                state.order = order
        return order

    @property
    def _backward(self):
        """The node's backward step, callable as in the lecture (`o._backward()`)."""
        state = getattr(self, "_cg_state", None)
        if state is not None and state.hook is not None and state.hook.fn is not None:
            return state.hook.fn
        if lib.cg_op(self._cg_h) == lib.CG_CUSTOM:  # micrograd's default: lambda: None
            return _no_backward
        return functools.partial(_run_kernel, self)

    @_backward.setter
    def _backward(self, fn):
        """Any node's backward can be replaced, as in micrograd: the sweep then
        calls fn for this node instead of its C kernel (a wrapper that calls
        the old `_backward` runs the kernel too), leaves' included.

        Each step leaves C and Python agreeing, so that an interrupt between
        two of them (a signal handler's exception) leaves the old backward in
        force and nothing to free: the handle is kept by the node's block
        before C sees it; C then calls a _PythonBackward that runs the node's
        own backward until `fn` is set on it. Assignments from several
        threads take turns (the graph lock)."""
        with _graph_lock:
            state = _state(self)
            hook = state.hook
            if hook is None:
                hook = _PythonBackward(self._cg_h)
                self._cg_blk.handles.append(hook.handle)
                state.hook = hook
            check(lib.cg_set_callback(self._cg_h, hook.handle))  # (each time: an interrupt may have come before)
            hook.fn = fn

    # ---- the graph as micrograd shows it --------------------------------

    @property
    def _prev(self):
        a, b = self._cg_a, self._cg_b
        if a is None:
            return set()
        if type(a) is tuple:
            return set(a)
        if lib.cg_nargs(self._cg_h) == 1:  # (a ** p keeps p, a number, in _b)
            return {a}
        if b is None:
            # The constant of `a + 2` or `a * 2`: give its leaf a Value now,
            # once, so that identity stays stable from here on.
            b = self._cg_b = _wrap(lib.cg_arg(self._cg_h, 1), self._cg_blk, None, None)
        elif b._cg_h != lib.cg_arg(self._cg_h, 1):
            # `a / b` keeps b in _cg_b for its real operand, b**-1, which C made
            # in the same call: give that node its Value now, once (it keeps b).
            b = self._cg_b = _wrap(lib.cg_arg(self._cg_h, 1), self._cg_blk, b, -1)
        return {a, b}

    @_prev.setter
    def _prev(self, children):
        raise AttributeError(
            "cgrad's graph is fixed when a node is created: its operands live in C and its backward "
            "already uses them. Make a new Value instead, e.g. Value(data, _children=..., _op=...) "
            "with its own _backward.")

    @property
    def _op(self):
        state = getattr(self, "_cg_state", None)
        if state is not None and state.op is not None:  # given by the maker or assigned
            return state.op
        op = lib.cg_op(self._cg_h)
        if op == lib.CG_POW_CONST:
            return f"**{self._cg_b}"  # micrograd's f'**{other}
        if op in (lib.CG_CUSTOM, lib.CG_LEAF):
            return ""
        if op == lib.CG_PICK:  # output i of a softmax: 'softmax[i]'
            return f"{self._cg_a._op}[{lib.cg_index(self._cg_h)}]"
        return _OP_NAMES[op]

    @_op.setter
    def _op(self, name):  # a label for drawings, as in micrograd: the node's math stays
        _state(self).op = name

    # ---- pickle and copy ---------------------------------------------------

    # The class a copy is made of: a Value subclass's own, but for cgrad's
    # internal views of a node (nn's NeuronSum), which copy as plain Values.
    _cg_copy_class = None

    def __reduce__(self):
        """Pickles (and copies) as a leaf of this Value's class holding its
        data and grad, with its attributes (label, optimizer state, ...) and
        a subclass's __slots__ attributes. The graph behind a non-leaf Value
        is not saved: it comes back as a leaf."""
        cls = self._cg_copy_class or type(self)
        slots = {name: getattr(self, name) for name in copyreg._slotnames(cls)
                 if not name.startswith("_cg_") and hasattr(self, name)}
        return (_leaf, (self.data, self.grad, cls), (dict(self.__dict__) or None, slots or None))

    def __setstate__(self, state):
        """Restores what __reduce__ saved. The engine's own slots (`_cg_*`)
        are never taken from a pickle: a node's address from outside would
        point the Value at any memory."""
        attrs, slots = state if isinstance(state, tuple) else (state, None)
        for name in (*(attrs or ()), *(slots or ())):
            if not isinstance(name, str) or name.startswith("_cg_"):
                raise TypeError(f"cannot restore {name!r} of a {type(self).__name__}: cgrad's engine "
                                "slots are never taken from a pickle")
        if attrs:
            self.__dict__.update(attrs)
        for name, value in (slots or {}).items():
            setattr(self, name, value)


def _checked_init(init):
    """A Value subclass's __init__, which must leave a node behind."""
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except AttributeError as exc:
            if "_cg_" not in str(exc):
                raise
            raise TypeError(_NO_NODE.format(type(self).__name__)) from exc
        if not hasattr(self, "_cg_h"):
            raise TypeError(_NO_NODE.format(type(self).__name__))
    return __init__


_NO_NODE = ("{} is a subclass of cgrad.Value whose __init__ did not call Value.__init__ "
            "(super().__init__(data, _children, _op)): cgrad's Value keeps its data in a C node, "
            "which that call makes")


def _backward_taking_turns(h):
    """backward() once some node in the process has a Python backward: the
    sweep from node h, whole under the graph lock, so that no other thread's
    sweep runs between its Python backwards. Returns the final status. The
    rest of the sweep is owned before C makes it, and freed however the
    Python backwards end (an exception, an interrupt)."""
    rest = Sweep()
    try:
        with _graph_lock:
            status = lib.cg_backward(h, rest.ptr)
            if status == lib.CG_CALLBACK:  # stopped at a custom node: go on from here
                status = _run_callbacks(rest.sweep)
    finally:
        rest._free()
    return status


def _run_callbacks(sweep):
    """Goes on with a backward that stopped at a custom node: C runs the
    kernels of `sweep` (a cg_sweep *) and hands back each Python backward to
    run in its turn. Returns the final status."""
    cursor = ffi.new("size_t *")
    callback = ffi.new("void **")
    while (status := lib.cg_sweep_backward(sweep, cursor, callback)) == lib.CG_CALLBACK:
        node, hook = ffi.from_handle(callback[0])
        hook = hook()
        if hook is not None:
            hook()
        else:  # (its Value lost it: two threads made a state at once)
            _run_own_backward(node)
    return status


def _leaf(data, grad, cls=None):
    """A leaf of class cls (Value) with this data and grad (unpickling and
    copying). A subclass's own __init__ is not called, as for any object
    copy and pickle restore: its attributes come from the saved state."""
    v = _new(cls or Value)
    Value.__init__(v, data)
    v.grad = grad
    return v
