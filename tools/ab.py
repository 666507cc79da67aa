"""A/B: two builds of cgrad timed against each other in ONE process.

    python tools/ab.py BASE [OTHER] [--rounds 30] [--n 10000] [--calls 20000] [--json]
    python tools/ab.py HEAD~1              # the last commit against the working tree
    python tools/ab.py main /work/wt-x     # a branch against another checkout
    python tools/ab.py HEAD HEAD --tiny    # the harness itself (ratios near 1)

BASE and OTHER are each a git revision of this repository (exported with
`git archive REV | tar -x`, no worktree) or a directory holding a checkout
(its src/, build_ffi.py and cgrad/ are copied). OTHER defaults to this
checkout's working tree (the directory above tools/), uncommitted changes
included.

Why one process: two builds timed in two processes meet different heaps,
address layouts and neighbours' load; alternated in one, round after round,
the noise falls on both alike and the paired ratio other/base is what
changed. To import both, each copy is built in a temporary directory under a
package name of its own (cgrad_ab_base, cgrad_ab_other): the package
directory is renamed and build_ffi.py's module name "cgrad._cgrad" rewritten
before cffi compiles it (the package's own imports are relative). The run
checks that the two compiled modules are distinct objects from distinct files,
both mapped into the process.

Workloads, each timed on both builds in every round (ABBA order, so neither
build always goes first), collector on: a + b, a * b and a.tanh() per op
(cgrad/bench/oploop.py's loop, each result kept), the seed's softmax-NLL
build at N (cgrad/bench/seed.py's code) and its backward right after the
build. Both files are loaded by path from this checkout, so both builds run
the very same Python. And the moons demo's replayed step (the graph built once
with each build's own cgrad.nn, then forward, zero_grad, backward and its
optim.SGD step), the median of 20 steps; a replay's cost moves with where the
graph's memory lands, so its graphs live side by side, each kept for the run.
Printed: the median of the per-round ratios other/base
with their interquartile range (ratio < 1: OTHER is faster).
"""
import argparse
import gc
import importlib
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from time import perf_counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "cgrad", "bench")
OPS = (("a + b", "a + b"), ("a * b", "a * b"), ("a.tanh()", "a.tanh()"),
       ("a.data", "a.data"), ("a.grad", "a.grad"))
SIDES = ("base", "other")
MODULE_NAME = '"cgrad._cgrad"'  # as build_ffi.py passes it to set_source
TOLERANCE = 1e-12  # relative: the two builds' softmax-NLL loss and grads
# Untimed rounds first: one for first-call costs; on PyPy enough for its JIT
# to compile the loops (it does after about a thousand iterations).
WARM_UP_ROUNDS = 10 if sys.implementation.name == "pypy" else 1


