"""python -m cgrad.bench: cgrad against the pure-Python reference engine,
micrograd itself and torch.

    python -m cgrad.bench            # the full comparison (a few minutes)
    python -m cgrad.bench --quick    # a short run (about a minute)
    python -m cgrad.bench --json     # one JSON document on stdout instead of the table
    python -m cgrad.bench --plot FILE.png   # also draw softmax-NLL time against N (matplotlib)

Progress goes to stderr while it runs; the table (or the JSON) comes at the
end, on stdout.

How it measures, and why:
- The engines are measured side by side in the same run, interleaved repeat
  by repeat, so that a noisy neighbour on a shared machine slows all alike;
  the table reports medians and ratios (how many times faster cgrad is).
- "cgrad", "reference" and "micrograd" columns run with Python's cycle
  collector ON, as users run them. micrograd's closures make every node a
  reference cycle, so collector passes during a build are part of what
  micrograd (and the reference engine, its algorithm) costs. The "gc off"
  columns show the same code with the collector disabled, to tell the
  engine's own cost from the collector's.
- gc.collect() runs between measurements (never inside one), so each starts
  from a clean heap and no graph's garbage is charged to the next engine.
- Every measurement cross-checks the engines: softmax-NLL op by op must give
  the same loss.data and the same logits' grads on cgrad and the reference,
  bit for bit; the fused softmax-NLL must match torch to 1e-12; the MLP step
  must give every engine the same losses; a chain's leaf grad must be exact.
  A mismatch raises BenchmarkError: fast and wrong is a bug.
- micrograd (PyPI 0.1.0) and torch are optional baselines: their columns
  appear when they import. Without micrograd, the targets stated against it
  are judged against the reference engine (micrograd's algorithm), and the
  row's note says so.

Adding rows: write a function `fn(config, progress) -> list of row dicts`
(made with `make_row`), decorate it with `@section(key, title)`, and it is run,
printed and put in the JSON like the others. Rows of all sections share one
shape, so that one printer and one JSON writer serve them all.
"""
import argparse
import contextlib
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from time import perf_counter

import cgrad
from cgrad import Value as CgradValue
from cgrad import demo
from cgrad.nn import MLP as CgradMLP
from cgrad.optim import SGD
from cgrad.reference import Value as ReferenceValue
from cgrad.reference import build_nn

SEED = 20240611

ENGINES = {"cgrad": CgradValue, "reference": ReferenceValue}

# The measured columns: (column, engine, cycle collector on?). Each column is
# a key of every row dict (None where a section does not measure it).
VARIANTS = (
    ("cgrad", "cgrad", True),
    ("cgrad_gc_off", "cgrad", False),
    ("reference", "reference", True),
    ("reference_gc_off", "reference", False),
)
# Optional baselines, in sections that have them (None elsewhere): micrograd
# itself (PyPI 0.1.0) with and without the collector, and torch.
ENGINE_COLUMNS = tuple(column for column, _, _ in VARIANTS)
BASELINE_COLUMNS = ("micrograd", "micrograd_gc_off", "torch")
COLUMNS = ENGINE_COLUMNS + BASELINE_COLUMNS

# Ratios every row carries (None where a figure is missing): key ->
# (numerator column, denominator column, label in the table and targets).
# Higher is better for cgrad in all but vs_torch, which is cgrad's time over
# torch's. The "gc-off" ones compare cgrad as users run it (collector on)
# with the other engine at its best (collector off).
RATIOS = {
    "speedup": ("reference", "cgrad", "ref/cgrad"),
    "speedup_reference_gc_off": ("reference_gc_off", "cgrad", "ref gc-off/cgrad"),
    "speedup_micrograd": ("micrograd", "cgrad", "mg/cgrad"),
    "speedup_micrograd_gc_off": ("micrograd_gc_off", "cgrad", "mg gc-off/cgrad"),
    "vs_torch": ("cgrad", "torch", "cgrad/torch"),
}


class BenchmarkError(AssertionError):
    """The engines disagree (or one of them is wrong): the run stops here."""


# ---- configuration ----------------------------------------------------------


@dataclass
class Config:
    """Sizes and repeat counts of one kind of run. Medians need several
    repeats; the reference engine at large N needs seconds per repeat, so
    repeats shrink as sizes grow."""

    mode: str
    softmax_repeats: dict        # N (number of logits) -> repeats
    op_calls: int                # op calls per timing loop
    op_repeats: int
    chain_nodes_cgrad: int
    chain_nodes_reference: int
    chain_repeats: int           # fresh builds (each followed by one backward)
    chain_backward_repeats: int  # backward() calls on one built chain
    memory_chain_nodes_cgrad: int
    memory_chain_nodes_reference: int
    memory_softmax_n: int
    fused_min_seconds: float     # each timing of a fused / torch call loops at least this long
    mlp_points: int              # the moons demo's problem: first points of its 100
    mlp_layers: tuple            # MLP(2, list(mlp_layers))
    mlp_rounds: int              # rounds of blocks of consecutive steps, one block per engine
    mlp_steps: int               # timed steps per block (after one untimed step)

    @property
    def softmax_sizes(self):
        return tuple(self.softmax_repeats)


