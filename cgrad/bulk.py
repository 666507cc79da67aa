"""cgrad.bulk: numpy bulk I/O. Leaf Values made from an array, and the
data or grads of many Values read or written, each in one call into C.
"""
import math

import numpy as np

from . import _nodes
from ._core import ffi, lib
from ._numbers import as_float
from ._values import NUMPY_READS_LISTS_FASTEST, ValueList, snapshot
from .engine import Value

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
    if NUMPY_READS_LISTS_FASTEST and not isinstance(array, np.ndarray):
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


__all__ = ["values", "data", "grads", "set_data"]
