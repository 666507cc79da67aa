"""(c) a deep chain y = y + x: build, backward and release per node."""
import gc
from time import perf_counter

from .config import ENGINE_COLUMNS, ENGINES, VARIANTS, BenchmarkError
from .measure import cycle_collector, scaled
from .rows import Target, make_row, section


def build_chain(Value, n):
    """x, and y = x + x + ... + x: n '+' nodes of Values, each using the one
    before it, so the graph is n deep. Returns (x, y)."""
    x = Value(1.0)
    y = x
    for _ in range(n):
        y = y + x
    return x, y


def check_chain_grad(column, x, n):
    """After the first backward of build_chain's y: dy/dx = n + 1, exactly
    (sums of small integers are exact in float64)."""
    if x.grad != n + 1:
        raise BenchmarkError(f"chain of {n:,}: {column} gives x.grad = {x.grad!r}, expected {n + 1}")


@section("chain", "(c) a deep chain y = y + x: ns per node")
def bench_chain(config, progress):
    sizes = {"cgrad": config.chain_nodes_cgrad, "reference": config.chain_nodes_reference}
    build, first_backward, release = ({c: [] for c in ENGINE_COLUMNS} for _ in range(3))
    backward = {"cgrad": [], "reference": []}

    for repeat in range(config.chain_repeats):
        for column, engine, gc_enabled in VARIANTS:
            n = sizes[engine]
            Value = ENGINES[engine]
            progress.begin(f"chain {engine} {n:,} nodes [{repeat + 1}/{config.chain_repeats}]")
            with cycle_collector(gc_enabled):
                progress.step(f"{column} build")
                t0 = perf_counter()
                x, y = build_chain(Value, n)
                t1 = perf_counter()
                progress.step("backward")  # not timed: it writes to the terminal
                t2 = perf_counter()
                y.backward()
                t3 = perf_counter()
            build[column].append((t1 - t0) / n)
            first_backward[column].append((t3 - t2) / n)
            check_chain_grad(column, x, n)

            # More backward() calls on the same graph, now in the caches.
            # Grads accumulate, as in micrograd; the cost does not depend on
            # their values.
            if gc_enabled:
                progress.step(f"backward x{config.chain_backward_repeats}")
                for _ in range(config.chain_backward_repeats):
                    gc.collect()
                    t0 = perf_counter()
                    y.backward()
                    backward[engine].append((perf_counter() - t0) / n)

            # Releasing the graph: cgrad frees on the last reference; the
            # reference engine's cycles wait for the collector.
            progress.step("release")
            with cycle_collector(gc_enabled):
                t0 = perf_counter()
                del x, y
                gc.collect()
                release[column].append((perf_counter() - t0) / n)
            progress.end()

    params = {"cgrad_nodes": sizes["cgrad"], "reference_nodes": sizes["reference"],
              "repeats": config.chain_repeats, "backward_repeats": config.chain_backward_repeats}
    sweep_target = (Target("cgrad", "<=", 10, "<= 10 ns")
                    if config.chain_nodes_cgrad == 10**6 else None)
    name = "y = y + x"
    sizes_note = f"cgrad {sizes['cgrad']:,} nodes, reference {sizes['reference']:,}"
    rows = [
        make_row("chain", name, "build", "ns/node", params=params, note=sizes_note,
                 samples=scaled(build, 1e9)),
        make_row("chain", name, "backward(), first call", "ns/node", params=params, target=sweep_target,
                 note="on a freshly built graph; cgrad: the whole reverse sweep, one C call",
                 samples=scaled(first_backward, 1e9)),
        make_row("chain", name, "backward(), repeated", "ns/node", params=params,
                 note="the same graph again, in the caches; reference: sort + closures",
                 samples=scaled(backward, 1e9)),
        make_row("chain", name, "release: del + gc.collect()", "ns/node", params=params,
                 samples=scaled(release, 1e9)),
    ]
    return rows
