"""(e) softmax-NLL fused: cgrad.cross_entropy over existing logits against
the seed's code op by op (reference, micrograd) and torch's log_softmax."""
import contextlib
import gc
from time import perf_counter

import cgrad

from .baselines import (load_micrograd, micrograd_recursion_limit, package_version, seed_ops_on,
                        start_torch_worker)
from .config import COLUMNS, ENGINES, BenchmarkError
from .measure import calls_per_timing, cycle_collector, recursion_limit, scaled, time_calls
from .rows import Target, make_row, section
from .seed import build_softmax_nll, softmax_inputs

FUSED_TOLERANCE = 1e-12


def check_close(what, expected_name, expected, got_name, got, tol=FUSED_TOLERANCE):
    """expected, got: (loss, [grads]). Every number of `got` must be within
    tol of expected's, relative to max(1, |expected|) (grads of a softmax are
    at most 1, so for them it is an absolute tolerance). Returns the largest
    difference."""
    (expected_loss, expected_grads), (got_loss, got_grads) = expected, got
    if len(got_grads) != len(expected_grads):
        raise BenchmarkError(f"{what}: {got_name} has {len(got_grads)} grads, "
                             f"{expected_name} {len(expected_grads)}")
    pairs = [("loss", expected_loss, got_loss)]
    pairs += [(f"grad of logit {i}", e, g) for i, (e, g) in enumerate(zip(expected_grads, got_grads))]
    worst = 0.0
    for which, e, g in pairs:
        diff = abs(g - e)
        if not diff <= tol * max(1.0, abs(e)):  # NaN fails too
            raise BenchmarkError(f"{what}: {which} differs by more than {tol:g}: "
                                 f"{expected_name} {e!r}, {got_name} {g!r}")
        worst = max(worst, diff)
    return worst


def fused_result(xs, label):
    """(loss, grads) of cgrad.cross_entropy over fresh logits."""
    logits = cgrad.values(xs)
    loss = cgrad.cross_entropy(logits, label)
    loss.backward()
    return loss.data, cgrad.grads(logits).tolist()


@section("fused", "(e) softmax-NLL fused: cgrad = cgrad.cross_entropy over N existing logits; reference, "
                  "micrograd = the seed's code op by op; torch = -log_softmax(t, 0)[label], float64",
         baselines=True)
def bench_fused(config, progress):
    micrograd = load_micrograd()
    op_by_op = {"reference": ENGINES["reference"]}
    if micrograd:
        op_by_op["micrograd"] = micrograd[0]
    rows = []
    with contextlib.ExitStack() as stack:
        seed_ops = stack.enter_context(seed_ops_on(micrograd[0])) if micrograd else []
        progress.begin("fused softmax-NLL")
        progress.step("starting the torch worker")
        torch = start_torch_worker()
        if torch:
            stack.callback(torch.close)
        for n in config.softmax_sizes:
            rows.append(fused_row(config, progress, n, op_by_op, torch))
    first = ["forward + backward in one timing: cgrad.cross_entropy(logits, label).backward() over logits made "
             "once by cgrad.values, looped (calls per timing in the JSON); the op-by-op engines build the seed's "
             "graph and call backward()"]
    if seed_ops:
        first.append(f"micrograd {package_version('micrograd') or ''} has no {' or '.join(seed_ops)}: the seed "
                     f"exercise's (closures, micrograd's style) are added to its Value for this section")
    if "micrograd" in op_by_op:
        first.append("micrograd runs with sys.setrecursionlimit(10 N + 1,000): its recursive backward needs "
                     "about N frames (RecursionError at the default 1,000 from N = 1,000)")
    if torch:
        first.append(f"torch {torch.version} ({torch.threads} threads) in a worker process, called in turn")
    if rows:
        rows[0]["note"] = "; ".join(first + ([rows[0]["note"]] if rows[0]["note"] else []))
    return rows


