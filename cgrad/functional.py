"""cgrad.functional: fused n-ary ops and numpy bulk I/O.

Each op builds one node (softmax: one shared group and a node per output) in
one call into C, whatever the number of operands, and its backward is one C
kernel. Operands may be Values or plain numbers (constants, which become leaf
Values). Seen through `_prev` and `_op`, a fused node is one node over its
operands ('sum', 'dot', 'softmax[3]', ...).
"""
import operator
import sys

import numpy as np

from . import _nodes
from ._core import ffi, lib
from ._numbers import as_float
from .engine import Value


class ValueList(list):
    """A list of Values that remembers an immutable snapshot of itself (the
    tuple of its Values and the array of their C nodes), so that fused ops
    and bulk I/O over it skip reading and copying 10,000 elements each time.
    cgrad.values, softmax and log_softmax return one; it is a list in every
    other way, and any change to it drops the snapshot."""

    __slots__ = ("_snapshot",)

    def __init__(self, values=(), snapshot=None):
        super().__init__(values)
        self._snapshot = snapshot

    def __reduce__(self):  # pickles and copies as a plain list
        return (list, (list(self),))


def _forgetting(method):
    def mutate(self, *args, **kwargs):
        self._snapshot = None
        return method(self, *args, **kwargs)
    mutate.__name__ = method.__name__
    return mutate


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend",
              "insert", "pop", "remove", "clear", "sort", "reverse"):
    setattr(ValueList, _name, _forgetting(getattr(list, _name)))


# Arrays of C nodes and of doubles made from Python lists: numpy makes them
# fastest on CPython, cffi on PyPy, where every numpy call goes through the
# slow C-API emulation. Measured at 10,000 elements (medians, in process):
# handles 0.40 ms by numpy against 0.65 by cffi on CPython, 9.8 ms against
# 0.04 on PyPy; floats (checked to be numbers) 0.25 against 0.48 on CPython,
# 7.1 against 0.10 on PyPy.
_NUMPY_READS_LISTS_FASTEST = sys.implementation.name != "pypy"


def node_array(values):
    """The cg_ref array of the nodes of `values` (a sequence of Values). A
    Value's `_cg_h` is read in a comprehension, which CPython runs at slot
    speed; an element without one raises AttributeError."""
    if _NUMPY_READS_LISTS_FASTEST:
        return ffi.from_buffer("cg_ref[]", np.array([v._cg_h for v in values], dtype=np.intp))
    return ffi.new("cg_ref[]", [v._cg_h for v in values])


def snapshot(values):
    """(tuple of the Values, cg_ref array of their nodes); see node_array."""
    if type(values) is ValueList:
        if values._snapshot is None:
            values._snapshot = snapshot(list(values))
        return values._snapshot
    vals = tuple(values)
    return vals, node_array(vals)


def _operands(values, what="values"):
    """snapshot(values), where numbers become constant leaves, anything else
    is a TypeError and no operands at all a ValueError. An iterator is
    read once."""
    if type(values) is not ValueList:
        values = tuple(values)
    try:
        vals, refs = snapshot(values)
    except AttributeError:
        vals, refs = snapshot([v if isinstance(v, Value) else Value(as_float(v)) for v in values])
    if not vals:
        raise ValueError(f"{what} must not be empty")
    return vals, refs


def _operand(x):
    return x if isinstance(x, Value) else Value(as_float(x))


def _create(fn, operands, *args, nodes=1):
    """Creates the `nodes` nodes of a fused op over `operands` operands with
    the C creator fn(block, *args). Returns (node, block)."""
    return _nodes.create(fn, *args, nodes=nodes, own_block=operands >= _nodes.OWN_BLOCK_OPERANDS)


def _reduce(op, values):
    vals, refs = _operands(values)
    h, blk = _create(lib.cg_reduce, len(vals), op, refs, len(vals))
    return _nodes.make(Value, h, blk, vals)


def sum(values, start=0):
    """start + values[0] + values[1] + ... as one node (added left to right,
    as Python's sum does). Unlike Python's sum, no values is a ValueError:
    a fused op over nothing is most likely a bug upstream."""
    values = tuple(values)
    if not values:
        raise ValueError("values must not be empty")
    return _reduce(lib.CG_SUM, (_operand(start), *values))  # a Value start: one pass over Values


def mean(values):
    """(values[0] + values[1] + ...) / len(values) as one node."""
    return _reduce(lib.CG_MEAN, values)


def logsumexp(values):
    """log(sum(exp(v) for v in values)) as one node, stable for large values."""
    return _reduce(lib.CG_LOGSUMEXP, values)


def dot(ws, xs, start=0):
    """start + ws[0]*xs[0] + ws[1]*xs[1] + ... as one node: the same float
    operations, in the same order, as sum((w*x for w, x in zip(ws, xs)), start)."""
    ws, w_refs = _operands(ws, "ws")
    xs, x_refs = _operands(xs, "xs")
    if len(ws) != len(xs):
        raise ValueError(f"dot of unequal lengths: {len(ws)} and {len(xs)}")
    start = _operand(start)
    h, blk = _create(lib.cg_dot, 2 * len(ws), start._cg_h, w_refs, x_refs, len(ws))
    return _nodes.make(Value, h, blk, (start, *ws, *xs))


