"""python -m cgrad.bench at smoke-test sizes: the structure of what it reports
and its cross-checks between the engines. No timing assertions: this is a
shared, noisy machine, and speed is the bench's business, not the tests'."""
import dataclasses
import importlib.util
import json
import math
import subprocess
import sys

import pytest

import cgrad
from cgrad import bench, demo
from cgrad.bench import baselines, chain, config, fused, measure, mlp, ops, plot, report, rows, seed, softmax
from cgrad.nn import MLP as CgradMLP
from cgrad.reference import Value as ReferenceValue

TINY = bench.CONFIGS["tiny"]
SECTION_KEYS = ["softmax", "ops", "chain", "memory", "fused", "mlp"]
ROW_KEYS = {"section", "name", "metric", "unit", *config.COLUMNS, *config.RATIOS,
            "targets", "passed", "note", "params", "samples"}
HAVE_MICROGRAD = baselines.load_micrograd() is not None
HAVE_TORCH = baselines.torch_installed()
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
MLP_VARIANTS = ["op by op on cgrad", "cgrad.nn", "cgrad.nn, replayed"]


def package_env():
    """The environment for a child Python that imports this cgrad."""
    return baselines.child_env()


@pytest.fixture(scope="module")
def tiny_result():
    return bench.run(TINY, measure.SilentProgress())


def rows_of(result, key):
    (sec,) = [s for s in result["sections"] if s["key"] == key]
    return sec["rows"]


def test_every_section_runs_in_order(tiny_result):
    assert [s["key"] for s in tiny_result["sections"]] == SECTION_KEYS
    for sec in tiny_result["sections"]:
        assert sec["title"]
        assert sec["rows"], sec["key"]


def test_rows_have_one_shape(tiny_result):
    for sec in tiny_result["sections"]:
        for row in sec["rows"]:
            assert ROW_KEYS <= set(row), (sec["key"], set(ROW_KEYS) - set(row))
            assert row["section"] == sec["key"]
            assert row["cgrad"] is not None
            for column in config.COLUMNS:
                assert row[column] is None or (math.isfinite(row[column]) and row[column] >= 0)
            for key, (top, bottom, _) in config.RATIOS.items():
                if row[top] is None or not row[bottom]:  # no figure, or a 0-byte memory reading
                    assert row[key] is None, (row["name"], key)
                else:
                    assert row[key] == pytest.approx(row[top] / row[bottom])


def test_times_are_positive(tiny_result):
    for key in ("softmax", "ops", "chain", "fused", "mlp"):
        for row in rows_of(tiny_result, key):
            measured = [row[c] for c in config.COLUMNS if row[c] is not None]
            assert measured and all(x > 0 for x in measured), row
            for column, xs in row["samples"].items():
                assert xs and all(x > 0 for x in xs), (row["name"], column)


def test_softmax_rows_cover_every_size_and_engine(tiny_result):
    section_rows = rows_of(tiny_result, "softmax")
    got = [(row["params"]["n"], row["metric"]) for row in section_rows]
    assert got == [(n, metric) for n in TINY.softmax_sizes
                   for metric in ("build", "backward", "build+backward")]
    for row in section_rows:
        assert all(row[c] is not None for c in config.ENGINE_COLUMNS)
        assert len(row["samples"]["cgrad"]) == TINY.softmax_repeats[row["params"]["n"]]


def test_softmax_engines_computed_the_same_loss(tiny_result):
    for row in rows_of(tiny_result, "softmax"):
        losses = row["params"]["loss"]
        assert set(losses) == set(config.ENGINE_COLUMNS)
        assert len(set(losses.values())) == 1, losses
        assert row["params"]["grads_identical"] is True


def test_softmax_is_the_seed_cell():
    # The seed notebook's cell: its expected loss gradients.
    logits, loss = seed.build_softmax_nll(cgrad.Value, [0.0, 3.0, -2.0, 1.0], 3)
    loss.backward()
    assert [v.grad for v in logits] == pytest.approx(
        [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986])


def test_ops_and_chain_rows(tiny_result):
    assert [row["name"] for row in rows_of(tiny_result, "ops")] == [label for label, _ in ops.OPS]
    for row in rows_of(tiny_result, "ops"):
        assert row["cgrad_best"] <= row["cgrad"] and row["reference_best"] <= row["reference"]
    metrics = [row["metric"].strip() for row in rows_of(tiny_result, "chain")]
    assert "build" in metrics
    assert "backward(), first call" in metrics and "backward(), repeated" in metrics


