"""The reference engine (cgrad/reference.py) is the oracle of the differential
tests, so it must share no code with the engine it checks: a bug in shared
code would be in both answers and no comparison could catch it. These tests
check that it imports nothing of cgrad, statically and by running it with
cgrad made unimportable."""
import ast
import pathlib

from subproc import CGRAD_HOME, assert_clean_run, run_python

# The cgrad under test's (a checkout's, or an installed wheel's).
REFERENCE = pathlib.Path(CGRAD_HOME) / "cgrad" / "reference.py"

# Everything reference.py may import: the standard library's and numpy (for
# its number types and IEEE results where Python raises).
ALLOWED_IMPORTS = {"math", "random", "numpy"}


def test_reference_imports_only_the_standard_library_and_numpy():
    imported = set()
    for node in ast.walk(ast.parse(REFERENCE.read_text(), str(REFERENCE))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import (of cgrad) at line {node.lineno}"
            imported.add(node.module)
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS


def test_reference_runs_with_cgrad_unimportable():
    """Loaded by path in a process where any import of cgrad (its engine,
    its compiled core) raises, the reference builds and backpropagates a graph
    that uses every derived and reflected op, with the right numbers."""
    assert_clean_run(run_python(f"""
        import importlib.util
        import math
        import sys

        class BlockCgrad:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("cgrad", "_cgrad"):
                    raise ImportError(f"{{name}} is blocked: the reference must not import it")
                return None

        sys.meta_path.insert(0, BlockCgrad())
        spec = importlib.util.spec_from_file_location("cgrad.reference", {str(REFERENCE)!r})
        reference = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(reference)

        Value = reference.Value
        a, b = Value(3.0), Value(-2.0)
        # -, /, reflected +, -, *, / and unary minus, over a shared subexpression
        d = a - b
        f = d / b + 2 / a + (3 - a) * b + 1 + (-a) + 0.5 * d
        f.backward()
        expected = 5 / -2 + 2 / 3 + 0 * -2 + 1 - 3 + 0.5 * 5
        df_da = 1 / b.data - 2 / 9 - b.data - 1 + 0.5
        df_db = -a.data / b.data**2 + (3 - a.data) - 0.5
        assert math.isclose(f.data, expected, rel_tol=1e-12), f.data
        assert math.isclose(a.grad, df_da, rel_tol=1e-12), a.grad
        assert math.isclose(b.grad, df_db, rel_tol=1e-12), b.grad
        assert repr(Value(2)) == "Value(data=2, grad=0)"
        try:
            Value("2")
        except TypeError as exc:
            assert "real number" in str(exc), exc
        else:
            raise AssertionError("Value('2') did not raise TypeError")

        loaded = sorted(name for name in sys.modules
                        if name.split(".")[0] in ("cgrad", "_cgrad") and name != "cgrad.reference")
        assert not loaded, loaded
        print("ok")
    """), stdout="ok\n")
