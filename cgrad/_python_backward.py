"""Python backwards in a C sweep: a custom op's `_backward`, or one given to
any node. C marks such a node and, when its sweep reaches it, stops and
hands back a cffi handle; Python runs the function and lets C go on.

C never holds a handle that Python has freed, whatever interrupts (a signal
handler's exception) or threads do between two calls: each node's handle is
made once, kept by the node's block (Block.handles) before C sees it, and
refers to its Hook only weakly, so nothing a block keeps leads back to a
Value (a block's owner is never part of a reference cycle)."""
import weakref

from ._core import Sweep, ffi, lib
from ._nodes import graph_lock


class Hook:
    """The Python backward C calls back for one node: `fn`, or the node's
    own backward until fn is set. The Value keeps it (_State.hook); C holds
    `handle`, a cffi handle to (node, a weak reference to the Hook)."""

    __slots__ = ("node", "fn", "handle", "__weakref__")

    def __init__(self, node):
        self.node = node
        self.fn = None
        self.handle = ffi.new_handle((node, weakref.ref(self)))

    def __call__(self):
        if self.fn is not None:
            self.fn()
        else:
            run_own_backward(self.node)


def run_own_backward(node):
    """The node's own backward: C's kernel (a custom node's does nothing,
    and cg_node_backward says so with CG_CALLBACK)."""
    lib.cg_node_backward(node)


def set_backward(value, st, fn):
    """Gives value's node (whose _State is st) the Python backward fn. Each
    step leaves C and Python agreeing, so that an interrupt between two of
    them leaves the old backward in force and nothing to free: the handle is
    kept by the block before C sees it, and C calls a Hook that runs the
    node's own backward until fn is set on it. Assignments from several
    threads take turns (the graph lock)."""
    with graph_lock:
        hook = st.hook
        if hook is None:
            hook = Hook(value._cg_h)
            value._cg_blk.handles.append(hook.handle)
            st.hook = hook
        status = lib.cg_set_callback(value._cg_h, hook.handle)  # (each time: an interrupt may have come before)
        if status == lib.CG_OK:
            hook.fn = fn
        return status


def backward_taking_turns(h):
    """backward() once some node in the process has a Python backward: the
    sweep from node h, whole under the graph lock, so that no other thread's
    sweep runs between its Python backwards. Returns the final status. The
    rest of the sweep is owned before C makes it, and freed however the
    Python backwards end (an exception, an interrupt)."""
    rest = Sweep()
    try:
        with graph_lock:
            status = lib.cg_backward(h, rest.ptr)
            if status == lib.CG_CALLBACK:  # stopped at a Python backward: go on from here
                status = _run_callbacks(rest.sweep)
    finally:
        rest._free()
    return status


def _run_callbacks(sweep):
    """Goes on with a backward that stopped at a Python backward: C runs the
    kernels of `sweep` (a cg_sweep *) and hands back each Python backward to
    run in its turn. Returns the final status."""
    cursor = ffi.new("size_t *")
    callback = ffi.new("void **")
    while (status := lib.cg_sweep_backward(sweep, cursor, callback)) == lib.CG_CALLBACK:
        node, hook = ffi.from_handle(callback[0])
        hook = hook()
        if hook is not None:
            hook()
        else:  # its Value no longer holds it (re-initialised, or a re-entrant assignment replaced it)
            run_own_backward(node)
    return status