def test_memory_rows(tiny_result):
    chain_row, softmax_row = rows_of(tiny_result, "memory")
    assert chain_row["params"]["cgrad"]["nodes"] == TINY.memory_chain_nodes_cgrad + 1
    assert chain_row["params"]["reference"]["nodes"] == TINY.memory_chain_nodes_reference + 1
    # 3N + 6 nodes reachable from the loss, in both engines' graphs.
    assert softmax_row["params"]["cgrad"]["nodes"] == 3 * TINY.memory_softmax_n + 6
    for row in (chain_row, softmax_row):
        for engine in ("cgrad", "reference"):
            probe = row["params"][engine]
            assert probe["rss_before"] > 0 and probe["rss_after"] > 0


def test_cross_check_fails_loudly_on_any_difference():
    same = {"cgrad": (1.0, [0.5, 0.25]), "reference": (1.0, [0.5, 0.25])}
    softmax.check_same_results("same", same)
    with pytest.raises(bench.BenchmarkError, match="loss.data differs"):
        softmax.check_same_results("x", {"cgrad": (1.0, [0.5]), "reference": (1.0 + 2**-52, [0.5])})
    with pytest.raises(bench.BenchmarkError, match="grad of logit 1 differs"):
        softmax.check_same_results("x", {"cgrad": (1.0, [0.5, 0.25]), "reference": (1.0, [0.5, 0.3])})
    with pytest.raises(bench.BenchmarkError, match="x.grad"):
        chain.check_chain_grad("cgrad", ReferenceValue(1.0), 10)


class SkewedExp(ReferenceValue):
    """An engine whose exp is off by a few ulps: the bench must refuse it."""

    def exp(self):
        out = super().exp()
        out.data *= 1 + 2**-50
        return out


def test_softmax_section_refuses_engines_that_disagree(monkeypatch):
    monkeypatch.setitem(config.ENGINES, "reference", SkewedExp)
    with pytest.raises(bench.BenchmarkError, match="softmax-NLL N=10"):
        softmax.bench_softmax(TINY, measure.SilentProgress())


def test_targets(tiny_result):
    row = rows.make_row("s", "n", "m", "ms", cgrad=2.0, reference=400.0,
                         target=rows.Target("speedup", ">=", 150, ">= 150x"))
    assert row["speedup"] == 200.0 and row["passed"] is True
    assert row["targets"] == [{"field": "speedup", "op": ">=", "value": 150, "text": ">= 150x",
                               "measured": 200.0, "passed": True}]
    row = rows.make_row("s", "n", "m", "ns", cgrad=700.0, target=rows.Target("cgrad", "<=", 600, "<= 600 ns"))
    assert row["passed"] is False and row["speedup"] is None
    for target in tiny_result["targets"]:
        assert set(target) == {"section", "name", "metric", "target", "passed", "measured"}
        assert target["passed"] in (True, False)


def test_rows_with_several_targets():
    both = [rows.Target("speedup_micrograd", ">=", 500, "mg/cgrad >= 500x"),
            rows.Target("vs_torch", "<=", 3, "cgrad/torch <= 3x")]
    row = rows.make_row("s", "n", "m", "ms", cgrad=1.0, micrograd=1000.0, torch=0.5, targets=both)
    assert row["speedup_micrograd"] == 1000.0 and row["vs_torch"] == 2.0
    assert [t["passed"] for t in row["targets"]] == [True, True] and row["passed"] is True
    row = rows.make_row("s", "n", "m", "ms", cgrad=1.0, micrograd=1000.0, torch=0.25, targets=both)
    assert [t["passed"] for t in row["targets"]] == [True, False] and row["passed"] is False
    row = rows.make_row("s", "n", "m", "ms", cgrad=1.0, torch=0.5, targets=both)  # no micrograd figure
    assert [t["passed"] for t in row["targets"]] == [None, True] and row["passed"] is None
    row = rows.make_row("s", "n", "m", "ms", cgrad=1.0, torch=0.25, targets=both)
    assert [t["passed"] for t in row["targets"]] == [None, False] and row["passed"] is False
    # In the table, one line per target: the second under the first.
    result = {"sections": [{"key": "s", "title": "(s) title", "baselines": True, "rows": [
        rows.make_row("s", "N=1", "m", "ms", cgrad=1.0, micrograd=1000.0, torch=0.25, targets=both)]}]}
    lines = report.table_lines(result)
    (first,) = [line for line in lines if "mg/cgrad >= 500x" in line]
    following = lines[lines.index(first) + 1]
    assert first.startswith("N=1") and first.endswith("1,000x  PASS")
    assert following.split() == ["cgrad/torch", "<=", "3x", "4.0x", "MISS"]