def load_by_path(name, path):
    """A standard-library-only module of this checkout, without importing cgrad."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed = load_by_path("cgrad_ab_seed", os.path.join(BENCH_DIR, "seed.py"))
oploop = load_by_path("cgrad_ab_oploop", os.path.join(BENCH_DIR, "oploop.py"))


def export(source, dest):
    """Puts a checkout of `source` (a directory, or a git revision of ROOT)
    into dest. Returns a description: the directory, or REV (commit)."""
    os.makedirs(dest)
    if os.path.isdir(source):
        ignore = shutil.ignore_patterns("*.so", "*.o", "_cgrad.c", "__pycache__")
        for name in ("src", "cgrad"):
            shutil.copytree(os.path.join(source, name), os.path.join(dest, name), ignore=ignore)
        shutil.copy2(os.path.join(source, "build_ffi.py"), dest)
        return os.path.abspath(source)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", source + "^{commit}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "src", "cgrad", "build_ffi.py"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return f"{source} ({commit})"


def start_build(copy, package):
    """Renames the copy's package to `package` and starts compiling its core
    as package._cgrad (a subprocess, so that both builds compile at once)."""
    os.rename(os.path.join(copy, "cgrad"), os.path.join(copy, package))
    builder = os.path.join(copy, "build_ffi.py")
    with open(builder) as f:
        text = f.read()
    if text.count(MODULE_NAME) != 1:
        raise SystemExit(f"{builder}: expected {MODULE_NAME} once, to rename the module; the harness needs updating")
    with open(builder, "w") as f:
        f.write(text.replace(MODULE_NAME, f'"{package}._cgrad"'))
    code = "import build_ffi; build_ffi.ffibuilder.compile(verbose=False)"
    return subprocess.Popen([sys.executable, "-c", code], cwd=copy, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def import_build(copy, package):
    sys.path.insert(0, copy)
    module = importlib.import_module(package)
    core = sys.modules[f"{package}._cgrad"]
    return module, core


def mapped_files():
    """Files mapped into this process (Linux), to see both .so loaded."""
    try:
        with open("/proc/self/maps") as f:
            return {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return set()


def check_distinct(builds):
    (base, base_core), (other, other_core) = builds["base"], builds["other"]
    files = {side: os.path.realpath(core.__file__) for side, (_, core) in builds.items()}
    maps = mapped_files()
    facts = {"files": files, "distinct_modules": base is not other and base_core is not other_core
             and base.Value is not other.Value and base_core.lib is not other_core.lib,
             "distinct_files": files["base"] != files["other"],
             "both_mapped": all(path in maps for path in files.values()) if maps else None}
    if not (facts["distinct_modules"] and facts["distinct_files"] and facts["both_mapped"] is not False):
        raise SystemExit(f"the two builds are not two distinct loaded modules: {facts}")
    return facts


def softmax_round(Value, xs, label):
    """(build seconds, backward seconds, (loss, grads)): the loss and logits
    are kept until the backward's timing ends."""
    gc.collect()
    t0 = perf_counter()
    logits, loss = seed.build_softmax_nll(Value, xs, label)
    t1 = perf_counter()
    loss.backward()
    t2 = perf_counter()
    return t1 - t0, t2 - t1, (loss.data, [v.grad for v in logits])


REPLAY_STEPS = 20  # replayed steps per timing (the median is kept)
REPLAY_NAME = "moons step replayed, us"


def replay_problem(package, seed=1337):
    """The moons demo's graph shape built with `package`: MLP(2, [16, 16, 1])
    over 100 points (uniform ones here: the shape is what is timed), the
    demo's hinge loss and L2 term, and SGD over the parameters. Returns
    (loss, optimizer), the graph built and backpropagated once."""
    importlib.import_module(f"{package.__name__}.nn")
    importlib.import_module(f"{package.__name__}.optim")
    rng = random.Random(seed)
    random.seed(seed)  # the model's weights
    xs = [[rng.uniform(-1.5, 2.5), rng.uniform(-1.0, 1.5)] for _ in range(100)]
    ys = [rng.choice((-1, 1)) for _ in range(100)]
    model = package.nn.MLP(2, [16, 16, 1])
    scores = [model([package.Value(x) for x in row]) for row in xs]
    losses = [(1 + -y * score).relu() for y, score in zip(ys, scores)]
    loss = sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())
    loss.backward()
    return loss, package.optim.SGD(model.parameters(), lr=0.01)


def replay_round(problem):
    """(median seconds of REPLAY_STEPS replayed steps, the last loss)."""
    loss, optimizer = problem
    seconds = []
    for _ in range(REPLAY_STEPS):
        t0 = perf_counter()
        loss.forward()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds.append(perf_counter() - t0)
    return statistics.median(seconds), loss.data


def check_same(n, results):
    (base_loss, base_grads), (other_loss, other_grads) = results["base"], results["other"]
    for what, a, b in [("loss", base_loss, other_loss)] + [
            (f"grad {i}", a, b) for i, (a, b) in enumerate(zip(base_grads, other_grads))]:
        if not abs(a - b) <= TOLERANCE * max(1.0, abs(a)):
            raise SystemExit(f"softmax-NLL N={n}: the builds disagree on the {what}: base {a!r}, other {b!r}")


