"""Where Values and their nodes are made: the current block and the policy
for which block a node goes in, the one maker of Values, and the state the
few Values with more than a node carry.

A Value has five slots, each with one meaning:
  _cg_h      its node's address (a cg_ref)
  _cg_blk    the owner of the block the node lives in (_core.Block)
  _cg_a      the Value the op was given first (a of a + b, of a.exp(), ...),
             or, for an op of many (fused ops, custom ops), all of them as a
             tuple; None for a leaf
  _cg_b      the Value the op was given second (b of a + b, a * b, a / b,
             a ** b); None when the second operand was a number or there is
             none
  _cg_state  a _State, for the few Values that need one
The operand slots keep the operands' Values, and so their nodes and blocks,
alive as long as a node that uses them: nothing else does.
"""
import functools
import os
import threading

from ._core import REF_MIN, Block, ffi, lib, raise_status
from ._numbers import number

_new = object.__new__

BLOCK_NODES = lib.CG_BLOCK_NODES  # nodes in a default block

# Which ops get a block of their own (create's own_block), so that their side
# allocations (operand arrays, softmax buffers) are freed with their nodes,
# not with a shared block and its thousand other nodes: a fused op over this
# many operands or more, and an nn layer of more than a quarter block of
# nodes. (A smaller layer shares the current block: a block per layer call,
# a malloc and a finalizer each, measured nearly twice the demo's step time.)
OWN_BLOCK_OPERANDS = 256
OWN_BLOCK_NODES = BLOCK_NODES // 4

# Nodes are made in the current block until it is full; then a fresh one
# replaces it (retry). Values keep their own block alive. The module whose
# hot paths make nodes (engine.py) reads it as a global of its own, which
# retry keeps in step (follow_current): a module attribute costs ~8 ns more
# to read than a global on CPython, 1.4% of an op.
current = Block()
_followers = []


def follow_current(namespace, name):
    """Keeps namespace[name] the current block from now on. Returns it."""
    namespace[name] = current
    _followers.append((namespace, name))
    return current


# Whether some Value type defines == (engine.Value.__init_subclass__ and
# Value's metaclass set it): _values then compares kept Values one by one
# with `is`, not with ==.
values_define_eq = False


def init(value, h, blk, a=None, b=None):
    """Makes `value` the Value of the new node h in blk, made from a and b
    (see the slots above). Returns value."""
    value._cg_h = h
    value._cg_blk = blk
    value._cg_a = a
    value._cg_b = b
    return value


def make(cls, h, blk, a=None, b=None):
    """A new Value of class cls (Value, or a subclass with its layout) for
    the node h in blk: the one maker of Values. engine.py's hot paths (+, *,
    /, the unary ops, Value(x) of a float) spell these stores out: a Python
    call is a fifth of an op's cost."""
    return init(_new(cls), h, blk, a, b)


def retry(status, fn, *args, nodes=1):
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
    global current
    while status == lib.CG_FULL:
        if nodes > BLOCK_NODES:
            blk = Block(nodes)
            status = fn(blk.ptr, *args)
            continue
        blk = current  # another thread, or a finalizer, may have replaced it
        status = fn(blk.ptr, *args)
        if status == lib.CG_FULL:
            blk = Block()
            status = fn(blk.ptr, *args)
            if status >= REF_MIN:
                current = blk
                for namespace, name in _followers:
                    namespace[name] = blk
    if status < REF_MIN:
        raise_status(status)
    return status, blk


def create(fn, *args, nodes=1, own_block=False):
    """Creates an op's `nodes` nodes with fn(block.ptr, *args): in a block of
    its own, or in the current block (or a fresh one when that is full).
    Returns (the node fn returned, its block)."""
    blk = Block(nodes) if own_block else current
    h = fn(blk.ptr, *args)
    if h < REF_MIN:
        h, blk = retry(h, fn, *args, nodes=nodes)
    return h, blk


