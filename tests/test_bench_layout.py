"""The bench as a package: small files, a small public surface (the
developers' tools live in tools/, outside the wheel), the hidden subprocess
modes of python -m cgrad.bench, the per-op loop that keeps its results, and
the interpreter it reports."""
import json
import os
import pathlib
import platform
import subprocess
import sys

import pytest

from cgrad import bench
from cgrad.bench import baselines, measure, oploop, rows

BENCH_DIR = pathlib.Path(bench.__file__).parent
MAX_LINES = 400


def test_no_bench_file_is_over_400_lines():
    files = sorted(BENCH_DIR.glob("*.py"))
    assert len(files) > 10  # the package, not one module
    lengths = {path.name: len(path.read_text().splitlines()) for path in files}
    assert all(n <= MAX_LINES for n in lengths.values()), {k: n for k, n in lengths.items() if n > MAX_LINES}


def test_the_public_surface_is_what_the_command_needs():
    assert sorted(bench.__all__) == ["BenchmarkError", "CONFIGS", "main", "print_report", "run"]
    assert all(getattr(bench, name) is not None for name in bench.__all__)


def test_the_interpreter_comparison_is_not_in_the_package():
    # It is tools/bench_interpreters.py, in a source checkout.
    assert not [path.name for path in BENCH_DIR.glob("*interpreter*")]
    done = subprocess.run([sys.executable, "-m", "cgrad.bench", "--compare-interpreters"],
                          env=baselines.child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unrecognized arguments: --compare-interpreters" in done.stderr


def test_sections_run_in_the_order_of_their_letters():
    assert [s.title[:3] for s in rows.SECTIONS] == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"]
    with pytest.raises(ValueError, match="must start with its letter"):
        rows.section("x", "no letter")


@pytest.mark.parametrize("name, expected", [("seed.py", ["import random"]),
                                            ("oploop.py", ["from time import perf_counter"])])
def test_modules_tools_ab_loads_need_only_the_standard_library(name, expected):
    # tools/ab.py loads them by path, beside two builds of cgrad.
    imports = [line for line in (BENCH_DIR / name).read_text().splitlines()
               if line.startswith(("import ", "from "))]
    assert imports == expected


def test_memory_probe_mode_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "cgrad.bench", "--memory-probe", "cgrad", "chain", "100"],
                          env=baselines.child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["engine"] == "cgrad" and probe["nodes"] == 101 and probe["rss_after"] > 0


class Counter:
    """A 'Value' whose a + b returns the number of additions so far."""
    count = 0

    def __init__(self, data):
        self.data = data

    def __add__(self, other):
        Counter.count += 1
        return Counter.count


def test_op_loop_keeps_every_result():
    loop = oploop.compile_op_loop("a + b", unroll=10)
    kept = [None] * 10
    Counter.count = 0
    loop(3, Counter(1.0), Counter(2.0), 0.25, Counter, kept)
    # 30 results, each stored: the last iteration's ten are there, in order.
    assert Counter.count == 30
    assert kept == list(range(21, 31))


def test_the_report_names_its_interpreter():
    info = measure.interpreter_info()
    assert info["implementation"] == platform.python_implementation()
    assert info["python_version"] == platform.python_version()
    assert info["executable"] == os.path.abspath(sys.executable)
    text = measure.describe_interpreter(info)
    assert text.startswith(info["implementation"] + " " + info["version"])
    pypy = {"implementation": "PyPy", "version": "7.3.11", "python_version": "3.9.16"}
    assert measure.describe_interpreter(pypy) == "PyPy 7.3.11 (Python 3.9.16)"


def test_the_reported_executable_has_no_dot_dot(monkeypatch):
    # An interpreter started as /venv/../venv/bin/python reports the same
    # path as one started as /venv/bin/python (a venv's link is not resolved).
    monkeypatch.setattr(sys, "executable", "/work/../work/venv/bin/python")
    assert measure.interpreter_info()["executable"] == "/work/venv/bin/python"


def test_tiny_run_reports_its_interpreter(capsys):
    result = bench.run(bench.CONFIGS["tiny"], measure.SilentProgress(), only=["ops"])
    assert result["meta"]["interpreter"] == measure.interpreter_info()
    assert result["meta"]["python"] == measure.describe_interpreter(measure.interpreter_info())
    bench.print_report(result)
    assert result["meta"]["python"] in capsys.readouterr().out
    (row, *_) = result["sections"][0]["rows"]
    assert row["params"]["results_kept_for"] == oploop.OP_UNROLL
