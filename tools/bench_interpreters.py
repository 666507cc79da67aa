"""python -m cgrad.bench --compare-interpreters: the same workloads
(interpreter_workloads.py) on CPython and on PyPy, each in a subprocess of
its own that prints one JSON document, and the ratios across them.

The other interpreter than the one running: --pypy PATH (else $CGRAD_PYPY, a
PyPy executable or a venv holding one, else `pypy3` on the PATH) or
--cpython PATH (else `python3`). Both children import the cgrad this process
imports (its directory first on PYTHONPATH), so it must be built for both:
cffi names the two builds apart (_cgrad.abi3.so for CPython,
_cgrad.pypy39-pp73-x86_64-linux-gnu.so for PyPy 3.9), and they sit side by
side in one checkout: run `setup.py build_ext --inplace` with each
interpreter. The children run one after the other, current interpreter
first; the load average before and after each is in the JSON."""
import json
import os
import shutil
import subprocess
import sys

from .baselines import child_env
from .config import BenchmarkError
from .measure import describe_interpreter, interpreter_info
from .report import format_number

IMPLEMENTATIONS = ("CPython", "PyPy")
PROBE = "import json, platform; print(json.dumps(platform.python_implementation()))"


class InterpreterMissing(Exception):
    """The other interpreter cannot run the comparison (the message says why)."""


def executable(path):
    """An interpreter given as an executable or as a venv directory."""
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
        raise InterpreterMissing(f"--compare-interpreters runs on CPython or PyPy, not {current}")
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
    return {current: sys.executable, other: path}


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
    command = [path, "-m", "cgrad.bench", "--interpreter-worker", mode]
    loadavg_before = os.getloadavg()
    done = subprocess.run(command, env=child_env(), stdout=subprocess.PIPE, stderr=None, text=True,
                          check=False)
    if done.returncode != 0:
        raise InterpreterMissing(f"the {implementation} run ({' '.join(command)}) failed with status "
                                 f"{done.returncode}: its stderr is above")
    result = json.loads(done.stdout)
    result["loadavg_before"], result["loadavg_after"] = loadavg_before, os.getloadavg()
    return result


def compare_interpreters(mode, pypy=None, cpython=None):
    """Both interpreters' runs and the ratios across them, as one dict."""
    paths = interpreter_paths(pypy, cpython)
    current = interpreter_info()["implementation"]
    order = [current] + [impl for impl in IMPLEMENTATIONS if impl != current]
    runs = {impl: run_worker(impl, paths[impl], mode) for impl in order}
    check_same_losses(runs)
    return {"mode": mode, "runs": runs, "ratios": cross_ratios(runs)}


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
    flag = "" if result["mode"] == "full" else f" --{result['mode']}"
    print(f"$ python -m cgrad.bench --compare-interpreters{flag}", file=stream)
    for impl, run in runs.items():
        info = run["interpreter"]
        micrograd = f"micrograd {run['micrograd_version']}" if run["micrograd_version"] else "no micrograd"
        print(f"{impl}: {describe_interpreter(info)} ({info['executable']}); cgrad {run['cgrad_version']}, "
              f"{micrograd}; load {run['loadavg_before'][0]:.2f} -> {run['loadavg_after'][0]:.2f}", file=stream)
    print("Medians, collector on, each interpreter in a process of its own after an untimed warm-up "
          f"({pypy['warm_up_rounds']} rounds on PyPy, {cpython['warm_up_rounds']} on CPython).\n", file=stream)
    softmax, mlp = cpython["softmax"], cpython["mlp"]
    pypy_warm_up, early = pypy["mlp"]["warm_up_steps"], pypy["mlp"]["early_steps"]
    blocks = (
        (f"softmax-NLL op by op, N={softmax['n']:,}: build + backward, ms "
         f"(median of {softmax['repeats']})", "softmax"),
        (f"MLP(2, {mlp['layers']}) step on {mlp['points']} points, ms (median of {mlp['steps']} after "
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
    print("Ratios of median times (how many times faster the second is):", file=stream)
    width = max(len(label) for label in result["ratios"])
    for label, ratio in result["ratios"].items():
        text = format_ratio(ratio) if ratio is not None else "- (micrograd does not import there)"
        print(f"  {label:{width}}  {text}", file=stream)


def main(mode, pypy=None, cpython=None, as_json=False):
    try:
        result = compare_interpreters(mode, pypy, cpython)
    except InterpreterMissing as error:
        print(f"python -m cgrad.bench --compare-interpreters: {error}", file=sys.stderr)
        return 2
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_comparison(result)
    return 0
