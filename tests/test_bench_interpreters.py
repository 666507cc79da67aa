"""tools/bench_interpreters.py, CPython against PyPy: one interpreter's
worker, the ratios across interpreters, interpreter paths given with `..`,
and a clear failure when the other interpreter is missing. The whole
comparison runs when a PyPy that imports this cgrad is at hand ($CGRAD_PYPY
or pypy3), and skips otherwise. The tool is a developer's, in the source
checkout only: these tests skip against an installed wheel."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from cgrad.bench import baselines, config, fused, measure, mlp

TOOLS = pathlib.Path(__file__).resolve().parent.parent / "tools"
DRIVER, WORKLOADS = TOOLS / "bench_interpreters.py", TOOLS / "interpreter_workloads.py"
if not DRIVER.is_file():
    pytest.skip("tools/bench_interpreters.py is in the source checkout, not in an installed wheel",
                allow_module_level=True)

HAVE_MICROGRAD = baselines.load_micrograd() is not None
ON_CPYTHON = measure.interpreter_info()["implementation"] == "CPython"


def load_tool():
    spec = importlib.util.spec_from_file_location("cgrad_bench_interpreters_under_test", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


interpreters = load_tool()


def run_script(script, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, str(script), *args], env=env or baselines.child_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_worker_measures_both_workloads_on_this_interpreter():
    done = run_script(WORKLOADS, "tiny")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["interpreter"] == measure.interpreter_info()
    engines = ["cgrad"] + ["micrograd"] * HAVE_MICROGRAD
    softmax = result["softmax"]
    assert list(softmax["engines"]) == engines and list(softmax["medians"]) == engines
    for seconds in softmax["engines"].values():
        assert len(seconds["total"]) == softmax["repeats"] and all(t > 0 for t in seconds["total"])
        assert seconds["total"] == pytest.approx([a + b for a, b in zip(seconds["build"], seconds["backward"])])
    if HAVE_MICROGRAD:
        assert softmax["micrograd_max_diff"] <= fused.FUSED_TOLERANCE
    mlp_result = result["mlp"]
    variants = ["cgrad.nn", "cgrad.nn, replayed"] + ["micrograd"] * HAVE_MICROGRAD
    assert list(mlp_result["engines"]) == variants[:2] + ["cgrad.nn, replayed, early"] + variants[2:]
    for seconds in mlp_result["engines"].values():
        assert len(seconds) == mlp_result["steps"] and all(t > 0 for t in seconds)
    # the replayed step runs longest (past PyPy's compile threshold for loops), and
    # its early steps are ones it ran
    replay_warm_up = mlp_result["warm_up_steps"]["cgrad.nn, replayed"]
    assert replay_warm_up >= mlp_result["warm_up_steps"]["cgrad.nn"]
    start, end = mlp_result["early_steps"]
    assert end - start == mlp_result["steps"] and end <= replay_warm_up + mlp_result["steps"]
    first = mlp_result["losses"]["cgrad.nn"]
    for variant, losses in mlp_result["losses"].items():
        assert len(losses) == mlp_result["warm_up_steps"][variant] + mlp_result["steps"]
        # the steps every variant ran give the same losses
        assert losses[:len(first)] == pytest.approx(first, rel=mlp.MLP_TOLERANCE, abs=0), variant
    assert "softmax-NLL N=200 cgrad: timing" in done.stderr


def test_worker_measures_this_checkouts_cgrad():
    # Without PYTHONPATH, from elsewhere: the tool puts its own checkout first.
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    code = (f"import runpy, sys; sys.argv = [{str(WORKLOADS)!r}]; "
            f"runpy.run_path({str(WORKLOADS)!r}); import cgrad; print(cgrad.__file__)")
    done = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert pathlib.Path(done.stdout.strip()).parent == TOOLS.parent / "cgrad"


def fake_run(implementation, softmax, mlp_medians):
    return {"interpreter": {"implementation": implementation}, "softmax": {"medians": softmax},
            "mlp": {"medians": mlp_medians}}


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


def worker_result(implementation, softmax_totals, mlp_steps, load):
    return {"interpreter": {"implementation": implementation}, "loadavg_before": [load], "loadavg_after": [load + 1],
            "softmax": {"engines": {"cgrad": {"build": list(softmax_totals), "backward": [0.0] * len(softmax_totals),
                                              "total": softmax_totals}}},
            "mlp": {"engines": {"cgrad.nn": mlp_steps}}}


def test_rounds_are_pooled():
    first = worker_result("PyPy", [1.0, 2.0, 9.0], [5.0], load=0.5)
    second = worker_result("PyPy", [3.0, 4.0, 8.0], [6.0, 7.0], load=2.5)
    pooled = interpreters.pool_rounds([first, second])
    assert pooled["softmax"]["engines"]["cgrad"]["total"] == [1.0, 2.0, 9.0, 3.0, 4.0, 8.0]
    assert pooled["softmax"]["medians"] == {"cgrad": 3.5}  # over the pool, not a median of medians (2 and 4)
    assert pooled["mlp"]["medians"] == {"cgrad.nn": 6.0}
    assert pooled["loadavg"] == [[0.5, 1.5], [2.5, 3.5]]
    assert first["softmax"]["engines"]["cgrad"]["total"] == [1.0, 2.0, 9.0]  # the rounds' own are left as they were


def test_rounds_must_be_positive():
    done = run_script(DRIVER, "--rounds", "0")
    assert done.returncode == 2 and "--rounds must be at least 1" in done.stderr


def test_interpreters_must_agree_on_the_losses():
    def run(softmax_loss, mlp_losses):
        return {"softmax": {"loss": softmax_loss}, "mlp": {"losses": {"cgrad.nn": mlp_losses}}}

    # PyPy ran more (untimed) steps: the steps both ran are compared.
    interpreters.check_same_losses({"CPython": run(2.5, [1.0, 0.9]), "PyPy": run(2.5, [1.0, 0.9, 0.8])})
    with pytest.raises(config.BenchmarkError, match="softmax-NLL loss"):
        interpreters.check_same_losses({"CPython": run(2.5, [1.0]), "PyPy": run(2.5 + 1e-9, [1.0])})
    with pytest.raises(config.BenchmarkError, match="MLP step cgrad.nn"):
        interpreters.check_same_losses({"CPython": run(2.5, [1.0, 0.9]), "PyPy": run(2.5, [1.0, 0.91])})


def test_interpreter_paths_have_no_dot_dot(tmp_path):
    # A venv or an executable given as /x/../x/...: the path the comparison
    # runs and reports is the one that interpreter reports as its own.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    dotted = str(tmp_path / ".." / tmp_path.name / "venv")
    assert interpreters.executable(dotted) == str(venv / "bin" / "python")
    assert interpreters.executable(dotted + "/bin/python") == str(venv / "bin" / "python")


@pytest.mark.skipif(not ON_CPYTHON, reason="names a PyPy: runs on CPython")
def test_missing_pypy_is_reported_and_fails(tmp_path):
    done = run_script(DRIVER, "--tiny", "--pypy", str(tmp_path / "no-such-pypy"))
    assert done.returncode != 0
    assert "PyPy interpreter" in done.stderr and "cannot run" in done.stderr
    done = run_script(DRIVER, "--tiny", "--pypy", sys.executable)
    assert done.returncode != 0
    assert "is not a PyPy interpreter" in done.stderr and "--pypy PATH" in done.stderr
    assert not done.stdout


def pypy_with_cgrad():
    """A PyPy that imports this cgrad, or None."""
    path = interpreters.default_pypy()
    if not path or not ON_CPYTHON:
        return None
    try:
        done = subprocess.run([path, "-c", "import cgrad"], env=baselines.child_env(), capture_output=True,
                              timeout=120)
    except OSError:
        return None
    return path if done.returncode == 0 else None


@pytest.mark.skipif(pypy_with_cgrad() is None, reason="no PyPy with cgrad built for it ($CGRAD_PYPY, pypy3)")
def test_compare_interpreters_runs_both():
    pypy = pypy_with_cgrad()
    # given with `..` in it, the PyPy is the one that reports itself
    dotted = os.path.join(os.path.dirname(pypy), "..", "bin", os.path.basename(pypy))
    done = run_script(DRIVER, "--tiny", "--rounds", "2", "--json", "--pypy", dotted, timeout=900)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    runs = result["runs"]
    assert result["rounds"] == 2 and len(result["round_ratios"]) == 2
    # the rounds took turns: CPython first, then PyPy first
    assert done.stderr.index("[CPython]") < done.stderr.index("[PyPy]")
    second_round = done.stderr.split("[PyPy] MLP step", 1)[1]
    assert second_round.count("[PyPy]") and second_round.index("[PyPy]") < second_round.index("[CPython]")
    for run in runs.values():
        assert len(run["loadavg"]) == 2
        assert len(run["softmax"]["engines"]["cgrad"]["total"]) == 2 * run["softmax"]["repeats"]
    assert [run["interpreter"]["implementation"] for run in runs.values()] == ["CPython", "PyPy"]
    assert runs["CPython"]["interpreter"]["executable"] == os.path.abspath(sys.executable)
    assert runs["PyPy"]["interpreter"]["executable"] == interpreters.interpreter_paths(pypy=dotted)["PyPy"]
    assert runs["PyPy"]["warm_up_rounds"] > runs["CPython"]["warm_up_rounds"]
    assert result["ratios"]["softmax-NLL: cgrad on CPython / cgrad on PyPy"] > 0
    assert result["ratios"]["MLP step, cgrad.nn replayed: CPython / PyPy"] > 0
