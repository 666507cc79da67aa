"""python -m cgrad.bench: cgrad against the pure-Python reference engine.

    python -m cgrad.bench            # the full comparison (a few minutes)
    python -m cgrad.bench --quick    # a short run (under a minute)
    python -m cgrad.bench --json     # one JSON document on stdout instead of the table

Progress goes to stderr while it runs; the table (or the JSON) comes at the
end, on stdout.

How it measures, and why:
- Both engines are measured side by side in the same run, interleaved repeat
  by repeat, so that a noisy neighbour on a shared machine slows both alike;
  the table reports medians and the ratio reference / cgrad.
- "cgrad" and "reference" columns run with Python's cycle collector ON, as
  users run them. micrograd's closures make every node a reference cycle, so
  collector passes during a build are part of what the reference engine
  costs. The "gc off" columns show the same code with the collector disabled,
  to tell the engine's own cost from the collector's.
- gc.collect() runs between measurements (never inside one), so each starts
  from a clean heap and no graph's garbage is charged to the next engine.
- Every measurement cross-checks the two engines: softmax-NLL must give the
  same loss.data and the same logits' grads, bit for bit; a chain's leaf grad
  must be exact. A mismatch raises BenchmarkError: fast and wrong is a bug.

Adding rows: write a function `fn(config, progress) -> list of row dicts`
(made with `make_row`), decorate it with `@section(key, title)`, and it is run,
printed and put in the JSON like the others. Rows of all sections share one
shape, so that one printer and one JSON writer serve them all.
"""
import argparse
import contextlib
import datetime
import gc
import json
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
from cgrad.reference import Value as ReferenceValue

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
COLUMNS = tuple(column for column, _, _ in VARIANTS)


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
    ),
    "quick": Config(
        mode="quick",
        softmax_repeats={100: 9, 1_000: 5, 10_000: 3},
        op_calls=50_000, op_repeats=5,
        chain_nodes_cgrad=10**6, chain_nodes_reference=2 * 10**4,
        chain_repeats=1, chain_backward_repeats=5,
        memory_chain_nodes_cgrad=2 * 10**5, memory_chain_nodes_reference=5 * 10**4,
        memory_softmax_n=10_000,
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


def make_row(section, name, metric, unit, *, samples=None, target=None, params=None, note="",
             **figures):
    """One row of the table and the JSON. `samples` maps columns (COLUMNS)
    to lists of measurements in `unit`, whose medians are the row's figures;
    `figures` gives figures directly (and extras such as 'cgrad_best').
    speedup = reference / cgrad, so higher is better for cgrad in every
    section, times and bytes alike."""
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
    cg, ref = row["cgrad"], row["reference"]
    row["speedup"] = ref / cg if cg and ref is not None else None
    row["target"] = target.text if target else None
    row["target_spec"] = asdict(target) if target else None
    row["passed"] = target.met_by(row) if target else None
    row["note"] = note
    row["params"] = params or {}
    row["samples"] = samples
    return row


@dataclass
class Section:
    key: str
    title: str
    run: object  # fn(config, progress) -> list of row dicts


SECTIONS = []


def section(key, title):
    """Registers a benchmark section; sections run and print in this order."""
    def register(fn):
        SECTIONS.append(Section(key, title, fn))
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
        seconds = {phase: {column: [] for column in COLUMNS} for phase in ("build", "backward", "total")}
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
                    progress.step("backward")
                    loss.backward()
                    t2 = perf_counter()
                seconds["build"][column].append(t1 - t0)
                seconds["backward"][column].append(t2 - t1)
                seconds["total"][column].append(t2 - t0)
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
    samples = {label: {column: [] for column in COLUMNS} for label, _ in OPS}
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


def time_sweep_split(root):
    """(seconds ordering, seconds running kernels, nodes ordered) of one
    backward of root, through the C API as Value.backward calls it (but
    ordering afresh, as a first backward does)."""
    from cgrad._core import check, ffi, lib

    out = ffi.new("cg_sweep **")
    cursor = ffi.new("size_t *")
    callback = ffi.new("void **")
    t0 = perf_counter()
    check(lib.cg_sweep_begin(root._h, out))  # order the graph
    t1 = perf_counter()
    sweep = out[0]
    try:
        status = lib.cg_sweep_backward(sweep, cursor, callback)  # every kernel, in reverse order
        t2 = perf_counter()
        if status != lib.CG_OK:
            raise BenchmarkError(f"cg_sweep_backward stopped with status {status} on a chain of '+' nodes")
        size = lib.cg_sweep_size(sweep)
    finally:
        lib.cg_sweep_free(sweep)
    return t1 - t0, t2 - t1, size


@section("chain", "(c) a deep chain y = y + x: ns per node")
def bench_chain(config, progress):
    sizes = {"cgrad": config.chain_nodes_cgrad, "reference": config.chain_nodes_reference}
    build, first_backward, release = ({c: [] for c in COLUMNS} for _ in range(3))
    backward = {"cgrad": [], "reference": []}
    ordering, kernels = [], []

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
                progress.step("backward")
                y.backward()
                t2 = perf_counter()
            build[column].append((t1 - t0) / n)
            first_backward[column].append((t2 - t1) / n)
            check_chain_grad(column, x, n)

            # More backward() calls on the same graph: cgrad's root keeps the
            # order it computed the first time, so these run the kernels
            # only. Grads accumulate, as in micrograd; the cost does not
            # depend on their values.
            if gc_enabled:
                progress.step(f"backward x{config.chain_backward_repeats}")
                for _ in range(config.chain_backward_repeats):
                    gc.collect()
                    t0 = perf_counter()
                    y.backward()
                    backward[engine].append((perf_counter() - t0) / n)
                if engine == "cgrad":
                    progress.step("sweep split")
                    for _ in range(config.chain_backward_repeats):
                        gc.collect()
                        order_s, kernel_s, size = time_sweep_split(y)
                        if size != n:
                            raise BenchmarkError(f"sweep ordered {size:,} nodes of a {n:,}-node chain")
                        ordering.append(order_s / n)
                        kernels.append(kernel_s / n)

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
        make_row("chain", name, "backward(), first call", "ns/node", params=params,
                 note="on a freshly built graph", samples=scaled(first_backward, 1e9)),
        make_row("chain", name, "backward(), repeated", "ns/node", params=params,
                 note="cgrad: the root keeps its order, so kernels only; reference: sort + closures",
                 samples=scaled(backward, 1e9)),
        make_row("chain", name, "  ordering (cg_sweep_begin)", "ns/node", params=params,
                 note="the depth-first search of a first backward", samples={"cgrad": [x * 1e9 for x in ordering]}),
        make_row("chain", name, "  reverse sweep (kernels)", "ns/node", params=params, target=sweep_target,
                 note="cg_sweep_backward alone", samples={"cgrad": [x * 1e9 for x in kernels]}),
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


def run_memory_probe(engine, graph, n):
    """memory_probe in a fresh interpreter (an RSS reading in this process
    would count memory freed by earlier sections and reused)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(cgrad.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "cgrad.bench", "--memory-probe", engine, graph, str(n)],
        env=env, capture_output=True, text=True, check=False)
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
        sections.append({"key": sec.key, "title": sec.title, "rows": rows})
    meta["loadavg_after"] = os.getloadavg()
    meta["seconds"] = perf_counter() - started
    targets = [{"section": row["section"], "name": row["name"], "metric": row["metric"],
                "target": row["target"], "passed": row["passed"],
                "measured": row[row["target_spec"]["field"]]}
               for s in sections for row in s["rows"] if row["target"]]
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


TABLE_HEADER = ("benchmark", "measure", "unit", "cgrad", "cgrad gc-off", "reference",
                "ref gc-off", "ref/cgrad", "target", "")


def table_lines(result):
    """The result as an aligned text table, one block per section."""
    blocks = []
    for sec in result["sections"]:
        lines = []
        previous_name = None
        for row in sec["rows"]:
            passed = {True: "PASS", False: "MISS", None: ""}[row["passed"]]
            lines.append((
                row["name"] if row["name"] != previous_name else "",
                row["metric"], row["unit"],
                *(format_number(row[c]) for c in COLUMNS),
                format_ratio(row["speedup"]), row["target"] or "", passed,
            ))
            previous_name = row["name"]
        blocks.append((sec["title"], lines))
    all_lines = [TABLE_HEADER] + [line for _, lines in blocks for line in lines]
    widths = [max(len(line[i]) for line in all_lines) for i in range(len(TABLE_HEADER))]
    numeric = set(range(3, 8))  # right-aligned columns

    def render(line):
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()

    header = render(TABLE_HEADER)
    out = [header, "-" * len(header)]
    for title, lines in blocks:
        out.append(title)
        out.extend(render(line) for line in lines)
    return out


def print_report(result, stream=None):
    stream = stream if stream is not None else sys.stdout
    meta = result["meta"]
    print(f"$ {meta['command']}", file=stream)
    print(f"cgrad {meta['cgrad_version']} vs cgrad.reference (micrograd's algorithm); "
          f"{meta['python']}, {meta['cpu_count']} CPUs; "
          f"load {meta['loadavg_before'][0]:.2f} -> {meta['loadavg_after'][0]:.2f}; "
          f"{meta['seconds']:.0f} s", file=stream)
    print("Medians of repeats. cgrad/reference: cycle collector on, as users run them; "
          "gc-off: the same with it disabled.\nref/cgrad: how many times faster (or smaller) "
          "cgrad is, both with the collector on.", file=stream)
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


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m cgrad.bench",
        description="Speed and memory of cgrad against its pure-Python reference engine "
                    "(micrograd's algorithm), measured side by side.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="a short run (under a minute): fewer repeats, no N=100,000")
    size.add_argument("--tiny", action="store_true",
                      help="smoke-test sizes (seconds; the figures mean nothing)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document with every measurement instead of the table")
    parser.add_argument("--only", action="append", metavar="SECTION",
                        choices=[s.key for s in SECTIONS],
                        help="run only this section (repeatable): " + ", ".join(s.key for s in SECTIONS))
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
    config = CONFIGS["quick" if args.quick else "tiny" if args.tiny else "full"]
    result = run(config, Progress(), only=args.only)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
