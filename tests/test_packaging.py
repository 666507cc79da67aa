"""Packaging checks quick enough for the normal suite: the header-reading
builder, the single-sourced version and metadata, and the messages of a
missing or stale compiled core. The heavy checks (wheel, sdist, sanitizers,
valgrind) are in .ci/run.

Tests that need the source checkout (build_ffi.py and src/ beside tests/)
skip where the suite runs from a copy of tests/ against an installed cgrad.
"""
import ast
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import cgrad
from cgrad import _core

ROOT = pathlib.Path(__file__).resolve().parent.parent
IN_CHECKOUT = (ROOT / "build_ffi.py").is_file() and (ROOT / "src" / "cgrad.h").is_file()
needs_checkout = pytest.mark.skipif(not IN_CHECKOUT, reason="needs the source checkout")


def load_build_ffi():
    spec = importlib.util.spec_from_file_location("cgrad_build_ffi_under_test", ROOT / "build_ffi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_ffi():
    if not IN_CHECKOUT:
        pytest.skip("needs the source checkout")
    return load_build_ffi()


def header_functions(text):
    """Names of the functions the header declares (comments removed)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\b(cg_\w+)\s*\(", text))


def run_python(code, cwd, env_extra=None):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# ---- the builder reads the header ----------------------------------------------

@needs_checkout
def test_cdef_is_the_header_and_declares_every_function(build_ffi):
    header = (ROOT / "src" / "cgrad.h").read_text()
    cdef = build_ffi.header_declarations()
    assert "#" not in "".join(line.lstrip()[:1] for line in cdef.splitlines())
    funcs = header_functions(header)
    assert len(funcs) >= 20 and {"cg_leaf", "cg_sweep_begin", "cg_block_free"} <= funcs
    # cffi parses the cdef and knows every one of them
    from cffi import FFI
    ffi = FFI()
    ffi.cdef(cdef)
    ffi.cdef(build_ffi.BUILD_INFO_CDEF)
    declared = {key.split(" ", 1)[1] for key in ffi._parser._declarations if key.startswith("function ")}
    assert funcs <= declared
    # and nothing but the header's functions and the two build facts
    assert declared - funcs == {"cgrad_build_hash", "cgrad_build_flags"}


def test_compiled_module_has_every_header_function():
    names = set(dir(_core.lib))
    if IN_CHECKOUT:
        funcs = header_functions((ROOT / "src" / "cgrad.h").read_text())
        missing = sorted(funcs - names)
        assert not missing, f"the compiled module lacks {missing}: rebuild it"
    assert {"cg_leaf", "cg_sweep_begin", "cgrad_build_hash", "cgrad_build_flags"} <= names


@needs_checkout
def test_builder_compiles_every_c_file_strictly(build_ffi, monkeypatch):
    assert build_ffi.SOURCES == sorted(p.name for p in (ROOT / "src").glob("*.c"))
    monkeypatch.delenv("CGRAD_WERROR", raising=False)
    monkeypatch.delenv("CGRAD_SANITIZE", raising=False)
    args = build_ffi.compile_args()
    assert "-std=c11" in args and "-ffp-contract=off" in args
    assert not any("fast-math" in a and not a.startswith("-fno-") for a in args)
    assert "-Werror" not in args and not any(a.startswith("-fsanitize") for a in args)
    monkeypatch.setenv("CGRAD_WERROR", "1")
    assert "-Werror" in build_ffi.compile_args()
    monkeypatch.setenv("CGRAD_SANITIZE", "1")
    args = build_ffi.compile_args()
    assert "-fsanitize=address,undefined" in args
    assert "-fsanitize=address,undefined" in build_ffi.link_args()
    assert not any("fast-math" in a and not a.startswith("-fno-") for a in args)


@needs_checkout
def test_source_hash_is_the_same_in_builder_and_package(build_ffi, tmp_path):
    src = ROOT / "src"
    assert build_ffi.source_hash(src) == _core._source_hash(str(src))
    # it sees every .c and .h, and nothing else
    copy = tmp_path / "src"
    shutil.copytree(src, copy)
    before = _core._source_hash(str(copy))
    (copy / "notes.txt").write_text("not a source")
    assert _core._source_hash(str(copy)) == before
    (copy / "new_kernel.c").write_text("/* a new kernel */\n")
    assert _core._source_hash(str(copy)) != before
    assert build_ffi.source_hash(copy) == _core._source_hash(str(copy))


@needs_checkout
def test_module_was_built_from_this_checkout():
    built = _core.ffi.string(_core.lib.cgrad_build_hash()).decode()
    assert built == _core._source_hash(str(ROOT / "src"))


def test_build_flags_are_recorded():
    flags = _core.ffi.string(_core.lib.cgrad_build_flags()).decode()
    if not sys.platform.startswith("win"):
        assert "-ffp-contract=off" in flags
    assert "fast-math" not in flags.replace("-fno-fast-math", "")


# ---- version and metadata ---------------------------------------------------------

def test_version_is_single_sourced():
    assert re.fullmatch(r"\d+\.\d+\.\d+([abc]|rc|\.dev|\.post)?\d*", cgrad.__version__)
    init = pathlib.Path(cgrad.__file__).read_text()
    literal = [node for node in ast.parse(init).body if isinstance(node, ast.Assign)
               and any(getattr(t, "id", None) == "__version__" for t in node.targets)]
    assert len(literal) == 1 and isinstance(literal[0].value, ast.Constant)
    try:
        from importlib.metadata import PackageNotFoundError, version
        installed = version("cgrad")
    except PackageNotFoundError:  # a plain in-place build, never installed
        return
    assert installed == cgrad.__version__


@needs_checkout
def test_pyproject_metadata():
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # older Pythons (PyPy 3.9): pytest's own TOML reader
        import tomli as tomllib
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cgrad.__version__"}
    assert project["license"] == "MIT" and (ROOT / "LICENSE").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert project["requires-python"].startswith(">=3.")
    assert any(c.startswith("Programming Language :: Python :: 3") for c in project["classifiers"])
    assert any(d.startswith("cffi") for d in meta["build-system"]["requires"])
    deps = [re.split(r"[<>=!~; \[]", d)[0] for d in project["dependencies"]]
    assert {"cffi", "numpy"} <= set(deps)
    assert "Programming Language :: Python :: Implementation :: PyPy" in project["classifiers"]
    extras = project["optional-dependencies"]
    # every package the tests use; torch pinned (never a CUDA build) and only
    # on CPython (no PyPy build)
    assert "torch==2.13.0; platform_python_implementation == 'CPython'" in extras["test"]
    assert {"pytest", "hypothesis", "graphviz", "matplotlib", "micrograd==0.1.0", "mypy"} <= set(extras["test"])
    assert extras["plot"] == ["matplotlib"] and extras["viz"] == ["graphviz"]
    cibw = meta["tool"]["cibuildwheel"]
    assert cibw["test-extras"] == ["test"] and "pytest" in cibw["test-command"]
    assert {"pp39-*", "pp310-*"} <= set(cibw["build"].split())
    assert not any(s.startswith("pp") for s in cibw["skip"])


def test_test_extra_brings_every_package_the_tests_import():
    """Each top-level module the tests import is the standard library's,
    cgrad's, the tests' own, or a package the test extra (or cgrad's
    dependencies) brings: a fresh `pip install -e '.[test]'` skips nothing
    for want of a package."""
    if not IN_CHECKOUT:
        pytest.skip("needs the source checkout")
    try:
        import tomllib
    except ImportError:
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    provided = {re.split(r"[<>=!~; \[]", r)[0].lower() for r in requirements}
    # tomli: listed with a marker; tomllib: the standard library's from 3.11;
    # _pytest: pytest's
    provided |= {"tomli", "tomllib", "_pytest"}
    ours = {"cgrad", "seed_data", "conftest"} | {p.stem for p in (ROOT / "tests").glob("*.py")}
    imported = set()
    for path in (ROOT / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip"
                  and isinstance(node.args[0], ast.Constant)):
                imported.add(node.args[0].value.split(".")[0])
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"]).resolve()

    def in_stdlib(module):
        if module in sys.builtin_module_names:  # (PyPy's builtins has no __spec__)
            return True
        spec = importlib.util.find_spec(module)
        return spec is not None and (spec.origin in ("built-in", "frozen") or (
            spec.origin is not None and stdlib in pathlib.Path(spec.origin).resolve().parents
            and "site-packages" not in spec.origin))

    third_party = {m for m in imported - ours if not in_stdlib(m)}
    assert third_party <= provided, f"not in the test extra: {sorted(third_party - provided)}"


@needs_checkout
def test_manifest_ships_what_a_build_from_scratch_needs():
    manifest = (ROOT / "MANIFEST.in").read_text()
    for line in ("recursive-include src *.c *.h", "build_ffi.py", "graft tests", "LICENSE"):
        assert line in manifest


def test_installed_where_expected():
    """CGRAD_EXPECT_INSTALLED=1 (set by .ci/run for its run against the
    wheel) asserts that cgrad is imported from site-packages."""
    if os.environ.get("CGRAD_EXPECT_INSTALLED") != "1":
        pytest.skip("only for the run against an installed wheel")
    where = pathlib.Path(cgrad.__file__).resolve().parent.parent
    site = {pathlib.Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert where in site, f"cgrad imported from {where}, not site-packages {site}"
    assert not (where / "src" / "cgrad.h").exists()


# ---- a missing or stale compiled core ---------------------------------------------

def test_missing_module_fails_with_build_instructions(tmp_path):
    # the compiled module made unimportable in a fresh interpreter
    result = run_python("""
        import sys
        sys.modules["cgrad._cgrad"] = None
        import cgrad
    """, cwd=tmp_path, env_extra={"PYTHONPATH": str(pathlib.Path(cgrad.__file__).parent.parent)})
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "compiled core" in result.stderr and "missing" in result.stderr
    assert "pip install -e ." in result.stderr and "build_ext --inplace" in result.stderr


def test_package_without_module_fails_with_build_instructions(tmp_path):
    # a copy of the Python package, no compiled module: what a checkout that
    # was never built looks like
    pkg = tmp_path / "cgrad"
    shutil.copytree(pathlib.Path(cgrad.__file__).parent, pkg,
                    ignore=shutil.ignore_patterns("_cgrad*", "__pycache__"))
    # (an editable install's import hook would find the checkout's module: drop it)
    no_editable_hook = """
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path
                            if "__editable__" not in getattr(f, "__module__", "")]
    """
    no_editable_hook = textwrap.dedent(no_editable_hook)
    result = run_python(no_editable_hook + "import cgrad", cwd=tmp_path)
    assert result.returncode != 0
    assert "compiled core" in result.stderr and "pip install -e ." in result.stderr
    # never a silent fallback: nothing of cgrad imports without it
    result = run_python(no_editable_hook + "import cgrad.engine", cwd=tmp_path)
    assert result.returncode != 0 and "compiled core" in result.stderr


def make_tree(tmp_path, with_sources):
    """A copy of the package with the compiled module that the tests use,
    with (a checkout) or without (an install) src/ and build_ffi.py beside it."""
    import cgrad._cgrad as compiled
    pkg = tmp_path / "cgrad"
    shutil.copytree(pathlib.Path(cgrad.__file__).parent, pkg,
                    ignore=shutil.ignore_patterns("_cgrad*", "__pycache__"))
    shutil.copy2(compiled.__file__, pkg / pathlib.Path(compiled.__file__).name)
    if with_sources:
        shutil.copytree(ROOT / "src", tmp_path / "src")
        shutil.copy2(ROOT / "build_ffi.py", tmp_path / "build_ffi.py")
    return tmp_path


IMPORT_AND_USE = """
    import cgrad
    a = cgrad.Value(2.0)
    b = (a * a + 1).tanh()
    b.backward()
    print("ok", a.grad)
