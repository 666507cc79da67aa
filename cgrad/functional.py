"""cgrad.functional: fused n-ary ops and numpy bulk I/O.

Each op builds one node (softmax: one shared group and a node per output) in
one call into C, whatever the number of operands, and its backward is one C
kernel. Operands may be Values or plain numbers (constants, which become leaf
Values). Seen through `_prev` and `_op`, a fused node is one node over its
operands ('sum', 'dot', 'softmax[3]', ...).
"""
import math
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
    other way.

    The snapshot is used only while the list still holds exactly the Values
    it was taken of, checked by identity at each use: a list can be changed
    without calling any of its methods (heapq and other C code write to it
    directly), so no method override could see every change."""

    __slots__ = ("_snapshot",)

    def __init__(self, values=(), snapshot=None):
        super().__init__(values)
        self._snapshot = snapshot

    def __reduce__(self):  # pickles and copies as a plain list
        return (list, (list(self),))


# Arrays of C nodes and of doubles made from Python lists: numpy makes them
# fastest on CPython, cffi on PyPy, where every numpy call goes through the
# slow C-API emulation. Measured at 10,000 elements (medians, in process):
# handles 0.40 ms by numpy against 0.65 by cffi on CPython, 9.8 ms against
# 0.04 on PyPy; floats (checked to be numbers) 0.25 against 0.48 on CPython,
# 7.1 against 0.10 on PyPy.
_NUMPY_READS_LISTS_FASTEST = sys.implementation.name != "pypy"


def node_array(values):
    """The cg_ref array of the nodes of `values`, a tuple of Values (see
    snapshot, which checks that they are). A Value's `_cg_h` is read in a
    comprehension, which CPython runs at slot speed."""
    if _NUMPY_READS_LISTS_FASTEST:
        return ffi.from_buffer("cg_ref[]", np.array([v._cg_h for v in values], dtype=np.intp))
    return ffi.new("cg_ref[]", [v._cg_h for v in values])


def _all_values(vals):
    """Whether every element of the tuple vals is a Value (a subclass's
    included). The types are collected first, at C speed: a list holds few
    distinct types, most often Value alone (a subset test, in C)."""
    types = set(map(type, vals))
    return types <= _VALUE_ONLY or all(issubclass(t, Value) for t in types)


_VALUE_ONLY = {Value}


def _snapshot_of(vals):
    """(vals, cg_ref array of their nodes) for a tuple of Values; TypeError
    for anything that is not a Value (only a Value's `_cg_h` is a node)."""
    if not _all_values(vals):
        raise TypeError("expected a sequence of Values")
    try:
        return vals, node_array(vals)
    except AttributeError:  # a Value that Value.__init__ never ran on: no node
        raise TypeError("expected a sequence of Values") from None


_is = operator.is_


def snapshot(values):
    """(tuple of the Values, cg_ref array of their nodes); TypeError if an
    element is not a Value. A ValueList's is kept, and used again while the
    list holds the same Values, in the same order.

    The caller must hold the tuple for as long as C uses the array: the
    tuple keeps the Values, and so their nodes, alive even if the list is
    changed or dropped meanwhile."""
    if type(values) is ValueList:
        kept = values._snapshot
        if kept is not None and len(values) == len(kept[0]) and all(map(_is, values, kept[0])):
            return kept
        kept = values._snapshot = _snapshot_of(tuple(values))
        return kept
    return _snapshot_of(tuple(values))


def _operands(values, what="values"):
    """snapshot(values), where numbers become constant leaves, anything else
    is a TypeError and no operands at all a ValueError. An iterator is
    read once."""
    if type(values) is not ValueList:
        values = tuple(values)
    try:
        vals, refs = snapshot(values)
    except TypeError:  # numbers (anything else: as_float's TypeError)
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
    than one dimension, as numpy's tolist gives them: shape (2, 0) is
    [[], []]), made in one call into C. Anything that is not a real
    number raises the TypeError Value(x) raises, and makes nothing."""
    src, n, shape = _doubles(array)
    if n == 0:
        leaves = ()
    else:
        refs = ffi.new("cg_ref[]", n)

        def make_leaves(blk):  # cg_leaves as a creator: the first leaf, or a status
            status = lib.cg_leaves(blk, src, n, refs)
            return refs[0] if status == lib.CG_OK else status

        h, blk = _nodes.create(make_leaves, nodes=n)
        leaves = tuple([_nodes.make(Value, h, blk) for h in refs])
    if len(shape) <= 1:
        return ValueList(leaves, (leaves, refs) if n else None)
    # rows of rows, innermost first: shape[k] elements in each of the
    # prod(shape[:k]) rows of level k (counted, not sliced off: a 0 in the
    # shape leaves rows that are empty, not absent)
    out = list(leaves)
    for k in range(len(shape) - 1, 0, -1):
        size, rows = shape[k], math.prod(shape[:k])
        out = [out[i * size:(i + 1) * size] for i in range(rows)]
    return out


def _node_refs(values):
    """snapshot(values), with the TypeError bulk I/O documents."""
    try:
        return snapshot(values)
    except TypeError:
        raise TypeError("expected a sequence of Values") from None


# In data, grads and set_data, `vals` holds the Values until the C call has
# returned: nothing else may (a generator's Values, a list that another
# thread or an __array__ method clears), and a node lives only while a Value
# holds its block.

def data(values):
    """The data of Values as a float64 array."""
    vals, refs = _node_refs(values)
    out = np.empty(len(vals))
    lib.cg_gather_data(refs, len(vals), ffi.from_buffer("double[]", out))
    return out


def grads(values):
    """The grads of Values as a float64 array."""
    vals, refs = _node_refs(values)
    out = np.empty(len(vals))
    lib.cg_gather_grad(refs, len(vals), ffi.from_buffer("double[]", out))
    return out


def set_data(values, array):
    """Writes array's numbers into the Values' data (typically leaves). An
    element that is not a real number raises the TypeError Value(x) raises,
    and nothing is written."""
    src, size, _ = _doubles(array)  # first: reading array may run any code (__array__, a generator)
    vals, refs = _node_refs(values)
    if size != len(vals):
        raise ValueError(f"set_data: {len(vals)} values but {size} numbers")
    lib.cg_scatter_data(refs, len(vals), src)


# Not "sum", which would shadow Python's in `from cgrad.functional import *`.
__all__ = ["ValueList", "mean", "dot", "logsumexp", "softmax", "log_softmax", "cross_entropy",
           "values", "data", "grads", "set_data"]
