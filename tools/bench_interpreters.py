"""CPython against PyPy: cgrad and micrograd on both, and the ratios across them.

    python tools/bench_interpreters.py                 # from CPython; PyPy from $CGRAD_PYPY or pypy3
    python tools/bench_interpreters.py --pypy VENV     # a PyPy executable, or a venv holding one
    pypy3 tools/bench_interpreters.py --cpython PATH   # the other way round
    python tools/bench_interpreters.py --quick         # fewer repeats (--tiny: smoke-test sizes)
    python tools/bench_interpreters.py --json          # one JSON document instead of the tables

A developer's tool, not part of the installed package: it measures this
checkout's cgrad (the directory above tools/), which must be built in place
for both interpreters. cffi names the two builds apart (_cgrad.abi3.so for
CPython, _cgrad.pypy39-pp73-x86_64-linux-gnu.so for PyPy 3.9) and they sit
side by side: run `setup.py build_ext --inplace` with each interpreter.

The same workloads (interpreter_workloads.py beside this file) run under
each interpreter in a subprocess of its own, which prints one JSON document;
the children run one after the other, this interpreter first, and the load
average before and after each is in the JSON. Both must compute the same
losses (the same float operations through the same C and libm)."""
import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys

# This checkout's cgrad, whatever else is installed.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cgrad.bench.baselines import child_env  # noqa: E402
from cgrad.bench.config import BenchmarkError  # noqa: E402
from cgrad.bench.measure import describe_interpreter, interpreter_info  # noqa: E402
from cgrad.bench.report import format_number  # noqa: E402

WORKLOADS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "interpreter_workloads.py")
COMMAND = "python tools/bench_interpreters.py"
IMPLEMENTATIONS = ("CPython", "PyPy")
PROBE = "import json, platform; print(json.dumps(platform.python_implementation()))"


class InterpreterMissing(Exception):
    """The other interpreter cannot run the comparison (the message says why)."""


def executable(path):
    """An interpreter given as an executable or as a venv directory, as an
    absolute path with no `..` in it (the path the interpreter reports as its
    sys.executable: a venv's `bin/python` link is kept, not resolved)."""
    path = os.path.abspath(path)
    return os.path.join(path, "bin", "python") if os.path.isdir(path) else path


def default_pypy():
    """$CGRAD_PYPY (an executable, or a venv directory), else pypy3 on the
    PATH, else None."""
    return executable(os.environ["CGRAD_PYPY"]) if os.environ.get("CGRAD_PYPY") else shutil.which("pypy3")


def interpreter_paths(pypy=None, cpython=None):
    """{implementation: executable} for CPython and PyPy: this process's own
    and the other one (given, or the default). Raises InterpreterMissing when
    the other one is not there or is not the implementation asked for."""
    current = interpreter_info()["implementation"]
    if current not in IMPLEMENTATIONS:
        raise InterpreterMissing(f"the comparison runs on CPython or PyPy, not {current}")
    other = "PyPy" if current == "CPython" else "CPython"
    given = pypy if other == "PyPy" else cpython
    path = executable(given) if given else default_pypy() if other == "PyPy" else shutil.which("python3")
    option = "--pypy" if other == "PyPy" else "--cpython"
    if not path:
        hint = " or set CGRAD_PYPY to a PyPy venv" if other == "PyPy" else ""
        raise InterpreterMissing(f"no {other} interpreter found: give one with {option} PATH{hint}")
    try:
        done = subprocess.run([path, "-c", PROBE], capture_output=True, text=True, timeout=60)
    except OSError as error:
        raise InterpreterMissing(f"{other} interpreter {path!r} cannot run: {error}") from None
    found = json.loads(done.stdout) if done.returncode == 0 else None
    if found != other:
        raise InterpreterMissing(f"{path!r} is not a {other} interpreter (it says {found or done.stderr.strip()!r}); "
                                 f"give one with {option} PATH")
    check_imports_cgrad(other, path)
    return {current: interpreter_info()["executable"], other: path}


