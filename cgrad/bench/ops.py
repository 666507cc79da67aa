"""(b) the per-op microbenchmark: one op (a + b, a * b, ...) looped, each
result kept for a few ops (see compile_op_loop), so that no interpreter can
skip the op's work."""
from time import perf_counter

from .config import ENGINE_COLUMNS, ENGINES, VARIANTS
from .measure import cycle_collector
from .rows import Target, make_row, section

# (label, statement): each statement runs with a = Value(1.5), b = Value(0.5),
# x = 0.25 and Value the engine's class. Each result is kept for OP_UNROLL
# ops and dropped then, so each op's cost includes freeing a node (for the
# reference, by the cycle collector when it is on).
OPS = (
    ("a + b", "a + b"),
    ("a * b", "a * b"),
    ("a.tanh()", "a.tanh()"),
    ("a / b", "a / b"),        # two nodes: a * b**-1, as in micrograd
    ("Value(x)", "Value(x)"),  # a leaf: the softmax's first step
)
# Judged on the best repeat, as timeit does: on a shared machine the slower
# repeats measure the neighbours (the median is in the table all the same).
OP_TARGETS = {"a + b": Target("cgrad_best", "<=", 600, "best <= 600 ns")}
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


@section("ops", f"(b) per-op microbenchmark: ns per op, each result kept for {OP_UNROLL} ops "
                f"(median; best in notes)")
def bench_ops(config, progress):
    # A loop of its own per engine, so that neither engine's types are in
    # the other's specialised code (PyPy's traces, CPython's inline caches).
    loops = {(label, engine): compile_op_loop(statement) for label, statement in OPS for engine in ENGINES}
    samples = {label: {column: [] for column in ENGINE_COLUMNS} for label, _ in OPS}
    # One untimed run of every loop first: PyPy compiles a loop after about
    # a thousand iterations, so its first run would time the JIT at work.
    progress.begin("ops: warming up")
    for (label, engine), loop in loops.items():
        time_op(loop, ENGINES[engine], config.op_calls)
    # Round-robin over ops and engines within each repeat, so that a burst
    # of load from a neighbour lands on all of them rather than on one op.
    for repeat in range(config.op_repeats):
        progress.begin(f"ops [{repeat + 1}/{config.op_repeats}] ({config.op_calls:,} calls each)")
        for label, _ in OPS:
            progress.step(label)
            for column, engine, gc_enabled in VARIANTS:
                with cycle_collector(gc_enabled):
                    seconds = time_op(loops[label, engine], ENGINES[engine], config.op_calls)
                samples[label][column].append(seconds * 1e9)
        progress.end()

    rows = []
    for label, statement in OPS:
        best = {column: min(xs) for column, xs in samples[label].items()}
        rows.append(make_row(
            "ops", label, "per op", "ns", samples=samples[label],
            target=OP_TARGETS.get(label),
            params={"calls": config.op_calls, "repeats": config.op_repeats, "statement": statement,
                    "results_kept_for": OP_UNROLL},
            note=f"best of {config.op_repeats}: cgrad {best['cgrad']:.0f}, reference {best['reference']:.0f}",
            cgrad_best=best["cgrad"], reference_best=best["reference"]))
    return rows
