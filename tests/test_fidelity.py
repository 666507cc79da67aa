"""Drop-in fidelity: real micrograd programs, unchanged, print on
cgrad exactly what they print on their reference (micrograd 0.1.0, or for the
lecture's and the seed's cells their own Value class).

Each program in tests/fidelity/ runs in a subprocess with tests/fidelity/
shims/cgrad first on PYTHONPATH, so that its `import micrograd...` gives
cgrad, and its stdout is compared with NAME.expected line by line: exactly,
except on the lines where the reference's own output changes between runs
(corpus.ORDER_DEPENDENT). See tests/fidelity/generate_expected.py for how the
expected outputs were made."""
import importlib.util
from pathlib import Path

import pytest

import cgrad

FIDELITY = Path(__file__).resolve().parent / "fidelity"
_spec = importlib.util.spec_from_file_location("fidelity_corpus", FIDELITY / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

# The cgrad under test (the worktree's, or the installed wheel's), for the subprocess.
CGRAD_PATH = [str(corpus.SHIMS / "cgrad"), str(Path(cgrad.__file__).resolve().parent.parent)]

# What each program needs besides cgrad (the reference needs the same).
NEEDS = {
    "micrograd_tests": ["torch"],
    "trace_graph": ["graphviz"],
    "demo": ["sklearn"],
    "lecture_first_half": ["graphviz"],
    "lecture_second_half": ["graphviz", "torch"],
    "seed_exercises": ["torch"],
}

# Programs that do not print what their reference prints today; the lead
# removes each marker when the engine change it names lands (strict: an
# unexpected pass fails, so a stale marker is noticed).
XFAIL = {
    "lecture_first_half": "a last-bit difference, not a drop-in gap: cgrad's tanh is C's tanh(x), the lecture's "
                          "(exp(2x) - 1)/(exp(2x) + 1); at n = 0.8813735870195432 they differ in the "
                          "last bit: o.data 0.7071067811865477 on cgrad, 0.7071067811865476 in the "
                          "lecture, so `1 - o.data**2` prints 0.4999999999999998, not 0.4999999999999999, "
                          "and the grads below o follow (tanh(0.8813735870195432) = 0.70710678118654759..., "
                          "so the lecture's is the correctly rounded one; math.tanh gives cgrad's)",
}


def _skip_without_needs(program):
    for module in NEEDS.get(program, []):
        pytest.importorskip(module)


def _report(diffs):
    return "\n".join(f"line {n}:\n  expected {e}\n  got      {a}" for n, e, a in diffs[:20])


def _params():
    for program in corpus.PROGRAMS:
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[program])] if program in XFAIL else []
        yield pytest.param(program, marks=marks, id=program)


@pytest.mark.parametrize("program", list(_params()))
def test_program_prints_what_it_prints_on_its_reference(program):
    _skip_without_needs(program)
    expected = (FIDELITY / f"{program}.expected").read_text()
    done = corpus.run(program, CGRAD_PATH)
    assert done.returncode == 0, f"{program} failed on cgrad:\n{done.stderr[-3000:]}"
    diffs = corpus.differences(program, expected, done.stdout)
    assert not diffs, f"{program} on cgrad differs from its reference:\n{_report(diffs)}"


# ---- the corpus itself --------------------------------------------------------

@pytest.mark.parametrize("program", [p for p, ref in corpus.PROGRAMS.items() if ref != "micrograd"])
def test_expected_output_is_the_reference_class_output(program):
    """The lecture's and the seed's expected outputs are what their own
    Value classes print (no micrograd needed)."""
    _skip_without_needs(program)
    done = corpus.run(program, corpus.reference_path(corpus.PROGRAMS[program]), hashseed="1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not corpus.differences(program, (FIDELITY / f"{program}.expected").read_text(), done.stdout)


# demo is left out here: on micrograd it takes about a minute.
@pytest.mark.parametrize("program", [p for p, ref in corpus.PROGRAMS.items()
                                     if ref == "micrograd" and p != "demo"])
def test_expected_output_is_micrograd_0_1_0_output(program):
    """The micrograd programs' expected outputs are micrograd 0.1.0's, with a
    different PYTHONHASHSEED than they were made with (so the set orders can
    differ: the tolerance must cover that)."""
    micrograd = pytest.importorskip("micrograd")
    from importlib.metadata import version
    if version("micrograd") != "0.1.0":
        pytest.skip(f"micrograd {version('micrograd')} installed, the corpus is micrograd 0.1.0's")
    assert Path(micrograd.__file__).parent.parent != corpus.SHIMS / "cgrad"
    _skip_without_needs(program)
    done = corpus.run(program, corpus.reference_path("micrograd"), hashseed="7")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not corpus.differences(program, (FIDELITY / f"{program}.expected").read_text(), done.stdout)


def test_comparison_is_exact_outside_order_dependent_lines():
    """The harness's own check: a last-digit change fails on an ordinary
    line and passes on an order-dependent one; any other change fails."""
    assert corpus.differences("demo", "Value(data=0.1, grad=0)\n", "Value(data=0.1, grad=0.0)\n")
    assert corpus.differences("demo", "x 0.30000000000000004\n", "x 0.3\n")
    step = "step 3 loss 0.7705641260584201, accuracy 82.0%"
    assert not corpus.differences("demo", step, step.replace("201,", "202,"))
    assert corpus.differences("demo", step, step.replace("0.77056", "0.77057"))
    assert corpus.differences("demo", step, step.replace("82.0%", "82%"))  # a float printed as an int
    assert corpus.differences("demo", "step 1 loss 1, accuracy 81.0%", "step 1 loss 1.0, accuracy 81.0%")
    assert corpus.differences("demo", "a\nb\n", "a\n")