def build_hint(path):
    package_parent = child_env()["PYTHONPATH"].split(os.pathsep)[0]
    return (f"Build cgrad for it with `cd {package_parent} && {path} setup.py build_ext --inplace` "
            f"and install numpy and cffi for it (e.g. in a venv: `{path} -m venv DIR && DIR/bin/pip install "
            f"'numpy<2' cffi setuptools`, then --pypy DIR/bin/python or CGRAD_PYPY=DIR)")


def check_imports_cgrad(implementation, path):
    """Before anything is measured: the other interpreter imports this cgrad."""
    done = subprocess.run([path, "-c", "import cgrad"], env=child_env(), capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise InterpreterMissing(f"{implementation} ({path}) cannot import this cgrad: {last}. {build_hint(path)}")


def run_worker(implementation, path, mode):
    """One interpreter's run of the workloads, as the dict its child prints."""
    command = [path, WORKLOADS, mode]
    loadavg_before = os.getloadavg()
    done = subprocess.run(command, env=child_env(), stdout=subprocess.PIPE, stderr=None, text=True,
                          check=False)
    if done.returncode != 0:
        raise InterpreterMissing(f"the {implementation} run ({' '.join(command)}) failed with status "
                                 f"{done.returncode}: its stderr is above")
    result = json.loads(done.stdout)
    result["loadavg_before"], result["loadavg_after"] = loadavg_before, os.getloadavg()
    return result


def compare_interpreters(mode, pypy=None, cpython=None, rounds=1):
    """Both interpreters' runs and the ratios across them, as one dict.

    With rounds > 1 each interpreter runs that many times, taking turns (the
    first round this interpreter first, the next the other, and so on), so
    that a change in the machine's load falls on both alike. runs[impl] has
    every round's timings pooled, and its medians are over the pool; ratios
    come from those medians, round_ratios from each round's pair of runs."""
    paths = interpreter_paths(pypy, cpython)
    current = interpreter_info()["implementation"]
    order = [current] + [impl for impl in IMPLEMENTATIONS if impl != current]
    per_round = []
    for round_ in range(rounds):
        runs = {impl: run_worker(impl, paths[impl], mode) for impl in (order if round_ % 2 == 0 else order[::-1])}
        check_same_losses(runs)
        per_round.append(runs)
    pooled = {impl: pool_rounds([runs[impl] for runs in per_round]) for impl in order}
    return {"mode": mode, "rounds": rounds, "runs": pooled, "ratios": cross_ratios(pooled),
            "round_ratios": [cross_ratios(runs) for runs in per_round]}


def pool_rounds(results):
    """One interpreter's runs as one: the first's description, every round's
    timings, medians over them all, and each round's load average."""
    pooled = copy.deepcopy(results[0])
    for later in results[1:]:
        for engine, phases in later["softmax"]["engines"].items():
            for phase, seconds in phases.items():
                pooled["softmax"]["engines"][engine][phase] += seconds
        for engine, seconds in later["mlp"]["engines"].items():
            pooled["mlp"]["engines"][engine] += seconds
    pooled["softmax"]["medians"] = {engine: statistics.median(phases["total"])
                                    for engine, phases in pooled["softmax"]["engines"].items()}
    pooled["mlp"]["medians"] = {engine: statistics.median(seconds)
                                for engine, seconds in pooled["mlp"]["engines"].items()}
    pooled["loadavg"] = [[run["loadavg_before"][0], run["loadavg_after"][0]] for run in results]
    del pooled["loadavg_before"], pooled["loadavg_after"]
    return pooled


def check_same_losses(runs):
    """The two interpreters run the same float operations through the same
    C and libm: their softmax-NLL losses and their MLP losses (step by
    step, over the steps both ran) must agree."""
    cpython, pypy = runs["CPython"], runs["PyPy"]
    if abs(cpython["softmax"]["loss"] - pypy["softmax"]["loss"]) > 1e-12 * abs(cpython["softmax"]["loss"]):
        raise BenchmarkError(f"softmax-NLL loss: CPython {cpython['softmax']['loss']!r}, "
                             f"PyPy {pypy['softmax']['loss']!r}")
    for variant, losses in cpython["mlp"]["losses"].items():
        other = pypy["mlp"]["losses"].get(variant)
        if other is not None and any(abs(a - b) > 1e-9 * abs(a) for a, b in zip(losses, other)):
            raise BenchmarkError(f"MLP step {variant}: losses differ between CPython and PyPy")


# (label, (numerator implementation, workload, engine), (denominator ...)):
# each ratio is the numerator's median time over the denominator's, so how
# many times faster the denominator is.
RATIO_SPECS = (
    ("softmax-NLL: micrograd on PyPy / cgrad on PyPy", ("PyPy", "softmax", "micrograd"), ("PyPy", "softmax", "cgrad")),
    ("softmax-NLL: micrograd on CPython / cgrad on PyPy", ("CPython", "softmax", "micrograd"),
     ("PyPy", "softmax", "cgrad")),
    ("softmax-NLL: micrograd on CPython / cgrad on CPython", ("CPython", "softmax", "micrograd"),
     ("CPython", "softmax", "cgrad")),
    ("softmax-NLL: cgrad on CPython / cgrad on PyPy", ("CPython", "softmax", "cgrad"), ("PyPy", "softmax", "cgrad")),
    ("softmax-NLL: micrograd on CPython / micrograd on PyPy", ("CPython", "softmax", "micrograd"),
     ("PyPy", "softmax", "micrograd")),
    ("MLP step, cgrad.nn: CPython / PyPy", ("CPython", "mlp", "cgrad.nn"), ("PyPy", "mlp", "cgrad.nn")),
    ("MLP step, cgrad.nn replayed: CPython / PyPy", ("CPython", "mlp", "cgrad.nn, replayed"),
     ("PyPy", "mlp", "cgrad.nn, replayed")),
    ("MLP step, cgrad.nn replayed, early steps: CPython / PyPy", ("CPython", "mlp", "cgrad.nn, replayed, early"),
     ("PyPy", "mlp", "cgrad.nn, replayed, early")),
    ("MLP step, micrograd: CPython / PyPy", ("CPython", "mlp", "micrograd"), ("PyPy", "mlp", "micrograd")),
    ("MLP step: micrograd on PyPy / cgrad.nn on PyPy", ("PyPy", "mlp", "micrograd"), ("PyPy", "mlp", "cgrad.nn")),
    ("MLP step: micrograd on PyPy / cgrad.nn replayed on PyPy", ("PyPy", "mlp", "micrograd"),
     ("PyPy", "mlp", "cgrad.nn, replayed")),
)


def cross_ratios(runs):
    """{label: ratio or None (a figure is missing: micrograd not importable)}."""
    def median(impl, workload, engine):
        return runs[impl][workload]["medians"].get(engine)

    ratios = {}
    for label, top, bottom in RATIO_SPECS:
        a, b = median(*top), median(*bottom)
        ratios[label] = a / b if a is not None and b else None
    return ratios


def format_ratio(x):
    """Ratios across interpreters run either way of 1: two decimals below 10
    (so that 0.96x and 1.04x do not both read 1x), else two significant
    digits."""
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}x"
    return f"{x:.2g}x" if x >= 10 else f"{x:.2f}x"


