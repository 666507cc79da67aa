"""One interpreter's side of tools/bench_interpreters.py, run by it in a
process of its own: `INTERPRETER tools/interpreter_workloads.py MODE` prints
one JSON document on stdout. It measures the seed's softmax-NLL op by op
(build, then backward) and the moons demo's MLP step (rebuilt with cgrad.nn,
and replayed) on this checkout's cgrad and, when it imports on this
interpreter, on micrograd.

Every workload first runs untimed, enough rounds on PyPy for its JIT to
compile it (WARM_UP_ROUNDS of cgrad/bench/measure.py; for the MLP steps,
MLP_WARM_UP_STEPS and REPLAY_WARM_UP_STEPS, below), and every timed round
keeps what it computes (the logits and loss, the losses of each step) until
after its timing, so that no JIT can drop the work. The collector is on, as
users run."""
import contextlib
import gc
import json
import os
import statistics
import sys
from dataclasses import dataclass
from time import perf_counter

# This checkout's cgrad, whatever else is installed: the driver builds it
# for both interpreters in place.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cgrad  # noqa: E402
from cgrad.bench.baselines import (load_micrograd, micrograd_recursion_limit, package_version,  # noqa: E402
                                   seed_ops_on)
from cgrad.bench.config import CONFIGS  # noqa: E402
from cgrad.bench.fused import check_close  # noqa: E402
from cgrad.bench.measure import ON_PYPY, WARM_UP_ROUNDS, interpreter_info, recursion_limit  # noqa: E402
from cgrad.bench.mlp import RebuildSteps, ReplaySteps  # noqa: E402
from cgrad.bench.seed import build_softmax_nll, softmax_inputs  # noqa: E402
from cgrad.nn import MLP as CgradMLP  # noqa: E402


@dataclass
class InterpreterConfig:
    mode: str
    softmax_n: int          # logits of the timed softmax-NLL
    softmax_repeats: int
    warm_up_n: int          # logits of the warm-up rounds (then one untimed round at softmax_n): with
                            # WARM_UP_ROUNDS, well over the thousand iterations before PyPy compiles a loop
    mlp_steps: int          # timed steps of each MLP variant, after its warm-up steps


INTERPRETER_CONFIGS = {
    "full": InterpreterConfig("full", softmax_n=10_000, softmax_repeats=7, warm_up_n=1_000, mlp_steps=20),
    "quick": InterpreterConfig("quick", softmax_n=10_000, softmax_repeats=3, warm_up_n=1_000, mlp_steps=8),
    "tiny": InterpreterConfig("tiny", softmax_n=200, softmax_repeats=2, warm_up_n=200, mlp_steps=2),
}
# Untimed steps of each MLP variant before its timed ones, in the same loop.
# PyPy's JIT compiles a loop after about a thousand iterations, and a step
# called from a loop it has not compiled runs in PyPy's interpreter, whose
# cffi calls cost about four times CPython's (0.7 against 0.18 us). A rebuilt
# step's own loops over the hundred points are compiled within 20 steps; the
# replayed step has none, so the loop of steps must itself pass the threshold
# first. CPython: the first steps' one-off costs.
MLP_WARM_UP_STEPS = 20 if ON_PYPY else 2
REPLAYED = "cgrad.nn, replayed"
# A second figure for the replayed step, from the same run: its steps from
# the 21st on both interpreters (on PyPy, before the JIT compiles the loop,
# as in the demo's 100 steps).
EARLY_REPLAYED = "cgrad.nn, replayed, early"
EARLY_FROM_STEP = 20
REPLAY_WARM_UP_STEPS = 1_500 if ON_PYPY else EARLY_FROM_STEP


def time_softmax(Value, xs, label, repeats):
    """{"build", "backward", "total": [seconds]} of `repeats` rounds of the
    seed's softmax-NLL, and the first round's (loss, grads)."""
    seconds = {"build": [], "backward": [], "total": []}
    first = None
    for _ in range(repeats):
        gc.collect()
        t0 = perf_counter()
        logits, loss = build_softmax_nll(Value, xs, label)
        t1 = perf_counter()
        loss.backward()
        t2 = perf_counter()
        seconds["build"].append(t1 - t0)
        seconds["backward"].append(t2 - t1)
        seconds["total"].append(t2 - t0)
        if first is None:
            first = (loss.data, [v.grad for v in logits])
        del logits, loss
    return seconds, first


def softmax_engines(micrograd):
    engines = {"cgrad": cgrad.Value}
    if micrograd:
        engines["micrograd"] = micrograd[0]
    return engines


