"""README.md is what a newcomer runs: every fenced Python block runs and prints
what its `# prints ...` comments say, every shell command either runs here
(itself, or a cheap equivalent) or is listed below with the reason it does not,
every link points to a file that exists, and the whole fits in one screen's
worth of reading (under 10 KB)."""
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from subproc import CGRAD_HOME, assert_clean_run, child_env, run_python

ROOT = pathlib.Path(CGRAD_HOME)
README = ROOT / "README.md"
DOCS = [README, ROOT / "docs" / "bench.md", ROOT / "docs" / "building.md"]

pytestmark = pytest.mark.skipif(
    not README.is_file(), reason="applies to a checkout: an installed cgrad has no README.md next to it")

# The one convention for stated output in the README's Python blocks.
PRINTS = re.compile(r"#\s*prints\s+(.*\S)\s*$")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

# Shell commands the test runs: README command -> (what runs, how long it may
# take, a check of its output). `python` is this interpreter. Where the README's
# command is long, its cheap equivalent runs instead, and says so.
MICROGRAD_SCRIPT = """\
from micrograd.engine import Value
from micrograd.nn import MLP
import cgrad
model = MLP(2, [4, 1])
loss = sum((model([x, -x]) - y) ** 2 for x, y in [(1.0, 1.0), (-1.0, -1.0)])
loss.backward()
print(type(loss).__module__, Value is cgrad.Value, len(model.parameters()))
"""
RUN = {
    # the full bench takes about 4 minutes, --quick about one: --tiny runs every section in seconds
    "python -m cgrad.bench --quick": ("python -m cgrad.bench --tiny", "Targets met: "),
    "python -m cgrad.micrograd train.py": ("python -m cgrad.micrograd train.py", "cgrad.engine True 17\n"),
    "python -m cgrad.demo": ("python -m cgrad.demo", "accuracy 100%"),
}
# Shell commands the test does not run, each with the reason and what covers it.
NOT_RUN = {
    "pip install -e '.[test]' && python -m cgrad.bench":
        "installing would repoint this environment's cgrad; the install is .ci/run step 2, and the bench is "
        "run here with --tiny (above)",
    "python -m pytest -q": "the suite this test belongs to; .ci/run step 4 runs it",
    "pip wheel . --no-deps -w dist":
        "compiles the C core again; .ci/run step 7 builds the wheel and step 8 runs the suite against it",
    "python tools/bench_interpreters.py":
        "needs PyPy with this cgrad built for it; tests/test_bench_interpreters.py runs it with --tiny",
    "python tools/ab.py main":
        "needs a git checkout and builds two copies of the C core; tests/test_bench_ab.py runs it as "
        "`HEAD HEAD --tiny`",
    "apt-get install pypy3 pypy3-dev": "installs system packages (root); .ci/run installs them for its PyPy run",
    "pypy3 -m venv ~/pypy && . ~/pypy/bin/activate": "makes a venv in the home directory; .ci/run makes its own",
    "pip install 'numpy<2' && pip install -e '.[test]' && python -m pytest -q":
        "installs into the PyPy venv; .ci/run builds cgrad there and runs the suite on PyPy",
}


def fenced_blocks(path, *languages):
    return [body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang in languages]


def shell_commands(path):
    """Each command of the ```bash / ```sh blocks, continuation lines joined,
    comments dropped, spacing normalised."""
    commands = []
    for body in fenced_blocks(path, "bash", "sh"):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def normalised(command):
    return shlex.join(shlex.split(command))


def test_readme_fits_one_screen_of_reading():
    assert len(README.read_bytes()) < 10_000


@pytest.mark.parametrize("index", range(len(fenced_blocks(README, "python"))) if README.is_file() else [])
def test_python_block_runs_and_prints_what_it_says(index):
    block = fenced_blocks(README, "python")[index]
    assert "# ->" not in block, "the README states output as `# prints ...`"
    stated = [m.group(1) for m in map(PRINTS.search, block.splitlines()) if m]
    result = run_python(block)
    assert_clean_run(result)
    if stated:
        assert result.stdout.splitlines() == stated, result


def test_every_shell_command_is_run_or_says_why_not():
    commands = shell_commands(README)
    assert commands, "the README has shell commands (the quickstart at least)"
    run = {normalised(c) for c in RUN}
    skipped = {normalised(c) for c in NOT_RUN}
    assert not run & skipped
    unaccounted = [c for c in commands if c not in run | skipped]
    assert not unaccounted, f"README commands neither run nor listed with a reason: {unaccounted}"
    stale = sorted((run | skipped) - set(commands))
    assert not stale, f"listed here but no longer in the README: {stale}"


@pytest.mark.parametrize("command", sorted(RUN))
def test_shell_command_runs(command, tmp_path):
    argv, expected = RUN[command]
    argv = [sys.executable if word == "python" else word for word in shlex.split(argv)]
    (tmp_path / "train.py").write_text(MICROGRAD_SCRIPT)
    result = subprocess.run(argv, cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert expected in result.stdout, result.stdout[-3000:]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_point_to_files_that_exist(doc):
    targets = [t for t in LINK.findall(doc.read_text(encoding="utf-8")) if "://" not in t]
    if doc == README:
        assert {"docs/bench.md", "docs/building.md", "docs/design.md"} <= set(targets)
    missing = [t for t in targets if not (doc.parent / t.split("#")[0]).exists()]
    assert not missing, f"{doc.name} links to files that do not exist: {missing}"