CONFIGS = {
    "full": Config(
        mode="full",
        softmax_repeats={100: 21, 1_000: 11, 10_000: 5, 100_000: 3},
        op_calls=100_000, op_repeats=15,
        chain_nodes_cgrad=10**6, chain_nodes_reference=10**5,
        chain_repeats=3, chain_backward_repeats=7,
        memory_chain_nodes_cgrad=10**6, memory_chain_nodes_reference=2 * 10**5,
        memory_softmax_n=100_000,
        fused_min_seconds=0.05,
        mlp_points=100, mlp_layers=(16, 16, 1), mlp_rounds=2, mlp_steps=4,
    ),
    "quick": Config(
        mode="quick",
        softmax_repeats={100: 9, 1_000: 5, 10_000: 3},
        op_calls=50_000, op_repeats=5,
        chain_nodes_cgrad=10**6, chain_nodes_reference=2 * 10**4,
        chain_repeats=1, chain_backward_repeats=5,
        memory_chain_nodes_cgrad=2 * 10**5, memory_chain_nodes_reference=5 * 10**4,
        memory_softmax_n=10_000,
        fused_min_seconds=0.02,
        mlp_points=100, mlp_layers=(16, 16, 1), mlp_rounds=1, mlp_steps=3,
    ),
    # Smoke-test sizes for the tests: seconds in all, the figures mean nothing.
    "tiny": Config(
        mode="tiny",
        softmax_repeats={10: 2, 50: 2},
        op_calls=200, op_repeats=2,
        chain_nodes_cgrad=500, chain_nodes_reference=200,
        chain_repeats=1, chain_backward_repeats=2,
        memory_chain_nodes_cgrad=2_000, memory_chain_nodes_reference=1_000,
        memory_softmax_n=100,
        fused_min_seconds=0.001,
        mlp_points=10, mlp_layers=(4, 4, 1), mlp_rounds=1, mlp_steps=2,
    ),
}


# ---- rows, targets and the section registry ---------------------------------


@dataclass
class Target:
    """A goal for one figure of a row: `field` (a row key such as 'speedup',
    'cgrad' or 'cgrad_best') compared with `value` by `op` ('>=' or '<=')."""

    field: str
    op: str
    value: float
    text: str

    def met_by(self, row):
        x = row.get(self.field)
        if x is None:
            return None
        return x >= self.value if self.op == ">=" else x <= self.value


def make_row(section, name, metric, unit, *, samples=None, target=None, targets=(), params=None,
             note="", **figures):
    """One row of the table and the JSON. `samples` maps columns (COLUMNS)
    to lists of measurements in `unit`, whose medians are the row's figures;
    `figures` gives figures directly (and extras such as 'cgrad_best').
    Every ratio of RATIOS is computed (speedup = reference / cgrad, so higher
    is better for cgrad, times and bytes alike). A row may have several
    targets (`target` is one, `targets` a list); `passed` is False if one is
    missed, else True if all are met (None without targets, or if a target's
    figure is missing)."""
    samples = {column: list(xs) for column, xs in (samples or {}).items() if xs}
    for column, xs in samples.items():
        figures.setdefault(column, statistics.median(xs))
    unknown = set(figures) - set(COLUMNS) - {"cgrad_best", "reference_best"}
    if unknown:
        raise TypeError(f"unknown figures {sorted(unknown)}")
    row = {"section": section, "name": name, "metric": metric, "unit": unit}
    for column in COLUMNS:
        row[column] = figures.pop(column, None)
    row.update(figures)
    for key, (numerator, denominator, _) in RATIOS.items():
        top, bottom = row[numerator], row[denominator]
        row[key] = top / bottom if bottom and top is not None else None
    targets = ([target] if target else []) + list(targets)
    row["targets"] = [dict(asdict(t), measured=row.get(t.field), passed=t.met_by(row)) for t in targets]
    met = [t["passed"] for t in row["targets"]]
    row["passed"] = False if False in met else None if not met or None in met else True
    row["note"] = note
    row["params"] = params or {}
    row["samples"] = samples
    return row


@dataclass
class Section:
    key: str
    title: str
    run: object  # fn(config, progress) -> list of row dicts
    baselines: bool = False  # has micrograd / torch columns (printed under a header of its own)


SECTIONS = []


def section(key, title, baselines=False):
    """Registers a benchmark section; sections run and print in this order."""
    def register(fn):
        SECTIONS.append(Section(key, title, fn, baselines))
        return fn
    return register


# ---- measuring helpers ------------------------------------------------------


@contextlib.contextmanager
def cycle_collector(enabled):
    """Runs the block with Python's cycle collector on or off, starting from
    a clean heap, and restores the collector's previous state."""
    was_enabled = gc.isenabled()
    gc.collect()
    if enabled:
        gc.enable()
    else:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


def scaled(samples, factor):
    """{column: [seconds]} -> {column: [seconds * factor]}, e.g. 1e3 for ms."""
    return {column: [x * factor for x in xs] for column, xs in samples.items()}


