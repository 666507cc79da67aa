"""Numerical gradients: the seed exercises' two difference formulas, and a
check of analytic gradients against them."""
import math


def numeric_grad(f, inputs, h=1e-6, method="central"):
    """The gradient of f at inputs by finite differences, as a list of floats.

    f takes len(inputs) positional arguments and returns a number or a Value.
    inputs are numbers, or Values (then f is called on fresh Values of the
    same class holding the shifted numbers). method 'central' is
    (f(x+h) - f(x-h)) / 2h; 'forward' is (f(x+h) - f(x)) / h.
    """
    if method not in ("central", "forward"):
        raise ValueError(f"method must be 'central' or 'forward', not {method!r}")
    make = type(inputs[0]) if inputs and hasattr(inputs[0], "data") else None
    xs = [x.data if make else float(x) for x in inputs]

    def at(i, shift):
        args = list(xs)
        args[i] += shift
        out = f(*[make(x) for x in args] if make else args)
        return out.data if hasattr(out, "data") else float(out)

    if method == "forward":
        base = at(0, 0.0) if xs else 0.0
        return [(at(i, h) - base) / h for i in range(len(xs))]
    return [(at(i, h) - at(i, -h)) / (2 * h) for i in range(len(xs))]


def gradcheck(f, inputs, h=1e-6, rtol=1e-5, atol=1e-6, value_class=None):
    """Compares the analytic gradient of f (by backward) with central
    differences. inputs are numbers or Values; f is called on Values of
    value_class (default cgrad.Value). Returns True, or raises AssertionError
    naming every input whose gradients disagree."""
    if value_class is None:
        from .engine import Value as value_class
    xs = [x.data if hasattr(x, "data") else float(x) for x in inputs]
    vs = [value_class(x) for x in xs]
    f(*vs).backward()
    analytic = [v.grad for v in vs]
    numeric = numeric_grad(f, vs, h=h)
    bad = [
        f"input {i}: analytic {a!r}, numeric {n!r}"
        for i, (a, n) in enumerate(zip(analytic, numeric))
        if not math.isclose(a, n, rel_tol=rtol, abs_tol=atol)
    ]
    if bad:
        raise AssertionError("gradients disagree: " + "; ".join(bad))
    return True