def fused_row(config, progress, n, op_by_op, torch):
    repeats = config.softmax_repeats[n]
    xs, label = softmax_inputs(n)
    what = f"fused softmax-NLL N={n:,}"
    progress.begin(f"{what}: calibrating")

    # The fast calls, each looped often enough to be timed.
    logits = cgrad.values(xs)  # made once, as a model's outputs would be

    def fused():
        cgrad.cross_entropy(logits, label).backward()

    fused()  # first-call costs land in no timing
    calls = {"cgrad": calls_per_timing(fused, config.fused_min_seconds)}
    if torch:
        torch.request(op="setup", xs=xs, label=label)
        calls["torch"] = torch.request(op="calibrate", min_seconds=config.fused_min_seconds)["calls"]

    limit = micrograd_recursion_limit(n)
    seconds = {column: [] for column in COLUMNS}
    results = {}
    checks = {}
    for repeat in range(repeats):
        progress.begin(f"{what} [{repeat + 1}/{repeats}]")
        for column, gc_enabled in (("cgrad", True), ("cgrad_gc_off", False)):
            with cycle_collector(gc_enabled):
                progress.step(f"{column} x{calls['cgrad']:,}")
                seconds[column].append(time_calls(fused, calls["cgrad"]) / calls["cgrad"])
        if torch:
            progress.step(f"torch x{calls['torch']:,}")
            seconds["torch"].append(torch.request(op="time", calls=calls["torch"])["seconds"])
        for engine, Value in op_by_op.items():
            for gc_enabled in (True, False):
                column = engine if gc_enabled else f"{engine}_gc_off"
                with cycle_collector(gc_enabled), recursion_limit(limit if engine == "micrograd" else 0):
                    progress.step(f"{column} op by op")
                    t0 = perf_counter()
                    values, loss = build_softmax_nll(Value, xs, label)
                    loss.backward()
                    seconds[column].append(perf_counter() - t0)
                if repeat == 0:
                    results[column] = (loss.data, [v.grad for v in values])
                del values, loss
                gc.collect()
        if repeat == 0:
            checks = check_fused(what, xs, label, results, torch)
            progress.note(f"(cgrad.cross_entropy matches {checks['fused_vs']} to {FUSED_TOLERANCE:g})")
    progress.end()

    targets, note = fused_targets(n, "micrograd" in op_by_op, torch is not None)
    params = {"n": n, "repeats": repeats, "label": label, "calls_per_timing": calls,
              "loss": {column: loss_data for column, (loss_data, _) in results.items()}, "checks": checks}
    if "micrograd" in op_by_op:
        params["micrograd_recursion_limit"] = limit
    if torch:
        params["torch"] = {"version": torch.version, "threads": torch.threads}
    return make_row("fused", f"N={n:,}", "forward+backward", "ms", params=params, targets=targets,
                    note=note, samples=scaled(seconds, 1e3))


def fused_targets(n, micrograd, torch):
    """(targets, note) of the fused row for N logits (the project's, at N =
    10,000): >= 500x faster than micrograd op by op (the reference engine
    when micrograd is missing, and the note says so) and within 3x of torch."""
    if n != 10_000:
        return [], ""
    if micrograd:
        targets = [Target("speedup_micrograd", ">=", 500, "mg/cgrad >= 500x")]
        note = ""
    else:
        targets = [Target("speedup", ">=", 500, "ref/cgrad >= 500x")]
        note = "micrograd is not installed: the 500x target is judged against the reference engine " \
               "(micrograd's algorithm)"
    if torch:
        targets.append(Target("vs_torch", "<=", 3, "cgrad/torch <= 3x"))
    return targets, note


def check_fused(what, xs, label, results, torch):
    """cgrad's fused loss and grads against torch's (without torch, against
    the reference engine's op by op), and every op-by-op engine against the
    reference's, each to FUSED_TOLERANCE. Returns the largest differences."""
    if torch:
        reply = torch.request(op="result")
        expected_name, expected = "torch", (reply["loss"], reply["grads"])
    else:
        expected_name, expected = "reference", results["reference"]
    checks = {"fused_vs": expected_name,
              "fused_max_diff": check_close(what, expected_name, expected, "cgrad.cross_entropy",
                                            fused_result(xs, label))}
    for column, got in results.items():
        if column != "reference":
            checks[f"{column}_vs_reference_max_diff"] = check_close(
                f"{what} op by op", "reference", results["reference"], column, got)
    return checks
