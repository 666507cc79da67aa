"""cgrad.engine: micrograd's Value, with the graph living in C.

Each Value holds the address of its C node, the block that node lives in
and the Values it was made from (cgrad/_nodes.py lists the slots), so that
`_prev` gives back the very objects the user built with and operands outlive
the nodes that use them. Nothing refers back from an operand to its result,
so a graph is never a reference cycle.

Every op reads as in micrograd: coerce the operand, make `out` (one call into
C, which also does the math), done; the backward kernels are C's.
"""
import copyreg
import functools

from . import _nodes
from ._core import REF_MIN, Sweep, _parked, check, lib, raise_status, release_parked
from ._numbers import number, number_kind, zero_or_big_int
from ._python_backward import backward_taking_turns, set_backward

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
_retry = _nodes.retry
_block = _nodes.follow_current(globals(), "_block")  # the current block, kept in step by _nodes
_graph_lock = _nodes.graph_lock


def _set_number(h, x, set_float, set_int):
    """Writes the number x to a node's data or grad, with its type."""
    x, is_int = number(x)
    (set_int if is_int else set_float)(h, x)


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
    micrograd's derived form (a / 2 is a * 2**-1). One call into C, one small object:
    these are the hot ops, so the body (and _nodes.make's four stores) is
    spelt out here rather than split into helpers (each Python call is a
    sizeable part of an op's cost, and on PyPy a longer trace)."""
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
            return self * other**-1
        if type(other) is float:
            c, c_is_int = other, 0
        else:
            kind = number_kind(other)
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


_OP_NAMES = {
    lib.CG_LEAF: "", lib.CG_CUSTOM: "", lib.CG_ADD: "+", lib.CG_MUL: "*", lib.CG_POW: "**",
    lib.CG_EXP: "exp", lib.CG_LOG: "log", lib.CG_TANH: "tanh", lib.CG_RELU: "ReLU", lib.CG_SIN: "sin",
    lib.CG_COS: "cos", lib.CG_SIGMOID: "sigmoid", lib.CG_SUM: "sum", lib.CG_MEAN: "mean", lib.CG_DOT: "dot",
    lib.CG_LOGSUMEXP: "logsumexp", lib.CG_SOFTMAX: "softmax", lib.CG_LOG_SOFTMAX: "log_softmax",
    lib.CG_CROSS_ENTROPY: "cross_entropy",
}


def _exponent(h):
    """The exponent of the a ** p node h as micrograd's f'**{p}' shows it:
    an int or a float, as it was given."""
    p = lib.cg_exponent(h)
    return int(p) if lib.cg_exponent_is_int(h) else p


class _ValueType(type):
    """Value's metaclass. Value(...) makes the new Value here, in one Python
    call, rather than through __init__: so a call of Value.__init__ is one on
    a Value that has a node already (micrograd lets a subclass's reset() call
    it again) or on a subclass's new object, and only those pay for asking
    which (hasattr of a slot not yet set raises and drops an AttributeError,
    0.45 us on CPython, as much as a leaf costs). A float leaf, the common
    case, is a hot path, spelt out as the hot ops are. A subclass's objects
    are made as any class's are (_SubclassType), through its own __init__."""

    def __call__(cls, data, _children=(), _op="", label=""):
        value = _new(cls)
        if type(data) is not float or _children or _op or label:
            _nodes.make_node(value, data, _children, _op, label, Value)
            return value
        blk = _block
        h = _cg_leaf(blk.ptr, data)
        if h < REF_MIN:
            h, blk = _retry(h, _cg_leaf, data)
        value._cg_h = h
        value._cg_blk = blk
        value._cg_a = None
        value._cg_b = None
        return value

    def __setattr__(cls, name, attr):
        """`__eq__` assigned to a Value class counts as one in its body does."""
        super().__setattr__(name, attr)
        if name == "__eq__":
            _nodes.values_define_eq = True


class _SubclassType(_ValueType):
    """The metaclass of Value's subclasses: type's own __call__ (their
    __init__ may take anything, and must call Value.__init__)."""

    __call__ = type.__call__


class Value(metaclass=_ValueType):
    """ stores a single scalar value and its gradient """

    __slots__ = ("_cg_h", "_cg_blk", "_cg_a", "_cg_b", "_cg_state", "__dict__")  # _nodes.py says what each holds
    label = ""
    # The class a copy is made of: a Value subclass's own, but for cgrad's
    # internal views of a node (nn's NeuronSum), which copy as plain Values.
    _cg_copy_class = None

    def __init_subclass__(cls, **kwargs):
        """A subclass's __init__ must make the node (super().__init__): say so
        at once, not at the first op, when it does not."""
        super().__init_subclass__(**kwargs)
        cls.__class__ = _SubclassType
        if cls.__eq__ is not Value.__eq__:  # (kept snapshots are compared with == until one does)
            _nodes.values_define_eq = True
        init = cls.__dict__.get("__init__")
        if init is not None:
            cls.__init__ = _nodes.checked_init(init)

    def __init__(self, data, _children=(), _op="", label=""):
        # (Value(...) itself does not come here: see _ValueType)
        if hasattr(self, "_cg_h"):  # called again: a subclass's reset(), as micrograd allows
            x, is_int = number(data)
            _nodes.reinit(self, x, is_int, _children, _op, label, Value)
        else:  # a subclass's __init__, or unpickling
            _nodes.make_node(self, data, _children, _op, label, Value)

    # ---- data and grad live in C -------------------------------------------

    # data and grad are an int or a float, as micrograd holds them: C keeps
    # which (node.h). The common case, a float other than zero, takes one
    # call; a zero (false) asks again: the int, if it is one that int64
    # holds, else the stored double (spelt out: a Python call would cost an
    # int read a third more).

    @property
    def data(self):
        return _cg_float_data(self._cg_h) or (
            i if (i := _cg_int_data(self._cg_h)) != _NOT_INT else zero_or_big_int(lib.cg_data(self._cg_h)))

    @data.setter
    def data(self, x):
        if type(x) is float:
            _cg_set_data(self._cg_h, x)
        else:
            _set_number(self._cg_h, x, _cg_set_data, lib.cg_set_int_data)

    @property
    def grad(self):
        return _cg_float_grad(self._cg_h) or (
            i if (i := _cg_int_grad(self._cg_h)) != _NOT_INT else zero_or_big_int(lib.cg_grad(self._cg_h)))

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
    # nodes in one call, and the result keeps `other` until _prev gives
    # other**-1 its Value; for a number, other**-1 is Python's.
    __truediv__ = _binary_op("__truediv__", lib.cg_div, None)

    def __pow__(self, other):
        if isinstance(other, Value):
            h, blk = _nodes.create(lib.cg_pow, self._cg_h, other._cg_h)
            return _nodes.make(Value, h, blk, self, other)
        kind = number_kind(other)
        if kind is None:
            return NotImplemented
        blk = _block
        h = _cg_pow_const(blk.ptr, self._cg_h, *kind)
        if h < REF_MIN:
            h, blk = _retry(h, _cg_pow_const, self._cg_h, *kind)
        out = _nodes.make(Value, h, blk, self)
        if type(other) not in (int, float):  # True, np.float32(0.1): named as given, not as C holds it
            _nodes.state(out).op = f"**{other}"
        return out

    def __rpow__(self, other):  # other ** self
        return NotImplemented if number_kind(other) is None else Value(other) ** self

    relu = _unary_op("relu", lib.CG_RELU)
    exp = _unary_op("exp", lib.CG_EXP)
    log = _unary_op("log", lib.CG_LOG)
    tanh = _unary_op("tanh", lib.CG_TANH)
    sin = _unary_op("sin", lib.CG_SIN)
    cos = _unary_op("cos", lib.CG_COS)
    sigmoid = _unary_op("sigmoid", lib.CG_SIGMOID)

    # micrograd's derived and reflected ops, each built from the forward ones

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

    def __rtruediv__(self, other):  # other / self
        return other * self**-1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    # ---- backward ----------------------------------------------------------

    def backward(self):
        """Sets this node's grad to 1 and accumulates every reachable node's
        grad, in one C sweep (stopping only to run Python-defined backwards)."""
        status = _cg_backward_pure(self._cg_h)
        if status == _CG_CALLBACK:  # the process has Python backwards: take turns
            status = backward_taking_turns(self._cg_h)
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
        st = _nodes.state(self)
        order = st.order
        if order is None:
            order = Sweep()  # owns what C makes, from the moment C makes it
            check(lib.cg_sweep_begin(self._cg_h, order.ptr))
            order.kept()
            if st.order is None:  # (unless a finalizer or a thread made one meanwhile)
                st.order = order
        return order

    @property
    def _backward(self):
        """The node's backward step, callable as in the lecture (`o._backward()`)."""
        st = getattr(self, "_cg_state", None)
        if st is not None and st.hook is not None and st.hook.fn is not None:
            return st.hook.fn
        if lib.cg_op(self._cg_h) == lib.CG_CUSTOM:  # micrograd's default: lambda: None
            return _no_backward
        return functools.partial(_run_kernel, self)

    @_backward.setter
    def _backward(self, fn):
        """Any node's backward can be replaced, as in micrograd: the sweep then
        calls fn for this node instead of its C kernel (a wrapper that calls
        the old `_backward` runs the kernel too), leaves' included."""
        check(set_backward(self, _nodes.state(self), fn))

    # ---- the graph as micrograd shows it --------------------------------

    def _operands(self):
        """The Values micrograd's `_prev` holds, in the order the op was given
        them. A number operand (the 2 of `a + 2`: a leaf in C) and the b**-1
        of `a / b` get a Value on first look, kept so that identity stays
        stable from then on."""
        a, b = self._cg_a, self._cg_b
        if a is None:
            return ()
        if type(a) is tuple:
            return a
        if lib.cg_nargs(self._cg_h) == 1:
            return (a,)
        if b is not None and b._cg_h == lib.cg_arg(self._cg_h, 1):
            return (a, b)
        st = _nodes.state(self)
        if st.shown is None:
            node = lib.cg_arg(self._cg_h, 1)
            shown = (a, _nodes.make(Value, node, self._cg_blk, b))  # (b: the b of b**-1, or None)
            with _graph_lock:
                if st.shown is None:
                    st.shown = shown
        return st.shown

    @property
    def _prev(self):
        return set(self._operands())

    @_prev.setter
    def _prev(self, children):
        raise AttributeError(
            "cgrad's graph is fixed when a node is created: its operands live in C and its backward "
            "already uses them. Make a new Value instead, e.g. Value(data, _children=..., _op=...) "
            "with its own _backward.")

    @property
    def _op(self):
        st = getattr(self, "_cg_state", None)
        if st is not None and st.op is not None:  # given by the maker or assigned
            return st.op
        op = lib.cg_op(self._cg_h)
        if op == lib.CG_POW_CONST:
            return f"**{_exponent(self._cg_h)}"  # micrograd's f'**{other}'
        if op == lib.CG_PICK:  # output i of a softmax: 'softmax[i]'
            return f"{self._cg_a._op}[{lib.cg_index(self._cg_h)}]"
        return _OP_NAMES[op]

    @_op.setter
    def _op(self, name):  # a label for drawings, as in micrograd: the node's math stays
        _nodes.state(self).op = name

    # ---- pickle and copy ---------------------------------------------------

    def __reduce__(self):
        """Pickles (and copies) as a leaf of this Value's class holding its
        data and grad, with its attributes (label, optimizer state, ...) and
        a subclass's __slots__ attributes. The graph behind a non-leaf Value
        is not saved: it comes back as a leaf."""
        cls = self._cg_copy_class or type(self)
        slots = {name: getattr(self, name) for name in copyreg._slotnames(cls)
                 if not name.startswith("_cg_") and hasattr(self, name)}
        return (_leaf, (self.data, self.grad, cls), (dict(self.__dict__) or None, slots or None))

    def __setstate__(self, saved):
        """Restores what __reduce__ saved. The engine's own slots (`_cg_*`)
        are never taken from a pickle: a node's address from outside would
        point the Value at any memory."""
        attrs, slots = saved if isinstance(saved, tuple) else (saved, None)
        for name in (*(attrs or ()), *(slots or ())):
            if not isinstance(name, str) or name.startswith("_cg_"):
                raise TypeError(f"cannot restore {name!r} of a {type(self).__name__}: cgrad's engine "
                                "slots are never taken from a pickle")
        if attrs:
            self.__dict__.update(attrs)
        for name, value in (slots or {}).items():
            setattr(self, name, value)


def _leaf(data, grad, cls=None):
    """A leaf of class cls (Value) with this data and grad (unpickling and
    copying). A subclass's own __init__ is not called, as for any object
    copy and pickle restore: its attributes come from the saved state."""
    v = _new(cls or Value)
    Value.__init__(v, data)
    v.grad = grad
    return v
