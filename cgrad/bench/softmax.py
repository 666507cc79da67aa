"""(a) softmax-NLL op by op: the seed's code (seed.py) on each engine,
timed build and backward apart, cross-checked bit for bit."""
import gc
from time import perf_counter

from .config import ENGINE_COLUMNS, ENGINES, VARIANTS, BenchmarkError
from .measure import cycle_collector, scaled
from .rows import Target, make_row, section
from .seed import build_softmax_nll, softmax_inputs


def check_same_results(what, results):
    """results: {column: (loss.data, [grads])}. Every column must equal the
    first bit for bit (same float operations in the same order)."""
    (first_column, expected), *others = results.items()
    for column, got in others:
        if got[0] != expected[0]:
            raise BenchmarkError(
                f"{what}: loss.data differs: {first_column} {expected[0]!r}, {column} {got[0]!r}")
        if len(got[1]) != len(expected[1]):
            raise BenchmarkError(f"{what}: {column} has {len(got[1])} grads, {first_column} {len(expected[1])}")
        for i, (e, g) in enumerate(zip(expected[1], got[1])):
            if e != g:
                raise BenchmarkError(
                    f"{what}: grad of logit {i} differs: {first_column} {e!r}, {column} {g!r}")


@section("softmax", "(a) softmax-NLL op by op: the seed's code, verbatim for both engines")
def bench_softmax(config, progress):
    rows = []
    for n in config.softmax_sizes:
        repeats = config.softmax_repeats[n]
        xs, label = softmax_inputs(n)
        seconds = {phase: {column: [] for column in ENGINE_COLUMNS} for phase in ("build", "backward", "total")}
        results = {}
        for repeat in range(repeats):
            progress.begin(f"softmax-NLL N={n:,} [{repeat + 1}/{repeats}]")
            for column, engine, gc_enabled in VARIANTS:
                Value = ENGINES[engine]
                # No gc.collect() between build and backward: a user's
                # backward runs on the heap the build left.
                with cycle_collector(gc_enabled):
                    progress.step(f"{column} build")
                    t0 = perf_counter()
                    logits, loss = build_softmax_nll(Value, xs, label)
                    t1 = perf_counter()
                    progress.step("backward")  # not timed: it writes to the terminal
                    t2 = perf_counter()
                    loss.backward()
                    t3 = perf_counter()
                seconds["build"][column].append(t1 - t0)
                seconds["backward"][column].append(t3 - t2)
                seconds["total"][column].append((t1 - t0) + (t3 - t2))
                if repeat == 0:
                    results[column] = (loss.data, [v.grad for v in logits])
                del logits, loss
                gc.collect()
            if repeat == 0:
                check_same_results(f"softmax-NLL N={n:,}", results)
                progress.note("(loss and grads identical)")
        progress.end()

        name = f"N={n:,}"
        # Recorded so that readers of the JSON can see the cross-check's inputs.
        params = {"n": n, "repeats": repeats, "label": label,
                  "loss": {column: loss_data for column, (loss_data, _) in results.items()},
                  "grads_identical": True}
        # The targets at N = 10,000, as restated when the thin Python Value
        # over cffi was kept as the design (the build is at that design's
        # floor on CPython): build + backward >= 6x micrograd's algorithm,
        # backward >= 150x.
        at_target_size = n == 10_000
        rows.append(make_row("softmax", name, "build", "ms", params=params,
                             samples=scaled(seconds["build"], 1e3)))
        rows.append(make_row("softmax", name, "backward", "ms", params=params,
                             target=Target("speedup", ">=", 150, ">= 150x") if at_target_size else None,
                             samples=scaled(seconds["backward"], 1e3)))
        rows.append(make_row("softmax", name, "build+backward", "ms", params=params,
                             target=Target("speedup", ">=", 6, ">= 6x") if at_target_size else None,
                             samples=scaled(seconds["total"], 1e3)))
    return rows
