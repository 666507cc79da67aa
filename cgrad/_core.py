"""The one import point of the compiled core, and the one map from C status
codes to Python exceptions. Nothing else imports cgrad._cgrad directly."""
import hashlib
import os

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


def check(status):
    """Returns normally for CG_OK, raises the matching exception otherwise."""
    if status != lib.CG_OK:
        raise_status(status)


def new_block(nodes=0):
    """A fresh block for at least `nodes` nodes, freed when no Value uses it."""
    blk = lib.cg_block_new(nodes)
    if blk == ffi.NULL:
        raise MemoryError("cgrad: out of memory for a new block of nodes")
    return ffi.gc(blk, lib.cg_block_free)
