"""python -m cgrad.bench: cgrad against the pure-Python reference engine,
micrograd itself and torch.

    python -m cgrad.bench            # the full comparison (a few minutes)
    python -m cgrad.bench --quick    # a short run (about a minute)
    python -m cgrad.bench --json     # one JSON document on stdout instead of the table
    python -m cgrad.bench --plot FILE.png   # also draw softmax-NLL time against N (matplotlib)
    python -m cgrad.bench --compare-interpreters   # cgrad and micrograd on CPython and on PyPy

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
- interpreters.py and interpreter_workloads.py: --compare-interpreters.
- The A/B harness comparing two builds of cgrad in one process is
  tools/ab.py, outside the package.

Adding rows: write a function `fn(config, progress) -> list of row dicts`
(made with `make_row`), decorate it with `@section(key, title)`, import its
module in runner.py, and it is run, printed and put in the JSON like the
others. Rows of all sections share one shape, so that one printer and one
JSON writer serve them all.
"""
from .baselines import (TorchWorker, child_env, load_micrograd, micrograd_recursion_limit, package_version,
                        seed_exp_log, seed_ops_on, start_torch_worker, torch_installed, torch_worker)
from .chain import bench_chain, build_chain, check_chain_grad
from .cli import main, parse_args
from .config import (BASELINE_COLUMNS, COLUMNS, CONFIGS, ENGINE_COLUMNS, ENGINES, RATIOS, VARIANTS,
                     BenchmarkError, Config)
from .fused import (FUSED_TOLERANCE, bench_fused, check_close, check_fused, fused_result, fused_row,
                    fused_targets)
from .measure import (ON_PYPY, WARM_UP_ROUNDS, Progress, SilentProgress, calls_per_timing, cycle_collector,
                      describe_interpreter, interpreter_info, recursion_limit, scaled, time_calls)
from .memory import bench_memory, count_nodes, memory_probe, rss_bytes, run_memory_probe
from .mlp import (MLP_GOALS, MLP_SEED, MLP_TOLERANCE, REPLAY_CHECK_STEPS, REPLAY_TOLERANCE, RebuildSteps,
                  ReplaySteps, bench_mlp, check_mlp_losses, check_replay, mlp_problem, mlp_runners, mlp_targets)
from .oploop import OP_UNROLL, compile_op_loop, time_op
from .ops import OPS, bench_ops
from .plot import PLOT_HINT, PLOT_SECTIONS, plot_softmax, require_matplotlib, softmax_series
from .report import format_number, format_ratio, print_report, table_blocks, table_lines
from .rows import SECTIONS, Section, Target, make_row, section
from .runner import run, warm_up
from .seed import SEED, build_softmax_nll, softmax, softmax_inputs
from .softmax import bench_softmax, check_same_results

__all__ = [
    "BASELINE_COLUMNS", "COLUMNS", "CONFIGS", "ENGINE_COLUMNS", "ENGINES", "FUSED_TOLERANCE",
    "MLP_GOALS", "MLP_SEED", "MLP_TOLERANCE", "ON_PYPY", "OPS", "OP_UNROLL", "PLOT_HINT", "PLOT_SECTIONS", "RATIOS",
    "REPLAY_CHECK_STEPS", "REPLAY_TOLERANCE", "SECTIONS", "SEED", "VARIANTS", "WARM_UP_ROUNDS",
    "BenchmarkError", "Config", "Progress", "RebuildSteps", "ReplaySteps", "Section", "SilentProgress", "Target",
    "TorchWorker",
    "bench_chain", "bench_fused", "bench_memory", "bench_mlp", "bench_ops", "bench_softmax", "build_chain",
    "build_softmax_nll", "calls_per_timing", "check_chain_grad", "check_close", "check_fused",
    "check_mlp_losses", "check_replay", "check_same_results", "child_env", "compile_op_loop", "count_nodes",
    "cycle_collector", "describe_interpreter", "format_number", "format_ratio", "fused_result", "fused_row",
    "fused_targets", "interpreter_info", "load_micrograd", "main", "make_row", "memory_probe",
    "micrograd_recursion_limit", "mlp_problem", "mlp_runners", "mlp_targets", "package_version", "parse_args",
    "plot_softmax", "print_report", "recursion_limit", "require_matplotlib", "rss_bytes", "run",
    "run_memory_probe", "scaled", "section", "seed_exp_log", "seed_ops_on", "softmax", "softmax_inputs",
    "softmax_series", "start_torch_worker", "table_blocks", "table_lines", "time_calls", "time_op",
    "torch_installed", "torch_worker", "warm_up",
]
