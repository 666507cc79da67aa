"""Property-based differential tests: random expression DAGs with shared
subexpressions, built identically in cgrad and in the pure-Python reference
engine, must give bit-identical data and fail in the same steps with the same
exceptions. Their grads must be bit-identical to the reference's closures run
in cgrad's order (reverse creation order), and equal to the reference's own
backward (micrograd's depth-first order) up to the order of the sums."""
import math

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from cgrad import Value, gradcheck  # noqa: E402
from cgrad import reference  # noqa: E402

from seed_data import (CONSTANTS, POSITIVE_BASES, STEP_NAMES, backward_in_creation_order,  # noqa: E402
                       creation_log, run_program, same_float)

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

inputs_strategy = st.lists(st.floats(min_value=-3.0, max_value=3.0, allow_nan=False),
                           min_size=1, max_size=4)
# Operand indices: negative ones count back from the newest node, which makes
# deep chains; large ones land anywhere, which makes sharing.
index = st.one_of(st.integers(-4, -1), st.integers(0, 10**6))
step = st.tuples(st.sampled_from(STEP_NAMES), index, index, index,
                 st.integers(0, len(CONSTANTS) - 1), st.integers(0, len(POSITIVE_BASES) - 1))
program_strategy = st.lists(step, min_size=1, max_size=50)


def assert_same_nodes(nodes, ref_nodes, what):
    assert len(nodes) == len(ref_nodes)
    for i, (v, r) in enumerate(zip(nodes, ref_nodes)):
        assert same_float(getattr(v, what), getattr(r, what)), \
            f"node {i}: {what} {getattr(v, what)!r} != reference {getattr(r, what)!r}"


def assert_close_grads(nodes, ref_nodes):
    """Grads equal up to rounding: each is a sum whose terms the two orders
    add in different orders, so allow a few ulps of the largest grad."""
    scale = max((abs(r.grad) for r in ref_nodes if math.isfinite(r.grad)), default=0.0)
    for i, (v, r) in enumerate(zip(nodes, ref_nodes)):
        if math.isfinite(r.grad):
            assert v.grad == pytest.approx(r.grad, rel=1e-12, abs=1e-13 * scale), f"node {i}"
        else:
            assert same_float(v.grad, r.grad) or not math.isfinite(v.grad), f"node {i}"


@SETTINGS
@given(inputs=inputs_strategy, program=program_strategy, second_root=st.integers(0, 10**6))
def test_random_dag_matches_reference(inputs, program, second_root):
    leaves, nodes, outcomes = run_program(Value, inputs, program)
    with creation_log(reference.Value) as log:
        ref_leaves, ref_nodes, ref_outcomes = run_program(reference.Value, inputs, program)
    _, dfs_nodes, _ = run_program(reference.Value, inputs, program)

    # the same steps failed, with the same exceptions
    assert outcomes == ref_outcomes
    assert_same_nodes(nodes, ref_nodes, "data")
    assert [v._op for v in nodes] == [r._op for r in ref_nodes]

    # backward from the last node, then again from another one: grads
    # accumulate the same way in both engines
    k = second_root % len(nodes)
    for root in (-1, k):
        nodes[root].backward()
        backward_in_creation_order(ref_nodes[root], log)
        assert_same_nodes(nodes, ref_nodes, "grad")
        dfs_nodes[root].backward()
        assert_close_grads(nodes, dfs_nodes)


@SETTINGS
@given(inputs=inputs_strategy, program=program_strategy)
def test_random_dag_prev_graph_matches_reference(inputs, program):
    """Seen through _prev, each node has as many operands as the reference's,
    holding the same data."""
    _, nodes, _ = run_program(Value, inputs, program)
    _, ref_nodes, _ = run_program(reference.Value, inputs, program)

    def key(u):
        return (math.isnan(u.data), 0.0 if math.isnan(u.data) else u.data)
    for v, r in zip(nodes, ref_nodes):
        assert len(v._prev) == len(r._prev)
        assert [key(p) for p in sorted(v._prev, key=key)] == \
               [key(p) for p in sorted(r._prev, key=key)]


# One op at a time at random points: analytic grads agree with central
# differences wherever the function is smooth at the scale of the step.
SMOOTH_UNARY = {
    "exp": (lambda a: a.exp(), -5.0, 5.0),
    "log": (lambda a: a.log(), 0.1, 10.0),
    "tanh": (lambda a: a.tanh(), -4.0, 4.0),
    "sin": (lambda a: a.sin(), -10.0, 10.0),
    "cos": (lambda a: a.cos(), -10.0, 10.0),
    "sigmoid": (lambda a: a.sigmoid(), -10.0, 10.0),
    "pow2": (lambda a: a**2, -5.0, 5.0),
    "pow_half": (lambda a: a**0.5, 0.1, 10.0),
    "pow_minus1": (lambda a: a**-1, 0.2, 10.0),
    "rpow": (lambda a: 2.0**a, -5.0, 5.0),
    "rdiv": (lambda a: 3 / a, 0.2, 10.0),
}


@SETTINGS
@given(name=st.sampled_from(sorted(SMOOTH_UNARY)), t=st.floats(0.0, 1.0))
def test_unary_ops_match_central_differences(name, t):
    fn, lo, hi = SMOOTH_UNARY[name]
    assert gradcheck(fn, [lo + t * (hi - lo)], rtol=1e-5, atol=1e-6)


@SETTINGS
@given(x=st.floats(0.2, 3.0), y=st.floats(-2.0, 2.0))
def test_binary_ops_match_central_differences(x, y):
    for fn in (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
               lambda a, b: b / a, lambda a, b: a**b, lambda a, b: (a * b).tanh() * a):
        assert gradcheck(fn, [x, y], rtol=1e-5, atol=1e-6)