def measure_softmax(config, micrograd):
    xs, label = softmax_inputs(config.softmax_n)
    warm_xs, warm_label = softmax_inputs(config.warm_up_n)
    result = {"n": config.softmax_n, "repeats": config.softmax_repeats, "engines": {}}
    firsts = {}
    with contextlib.ExitStack() as stack:
        if micrograd:
            stack.enter_context(seed_ops_on(micrograd[0]))
            stack.enter_context(recursion_limit(micrograd_recursion_limit(config.softmax_n)))
        for engine, Value in softmax_engines(micrograd).items():
            progress(f"softmax-NLL N={config.softmax_n:,} {engine}: warming up")
            time_softmax(Value, warm_xs, warm_label, WARM_UP_ROUNDS)
            time_softmax(Value, xs, label, 1)
            progress(f"softmax-NLL N={config.softmax_n:,} {engine}: timing")
            seconds, firsts[engine] = time_softmax(Value, xs, label, config.softmax_repeats)
            result["engines"][engine] = seconds
    result["loss"] = firsts["cgrad"][0]
    if "micrograd" in firsts:
        result["micrograd_max_diff"] = check_close(f"softmax-NLL N={config.softmax_n:,}", "cgrad",
                                                   firsts["cgrad"], "micrograd", firsts["micrograd"])
    return result


def mlp_variants(bench_config, micrograd):
    makers = {
        "cgrad.nn": lambda: RebuildSteps(cgrad.Value, CgradMLP, bench_config),
        REPLAYED: lambda: ReplaySteps(bench_config),
    }
    if micrograd:
        makers["micrograd"] = lambda: RebuildSteps(micrograd[0], micrograd[1].MLP, bench_config)
    return makers


def mlp_warm_up_steps(variant):
    return REPLAY_WARM_UP_STEPS if variant == REPLAYED else MLP_WARM_UP_STEPS


def measure_mlp(config, micrograd):
    bench_config = CONFIGS["tiny" if config.mode == "tiny" else "full"]  # the demo's size but in tiny runs
    variants = mlp_variants(bench_config, micrograd)
    result = {"points": bench_config.mlp_points, "layers": list(bench_config.mlp_layers),
              "warm_up_steps": {variant: mlp_warm_up_steps(variant) for variant in variants},
              "early_steps": [EARLY_FROM_STEP, EARLY_FROM_STEP + config.mlp_steps],
              "steps": config.mlp_steps, "engines": {}, "losses": {}}
    for variant, make in variants.items():
        warm_up = mlp_warm_up_steps(variant)
        progress(f"MLP step {variant}: {warm_up} untimed steps, then {config.mlp_steps} timed")
        steps = make()
        seconds = []
        for _ in range(warm_up + config.mlp_steps):  # one loop: the one PyPy's JIT compiles
            t0 = perf_counter()
            steps.step()  # its loss is recorded in steps.losses
            seconds.append(perf_counter() - t0)
        result["engines"][variant] = seconds[warm_up:]
        if variant == REPLAYED:
            result["engines"][EARLY_REPLAYED] = seconds[slice(*result["early_steps"])]
        result["losses"][variant] = [steps.losses[k] for k in sorted(steps.losses)]
        steps.release()
        gc.collect()
    return result


def progress(text):
    sys.stderr.write(f"[{interpreter_info()['implementation']}] {text}\n")
    sys.stderr.flush()


def interpreter_worker(mode):
    """The child's whole run: a JSON-ready dict of every timing (seconds)."""
    config = INTERPRETER_CONFIGS[mode]
    micrograd = load_micrograd()
    gc.enable()
    result = {
        "interpreter": interpreter_info(),
        "mode": mode,
        "cgrad_version": cgrad.__version__,
        "cgrad_file": cgrad.__file__,
        "micrograd_version": package_version("micrograd") if micrograd else None,
        "warm_up_rounds": WARM_UP_ROUNDS,
        "softmax": measure_softmax(config, micrograd),
        "mlp": measure_mlp(config, micrograd),
    }
    for workload in ("softmax", "mlp"):
        result[workload]["medians"] = {
            engine: statistics.median(seconds["total"] if workload == "softmax" else seconds)
            for engine, seconds in result[workload]["engines"].items()}
    return result


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in INTERPRETER_CONFIGS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(INTERPRETER_CONFIGS)}}}")
    json.dump(interpreter_worker(sys.argv[1]), sys.stdout)
    sys.stdout.write("\n")
