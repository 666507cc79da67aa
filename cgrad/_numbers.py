"""The numbers a Value holds, as micrograd holds them: Python's ints and
floats. Ints (bools among them, as in Python), floats, numpy real scalars
and 0-d arrays are taken; C keeps each as a float64 with a bit saying
whether Python holds it as an int (exact up to 2**53 in magnitude: README,
"Differences")."""
import numpy as np


def number_kind(x):
    """(x as a float64, 1 if Python holds it as an int else 0) for the
    numbers a Value takes; None for anything else."""
    if type(x) is float:
        return x, 0
    if isinstance(x, int):
        return float(x), 1
    if isinstance(x, float):
        return float(x), 0
    if isinstance(x, (np.generic, np.ndarray)) and x.ndim == 0 and x.dtype.kind in "biuf":
        return float(x), int(x.dtype.kind != "f")
    return None


def number(x):
    """number_kind(x), or the TypeError Value(x) raises."""
    kind = number_kind(x)
    if kind is not None:
        return kind
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        raise TypeError(f"a Value holds one number, not an array of shape {x.shape}: "
                        "cgrad.values(array) makes a Value for each of its numbers")
    raise TypeError(f"a Value holds a real number, not {type(x).__name__!r}")


def as_float(x):
    """x as a float64, for the numbers a Value takes; TypeError naming the
    type for anything else."""
    return number(x)[0]


def zero_or_big_int(x):
    """A node's data (grad) x, read with cg_data (cg_grad) when it is neither
    a nonzero float nor an int that int64 holds: a float zero (its sign kept),
    or an int that big (micrograd keeps ints), stored as a double; an int past
    float64's range is inf and stays a float."""
    return x if x == 0.0 or x - x != 0.0 else int(x)
