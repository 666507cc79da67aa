"""The one import point of the compiled core, and the one map from C status
codes to Python exceptions. Nothing else imports cgrad._cgrad directly."""
try:
    from ._cgrad import ffi, lib
except ImportError as exc:  # no fallback: a broken build must not look like a working one
    raise ImportError(
        "cgrad's compiled core (cgrad._cgrad) is missing or cannot be loaded "
        f"({exc}). Build it: `pip install .` from the source tree, or "
        "`python setup.py build_ext --inplace` for a development checkout."
    ) from exc

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