def test_table_shows_every_section_and_row(tiny_result, capsys):
    bench.print_report(tiny_result)
    out = capsys.readouterr().out
    assert out.startswith("$ python -m cgrad.bench --tiny")
    for sec in tiny_result["sections"]:
        assert sec["title"] in out
        for row in sec["rows"]:
            assert row["name"] in out and row["metric"] in out


def test_command_line_json():
    done = subprocess.run([sys.executable, "-m", "cgrad.bench", "--tiny", "--json"],
                          env=package_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is the JSON document and nothing else
    assert [s["key"] for s in result["sections"]] == SECTION_KEYS
    assert result["meta"]["mode"] == "tiny"
    assert "softmax-NLL N=10 [1/2]: cgrad build... backward..." in done.stderr  # progress


def test_command_line_table_for_one_section():
    done = subprocess.run([sys.executable, "-m", "cgrad.bench", "--tiny", "--only", "ops"],
                          env=package_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("$ python -m cgrad.bench --tiny --only ops\n")  # the command, to rerun it
    assert "(b) per-op microbenchmark" in done.stdout and "a + b" in done.stdout
    assert "softmax-NLL" not in done.stdout


# ---- (e) the fused softmax-NLL -------------------------------------------------


def test_fused_rows_cover_every_size_and_baseline(tiny_result):
    section_rows = rows_of(tiny_result, "fused")
    assert [row["params"]["n"] for row in section_rows] == list(TINY.softmax_sizes)
    for row in section_rows:
        n = row["params"]["n"]
        for column in ("cgrad", "cgrad_gc_off", "reference", "reference_gc_off"):
            assert row[column] > 0 and len(row["samples"][column]) == TINY.softmax_repeats[n]
        for column in ("micrograd", "micrograd_gc_off"):
            assert (row[column] is not None) == HAVE_MICROGRAD
        assert (row["torch"] is not None) == HAVE_TORCH
        assert row["params"]["calls_per_timing"]["cgrad"] >= 1
        assert not row["targets"]  # targets are for N=10,000


def test_fused_cross_checks_ran(tiny_result):
    for row in rows_of(tiny_result, "fused"):
        checks = row["params"]["checks"]
        assert checks["fused_vs"] == ("torch" if HAVE_TORCH else "reference")
        assert checks["fused_max_diff"] <= fused.FUSED_TOLERANCE
        if HAVE_MICROGRAD:
            assert checks["micrograd_vs_reference_max_diff"] <= fused.FUSED_TOLERANCE
            assert row["params"]["micrograd_recursion_limit"] == 10 * row["params"]["n"] + 1000
        losses = row["params"]["loss"]
        assert set(losses) >= {"reference", "reference_gc_off"}
        assert len({round(x, 12) for x in losses.values()}) == 1, losses


def test_fused_without_micrograd_or_torch(monkeypatch):
    monkeypatch.setattr(fused, "load_micrograd", lambda: None)
    monkeypatch.setattr(fused, "start_torch_worker", lambda: None)
    small = dataclasses.replace(TINY, softmax_repeats={20: 1})
    (row,) = fused.bench_fused(small, measure.SilentProgress())
    assert row["micrograd"] is None and row["torch"] is None and row["cgrad"] > 0
    assert row["params"]["checks"]["fused_vs"] == "reference"


def test_fused_targets_name_their_baseline():
    assert fused.fused_targets(1_000, True, True) == ([], "")
    targets, note = fused.fused_targets(10_000, True, True)
    assert [t.field for t in targets] == ["speedup_micrograd", "vs_torch"] and not note
    targets, note = fused.fused_targets(10_000, False, False)
    assert [t.field for t in targets] == ["speedup"] and "micrograd is not installed" in note


def test_check_close():
    assert fused.check_close("x", "a", (1.0, [0.5, 0.25]), "b", (1.0, [0.5, 0.25])) == 0.0
    assert fused.check_close("x", "a", (100.0, [0.5]), "b", (100.0 + 1e-11, [0.5])) > 0  # relative above 1
    with pytest.raises(bench.BenchmarkError, match="grad of logit 1 differs"):
        fused.check_close("x", "a", (1.0, [0.5, 0.25]), "b", (1.0, [0.5, 0.25 + 1e-11]))
    with pytest.raises(bench.BenchmarkError, match="loss differs"):
        fused.check_close("x", "a", (1.0, [0.5]), "b", (math.nan, [0.5]))
    with pytest.raises(bench.BenchmarkError, match="has 1 grads"):
        fused.check_close("x", "a", (1.0, [0.5, 0.25]), "b", (1.0, [0.5]))


class FarSkewedExp(ReferenceValue):
    """An exp 1e-6 too large, beyond the fused section's 1e-12 tolerance
    (added, not multiplied: a softmax cancels a common factor)."""

    def exp(self):
        out = super().exp()
        out.data += 1e-6
        return out


def test_fused_section_refuses_engines_that_disagree(monkeypatch):
    # The op-by-op engines are checked against the reference: a skewed
    # reference disagrees with micrograd, or (without micrograd and torch)
    # with cgrad's fused loss.
    monkeypatch.setitem(config.ENGINES, "reference", FarSkewedExp)
    if not HAVE_MICROGRAD:
        monkeypatch.setattr(fused, "start_torch_worker", lambda: None)
    with pytest.raises(bench.BenchmarkError, match="fused softmax-NLL N=10"):
        fused.bench_fused(TINY, measure.SilentProgress())


@pytest.mark.skipif(not HAVE_MICROGRAD, reason="micrograd is not installed")
def test_seed_ops_are_added_to_micrograd_and_taken_off():
    Value, _ = baselines.load_micrograd()
    assert not hasattr(Value, "exp")
    with baselines.seed_ops_on(Value) as added, measure.recursion_limit(5000):
        assert added == ["exp", "log"] and sys.getrecursionlimit() >= 5000
        logits, loss = seed.build_softmax_nll(Value, [0.0, 3.0, -2.0, 1.0], 3)
        loss.backward()
    assert not hasattr(Value, "exp") and not hasattr(Value, "log")
    assert [v.grad for v in logits] == pytest.approx(
        [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986])


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_torch_worker_reports_errors():
    worker = baselines.TorchWorker()
    try:
        assert worker.version.startswith("2.") and worker.threads >= 1
        worker.request(op="setup", xs=[0.0, 3.0, -2.0, 1.0], label=3)
        reply = worker.request(op="result")
        assert reply["grads"] == pytest.approx(
            [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986], abs=1e-15)
        assert worker.request(op="time", calls=3)["seconds"] > 0
        with pytest.raises(bench.BenchmarkError, match="unknown command"):
            worker.request(op="nonsense")
    finally:
        worker.close()


def test_the_bench_process_never_imports_torch():
    code = ("import sys; from cgrad import bench; from cgrad.bench.measure import SilentProgress; "
            "bench.run(bench.CONFIGS['tiny'], SilentProgress(), only=['fused']); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], env=package_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ---- (f) the MLP training step and graph replay --------------------------------


def test_mlp_rows(tiny_result):
    section_rows = rows_of(tiny_result, "mlp")
    assert [row["metric"] for row in section_rows] == MLP_VARIANTS
    steps = TINY.mlp_rounds * TINY.mlp_steps
    for row in section_rows:
        assert row["name"] == f"MLP(2, {list(TINY.mlp_layers)}) step"
        for column in ("cgrad", "cgrad_gc_off", "reference", "reference_gc_off"):
            assert row[column] > 0 and len(row["samples"][column]) == steps
        for column in ("micrograd", "micrograd_gc_off"):
            assert (row[column] is not None) == HAVE_MICROGRAD
        assert row["torch"] is None
        assert not row["targets"]  # targets are for the demo's size
    # The baselines are the same measurements in every row.
    assert len({tuple(row["samples"]["reference"]) for row in section_rows}) == 1


def test_mlp_engines_computed_the_same_losses(tiny_result):
    params = rows_of(tiny_result, "mlp")[0]["params"]
    losses = params["losses"]
    expected = {f"{variant}{gc}" for variant in MLP_VARIANTS + ["reference"] + ["micrograd"] * HAVE_MICROGRAD
                for gc in ("", " gc off")}
    assert set(losses) == expected
    first = losses["cgrad.nn"]
    assert len(first) == TINY.mlp_rounds * (TINY.mlp_steps + measure.WARM_UP_ROUNDS)  # untimed steps: 1 on CPython
    for name, got in losses.items():
        assert got == pytest.approx(first, rel=mlp.MLP_TOLERANCE, abs=0), name
    assert params["max_rel_loss_diff"] <= mlp.MLP_TOLERANCE
    assert params["replay_check_steps"] == 10 and params["replay_max_rel_diff"] <= mlp.REPLAY_TOLERANCE


def test_mlp_steps_are_the_demos():
    # One step of the bench's loop is a step of demo.train, and a replayed
    # step one of demo.train_replayed: the same losses.
    small = dataclasses.replace(TINY, mlp_points=100, mlp_layers=(16, 16, 1))
    rebuild = mlp.RebuildSteps(cgrad.Value, CgradMLP, small)
    replay = mlp.ReplaySteps(small)
    for _ in range(3):
        rebuild.step()
        replay.step()
    _, _, demo_losses, _ = demo.train("cgrad", 3)
    assert [rebuild.losses[k] for k in range(3)] == pytest.approx(demo_losses, rel=1e-12, abs=0)
    assert [replay.losses[k] for k in range(3)] == pytest.approx(demo_losses, rel=1e-12, abs=0)


class SkewedMul(ReferenceValue):
    """A reference Value whose weights multiply 1e-6 wrong (beyond 1e-9)."""

    def __mul__(self, other):
        out = super().__mul__(other)
        out.data *= 1 + 1e-6
        return out


def test_mlp_section_refuses_engines_that_disagree(monkeypatch):
    monkeypatch.setitem(config.ENGINES, "reference", SkewedMul)
    with pytest.raises(bench.BenchmarkError, match="MLP step 0: reference loss"):
        mlp.bench_mlp(TINY, measure.SilentProgress())


def test_replay_check_refuses_replays_that_drift(monkeypatch):
    train_replayed = demo.train_replayed

    def drifting(steps):
        model, Value, losses, accuracies = train_replayed(steps)
        return model, Value, [x * (1 + 1e-10) for x in losses], accuracies

    monkeypatch.setattr(demo, "train_replayed", drifting)
    with pytest.raises(bench.BenchmarkError, match="graph replay: step 0"):
        mlp.check_replay(3)


def test_mlp_targets_name_their_baseline():
    assert mlp.mlp_targets("op by op on cgrad", True) == ([], "")
    targets, note = mlp.mlp_targets("cgrad.nn", True)
    assert [(t.field, t.value) for t in targets] == [("speedup_micrograd", 50), ("speedup_micrograd_gc_off", 8)]
    assert not note
    targets, note = mlp.mlp_targets("cgrad.nn, replayed", False)
    assert [(t.field, t.value) for t in targets] == [("speedup", 1000), ("speedup_reference_gc_off", 100)]
    assert "micrograd is not installed" in note


def test_mlp_without_micrograd(monkeypatch):
    monkeypatch.setattr(mlp, "load_micrograd", lambda: None)
    small = dataclasses.replace(TINY, mlp_steps=1)
    section_rows = mlp.bench_mlp(small, measure.SilentProgress())
    assert [row["metric"] for row in section_rows] == MLP_VARIANTS
    assert all(row["micrograd"] is None and row["reference"] > 0 for row in section_rows)


# ---- --plot ---------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_draws_every_softmax_line(tiny_result, tmp_path):
    series = plot.softmax_series(tiny_result)
    expected = {"cgrad, op by op", "reference engine, op by op", "cgrad.cross_entropy (fused)"}
    expected |= {"micrograd, op by op"} if HAVE_MICROGRAD else set()
    expected |= {"torch log_softmax, float64"} if HAVE_TORCH else set()
    assert set(series) == expected
    assert all([n for n, _ in points] == list(TINY.softmax_sizes) for points in series.values())
    path = tmp_path / "bench.png"
    plot.plot_softmax(tiny_result, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed")
def test_command_line_plot(tmp_path):
    path = tmp_path / "softmax.png"
    done = subprocess.run([sys.executable, "-m", "cgrad.bench", "--tiny", "--only", "ops", "--plot", str(path)],
                          env=package_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {path}" in done.stderr
    # --plot runs the sections it draws from, besides those asked for.
    assert "(a) softmax-NLL" in done.stdout and "(e) softmax-NLL fused" in done.stdout
    assert "(b) per-op" in done.stdout and "(c) a deep chain" not in done.stdout


def test_plot_without_matplotlib_stops_before_benchmarking(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from cgrad.bench import main; "
            f"sys.exit(main(['--tiny', '--plot', {str(tmp_path / 'x.png')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], env=package_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    assert "pip install cgrad[plot]" in done.stderr and "pip install matplotlib" in done.stderr
    assert "softmax-NLL" not in done.stderr  # no progress: nothing was measured
    assert not (tmp_path / "x.png").exists()
