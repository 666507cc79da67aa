"""Types for editors: cgrad ships a stub (.pyi) beside each public
module and a py.typed marker, so that mypy and editors check user code
against its API.

- mypy --strict passes on a user program using the whole public API
  (tests/typing/user_program.py), and reports each mistake in
  tests/typing/wrong_program.py, so the stubs do type something;
- stubtest compares the stubs with the code, so neither drifts silently
  (the meant differences are in tests/typing/stubtest_allowlist.txt).

Run against a checkout, mypy finds the stubs through MYPYPATH; run against an
installed wheel (.ci/run's last step), it finds the package in site-packages,
which it reads only if the wheel ships py.typed and the stubs."""
import os
import pathlib
import re
import runpy
import shutil
import subprocess
import sys
import sysconfig

import pytest

import cgrad

pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")

HERE = pathlib.Path(__file__).resolve().parent / "typing"
PACKAGE = pathlib.Path(cgrad.__file__).resolve().parent
SITE_PACKAGES = {pathlib.Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
INSTALLED = PACKAGE.parent in SITE_PACKAGES
PUBLIC_MODULES = ["__init__", "engine", "functional", "bulk", "nn", "optim", "viz", "gradcheck"]
ERROR = re.compile(r"^(?P<file>[^:\n]+\.py):(?P<line>\d+): error: (?P<message>.*)$", re.M)


def run_mypy_tool(args, cwd, env_extra=None):
    """`python -m <args>` from cwd, with this test run's cgrad visible (the
    checkout through MYPYPATH; an installed one is found by itself)."""
    if sys.implementation.name == "pypy":
        pytest.skip("mypy does not run on PyPy 3.9 (it imports CPython's _symtable); "
                    "the CPython run checks the stubs")
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    if not INSTALLED:
        env["MYPYPATH"] = str(PACKAGE.parent)
        env["PYTHONPATH"] = str(PACKAGE.parent)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory):
    """{file name: [(line, message)]} of one `mypy --strict` run over both
    programs, and mypy's whole output."""
    work = tmp_path_factory.mktemp("mypy")
    for name in ("user_program.py", "wrong_program.py"):
        shutil.copy(HERE / name, work / name)
    result = run_mypy_tool(["mypy", "--strict", "--cache-dir", str(work / "cache"),
                            "user_program.py", "wrong_program.py"], cwd=work)
    errors = {}
    for m in ERROR.finditer(result.stdout):
        errors.setdefault(m["file"], []).append((int(m["line"]), m["message"]))
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2: mypy itself failed
    return errors, result.stdout + result.stderr


def test_package_ships_py_typed_and_a_stub_per_public_module():
    assert (PACKAGE / "py.typed").is_file()
    missing = [m for m in PUBLIC_MODULES if not (PACKAGE / f"{m}.pyi").is_file()]
    assert not missing, f"no stub beside cgrad/{missing}.py"


def test_user_program_passes_mypy_strict(mypy_errors):
    errors, output = mypy_errors
    assert "user_program.py" not in errors, output


def test_user_program_runs():
    # The typed program is also a working one: the stubs describe what runs.
    runpy.run_path(str(HERE / "user_program.py"), run_name="__main__")


def test_mypy_catches_each_mistake(mypy_errors):
    errors, output = mypy_errors
    lines = (HERE / "wrong_program.py").read_text().splitlines()
    expected = {i for i, line in enumerate(lines, 1) if "# error" in line}
    assert len(expected) >= 8
    assert {line for line, _ in errors.get("wrong_program.py", [])} == expected, output


def test_stubs_match_the_code(tmp_path):
    """stubtest over the stubs alone (copied out, so that it checks them
    against the imported code rather than the .py files beside them)."""
    stubs = tmp_path / "stubs" / "cgrad"
    stubs.mkdir(parents=True)
    for stub in PACKAGE.glob("*.pyi"):
        shutil.copy(stub, stubs / stub.name)
    result = run_mypy_tool(["mypy.stubtest", "cgrad", "--concise",
                            "--allowlist", str(HERE / "stubtest_allowlist.txt")],
                           cwd=tmp_path, env_extra={"MYPYPATH": str(tmp_path / "stubs")})
    assert result.returncode == 0, result.stdout + result.stderr