def _softmax(values, log):
    vals, refs = _operands(values, "values")
    n = len(vals)
    outs = ffi.new("cg_ref[]", n)
    op = lib.CG_LOG_SOFTMAX if log else lib.CG_SOFTMAX
    h, blk = _create(lib.cg_softmax, n, refs, n, log, outs, nodes=lib.cg_fused_nodes(op, n))
    group = _nodes.make(Value, h, blk, vals)
    picks = tuple([_nodes.make(Value, out, blk, group) for out in outs])
    return ValueList(picks, (picks, outs))


def softmax(values):
    """[exp(v) / sum(exp(u) for u in values) for v in values]: one group node
    computes them all, stably; each output is a node of its own."""
    return _softmax(values, 0)


def log_softmax(values):
    """[v - logsumexp(values) for v in values], one shared computation."""
    return _softmax(values, 1)


def cross_entropy(logits, target):
    """-log_softmax(logits)[target] as one node: the negative log-likelihood of
    class `target` (an int; negative counts from the end, as in a list)."""
    vals, refs = _operands(logits, "logits")
    n = len(vals)
    t = operator.index(target)
    if not -n <= t < n:
        raise IndexError(f"target {target} out of range for {n} logits")
    h, blk = _create(lib.cg_cross_entropy, n, refs, n, t % n)
    return _nodes.make(Value, h, blk, vals)


# ---- numpy bulk I/O ---------------------------------------------------------

_ROWS = (list, tuple, range, np.ndarray)


def _nested_numbers(array):
    """(list of floats, shape) of a number, or of nested sequences of numbers
    (lists, tuples, ranges, numpy arrays; any iterable at the top), row-major.
    An element that is not a real number raises the TypeError Value(element)
    raises; rows of different lengths, or rows beside numbers, a ValueError."""
    if isinstance(array, np.ndarray):
        level, shape = list(array.reshape(-1)), list(array.shape)
    elif isinstance(array, (str, bytes)) or not hasattr(type(array), "__iter__"):
        level, shape = [array], []  # a number, or as_float says what it is not
    else:
        level = list(array)
        shape = [len(level)]
        while level and isinstance(level[0], _ROWS):
            if not all(isinstance(row, _ROWS) for row in level):
                raise ValueError(f"numbers beside sequences in a {type(array).__name__}")
            rows = [list(row) for row in level]
            if len({len(row) for row in rows}) > 1:
                raise ValueError(f"rows of different lengths in a {type(array).__name__}")
            shape.append(len(rows[0]))
            level = [x for row in rows for x in row]
    return [x if type(x) is float else as_float(x) for x in level], shape


def _doubles(array):
    """(C double array, count, shape) of the real numbers in `array`: a
    numpy array of a real dtype (bool, int, uint, float) is read in place,
    anything else through _nested_numbers, whose errors it raises."""
    if isinstance(array, np.ndarray) and array.dtype.kind in "biuf":
        xs = np.ascontiguousarray(array, dtype=np.float64)
        return ffi.from_buffer("double[]", xs), xs.size, xs.shape
    if _NUMPY_READS_LISTS_FASTEST and not isinstance(array, np.ndarray):
        try:
            xs = np.asarray(array)
        except (ValueError, TypeError):  # ragged: _nested_numbers says why
            xs = None
        if xs is not None and xs.dtype.kind in "biuf":  # numbers only
            return _doubles(xs)
    floats, shape = _nested_numbers(array)
    return ffi.new("double[]", floats), len(floats), shape


def values(array):
    """Leaf Values for the numbers in array (any shape; nested lists for more
    than one dimension), made in one call into C. Anything that is not a real
    number raises the TypeError Value(x) raises, and makes nothing."""
    src, n, shape = _doubles(array)
    if n == 0:
        return ValueList()
    refs = ffi.new("cg_ref[]", n)

    def make_leaves(blk):  # cg_leaves as a creator: the first leaf, or a status
        status = lib.cg_leaves(blk, src, n, refs)
        return refs[0] if status == lib.CG_OK else status

    h, blk = _nodes.create(make_leaves, nodes=n)
    leaves = tuple([_nodes.make(Value, h, blk) for h in refs])
    if len(shape) <= 1:
        return ValueList(leaves, (leaves, refs))
    out = list(leaves)
    for size in reversed(shape[1:]):
        out = [out[i:i + size] for i in range(0, len(out), size)]
    return out


def _node_refs(values):
    try:
        vals, refs = snapshot(values)
    except AttributeError:
        raise TypeError("expected a sequence of Values") from None
    return refs, len(vals)


def data(values):
    """The data of Values as a float64 array."""
    refs, n = _node_refs(values)
    out = np.empty(n)
    lib.cg_gather_data(refs, n, ffi.from_buffer("double[]", out))
    return out


def grads(values):
    """The grads of Values as a float64 array."""
    refs, n = _node_refs(values)
    out = np.empty(n)
    lib.cg_gather_grad(refs, n, ffi.from_buffer("double[]", out))
    return out


def set_data(values, array):
    """Writes array's numbers into the Values' data (typically leaves). An
    element that is not a real number raises the TypeError Value(x) raises,
    and nothing is written."""
    refs, n = _node_refs(values)
    src, size, _ = _doubles(array)
    if size != n:
        raise ValueError(f"set_data: {n} values but {size} numbers")
    lib.cg_scatter_data(refs, n, src)


__all__ = ["ValueList", "sum", "mean", "dot", "logsumexp", "softmax", "log_softmax", "cross_entropy",
           "values", "data", "grads", "set_data"]
