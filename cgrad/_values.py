"""Sequences of Values as C takes them: the array of their nodes (a
snapshot, with the tuple of Values that keeps those nodes alive), and
ValueList, a list that keeps its snapshot for the next call. The fused ops,
bulk I/O, nn's layers and the optimizers all hand C their operands this way.
"""
import operator
import sys

import numpy as np

from . import _nodes
from ._core import ffi
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

    __slots__ = ("_kept",)  # (its snapshot, a list of the snapshot's Values), in one slot

    def __init__(self, values=(), snapshot=None):
        super().__init__(values)
        self._kept = None if snapshot is None else (snapshot, list(snapshot[0]))

    def __reduce__(self):  # pickles and copies as a plain list
        return (list, (list(self),))


# Arrays of C nodes and of doubles made from Python lists: numpy makes them
# fastest on CPython, cffi on PyPy, where every numpy call goes through the
# slow C-API emulation. Measured at 10,000 elements (medians, in process):
# handles 0.40 ms by numpy against 0.65 by cffi on CPython, 9.8 ms against
# 0.04 on PyPy; floats (checked to be numbers) 0.25 against 0.48 on CPython,
# 7.1 against 0.10 on PyPy.
NUMPY_READS_LISTS_FASTEST = sys.implementation.name != "pypy"


def node_array(values):
    """The cg_ref array of the nodes of `values`, a tuple of Values (see
    snapshot, which checks that they are). A Value's `_cg_h` is read in a
    comprehension, which CPython runs at slot speed."""
    if NUMPY_READS_LISTS_FASTEST:
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


def same_values(current, kept):
    """Whether the list `current` holds the very Values of the list `kept`,
    in order. list's == compares each pair by identity first, in C (10,000
    elements in ~7 us, where `is` one by one takes ~180): exact while no
    Value type defines == (two different Values are then unequal, as
    objects are), so it is used until a Value type gets == (in its class
    body or assigned later: engine's Value and its metaclass say so). (An
    object that is not a Value and claims to equal one is not looked for.)"""
    if _nodes.values_define_eq:
        return len(current) == len(kept) and all(map(_is, current, kept))
    return current == kept


def snapshot(values):
    """(tuple of the Values, cg_ref array of their nodes); TypeError if an
    element is not a Value. A ValueList's is kept, and used again while the
    list holds the same Values, in the same order.

    The caller must hold the tuple for as long as C uses the array: the
    tuple keeps the Values, and so their nodes, alive even if the list is
    changed or dropped meanwhile."""
    if type(values) is ValueList:
        kept = values._kept  # (one read: another thread may replace it)
        if kept is not None and same_values(values, kept[1]):
            return kept[0]
        taken = _snapshot_of(tuple(values))
        values._kept = (taken, list(taken[0]))
        return taken
    return _snapshot_of(tuple(values))


def operands(values, what="values"):
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


def operand(x):
    """x as a Value: a number becomes a constant leaf."""
    return x if isinstance(x, Value) else Value(as_float(x))