class Progress:
    """Progress on stderr: one line per repeat, with each step written as it
    starts ("cgrad build... backward... "), so a slow step shows what it is."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.open = False

    def begin(self, text):
        self.end()
        self._write(text + ": ")
        self.open = True

    def step(self, text):
        self._write(text + "... ")

    def note(self, text):
        self._write(text + " ")

    def line(self, text):
        """A line of its own, ending any open one."""
        self.end()
        self._write(text + "\n")

    def end(self):
        if self.open:
            self._write("\n")
            self.open = False

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


class SilentProgress(Progress):
    def _write(self, text):
        pass


def time_calls(fn, number):
    """Seconds for `number` calls of fn()."""
    t0 = perf_counter()
    for _ in range(number):
        fn()
    return perf_counter() - t0


def calls_per_timing(fn, min_seconds):
    """How many calls of fn one timing makes so that it lasts at least
    min_seconds (timeit's autorange, doubling), for calls too short to time
    one by one."""
    number = 1
    while time_calls(fn, number) < min_seconds:
        number *= 2
    return number


@contextlib.contextmanager
def recursion_limit(limit):
    """Runs the block with sys.setrecursionlimit at least `limit`."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# ---- optional baselines: micrograd and torch --------------------------------


def load_micrograd():
    """micrograd (PyPI 0.1.0) as (its Value class, its nn module), or None
    when it is not installed."""
    try:
        import micrograd.engine
        import micrograd.nn
    except ImportError:
        return None
    return micrograd.engine.Value, micrograd.nn


def torch_installed():
    """Whether torch can be imported, without importing it (see TorchWorker)."""
    return importlib.util.find_spec("torch") is not None


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def seed_exp_log(Value):
    """exp and log as the seed exercise adds them to its Value (closures,
    micrograd's style), for a Value class that lacks them: micrograd 0.1.0
    has neither, and the seed's softmax-NLL needs both."""

    def exp(self):
        x = self.data
        out = Value(math.exp(x), (self, ), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self):
        x = self.data
        out = Value(math.log(x), (self, ), 'log')

        def _backward():
            self.grad += (x **-1) * out.grad
        out._backward = _backward
        return out

    return {"exp": exp, "log": log}


@contextlib.contextmanager
def seed_ops_on(Value):
    """Runs the block with the seed's exp and log on Value where it lacks
    them (as the seed's users monkeypatch them on), and takes them off
    afterwards. Yields the names added."""
    methods = seed_exp_log(Value)
    added = [name for name in methods if not hasattr(Value, name)]
    for name in added:
        setattr(Value, name, methods[name])
    try:
        yield added
    finally:
        for name in added:
            delattr(Value, name)


# ---- (a) softmax-NLL, the seed's code ---------------------------------------


# The seed's code, verbatim: both engines run exactly this.
def softmax(logits):
    counts = [logit.exp() for logit in logits]
    denominator = sum(counts)
    out = [c / denominator for c in counts]
    return out


def build_softmax_nll(Value, xs, label):
    """The seed's cell up to loss.backward(): returns (logits, loss)."""
    logits = [Value(x) for x in xs]
    probs = softmax(logits)
    loss = -probs[label].log()
    return logits, loss


def softmax_inputs(n):
    """Seeded random-normal logits and a label, the same for every engine."""
    rng = random.Random(SEED + n)
    xs = [rng.gauss(0.0, 1.0) for _ in range(n)]
    return xs, rng.randrange(n)


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
        at_target_size = n == 10_000
        rows.append(make_row("softmax", name, "build", "ms", params=params,
                             samples=scaled(seconds["build"], 1e3)))
        rows.append(make_row("softmax", name, "backward", "ms", params=params,
                             target=Target("speedup", ">=", 150, ">= 150x") if at_target_size else None,
                             samples=scaled(seconds["backward"], 1e3)))
        rows.append(make_row("softmax", name, "build+backward", "ms", params=params,
                             target=Target("speedup", ">=", 10, ">= 10x") if at_target_size else None,
                             samples=scaled(seconds["total"], 1e3)))
    return rows


# ---- (b) per-op microbenchmark ----------------------------------------------

# (label, statement): each statement runs with a = Value(1.5), b = Value(0.5),
# x = 0.25 and Value the engine's class. Results are dropped at once, as in
# timeit, so each op's cost includes freeing its node (for the reference, by
# the cycle collector when it is on).
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
    """A function loop(n, a, b, x, Value) running `statement` n * unroll times."""
    body = "\n".join("        " + statement for _ in range(unroll))
    source = f"def loop(n, a, b, x, Value):\n    for _ in range(n):\n{body}\n"
    namespace = {}
    exec(compile(source, f"<op loop: {statement}>", "exec"), namespace)
    return namespace["loop"]


def time_op(loop, Value, calls):
    """Seconds per op for `calls` op calls."""
    iterations = max(1, calls // OP_UNROLL)
    a, b = Value(1.5), Value(0.5)
    t0 = perf_counter()
    loop(iterations, a, b, 0.25, Value)
    return (perf_counter() - t0) / (iterations * OP_UNROLL)


@section("ops", "(b) per-op microbenchmark: ns per op, result dropped (median; best in notes)")
def bench_ops(config, progress):
    loops = {label: compile_op_loop(statement) for label, statement in OPS}
    samples = {label: {column: [] for column in ENGINE_COLUMNS} for label, _ in OPS}
    # Round-robin over ops and engines within each repeat, so that a burst
    # of load from a neighbour lands on all of them rather than on one op.
    for repeat in range(config.op_repeats):
        progress.begin(f"ops [{repeat + 1}/{config.op_repeats}] ({config.op_calls:,} calls each)")
        for label, _ in OPS:
            progress.step(label)
            for column, engine, gc_enabled in VARIANTS:
                with cycle_collector(gc_enabled):
                    seconds = time_op(loops[label], ENGINES[engine], config.op_calls)
                samples[label][column].append(seconds * 1e9)
        progress.end()

    rows = []
    for label, statement in OPS:
        best = {column: min(xs) for column, xs in samples[label].items()}
        rows.append(make_row(
            "ops", label, "per op", "ns", samples=samples[label],
            target=OP_TARGETS.get(label),
            params={"calls": config.op_calls, "repeats": config.op_repeats, "statement": statement},
            note=f"best of {config.op_repeats}: cgrad {best['cgrad']:.0f}, reference {best['reference']:.0f}",
            cgrad_best=best["cgrad"], reference_best=best["reference"]))
    return rows


# ---- (c) a deep chain -------------------------------------------------------


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


# ---- (d) memory per node ----------------------------------------------------


def rss_bytes():
    """The process's resident set size, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def count_nodes(root):
    """Distinct Values reachable from root through _prev: the graph as
    micrograd shows it (constants included)."""
    seen = {id(root)}
    stack = [root]
    keep = [root]  # cgrad makes constants' Values on demand: keep ids valid
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
                keep.append(child)
    return len(seen)


def memory_probe(engine, graph, n):
    """Run in a fresh process: RSS growth while building `graph` ('chain':
    build_chain with n nodes; 'softmax': build_softmax_nll with n logits)
    with `engine`. Returns a dict; 'nodes' counts micrograd's nodes."""
    Value = ENGINES[engine]
    # Warm up first, so the interpreter's and allocator's one-time state is
    # in the baseline rather than charged to the graph.
    build_chain(Value, 1000)[1].backward()
    build_softmax_nll(Value, *softmax_inputs(100))[1].backward()
    xs, label = softmax_inputs(n) if graph == "softmax" else (None, None)
    gc.collect()
    before = rss_bytes()
    if graph == "chain":
        x, root = build_chain(Value, n)
    else:
        logits, root = build_softmax_nll(Value, xs, label)
    after = rss_bytes()
    nodes = n + 1 if graph == "chain" else count_nodes(root)  # counted after the reading
    return {"engine": engine, "graph": graph, "n": n, "nodes": nodes,
            "rss_before": before, "rss_after": after, "bytes": after - before}


def child_env():
    """The environment for a child Python that imports this very cgrad."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(cgrad.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def run_memory_probe(engine, graph, n):
    """memory_probe in a fresh interpreter (an RSS reading in this process
    would count memory freed by earlier sections and reused)."""
    done = subprocess.run(
        [sys.executable, "-m", "cgrad.bench", "--memory-probe", engine, graph, str(n)],
        env=child_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"memory probe {engine} {graph} {n} failed:\n{done.stderr}")
    return json.loads(done.stdout)


@section("memory", "(d) memory: RSS growth while a graph is built, Python objects included")
def bench_memory(config, progress):
    rows = []
    chain_sizes = {"cgrad": config.memory_chain_nodes_cgrad, "reference": config.memory_chain_nodes_reference}
    probes = {}
    for engine in ENGINES:
        progress.begin(f"memory {engine}")
        progress.step(f"chain of {chain_sizes[engine]:,} '+' nodes")
        probes["chain", engine] = run_memory_probe(engine, "chain", chain_sizes[engine])
        progress.step(f"softmax-NLL N={config.memory_softmax_n:,}")
        probes["softmax", engine] = run_memory_probe(engine, "softmax", config.memory_softmax_n)
        progress.end()

    if probes["softmax", "cgrad"]["nodes"] != probes["softmax", "reference"]["nodes"]:
        raise BenchmarkError("softmax-NLL graphs differ in size: "
                             f"cgrad {probes['softmax', 'cgrad']['nodes']}, "
                             f"reference {probes['softmax', 'reference']['nodes']}")

    def per_node(graph, engine):
        probe = probes[graph, engine]
        return probe["bytes"] / probe["nodes"]

    rows.append(make_row(
        "memory", "chain y = y + x", "RSS per node", "bytes",
        # The target is for graphs large enough that RSS pages measure them.
        target=Target("cgrad", "<=", 200, "<= 200 B") if chain_sizes["cgrad"] >= 10**5 else None,
        params={"cgrad": probes["chain", "cgrad"], "reference": probes["chain", "reference"]},
        note=(f"'+' nodes of two Values; cgrad {chain_sizes['cgrad']:,} nodes, "
              f"reference {chain_sizes['reference']:,}"),
        cgrad=per_node("chain", "cgrad"), reference=per_node("chain", "reference")))
    # Per logit, not per node: the seed's softmax makes 5N+4 nodes, of which
    # only 3N+6 are reachable from the loss (micrograd's graph); the other
    # probabilities are dropped, and each engine keeps a different share of
    # their memory (cgrad's arena keeps their C nodes while the graph lives).
    n = config.memory_softmax_n
    rows.append(make_row(
        "memory", f"softmax-NLL N={n:,}", "RSS per logit", "bytes",
        params={"cgrad": probes["softmax", "cgrad"], "reference": probes["softmax", "reference"]},
        note=(f"whole build / N; {probes['softmax', 'cgrad']['nodes']:,} nodes reachable from the loss, "
              f"5N+4 made"),
        cgrad=probes["softmax", "cgrad"]["bytes"] / n,
        reference=probes["softmax", "reference"]["bytes"] / n))
    return rows


# ---- (e) softmax-NLL fused, against op by op and torch -----------------------

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


class TorchWorker:
    """torch in a process of its own, timed in turn with the other engines.

    The bench process never imports torch: its 140,000-odd objects tracked by
    the cycle collector would slow every collector pass of every later
    measurement (micrograd's above all), and no micrograd user's process has
    them. The worker answers one JSON command per line (see torch_worker)."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cgrad.bench", "--torch-worker"], env=child_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self.request()
        self.version, self.threads = hello["torch"], hello["threads"]

    def request(self, **command):
        if command:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchmarkError(f"the torch worker exited (status {self.process.wait()}); see its stderr above")
        reply = json.loads(line)
        if "error" in reply:
            raise BenchmarkError(f"torch worker: {reply['error']}")
        return reply

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def start_torch_worker():
    """A TorchWorker, or None when torch is not installed."""
    return TorchWorker() if torch_installed() else None


def torch_worker():
    """The worker's loop (python -m cgrad.bench --torch-worker): a hello line,
    then one reply line per command line: {"op": "setup", "xs", "label"},
    {"op": "calibrate", "min_seconds"} -> {"calls"}, {"op": "time", "calls"}
    -> {"seconds"} (seconds per call, collector on as users run torch),
    {"op": "result"} -> {"loss", "grads"} of a fresh tensor."""
    import torch

    def reply(**answer):
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    reply(torch=torch.__version__, threads=torch.get_num_threads())
    state = {}
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "setup":
                xs, label = command["xs"], command["label"]
                tensor = torch.tensor(xs, dtype=torch.float64, requires_grad=True)

                def call():
                    tensor.grad = None  # a fresh grad each call, as zero_grad(set_to_none=True) leaves it
                    (-torch.log_softmax(tensor, 0)[label]).backward()

                call()  # first-call costs land in no timing
                state.update(xs=xs, label=label, call=call)
                reply()
            elif op == "calibrate":
                reply(calls=calls_per_timing(state["call"], command["min_seconds"]))
            elif op == "time":
                gc.collect()
                reply(seconds=time_calls(state["call"], command["calls"]) / command["calls"])
            elif op == "result":
                t = torch.tensor(state["xs"], dtype=torch.float64, requires_grad=True)
                loss = -torch.log_softmax(t, 0)[state["label"]]
                loss.backward()
                reply(loss=loss.item(), grads=t.grad.tolist())
            else:
                reply(error=f"unknown command {op!r}")
        except Exception as error:  # reported to the bench, which stops there
            reply(error=f"{op}: {type(error).__name__}: {error}")
    return 0


def micrograd_recursion_limit(n):
    """The recursion limit the micrograd rows run with for N logits: its
    backward's topological sort recurses about N deep (the seed's sum of N
    exps is a chain), and RecursionError comes at the default 1,000."""
    return 10 * n + 1000


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
    """(targets, note) of the fused row for N logits (issue 4's, at N =
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


# ---- (f) the MLP training step: the moons demo ------------------------------

MLP_SEED = 1337       # the demo's seed
MLP_TOLERANCE = 1e-9  # relative: engines' losses for the same seed (micrograd sums in a set's order)
REPLAY_TOLERANCE = 1e-12
REPLAY_CHECK_STEPS = 10


def mlp_problem(config):
    """The moons demo's data (its first config.mlp_points points), seeded as
    the demo seeds it, which also seeds `random` for the model's weights.
    Python floats for every engine: micrograd keeps whatever it is given as
    data, and numpy scalars would slow its arithmetic, not its engine."""
    X, y = demo.moons_problem(MLP_SEED)
    n = config.mlp_points
    return X[:n].tolist(), y[:n].tolist()


class RebuildSteps:
    """The demo's training loop (cgrad.demo.train), one step at a time: build
    the loss graph, zero_grad, backward, SGD over every parameter. The
    previous step's graph is released while the next one is built, as in
    the demo's loop."""

    def __init__(self, Value, nn_MLP, config):
        self.Value = Value
        self.X, self.y = mlp_problem(config)
        self.model = nn_MLP(2, list(config.mlp_layers))
        self.k = 0
        self.losses = {}
        self.graph = None

    def step(self):
        model = self.model
        total_loss, acc = demo.demo_loss(model, self.Value, self.X, self.y)
        self.graph = total_loss  # drops the previous step's graph, as the demo's loop does
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * self.k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        self.losses[self.k] = total_loss.data
        self.k += 1

    def release(self):
        self.graph = None


class ReplaySteps:
    """cgrad.demo.train_replayed, one step at a time: the loss graph is built
    once (by the first step of each block), and every later step is
    `total_loss.forward(); optimizer.zero_grad(); total_loss.backward();
    optimizer.step()`, all in C."""

    def __init__(self, config):
        self.X, self.y = mlp_problem(config)
        self.model = CgradMLP(2, list(config.mlp_layers))
        self.optimizer = SGD(self.model.parameters(), lr=1.0)
        self.k = 0
        self.losses = {}
        self.graph = None

    def step(self):
        if self.graph is None:
            self.graph, _ = demo.demo_loss(self.model, CgradValue, self.X, self.y)
        else:
            self.graph.forward()  # re-evaluated in C with the updated parameters
        self.optimizer.zero_grad()
        self.graph.backward()
        self.optimizer.lr = 1.0 - 0.9 * self.k / 100
        self.optimizer.step()
        self.losses[self.k] = self.graph.data
        self.k += 1

    def release(self):
        self.graph = None


def mlp_runners(config, micrograd):
    """{(variant, gc on?): a fresh steps object}, in the order they run."""
    makers = {
        "op by op on cgrad": lambda: RebuildSteps(ENGINES["cgrad"], build_nn(ENGINES["cgrad"])[3], config),
        "cgrad.nn": lambda: RebuildSteps(ENGINES["cgrad"], CgradMLP, config),
        "cgrad.nn, replayed": lambda: ReplaySteps(config),
        "reference": lambda: RebuildSteps(ENGINES["reference"], build_nn(ENGINES["reference"])[3], config),
    }
    if micrograd:
        makers["micrograd"] = lambda: RebuildSteps(micrograd[0], micrograd[1].MLP, config)
    return {(variant, gc_enabled): make() for variant, make in makers.items() for gc_enabled in (True, False)}


def check_replay(steps=REPLAY_CHECK_STEPS):
    """demo.train("cgrad", steps) against demo.train_replayed(steps): the
    same losses to REPLAY_TOLERANCE, relative. Returns the largest relative
    difference."""
    _, _, rebuilt, _ = demo.train("cgrad", steps)
    _, _, replayed, _ = demo.train_replayed(steps)
    worst = 0.0
    for k, (a, b) in enumerate(zip(rebuilt, replayed)):
        diff = abs(b - a) / abs(a)
        if not diff <= REPLAY_TOLERANCE:
            raise BenchmarkError(f"graph replay: step {k} loss {b!r}, rebuilding gives {a!r}")
        worst = max(worst, diff)
    if len(replayed) != len(rebuilt):
        raise BenchmarkError(f"graph replay: {len(replayed)} losses, rebuilding {len(rebuilt)}")
    return worst


def check_mlp_losses(runners, first):
    """Every runner's losses equal the `first` runner's, step by step, to
    MLP_TOLERANCE (relative). Returns the largest relative difference."""
    expected = runners[first].losses
    worst = 0.0
    for key, runner in runners.items():
        if runner.losses.keys() != expected.keys():
            raise BenchmarkError(f"MLP step: {key[0]} ran steps {sorted(runner.losses)}, "
                                 f"{first[0]} {sorted(expected)}")
        for k, loss in runner.losses.items():
            diff = abs(loss - expected[k]) / abs(expected[k])
            if not diff <= MLP_TOLERANCE:
                gc_text = "" if key[1] else " (gc off)"
                raise BenchmarkError(f"MLP step {k}: {key[0]}{gc_text} loss {loss!r}, "
                                     f"{first[0]} {expected[k]!r}")
            worst = max(worst, diff)
    return worst


MLP_GOALS = {  # variant: (x faster than micrograd, x faster than micrograd with its collector off)
    "cgrad.nn": (50, 8),              # issue 3
    "cgrad.nn, replayed": (1000, 100),  # issue 7
}


def mlp_targets(variant, micrograd):
    """(targets, note) of an MLP row at the demo's size: MLP_GOALS against
    micrograd as users run it and against micrograd with its collector off,
    cgrad as users run it in both; against the reference engine when
    micrograd is missing, and the note says so."""
    if variant not in MLP_GOALS:
        return [], ""
    on, off = MLP_GOALS[variant]
    if micrograd:
        return [Target("speedup_micrograd", ">=", on, f"mg/cgrad >= {on}x"),
                Target("speedup_micrograd_gc_off", ">=", off, f"mg gc-off/cgrad >= {off}x")], ""
    return ([Target("speedup", ">=", on, f"ref/cgrad >= {on}x"),
             Target("speedup_reference_gc_off", ">=", off, f"ref gc-off/cgrad >= {off}x")],
            "micrograd is not installed: the targets are judged against the reference engine (micrograd's algorithm)")


@section("mlp", "(f) MLP training step, the moons demo's (build, zero_grad, backward, SGD), ms: "
                "cgrad columns = the row's way; reference, micrograd = their own nn op by op", baselines=True)
def bench_mlp(config, progress):
    micrograd = load_micrograd()
    progress.begin(f"graph replay: demo.train_replayed({REPLAY_CHECK_STEPS}) against demo.train")
    replay_diff = check_replay()
    progress.note(f"(same losses, largest relative difference {replay_diff:.2g})")

    runners = mlp_runners(config, micrograd)
    seconds = {key: [] for key in runners}
    for round_ in range(config.mlp_rounds):
        for (variant, gc_enabled), runner in runners.items():
            gc_text = "" if gc_enabled else ", gc off"
            progress.begin(f"MLP step {variant}{gc_text} [{round_ + 1}/{config.mlp_rounds}]")
            # A block of consecutive steps, as a training loop runs them: one
            # untimed step first (it builds the replayed graph; for the others
            # it leaves a previous graph for the first timed step to drop).
            with cycle_collector(gc_enabled):
                progress.step("first step")
                runner.step()
                for _ in range(config.mlp_steps):
                    progress.step("step")
                    t0 = perf_counter()
                    runner.step()
                    seconds[variant, gc_enabled].append(perf_counter() - t0)
            runner.release()
            gc.collect()
    progress.end()
    loss_diff = check_mlp_losses(runners, ("cgrad.nn", True))
    progress.line(f"MLP step: every engine gives the same losses (largest relative difference {loss_diff:.2g})")

    baselines = {"reference": seconds["reference", True], "reference_gc_off": seconds["reference", False]}
    if micrograd:
        baselines.update(micrograd=seconds["micrograd", True], micrograd_gc_off=seconds["micrograd", False])
    demo_size = config.mlp_points == 100 and tuple(config.mlp_layers) == (16, 16, 1)
    name = f"MLP(2, {list(config.mlp_layers)}) step"
    params = {"points": config.mlp_points, "layers": list(config.mlp_layers), "seed": MLP_SEED,
              "rounds": config.mlp_rounds, "steps_per_round": config.mlp_steps,
              "losses": {f"{variant}{'' if on else ' gc off'}": [runner.losses[k] for k in sorted(runner.losses)]
                         for (variant, on), runner in runners.items()},
              "max_rel_loss_diff": loss_diff, "replay_check_steps": REPLAY_CHECK_STEPS,
              "replay_max_rel_diff": replay_diff}
    parameters = len(runners["cgrad.nn", True].model.parameters())
    notes = {
        "op by op on cgrad": [
            f"{config.mlp_points} points, {parameters} parameters, hinge loss + 1e-4 L2; inputs as Python "
            f"floats for every engine (micrograd would keep numpy scalars as its data, slowing its "
            f"arithmetic); median of {config.mlp_rounds * config.mlp_steps} steps (blocks of {config.mlp_steps} "
            f"consecutive steps after an untimed one, engines in turn); losses equal across engines to "
            f"{loss_diff:.2g} relative",
            "micrograd's nn classes over cgrad.Value (cgrad.reference.build_nn)"],
        "cgrad.nn": [],
        "cgrad.nn, replayed": [
            f"built once per block; demo.train_replayed({REPLAY_CHECK_STEPS}) gives demo.train's losses to "
            f"{replay_diff:.2g} relative"],
    }
    base, label = ("micrograd", "mg") if micrograd else ("reference", "ref")
    rows = []
    for variant, variant_notes in notes.items():
        samples = dict(baselines, cgrad=seconds[variant, True], cgrad_gc_off=seconds[variant, False])
        targets, note = mlp_targets(variant, micrograd is not None) if demo_size else ([], "")
        both_off = statistics.median(samples[f"{base}_gc_off"]) / statistics.median(samples["cgrad_gc_off"])
        variant_notes = variant_notes + ([note] if note else []) + [
            f"both collectors off: {label} gc-off/cgrad gc-off = {format_ratio(both_off)}"]
        rows.append(make_row("mlp", name, variant, "ms", params=params, targets=targets,
                             samples=scaled(samples, 1e3), note="; ".join(variant_notes)))
    return rows


# ---- running, the table, the JSON ---------------------------------------------


def warm_up():
    """One small run of each engine, so that first-call costs (cffi's lazy
    setup, the allocators' first arenas) land in no measurement."""
    for Value in ENGINES.values():
        build_softmax_nll(Value, *softmax_inputs(100))[1].backward()
        build_chain(Value, 1000)[1].backward()
    gc.collect()


def run(config, progress=None, only=None):
    """Runs the registered sections (or those whose keys are in `only`) and
    returns the whole result as one JSON-ready dict."""
    progress = progress if progress is not None else Progress()
    started = perf_counter()
    meta = {
        "command": "python -m cgrad.bench" + ("" if config.mode == "full" else f" --{config.mode}"),
        "mode": config.mode,
        "cgrad_version": cgrad.__version__,
        "micrograd_version": package_version("micrograd") if load_micrograd() else None,
        "torch_version": package_version("torch") if torch_installed() else None,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_before": os.getloadavg(),
        "seed": SEED,
    }
    warm_up()
    sections = []
    for sec in SECTIONS:
        if only and sec.key not in only:
            continue
        rows = sec.run(config, progress)
        progress.end()
        sections.append({"key": sec.key, "title": sec.title, "baselines": sec.baselines, "rows": rows})
    meta["loadavg_after"] = os.getloadavg()
    meta["seconds"] = perf_counter() - started
    targets = [{"section": row["section"], "name": row["name"], "metric": row["metric"],
                "target": target["text"], "passed": target["passed"], "measured": target["measured"]}
               for s in sections for row in s["rows"] for target in row["targets"]]
    return {"meta": meta, "sections": sections, "targets": targets}


def format_number(x):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def format_ratio(x):
    if x is None:
        return "-"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x"


TEXT_HEADER = ("benchmark", "measure", "unit")
# (header, row key, format) of the figures; a block of the table shows those
# that some row of it has.
FIGURE_COLUMNS = (
    ("cgrad", "cgrad", format_number),
    ("cgrad gc-off", "cgrad_gc_off", format_number),
    ("reference", "reference", format_number),
    ("ref gc-off", "reference_gc_off", format_number),
    ("micrograd", "micrograd", format_number),
    ("mg gc-off", "micrograd_gc_off", format_number),
    ("torch", "torch", format_number),
    (RATIOS["speedup"][2], "speedup", format_ratio),
    (RATIOS["speedup_micrograd"][2], "speedup_micrograd", format_ratio),
)
TARGET_HEADER = ("target", "measured", "")


def format_measured(target):
    fmt = format_ratio if target["field"] in RATIOS else format_number
    return fmt(target["measured"])


def table_blocks(result):
    """Runs of consecutive sections alike in having baselines (micrograd,
    torch) or not: each run is printed under a header of its own."""
    blocks = []
    for sec in result["sections"]:
        if blocks and blocks[-1][0]["baselines"] == sec["baselines"]:
            blocks[-1].append(sec)
        else:
            blocks.append([sec])
    return blocks


def table_lines(result):
    """The result as aligned text tables: one per block of sections (see
    table_blocks), one line per row, a further line per further target."""
    with_targets = any(row["targets"] for sec in result["sections"] for row in sec["rows"])
    rendered = []  # (header cells, [title or cells], numeric column indices)
    for block in table_blocks(result):
        rows = [row for sec in block for row in sec["rows"]]
        figures = [column for column in FIGURE_COLUMNS if any(row[column[1]] is not None for row in rows)]
        header = TEXT_HEADER + tuple(h for h, _, _ in figures) + (TARGET_HEADER if with_targets else ())
        numeric = set(range(len(TEXT_HEADER), len(TEXT_HEADER) + len(figures)))
        numeric |= {len(header) - 2} if with_targets else set()  # 'measured'
        lines = []
        for sec in block:
            lines.append(sec["title"])
            previous_name = None
            for row in sec["rows"]:
                targets = row["targets"] or [None]
                for i, target in enumerate(targets):
                    if i == 0:
                        cells = (row["name"] if row["name"] != previous_name else "", row["metric"], row["unit"],
                                 *(fmt(row[key]) for _, key, fmt in figures))
                    else:
                        cells = ("",) * (len(TEXT_HEADER) + len(figures))
                    if with_targets:
                        cells += (target["text"], format_measured(target),
                                  {True: "PASS", False: "MISS", None: ""}[target["passed"]]) if target else ("",) * 3
                    lines.append(cells)
                previous_name = row["name"]
        rendered.append((header, lines, numeric))

    # The text columns line up across blocks; the figures within a block.
    text_widths = [max(len(cells[i]) for header, lines, _ in rendered
                       for cells in [header, *(line for line in lines if not isinstance(line, str))])
                   for i in range(len(TEXT_HEADER))]
    out = []
    for header, lines, numeric in rendered:
        cell_lines = [header] + [line for line in lines if not isinstance(line, str)]
        widths = text_widths + [max(len(cells[i]) for cells in cell_lines)
                                for i in range(len(TEXT_HEADER), len(header))]

        def render(cells):
            return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                             for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()

        if out:
            out.append("")
        top = render(header)
        out += [top, "-" * len(top)]
        out += [line if isinstance(line, str) else render(line) for line in lines]
    return out


def baselines_text(meta):
    parts = []
    for name in ("micrograd", "torch"):
        version = meta.get(f"{name}_version")
        parts.append(f"{name} {version}" if version else f"{name} not installed")
    return ", ".join(parts)


def print_report(result, stream=None):
    stream = stream if stream is not None else sys.stdout
    meta = result["meta"]
    baselines = any(sec["baselines"] for sec in result["sections"])
    print(f"$ {meta['command']}", file=stream)
    print(f"cgrad {meta['cgrad_version']} vs cgrad.reference (micrograd's algorithm)"
          f"{'; ' + baselines_text(meta) if baselines else ''}; "
          f"{meta['python']}, {meta['cpu_count']} CPUs; "
          f"load {meta['loadavg_before'][0]:.2f} -> {meta['loadavg_after'][0]:.2f}; "
          f"{meta['seconds']:.0f} s", file=stream)
    engines = "cgrad/reference/micrograd" if baselines else "cgrad/reference"
    ratios = "ref/cgrad, mg/cgrad" if baselines else "ref/cgrad"
    print(f"Medians of repeats. {engines}: cycle collector on, as users run them; "
          f"gc-off: the same with it disabled.\n{ratios}: how many times faster (or smaller) "
          f"cgrad is, both with the collector on.", file=stream)
    if baselines:
        print("mg gc-off/cgrad, ref gc-off/cgrad: against the other engine with its collector off, cgrad's on; "
              "cgrad/torch: cgrad's time over torch's.", file=stream)
    print(file=stream)
    for line in table_lines(result):
        print(line, file=stream)
    notes = [(row["name"], row["metric"], row["note"])
             for sec in result["sections"] for row in sec["rows"] if row["note"]]
    if notes:
        print(file=stream)
        print("Notes:", file=stream)
        for name, metric, note in notes:
            print(f"  {name}, {metric.strip()}: {note}", file=stream)
    targets = result["targets"]
    if targets:
        met = sum(1 for t in targets if t["passed"])
        print(f"\nTargets met: {met} of {len(targets)}", file=stream)


# ---- the plot -----------------------------------------------------------------

PLOT_HINT = "--plot needs matplotlib: pip install cgrad[plot]  (or: pip install matplotlib)"
PLOT_SECTIONS = ("softmax", "fused")


def require_matplotlib():
    """Exits with an install hint if matplotlib is missing (checked before
    any benchmarking starts, so a long run does not end in an ImportError)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit(PLOT_HINT) from None


def softmax_series(result):
    """The plot's lines: {label: [(N, ms), ...]} from the softmax sections'
    forward + backward medians (collector on)."""
    series = {}

    def add(label, n, ms):
        if ms is not None:
            series.setdefault(label, []).append((n, ms))

    for sec in result["sections"]:
        for row in sec["rows"]:
            n = row["params"].get("n")
            if sec["key"] == "softmax" and row["metric"] == "build+backward":
                add("cgrad, op by op", n, row["cgrad"])
                add("reference engine, op by op", n, row["reference"])
            elif sec["key"] == "fused":
                add("micrograd, op by op", n, row["micrograd"])
                add("cgrad.cross_entropy (fused)", n, row["cgrad"])
                add("torch log_softmax, float64", n, row["torch"])
    return {label: sorted(points) for label, points in series.items()}


def plot_softmax(result, path):
    """Draws softmax-NLL time against N, log-log, to `path` (a PNG)."""
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    series = softmax_series(result)
    if not series:
        raise ValueError("nothing to plot: sections 'softmax' and 'fused' did not run")
    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    for label, points in series.items():
        ns, ms = zip(*points)
        fused = "fused" in label or "torch" in label
        ax.plot(ns, ms, marker="o", linestyle="--" if fused else "-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (logits)")
    ax.set_ylabel("forward + backward, ms (median, collector on)")
    meta = result["meta"]
    ax.set_title(f"softmax-NLL over N logits: forward (op by op: building the graph) + backward\n"
                 f"$ {meta['command']}  (cgrad {meta['cgrad_version']}, {meta['python']})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m cgrad.bench",
        description="Speed and memory of cgrad against its pure-Python reference engine "
                    "(micrograd's algorithm), micrograd and torch (when installed), measured side by side.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="a short run (about a minute): fewer repeats and steps, no N=100,000")
    size.add_argument("--tiny", action="store_true",
                      help="smoke-test sizes (seconds; the figures mean nothing)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document with every measurement instead of the table")
    parser.add_argument("--only", action="append", metavar="SECTION",
                        choices=[s.key for s in SECTIONS],
                        help="run only this section (repeatable): " + ", ".join(s.key for s in SECTIONS))
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also draw softmax-NLL time against N, log-log (needs matplotlib; "
                             "runs sections " + " and ".join(PLOT_SECTIONS) + ")")
    # Internal: torch's side of the fused section, in a process of its own (see TorchWorker).
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    # Internal: one memory measurement in a fresh process (see run_memory_probe).
    parser.add_argument("--memory-probe", nargs=3, metavar=("ENGINE", "GRAPH", "N"),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.memory_probe:
        engine, graph, n = args.memory_probe
        print(json.dumps(memory_probe(engine, graph, int(n))))
        return 0
    if args.torch_worker:
        return torch_worker()
    only = args.only
    if args.plot:
        require_matplotlib()
        if only:
            only = only + [key for key in PLOT_SECTIONS if key not in only]
    config = CONFIGS["quick" if args.quick else "tiny" if args.tiny else "full"]
    result = run(config, Progress(), only=only)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(result)
    if args.plot:
        plot_softmax(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