def print_comparison(result, stream=None):
    stream = stream if stream is not None else sys.stdout
    runs = result["runs"]
    cpython, pypy = runs["CPython"], runs["PyPy"]
    rounds = result["rounds"]
    flag = "" if result["mode"] == "full" else f" --{result['mode']}"
    print(f"$ {COMMAND}{flag} --rounds {rounds}", file=stream)
    for impl, run in runs.items():
        info = run["interpreter"]
        micrograd = f"micrograd {run['micrograd_version']}" if run["micrograd_version"] else "no micrograd"
        load = ", ".join(f"{before:.2f} -> {after:.2f}" for before, after in run["loadavg"])
        print(f"{impl}: {describe_interpreter(info)} ({info['executable']}); cgrad {run['cgrad_version']}, "
              f"{micrograd}; load {load}", file=stream)
    print(f"Medians, collector on, each interpreter in a process of its own after an untimed warm-up "
          f"({pypy['warm_up_rounds']} rounds on PyPy, {cpython['warm_up_rounds']} on CPython); "
          f"{rounds} round{'s' * (rounds > 1)} of both, taking turns, timings pooled.\n", file=stream)
    softmax, mlp = cpython["softmax"], cpython["mlp"]
    pypy_warm_up, early = pypy["mlp"]["warm_up_steps"], pypy["mlp"]["early_steps"]
    blocks = (
        (f"softmax-NLL op by op, N={softmax['n']:,}: build + backward, ms "
         f"(median of {softmax['repeats'] * rounds})", "softmax"),
        (f"MLP(2, {mlp['layers']}) step on {mlp['points']} points, ms (median of {mlp['steps'] * rounds} after "
         f"{pypy_warm_up['cgrad.nn']:,} untimed on PyPy, {pypy_warm_up['cgrad.nn, replayed']:,} for the replayed "
         f"step; early: its steps {early[0] + 1} to {early[1]}, before PyPy's JIT compiles it)",
         "mlp"),
    )
    header = f"{'':30}{'CPython':>12}{'PyPy':>12}{'CPython/PyPy':>15}"
    for title, workload in blocks:
        print(title, file=stream)
        print(header, file=stream)
        engines = list(dict.fromkeys([*cpython[workload]["medians"], *pypy[workload]["medians"]]))
        for engine in engines:
            a = cpython[workload]["medians"].get(engine)
            b = pypy[workload]["medians"].get(engine)
            ratio = a / b if a is not None and b else None
            cells = [format_number(x * 1e3 if x is not None else None) for x in (a, b)]
            print(f"  {engine:28}{cells[0]:>12}{cells[1]:>12}{format_ratio(ratio):>15}", file=stream)
        print(file=stream)
    spread = " (in brackets: the lowest and highest of the rounds' own)" if rounds > 1 else ""
    print(f"Ratios of median times, how many times faster the second is{spread}:", file=stream)
    width = max(len(label) for label in result["ratios"])
    for label, ratio in result["ratios"].items():
        text = format_ratio(ratio) if ratio is not None else "- (micrograd does not import there)"
        per_round = [ratios[label] for ratios in result["round_ratios"] if ratios[label] is not None]
        if ratio is not None and len(per_round) > 1:
            text = f"{text:>6}  ({format_ratio(min(per_round))} to {format_ratio(max(per_round))})"
        print(f"  {label:{width}}  {text}", file=stream)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer repeats and steps")
    size.add_argument("--tiny", action="store_true", help="smoke-test sizes (the figures mean nothing)")
    parser.add_argument("--rounds", type=int, default=3, metavar="N",
                        help="runs of each interpreter, taking turns, their timings pooled (default: 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the tables")
    parser.add_argument("--pypy", metavar="PATH",
                        help="the PyPy interpreter (or its venv) when running on CPython "
                             "(default: $CGRAD_PYPY, an executable or a venv, else pypy3)")
    parser.add_argument("--cpython", metavar="PATH",
                        help="the CPython interpreter (or its venv) when running on PyPy (default: python3)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    mode = "quick" if args.quick else "tiny" if args.tiny else "full"
    try:
        result = compare_interpreters(mode, args.pypy, args.cpython, args.rounds)
    except InterpreterMissing as error:
        print(f"{COMMAND}: {error}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_comparison(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
