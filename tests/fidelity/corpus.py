"""The fidelity corpus: real micrograd programs (see each file's header), the
reference each one's .expected output comes from, and how a run is compared
with it. Used by generate_expected.py and tests/test_fidelity.py."""
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIMS = HERE / "shims"

# program -> the `micrograd` its .expected output was made with:
#   "micrograd": micrograd 0.1.0 itself, as installed (pip install micrograd==0.1.0)
#   "lecture_first_half", "lecture_second_half": the lecture's own Value
#                class of that notebook (shims/lecture_*), which micrograd
#                0.1.0 cannot stand in for (no label, tanh, exp)
#   "seed":      the seed exercise's own Value class (shims/seed; no exp, log
#                in micrograd 0.1.0)
PROGRAMS = {
    "readme_example": "micrograd",
    "micrograd_tests": "micrograd",
    "trace_graph": "micrograd",
    "demo": "micrograd",
    "lecture_first_half": "lecture_first_half",
    "lecture_second_half": "lecture_second_half",
    "seed_exercises": "seed",
}

# Lines whose numbers the reference itself prints differently from run to
# run: its backward orders a node's parents by iterating a set of Values,
# which follows their ids, so a grad that is the sum of three or more terms
# can come out in a different order and differ in its last bits (the README
# explains cgrad's order). On these lines, and only here, numbers are
# compared to a relative 1e-12; every other character must be identical.
# Each pattern is checked to match where runs of the reference were seen to
# differ (generate_expected.py reports them).
ORDER_DEPENDENT = {
    # the grads of a..f (g, the root, has grad 1)
    "readme_example": r"[a-f] Value\(.*",
    # the same expression's grads, in micrograd's test_more_ops
    "micrograd_tests": r"test_more_ops .*",
    # a first-layer weight's grad sums 4 paths, in set order: not seen to vary
    # in 8 runs on this machine, but nothing fixes that order on another
    "trace_graph": r"  parameter grads: .*",
    # losses after the first SGD step (step 0 is before any update)
    "demo": r"step [1-9]\d* loss .*",
    # the training loop's losses after the first update, and the final predictions
    "lecture_second_half": r"([1-9]\d* \S+|\[.*\])",
}

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def reference_path(reference):
    """PYTHONPATH entries that make `import micrograd` give this reference."""
    return [] if reference == "micrograd" else [str(SHIMS / reference)]


def run(program, pythonpath, hashseed="0"):
    """Runs tests/fidelity/PROGRAM.py with these PYTHONPATH entries first;
    returns the CompletedProcess (stdout and stderr as text)."""
    env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=os.pathsep.join(pythonpath))
    return subprocess.run([sys.executable, str(HERE / f"{program}.py")], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=600)


def same_line(expected, actual, order_dependent):
    """Whether two output lines agree: identical, or, on an order-dependent
    line, identical apart from numbers within a relative 1e-12."""
    if expected == actual:
        return True
    if not order_dependent:
        return False
    if NUMBER.split(expected) != NUMBER.split(actual):
        return False
    pairs = zip(NUMBER.findall(expected), NUMBER.findall(actual))
    return all(e == a or (_is_float(e) and _is_float(a) and _close(float(e), float(a)))
               for e, a in pairs)


def _is_float(text):
    """Printed as a float (so `1` against `1.0`, an int against a float, is
    never taken as close)."""
    return "." in text or "e" in text.lower()


def _close(e, a):
    return abs(e - a) <= 1e-12 * max(abs(e), 1.0)


def differences(program, expected, actual):
    """The lines where actual differs from expected, as (line number,
    expected, actual); an empty list when they agree."""
    pattern = ORDER_DEPENDENT.get(program)
    exp_lines, act_lines = expected.splitlines(), actual.splitlines()
    diffs = []
    for i in range(max(len(exp_lines), len(act_lines))):
        e = exp_lines[i] if i < len(exp_lines) else "<no line>"
        a = act_lines[i] if i < len(act_lines) else "<no line>"
        order_dependent = pattern is not None and re.fullmatch(pattern, e) is not None
        if not same_line(e, a, order_dependent):
            diffs.append((i + 1, e, a))
    return diffs
