"""(b) the per-op microbenchmark: one op (a + b, a * b, ...) looped, each
result kept for a few ops (see compile_op_loop), so that no interpreter can
skip the op's work."""
from .config import ENGINE_COLUMNS, ENGINES, VARIANTS
from .measure import cycle_collector
from .oploop import OP_UNROLL, compile_op_loop, time_op
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
    ("a.data", "a.data"),      # a float: one call into C
    ("a.grad", "a.grad"),      # micrograd's int 0 before a backward: two calls
)
# Judged on the best repeat, as timeit does: on a shared machine the slower
# repeats measure the neighbours (the median is in the table all the same).
OP_TARGETS = {"a + b": Target("cgrad_best", "<=", 600, "best <= 600 ns")}


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
