"""The one import point of the compiled core, and the one map from C status
codes to Python exceptions. Nothing else imports cgrad._cgrad directly."""
import gc
import hashlib
import os
import sys

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_PKG_DIR)
_SRC = os.path.join(_ROOT, "src")
# How to (re)build, for the messages below.
BUILD_HELP = (
    "in the source checkout run `pip install -e .` (or `python setup.py build_ext --inplace`, "
    "which needs cffi and setuptools installed); an installed cgrad is rebuilt by "
    "reinstalling it (`pip install --force-reinstall --no-deps cgrad`)"
)

try:
    from ._cgrad import ffi, lib
except ImportError as exc:  # no fallback: a broken build must not look like a working one
    if getattr(exc, "name", None) == "_cffi_backend":
        raise ImportError("cgrad needs cffi at run time: `pip install cffi`") from exc
    raise ImportError(
        "cgrad's compiled core (cgrad._cgrad) is missing or cannot be loaded "
        f"({exc}). Build it: {BUILD_HELP}."
    ) from exc


def _source_hash(src):
    """sha256 of every src/*.c and src/*.h, names and bytes, in name order:
    the same function as build_ffi.source_hash."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if os.path.splitext(name)[1] in (".c", ".h") and os.path.isfile(path):
            with open(path, "rb") as f:
                h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def _check_fresh():
    """In a source checkout (src/ and build_ffi.py beside the package), the
    compiled core must have been built from the C that is there now. An
    installed cgrad has no src/ beside it and is not checked."""
    if not (os.path.isfile(os.path.join(_SRC, "cgrad.h"))
            and os.path.isfile(os.path.join(_ROOT, "build_ffi.py"))):
        return
    try:
        built = ffi.string(lib.cgrad_build_hash()).decode()
    except AttributeError:  # built before the module carried its hash
        built = "unknown"
    current = _source_hash(_SRC)
    if built != current:
        from . import _cgrad
        raise ImportError(
            f"stale build: cgrad's compiled core {_cgrad.__file__} was built from other C "
            f"sources than those now in {_SRC} (built from {built[:12]}, src/ is {current[:12]}). "
            f"Rebuild it: {BUILD_HELP}."
        )


_check_fresh()

# Built with AddressSanitizer/UBSan (CGRAD_SANITIZE=1): memory measurements
# mean little then, and tests that take them may skip.
SANITIZED = b"-fsanitize" in ffi.string(lib.cgrad_build_flags())

REF_MIN = lib.CG_REF_MIN

_EXCEPTIONS = {
    lib.CG_NOMEM: (MemoryError, "cgrad: out of memory"),
    lib.CG_DOMAIN: (ValueError, "math domain error"),
    lib.CG_RANGE: (OverflowError, "math range error"),
    lib.CG_ZERODIV: (ZeroDivisionError, "0.0 cannot be raised to a negative power"),
    lib.CG_EMPTY: (ValueError, "expected at least one value"),
    lib.CG_INDEX: (IndexError, "index out of range"),
    lib.CG_NOREPLAY: (RuntimeError, "cannot replay a graph with a node whose data Python computed "
                                    "(a custom op): rebuild the graph instead"),
}


def raise_status(status, message=None):
    """Raises the exception for a C status code (never returns)."""
    try:
        exc_type, default = _EXCEPTIONS[status]
    except KeyError:
        raise RuntimeError(f"cgrad: unexpected status {status} from the C core") from None
    raise exc_type(message or default)


_CG_OK = lib.CG_OK  # bound once: `lib.name` is a lookup, and PyPy's interpreter makes it a slow one


def check(status):
    """Returns normally for CG_OK, raises the matching exception otherwise."""
    if status != _CG_OK:
        raise_status(status)


# ---- ownership of C memory ---------------------------------------------------
#
# A block (and a kept sweep order) is freed only once no Python object can
# reach its owner. Python's finalizers cannot tell that alone: in cyclic
# garbage, CPython runs every finalizer of the garbage (cffi's ffi.gc
# destructors, __del__, weakref callbacks) before it finds out what one of
# them resurrected (PEP 442), so a block freed by its owner's finalizer could
# still be reached through a Value that another finalizer kept. docs/design.md
# walks through each case.
#
# So an owner's __del__ frees at once only when the owner died by reference
# counting. In a cyclic collection (gc.is_finalized is already true inside
# __del__ then: the collector marks an object finalized before it calls the
# finalizer, reference counting after) it parks the owner in _parked, which
# resurrects it on purpose; release_parked() frees a parked owner once its
# only reference is _parked's. PyPy's collector finalizes in reachability
# order (an object reachable from one being finalized is not finalized yet),
# so there an owner's __del__ frees at once. At interpreter exit nothing is
# freed: finalizers then run in no useful order, and leaking is safe.

_PYPY = sys.implementation.name == "pypy"
_parked = []
_refcount = getattr(sys, "getrefcount", None)
_is_finalized = getattr(gc, "is_finalized", None)
_is_finalizing = sys.is_finalizing
if _PYPY:
    from __pypy__ import add_memory_pressure as _add_memory_pressure


class _Owned:
    """Owner of one piece of C memory, freed by `free_fn` once no Python
    object can reach the owner any more (see above)."""

    __slots__ = ("ptr", "__weakref__")
    free_fn = None  # a cffi function taking ptr

    def __init__(self, ptr):
        self.ptr = ptr

    # (module globals are bound as defaults: at interpreter exit they may be
    # gone before the last owner is finalized)
    def __del__(self, _is_finalizing=_is_finalizing, _is_finalized=_is_finalized,
                _parked=_parked, _pypy=_PYPY):
        if _is_finalizing():
            return
        if not _pypy and _is_finalized(self):  # in a cyclic collection
            _parked.append(self)
            return
        self._free()

    def _free(self):
        ptr = getattr(self, "ptr", ffi.NULL)  # (not set if __init__ failed)
        self.ptr = ffi.NULL
        if ptr != ffi.NULL:
            type(self).free_fn(ptr)


def release_parked():
    """Frees every parked owner that nothing but _parked refers to any more.
    Called after each collection, when a block is made and after a backward.
    Safe from any thread and re-entrant: each owner is popped by one caller."""
    if not _parked:
        return
    still_reached = []
    while _parked:
        try:
            owner = _parked.pop()
        except IndexError:  # another thread emptied it
            break
        if _refcount(owner) > _UNREACHED_REFCOUNT:
            still_reached.append(owner)
        else:
            owner._free()
    _parked.extend(still_reached)


def _refcount_held_as_popped():
    """What getrefcount says of an object that only a local holds, popped
    from a list and read as release_parked reads `owner`: the count of an
    owner that nothing but release_parked reaches. Measured, not assumed:
    the references a call and a local add are the interpreter's business
    (3.14's compiler borrows them where it can)."""
    if _refcount is None:  # (PyPy, which has no getrefcount, never parks)
        return None
    parked = [_Owned(ffi.NULL)]  # (a NULL owner frees nothing)
    owner = parked.pop()
    return _refcount(owner)


_UNREACHED_REFCOUNT = _refcount_held_as_popped()


def _after_collection(phase, info):
    if phase == "stop" and _parked and not _is_finalizing():
        release_parked()


if not _PYPY:
    gc.callbacks.append(_after_collection)


class Block(_Owned):
    """A fresh C block for at least `nodes` nodes (0: the default size). Every
    Value whose node lives in it holds it; ops pass its `ptr` to C.

    `handles` keeps the cffi handles that its nodes' Python backwards are
    given to C as (_python_backward.Hook): C may hand one back for as long
    as the node exists, which is as long as its block. A handle refers to
    the Python backward only weakly, so that nothing here refers back to a
    Value: a block's owner is never part of a reference cycle."""

    __slots__ = ("handles",)
    free_fn = lib.cg_block_free

    def __init__(self, nodes=0):
        self.handles = []
        release_parked()
        ptr = lib.cg_block_new(nodes)
        if ptr == ffi.NULL:
            raise MemoryError("cgrad: out of memory for a new block of nodes")
        super().__init__(ptr)
        if _PYPY:
            _tell_pypy_of_block(self)


class Sweep(_Owned):
    """Owner of a cg_sweep (an order for replay, or the rest of a backward),
    made before the C call that fills it in: `ptr` is the cg_sweep ** that
    call writes. So no interrupt (a KeyboardInterrupt, a signal handler's
    exception) between that call's return and Python keeping its result can
    leave a sweep with no owner."""

    __slots__ = ()

    def __init__(self):
        super().__init__(ffi.new("cg_sweep **"))

    @property
    def sweep(self):
        """The cg_sweep * (NULL before C fills it in, or once freed)."""
        return self.ptr[0]

    def kept(self):
        """Says that C filled it in and it is kept (an order for replay): on
        PyPy, whose collector does not see C memory unless told, tells it the
        order's bytes (a pointer a node)."""
        if _PYPY:
            _add_memory_pressure(lib.cg_sweep_size(self.sweep) * ffi.sizeof("void *"))

    def _free(self):
        out = getattr(self, "ptr", None)  # (not set if __init__ failed)
        if out is not None:
            sweep, out[0] = out[0], ffi.NULL
            lib.cg_sweep_free(sweep)


# ---- PyPy: pacing its collector by C memory ------------------------------------
#
# PyPy's collector does not see C memory unless told (add_memory_pressure):
# what it is told counts towards the threshold that starts its next major
# collection as its own old objects do. Only a major collection frees a block
# (its owner has a __del__, and PyPy keeps objects with one alive through
# minor collections), so a training loop's C memory grows by about that
# threshold between two major collections and then drops: a sawtooth whose
# height and period are PyPy's choice (its threshold is at least 8 nurseries,
# and it sizes the nursery from the CPU cache size /proc/cpuinfo reports:
# 1 MB on a 512 KB cache, 64 MB on a 128 MB one).
#
# A block is told its bytes when it is made, and the side allocations it took
# afterwards (operand arrays, softmax buffers) when the next block is made:
# making a block seals the one before it, which then takes no more. A fused
# op with a block of its own takes its operand array after its block is made,
# many times the block's own bytes; untold, such a loop would run far ahead
# of the collector.

_newest_told = None  # (the newest Block, the bytes PyPy was told it holds)


def _tell_pypy_of_block(block):
    """Tells PyPy the C bytes of a new block, and those the block made before
    it took since it was told (it is sealed now). Holds the newest block until
    the next one is made, so that it is not freed before it is read again."""
    global _newest_told
    previous = _newest_told
    told = lib.cg_block_bytes(block.ptr)
    _newest_told = (block, told)
    if previous is not None:
        previous_block, previous_told = previous
        told += max(lib.cg_block_bytes(previous_block.ptr) - previous_told, 0)
    _add_memory_pressure(told)