def make_node(value, data, children, op, label, cls):
    """Makes the node of a new Value, as Value(data, children, op, label)
    does (cls: Value, which the children must be)."""
    x, is_int = number(data)
    if children:
        children = tuple(children)
        for child in children:
            if not isinstance(child, cls):
                raise TypeError(f"_children must be Values, not {type(child).__name__!r}")
        # A custom op, as the lecture writes them: its data comes from
        # Python, and its backward is the `_backward` assigned to it.
        refs = ffi.new("cg_ref[]", [c._cg_h for c in children])
        h, blk = create(lib.cg_custom, x, refs, len(children))
        init(value, h, blk, children)
    else:
        h, blk = create(lib.cg_leaf, x)
        init(value, h, blk)
    if is_int:
        lib.cg_set_int_data(h, x)
    if op:
        state(value).op = op
    if label:
        value.label = label


def checked_init(subclass_init):
    """A Value subclass's __init__, which must make the node: says so at
    once, not at the first op, when it does not (super().__init__)."""
    @functools.wraps(subclass_init)
    def __init__(self, *args, **kwargs):
        try:
            subclass_init(self, *args, **kwargs)
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


def reinit(value, x, is_int, children, op, label, cls):
    """Value.__init__ again on a Value that has a node, as micrograd allows:
    the Value becomes what __init__ makes (data x, grad 0, its own backward,
    these children), and the nodes made from it keep using it. A leaf is
    remade in place (cg_reset_leaf), so their backward reaches this Value,
    as micrograd's closures reach the re-initialised object. With children,
    or for a softmax output (whose data its group writes), a new node is
    made, as cls(x, children) makes it; nodes made before keep the old one.
    Either way the Value keeps what its old node used (_State.retired), so
    nothing another Value still reaches is freed."""
    st = state(value)
    old = (value._cg_h, value._cg_blk, value._cg_a, value._cg_b)
    if children or lib.cg_reset_leaf(value._cg_h, x) != lib.CG_OK:
        fresh = cls(x, children)
        init(value, fresh._cg_h, fresh._cg_blk, fresh._cg_a)
        st.retired = (old, st.retired)
    else:
        init(value, value._cg_h, value._cg_blk)
        if old[2] is not None:  # (a leaf made a leaf again keeps nothing)
            st.retired = (old, st.retired)
    if is_int:
        lib.cg_set_int_data(value._cg_h, x)
    st.op = op or None
    st.hook = st.order = st.shown = None
    if label:
        value.label = label
    else:
        value.__dict__.pop("label", None)


# ---- what a few Values carry besides their node ------------------------------

# Backward passes and replays take turns, whole: a custom op's Python
# backward updates grads between C's kernels, and another thread's sweep over
# the same nodes must not run in between (C's engine lock covers only C's
# kernels). Re-entrant, so that a custom backward, a finalizer or a signal
# handler may call backward() again in the same thread. Also held to make a
# _State and to give a node a Python backward; and across fork(), so that a
# child starts with it free and no backward half done.
graph_lock = threading.RLock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=graph_lock.acquire, after_in_parent=graph_lock.release,
                        after_in_child=graph_lock.release)


class _State:
    """What few Values carry besides their node: a custom op's name, a Python
    backward, a kept order for replay, the Values micrograd's `_prev` shows
    (made on first look), what a re-initialised Value keeps of its old node.
    In a slot of its own (not in the Value's __dict__, which belongs to the
    user), so that nothing a user sets or deletes can break the engine."""

    __slots__ = ("op", "hook", "order", "shown", "retired")

    def __init__(self):
        self.op = None  # the name _op shows, when given (else the node's own)
        self.hook = None  # the node's python_backward.Hook, once it has one
        self.order = None  # a _core.Sweep, once forward() needs one
        self.shown = None  # the operands `_prev` shows, when not _cg_a and _cg_b themselves
        self.retired = None  # (old slots, older retired) of a re-initialised Value


def state(value):
    """value's _State, made on first need (under the graph lock, so that two
    threads cannot each make one and lose the other's)."""
    st = getattr(value, "_cg_state", None)
    if st is None:
        with graph_lock:
            st = getattr(value, "_cg_state", None)
            if st is None:
                st = value._cg_state = _State()
    return st
