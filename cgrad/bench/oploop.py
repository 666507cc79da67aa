"""The per-op timing loop: one statement looped, each result kept (see
compile_op_loop). Standard library only, so that tools/ab.py can load this
file by path and time two builds of cgrad with the very same loop."""
from time import perf_counter

OP_UNROLL = 10  # statements per loop iteration, so loop overhead is ~1 ns/op


def compile_op_loop(statement, unroll=OP_UNROLL):
    """A function loop(n, a, b, x, Value, kept) running `statement` n * unroll
    times, the k-th statement of an iteration storing its result in kept[k]
    (kept: a list of `unroll` slots), where it stays until the next
    iteration's k-th result replaces it.

    Kept, because PyPy's JIT removes the whole of a pure-Python op whose
    result is dropped: with a Value of one float, `a + b` dropped takes it
    0.2 ns, stored 6.6 ns (the store into a list the caller holds is not
    removed). The store costs every engine the same, and keeping ten results
    at a time leaves the cycle collector about as much to do as dropping them."""
    body = "\n".join(f"        kept[{k}] = {statement}" for k in range(unroll))
    source = f"def loop(n, a, b, x, Value, kept):\n    for _ in range(n):\n{body}\n"
    namespace = {}
    exec(compile(source, f"<op loop: {statement}>", "exec"), namespace)
    return namespace["loop"]


def time_op(loop, Value, calls):
    """Seconds per op for `calls` op calls (the last results are freed after
    the timing)."""
    iterations = max(1, calls // OP_UNROLL)
    a, b = Value(1.5), Value(0.5)
    kept = [None] * OP_UNROLL
    t0 = perf_counter()
    loop(iterations, a, b, 0.25, Value, kept)
    return (perf_counter() - t0) / (iterations * OP_UNROLL)
