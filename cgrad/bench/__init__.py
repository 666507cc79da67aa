"""python -m cgrad.bench: cgrad against the pure-Python reference engine,
micrograd itself and torch.

    python -m cgrad.bench            # the full comparison (a few minutes)
    python -m cgrad.bench --quick    # a short run (about a minute)
    python -m cgrad.bench --json     # one JSON document on stdout instead of the table
    python -m cgrad.bench --plot FILE.png   # also draw softmax-NLL time against N (matplotlib)

Progress goes to stderr while it runs; the table (or the JSON) comes at the
end, on stdout. It runs on CPython and on PyPy, and says which one it
measured (in the table's header and the JSON's meta.interpreter).

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
- Every timed loop keeps what it computes (the per-op loop stores each
  result in a list, for ten ops): PyPy's JIT removes pure-Python work whose
  result is dropped, which would time nothing. Before timing, every
  workload runs untimed, enough rounds on PyPy for its JIT to compile it.
- Every measurement cross-checks the engines: softmax-NLL op by op must give
  the same loss.data and the same logits' grads on cgrad and the reference,
  bit for bit; the fused softmax-NLL must match torch to 1e-12; the MLP step
  must give every engine the same losses; a chain's leaf grad must be exact.
  A mismatch raises BenchmarkError: fast and wrong is a bug.
- micrograd (PyPI 0.1.0) and torch are optional baselines: their columns
  appear when they import. Without micrograd, the targets stated against it
  are judged against the reference engine (micrograd's algorithm), and the
  row's note says so.

Where things are:
- config.py: the engines, the columns and ratios, the sizes of each mode;
  rows.py: the row shape, targets and the section registry;
  measure.py: collector on/off, timing loops, progress, the interpreter.
- The workloads, one section each, with how each is timed: seed.py (the
  seed's softmax-NLL code and inputs) and softmax.py (a), oploop.py (the
  per-op loop) and ops.py (b), chain.py (c), memory.py (d), fused.py (e),
  mlp.py (f, rebuilt and replayed).
- baselines.py: micrograd's loading and the torch worker process.
- runner.py: one run of every section; report.py: the table; plot.py: --plot;
  cli.py and __main__.py: the command line.
- The developers' tools are outside the package, in a source checkout
  (docs/bench.md): tools/ab.py (two builds of cgrad in one process; it loads
  seed.py and oploop.py by path, so those two use the standard library
  only) and tools/bench_interpreters.py (CPython against PyPy, with this
  package's workloads).

Adding rows: write a function `fn(config, progress) -> list of row dicts`
(made with `make_row`), decorate it with `@section(key, title)`, import its
module in runner.py, and it is run, printed and put in the JSON like the
others. Rows of all sections share one shape, so that one printer and one
JSON writer serve them all.
"""
from .cli import main
from .config import CONFIGS, BenchmarkError
from .report import print_report
from .runner import run

__all__ = ["CONFIGS", "BenchmarkError", "main", "print_report", "run"]
