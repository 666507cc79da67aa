"""cgrad.functional: fused n-ary ops.

Each op builds one node (softmax: one shared group and a node per output) in
one call into C, whatever the number of operands, and its backward is one C
kernel. Operands may be Values or plain numbers (constants, which become leaf
Values). Seen through `_prev` and `_op`, a fused node is one node over its
operands ('sum', 'dot', 'softmax[3]', ...).
"""
import operator

from . import _nodes
from ._core import ffi, lib
from ._values import ValueList, operand, operands
from .engine import Value


def _create(fn, count, *args, nodes=1):
    """Creates the `nodes` nodes of a fused op over `count` operands with
    the C creator fn(block, *args). Returns (node, block)."""
    return _nodes.create(fn, *args, nodes=nodes, own_block=count >= _nodes.OWN_BLOCK_OPERANDS)


def _reduce(op, values):
    vals, refs = operands(values)
    h, blk = _create(lib.cg_reduce, len(vals), op, refs, len(vals))
    return _nodes.make(Value, h, blk, vals)


def sum(values, start=0):
    """start + values[0] + values[1] + ... as one node (added left to right,
    as Python's sum does). Unlike Python's sum, no values is a ValueError:
    a fused op over nothing is most likely a bug upstream."""
    values = tuple(values)
    if not values:
        raise ValueError("values must not be empty")
    return _reduce(lib.CG_SUM, (operand(start), *values))  # a Value start: one pass over Values


def mean(values):
    """(values[0] + values[1] + ...) / len(values) as one node."""
    return _reduce(lib.CG_MEAN, values)


def logsumexp(values):
    """log(sum(exp(v) for v in values)) as one node, stable for large values."""
    return _reduce(lib.CG_LOGSUMEXP, values)


def dot(ws, xs, start=0):
    """start + ws[0]*xs[0] + ws[1]*xs[1] + ... as one node: the same float
    operations, in the same order, as sum((w*x for w, x in zip(ws, xs)), start)."""
    ws, w_refs = operands(ws, "ws")
    xs, x_refs = operands(xs, "xs")
    if len(ws) != len(xs):
        raise ValueError(f"dot of unequal lengths: {len(ws)} and {len(xs)}")
    start = operand(start)
    h, blk = _create(lib.cg_dot, 2 * len(ws), start._cg_h, w_refs, x_refs, len(ws))
    return _nodes.make(Value, h, blk, (start, *ws, *xs))


def _softmax(values, log):
    vals, refs = operands(values, "values")
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
    vals, refs = operands(logits, "logits")
    n = len(vals)
    t = operator.index(target)
    if not -n <= t < n:
        raise IndexError(f"target {target} out of range for {n} logits")
    h, blk = _create(lib.cg_cross_entropy, n, refs, n, t % n)
    return _nodes.make(Value, h, blk, vals)


# Not "sum", which would shadow Python's in `from cgrad.functional import *`.
__all__ = ["ValueList", "mean", "dot", "logsumexp", "softmax", "log_softmax", "cross_entropy"]