"""


@needs_checkout
def test_fresh_checkout_imports(tmp_path):
    result = run_python(IMPORT_AND_USE, cwd=make_tree(tmp_path, with_sources=True))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


@needs_checkout
@pytest.mark.parametrize("change", ["header", "new_c_file", "c_file"])
def test_stale_module_fails_with_rebuild_instructions(tmp_path, change):
    tree = make_tree(tmp_path, with_sources=True)
    src = tree / "src"
    if change == "header":
        with open(src / "cgrad.h", "a") as f:
            f.write("\n/* a declaration added since the build */\n")
    elif change == "new_c_file":
        (src / "zz_new_kernel.c").write_text("/* a kernel added since the build */\n")
    else:
        with open(src / "ops.c", "a") as f:
            f.write("\n/* edited since the build */\n")
    result = run_python(IMPORT_AND_USE, cwd=tree)
    assert result.returncode != 0
    assert "ImportError: stale build" in result.stderr
    assert "Rebuild it" in result.stderr and "pip install -e ." in result.stderr


@needs_checkout
def test_installed_layout_is_not_checked_for_staleness(tmp_path):
    # as in site-packages: no build_ffi.py beside the package, so even a src/
    # there (another project's) is not compared with
    tree = make_tree(tmp_path, with_sources=False)
    (tree / "src").mkdir()
    (tree / "src" / "cgrad.h").write_text("/* someone else's header */\n")
    result = run_python(IMPORT_AND_USE, cwd=tree)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