def measure(builds, rounds, n, calls):
    """{workload: {side: [seconds or ns per round]}}, alternating the builds."""
    loops = {(side, label): oploop.compile_op_loop(statement) for side in SIDES for label, statement in OPS}
    xs, label = seed.softmax_inputs(n)
    names = [f"{op}, ns/op" for op, _ in OPS] + [f"softmax-NLL N={n:,} build, ms", "  its backward, ms",
                                                 REPLAY_NAME]
    times = {name: {side: [] for side in SIDES} for name in names}
    results = {}
    problems = {side: replay_problem(builds[side][0]) for side in SIDES}
    replay_losses = {}
    for round_ in range(-WARM_UP_ROUNDS, rounds):  # rounds below 0: untimed warm-up
        order = SIDES if round_ % 2 == 0 else SIDES[::-1]
        for side in order:
            Value = builds[side][0].Value
            for (op, _), name in zip(OPS, names):
                gc.collect()
                ns = oploop.time_op(loops[side, op], Value, calls) * 1e9
                if round_ >= 0:
                    times[name][side].append(ns)
            build, backward, results[side] = softmax_round(Value, xs, label)
            replayed, replay_losses[side] = replay_round(problems[side])
            if round_ >= 0:
                times[names[-3]][side].append(build * 1e3)
                times[names[-2]][side].append(backward * 1e3)
                times[REPLAY_NAME][side].append(replayed * 1e6)
        if round_ == -WARM_UP_ROUNDS:
            check_same(n, results)
        if not abs(replay_losses["base"] - replay_losses["other"]) <= TOLERANCE * abs(replay_losses["base"]):
            raise SystemExit(f"moons replay: the builds disagree on the loss: {replay_losses}")
        if round_ >= 0:
            print(f"round {round_ + 1}/{rounds}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return times


def summarize(times):
    summary = {}
    for name, sides in times.items():
        ratios = [o / b for b, o in zip(sides["base"], sides["other"])]
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        summary[name] = {"base": statistics.median(sides["base"]), "other": statistics.median(sides["other"]),
                         "ratio": statistics.median(ratios), "ratio_q1": quartiles[0], "ratio_q3": quartiles[2]}
    return summary


def print_summary(report):
    print(f"base  = {report['base']}\nother = {report['other']}")
    for side in SIDES:
        print(f"  {side:5} build loaded from {report['loaded']['files'][side]}")
    print(f"{report['rounds']} rounds in one process, builds alternated (ABBA), collector on; per-op: "
          f"{report['calls']:,} calls a timing, each result kept; medians")
    print(f"{'workload':32}{'base':>10}{'other':>10}{'other/base':>12}   interquartile")
    for name, s in report["summary"].items():
        print(f"{name:32}{s['base']:10.4g}{s['other']:10.4g}{s['ratio']:11.3f}x   "
              f"{s['ratio_q1']:.3f}-{s['ratio_q3']:.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/ab.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="a git revision or a checkout directory")
    parser.add_argument("other", nargs="?", default=ROOT, help="the same (default: this working tree)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--n", type=int, default=10_000, help="logits of the softmax-NLL")
    parser.add_argument("--calls", type=int, default=20_000, help="op calls per per-op timing")
    parser.add_argument("--tiny", action="store_true", help="3 rounds, N=200, 1,000 calls: checks the harness")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.tiny:
        args.rounds, args.n, args.calls = 3, 200, 1_000
    with tempfile.TemporaryDirectory(prefix="cgrad-ab-") as tmp:
        copies = {side: os.path.join(tmp, side) for side in SIDES}
        described = {side: export(getattr(args, side), copies[side]) for side in SIDES}
        print("building both copies...", file=sys.stderr, flush=True)
        jobs = {side: start_build(copies[side], f"cgrad_ab_{side}") for side in SIDES}
        for side, job in jobs.items():
            if job.wait() != 0:
                raise SystemExit(f"building {described[side]} failed:\n{job.stderr.read()}")
        builds = {side: import_build(copies[side], f"cgrad_ab_{side}") for side in SIDES}
        loaded = check_distinct(builds)
        times = measure(builds, args.rounds, args.n, args.calls)
    report = {"base": described["base"], "other": described["other"], "loaded": loaded, "rounds": args.rounds,
              "n": args.n, "calls": args.calls, "python": sys.version.split()[0],
              "summary": summarize(times), "times": times}
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_summary(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
