"""python -m cgrad.bench at smoke-test sizes: the structure of what it reports
and its cross-checks between the engines. No timing assertions: this is a
shared, noisy machine, and speed is the bench's business, not the tests'."""
import json
import math
import os
import subprocess
import sys

import pytest

import cgrad
from cgrad import bench
from cgrad.reference import Value as ReferenceValue

TINY = bench.CONFIGS["tiny"]
SECTION_KEYS = ["softmax", "ops", "chain", "memory"]
ROW_KEYS = {"section", "name", "metric", "unit", *bench.COLUMNS, "speedup",
            "target", "target_spec", "passed", "note", "params", "samples"}


def package_env():
    """The environment for a child Python that imports this cgrad."""
    env = dict(os.environ)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(cgrad.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(scope="module")
def tiny_result():
    return bench.run(TINY, bench.SilentProgress())


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
            for column in bench.COLUMNS:
                assert row[column] is None or (math.isfinite(row[column]) and row[column] >= 0)
            if row["speedup"] is not None:
                assert row["speedup"] == pytest.approx(row["reference"] / row["cgrad"])


def test_times_are_positive(tiny_result):
    for key in ("softmax", "ops", "chain"):
        for row in rows_of(tiny_result, key):
            measured = [row[c] for c in bench.COLUMNS if row[c] is not None]
            assert measured and all(x > 0 for x in measured), row
            for column, xs in row["samples"].items():
                assert xs and all(x > 0 for x in xs), (row["name"], column)


def test_softmax_rows_cover_every_size_and_engine(tiny_result):
    rows = rows_of(tiny_result, "softmax")
    got = [(row["params"]["n"], row["metric"]) for row in rows]
    assert got == [(n, metric) for n in TINY.softmax_sizes
                   for metric in ("build", "backward", "build+backward")]
    for row in rows:
        assert all(row[c] is not None for c in bench.COLUMNS)
        assert len(row["samples"]["cgrad"]) == TINY.softmax_repeats[row["params"]["n"]]


def test_softmax_engines_computed_the_same_loss(tiny_result):
    for row in rows_of(tiny_result, "softmax"):
        losses = row["params"]["loss"]
        assert set(losses) == set(bench.COLUMNS)
        assert len(set(losses.values())) == 1, losses
        assert row["params"]["grads_identical"] is True


def test_softmax_is_the_seed_cell():
    # The seed notebook's cell: its expected loss gradients.
    logits, loss = bench.build_softmax_nll(cgrad.Value, [0.0, 3.0, -2.0, 1.0], 3)
    loss.backward()
    assert [v.grad for v in logits] == pytest.approx(
        [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986])


def test_ops_and_chain_rows(tiny_result):
    assert [row["name"] for row in rows_of(tiny_result, "ops")] == [label for label, _ in bench.OPS]
    for row in rows_of(tiny_result, "ops"):
        assert row["cgrad_best"] <= row["cgrad"] and row["reference_best"] <= row["reference"]
    metrics = [row["metric"].strip() for row in rows_of(tiny_result, "chain")]
    assert "build" in metrics and "backward(), repeated" in metrics
    assert "ordering (cg_sweep_begin)" in metrics and "reverse sweep (kernels)" in metrics


def test_memory_rows(tiny_result):
    chain, softmax = rows_of(tiny_result, "memory")
    assert chain["params"]["cgrad"]["nodes"] == TINY.memory_chain_nodes_cgrad + 1
    assert chain["params"]["reference"]["nodes"] == TINY.memory_chain_nodes_reference + 1
    # 3N + 6 nodes reachable from the loss, in both engines' graphs.
    assert softmax["params"]["cgrad"]["nodes"] == 3 * TINY.memory_softmax_n + 6
    for row in (chain, softmax):
        for engine in ("cgrad", "reference"):
            probe = row["params"][engine]
            assert probe["rss_before"] > 0 and probe["rss_after"] > 0


def test_cross_check_fails_loudly_on_any_difference():
    same = {"cgrad": (1.0, [0.5, 0.25]), "reference": (1.0, [0.5, 0.25])}
    bench.check_same_results("same", same)
    with pytest.raises(bench.BenchmarkError, match="loss.data differs"):
        bench.check_same_results("x", {"cgrad": (1.0, [0.5]), "reference": (1.0 + 2**-52, [0.5])})
    with pytest.raises(bench.BenchmarkError, match="grad of logit 1 differs"):
        bench.check_same_results("x", {"cgrad": (1.0, [0.5, 0.25]), "reference": (1.0, [0.5, 0.3])})
    with pytest.raises(bench.BenchmarkError, match="x.grad"):
        bench.check_chain_grad("cgrad", ReferenceValue(1.0), 10)


class SkewedExp(ReferenceValue):
    """An engine whose exp is off by a few ulps: the bench must refuse it."""

    def exp(self):
        out = super().exp()
        out.data *= 1 + 2**-50
        return out


def test_softmax_section_refuses_engines_that_disagree(monkeypatch):
    monkeypatch.setitem(bench.ENGINES, "reference", SkewedExp)
    with pytest.raises(bench.BenchmarkError, match="softmax-NLL N=10"):
        bench.bench_softmax(TINY, bench.SilentProgress())


def test_targets(tiny_result):
    row = bench.make_row("s", "n", "m", "ms", cgrad=2.0, reference=400.0,
                         target=bench.Target("speedup", ">=", 150, ">= 150x"))
    assert row["speedup"] == 200.0 and row["passed"] is True
    row = bench.make_row("s", "n", "m", "ns", cgrad=700.0, target=bench.Target("cgrad", "<=", 600, "<= 600 ns"))
    assert row["passed"] is False and row["speedup"] is None
    for target in tiny_result["targets"]:
        assert set(target) == {"section", "name", "metric", "target", "passed", "measured"}
        assert target["passed"] in (True, False)


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
    assert "(b) per-op microbenchmark" in done.stdout and "a + b" in done.stdout
    assert "softmax-NLL" not in done.stdout
