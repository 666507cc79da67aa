"""python -m cgrad.bench --compare-interpreters: one interpreter's worker,
the ratios across interpreters, and a clear failure when the other
interpreter is missing. The whole comparison runs when a PyPy that imports
this cgrad is at hand ($CGRAD_PYPY or pypy3), and skips otherwise."""
import json
import subprocess
import sys

import pytest

from cgrad import bench
from cgrad.bench import interpreters

HAVE_MICROGRAD = bench.load_micrograd() is not None
ON_CPYTHON = bench.interpreter_info()["implementation"] == "CPython"


def run_bench(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "cgrad.bench", *args], env=bench.child_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_worker_measures_both_workloads_on_this_interpreter():
    done = run_bench("--interpreter-worker", "tiny")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["interpreter"] == bench.interpreter_info()
    engines = ["cgrad"] + ["micrograd"] * HAVE_MICROGRAD
    softmax = result["softmax"]
    assert list(softmax["engines"]) == engines and list(softmax["medians"]) == engines
    for seconds in softmax["engines"].values():
        assert len(seconds["total"]) == softmax["repeats"] and all(t > 0 for t in seconds["total"])
        assert seconds["total"] == pytest.approx([a + b for a, b in zip(seconds["build"], seconds["backward"])])
    if HAVE_MICROGRAD:
        assert softmax["micrograd_max_diff"] <= bench.FUSED_TOLERANCE
    mlp = result["mlp"]
    variants = ["cgrad.nn", "cgrad.nn, replayed"] + ["micrograd"] * HAVE_MICROGRAD
    assert list(mlp["engines"]) == variants[:2] + ["cgrad.nn, replayed, early"] + variants[2:]
    for seconds in mlp["engines"].values():
        assert len(seconds) == mlp["steps"] and all(t > 0 for t in seconds)
    # the replayed step runs longest (past PyPy's compile threshold for loops), and
    # its early steps are ones it ran
    replay_warm_up = mlp["warm_up_steps"]["cgrad.nn, replayed"]
    assert replay_warm_up >= mlp["warm_up_steps"]["cgrad.nn"]
    start, end = mlp["early_steps"]
    assert end - start == mlp["steps"] and end <= replay_warm_up + mlp["steps"]
    first = mlp["losses"]["cgrad.nn"]
    for variant, losses in mlp["losses"].items():
        assert len(losses) == mlp["warm_up_steps"][variant] + mlp["steps"]
        # the steps every variant ran give the same losses
        assert losses[:len(first)] == pytest.approx(first, rel=bench.MLP_TOLERANCE, abs=0), variant
    assert "softmax-NLL N=200 cgrad: timing" in done.stderr


def fake_run(implementation, softmax, mlp):
    return {"interpreter": {"implementation": implementation}, "softmax": {"medians": softmax},
            "mlp": {"medians": mlp}}


def test_cross_ratios():
    runs = {"CPython": fake_run("CPython", {"cgrad": 2.0, "micrograd": 40.0},
                                {"cgrad.nn": 3.0, "cgrad.nn, replayed": 0.01, "micrograd": 90.0}),
            "PyPy": fake_run("PyPy", {"cgrad": 4.0},
                             {"cgrad.nn": 6.0, "cgrad.nn, replayed": 0.02})}
    ratios = interpreters.cross_ratios(runs)
    assert ratios["softmax-NLL: micrograd on CPython / cgrad on PyPy"] == 10.0
    assert ratios["softmax-NLL: cgrad on CPython / cgrad on PyPy"] == 0.5
    assert ratios["softmax-NLL: micrograd on CPython / cgrad on CPython"] == 20.0
    assert ratios["MLP step, cgrad.nn: CPython / PyPy"] == 0.5
    # micrograd missing on PyPy: the ratios that need it are None, not made up.
    assert ratios["softmax-NLL: micrograd on PyPy / cgrad on PyPy"] is None
    assert ratios["MLP step, micrograd: CPython / PyPy"] is None


def test_interpreters_must_agree_on_the_losses():
    def run(softmax_loss, mlp_losses):
        return {"softmax": {"loss": softmax_loss}, "mlp": {"losses": {"cgrad.nn": mlp_losses}}}

    # PyPy ran more (untimed) steps: the steps both ran are compared.
    interpreters.check_same_losses({"CPython": run(2.5, [1.0, 0.9]), "PyPy": run(2.5, [1.0, 0.9, 0.8])})
    with pytest.raises(bench.BenchmarkError, match="softmax-NLL loss"):
        interpreters.check_same_losses({"CPython": run(2.5, [1.0]), "PyPy": run(2.5 + 1e-9, [1.0])})
    with pytest.raises(bench.BenchmarkError, match="MLP step cgrad.nn"):
        interpreters.check_same_losses({"CPython": run(2.5, [1.0, 0.9]), "PyPy": run(2.5, [1.0, 0.91])})


@pytest.mark.skipif(not ON_CPYTHON, reason="names a PyPy: runs on CPython")
def test_missing_pypy_is_reported_and_fails(tmp_path):
    done = run_bench("--compare-interpreters", "--tiny", "--pypy", str(tmp_path / "no-such-pypy"))
    assert done.returncode != 0
    assert "PyPy interpreter" in done.stderr and "cannot run" in done.stderr
    done = run_bench("--compare-interpreters", "--tiny", "--pypy", sys.executable)
    assert done.returncode != 0
    assert "is not a PyPy interpreter" in done.stderr and "--pypy PATH" in done.stderr
    assert not done.stdout


def pypy_with_cgrad():
    """A PyPy that imports this cgrad, or None."""
    path = interpreters.default_pypy()
    if not path or not ON_CPYTHON:
        return None
    try:
        done = subprocess.run([path, "-c", "import cgrad"], env=bench.child_env(), capture_output=True, timeout=120)
    except OSError:
        return None
    return path if done.returncode == 0 else None


@pytest.mark.skipif(pypy_with_cgrad() is None, reason="no PyPy with cgrad built for it ($CGRAD_PYPY, pypy3)")
def test_compare_interpreters_runs_both():
    done = run_bench("--compare-interpreters", "--tiny", "--json", "--pypy", pypy_with_cgrad(), timeout=900)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [run["interpreter"]["implementation"] for run in result["runs"].values()] == ["CPython", "PyPy"]
    assert result["runs"]["PyPy"]["warm_up_rounds"] > result["runs"]["CPython"]["warm_up_rounds"]
    assert result["ratios"]["softmax-NLL: cgrad on CPython / cgrad on PyPy"] > 0
    assert result["ratios"]["MLP step, cgrad.nn replayed: CPython / PyPy"] > 0
