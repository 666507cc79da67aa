"""Threads: cffi releases the GIL around every C call, so the engine's C
state is not protected by the GIL. Threads building and backpropagating their
own graphs at the same time must get exactly what one thread gets."""
import random
import sys
import threading

import pytest

from cgrad import Value
from cgrad import _nodes, reference
from cgrad._core import REF_MIN, Block, lib

from seed_data import (TAME_STEP_NAMES, backward_in_creation_order, creation_log, random_program,
                       run_program, same_float)

N_THREADS = 4
ROUNDS = 8
STEPS = 1500  # about 3,000 nodes per graph




def make_job(seed):
    rng = random.Random(seed)
    inputs = [rng.uniform(-1.0, 1.0) for _ in range(4)]
    return inputs, random_program(rng, STEPS, TAME_STEP_NAMES)


def compute(V, job):
    """Builds the job's graph, backpropagates from the sum of all its nodes
    and returns every node's data and grad. The reference engine runs its
    closures in cgrad's order (reverse creation order)."""
    inputs, program = job
    if V is reference.Value:
        with creation_log(V) as log:
            leaves, nodes, outcomes = run_program(V, inputs, program)
            root = sum(nodes[len(leaves):], nodes[0])
        backward_in_creation_order(root, log)
    else:
        leaves, nodes, outcomes = run_program(V, inputs, program)
        root = sum(nodes[len(leaves):], nodes[0])
        root.backward()
    return [v.data for v in nodes], [v.grad for v in nodes], outcomes


def assert_same(result, expected):
    data, grads, outcomes = result
    e_data, e_grads, e_outcomes = expected
    assert outcomes == e_outcomes
    assert len(data) == len(e_data)
    assert all(same_float(x, y) for x, y in zip(data, e_data))
    assert all(same_float(x, y) for x, y in zip(grads, e_grads))


@pytest.fixture
def fast_switching():
    """Switch threads as often as CPython allows, to interleave them finely."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_in_threads(fn, args_per_thread):
    barrier = threading.Barrier(len(args_per_thread))
    results = [None] * len(args_per_thread)
    errors = []

    def worker(i, args):
        try:
            barrier.wait()
            results[i] = fn(*args)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_per_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_job_is_deterministic_and_matches_reference():
    """The graphs the threads build are worth checking: mostly finite, with
    grads reaching most nodes, and the single-threaded results are the
    reference engine's, bit for bit (its closures run in cgrad's order)."""
    job = make_job(0)
    first = compute(Value, job)
    data, grads, _ = first
    assert len(data) > 1000
    assert sum(g != 0.0 for g in grads) > 0.9 * len(grads)
    assert all(x == x and abs(x) != float("inf") for x in data)
    assert_same(compute(Value, job), first)
    assert_same(compute(reference.Value, job), first)


def test_threads_get_the_single_thread_results(fast_switching):
    jobs = [make_job(seed) for seed in range(N_THREADS)]
    expected = [compute(Value, job) for job in jobs]
    for _ in range(ROUNDS):
        results = run_in_threads(compute, [(Value, job) for job in jobs])
        for result, want in zip(results, expected):
            assert_same(result, want)


def test_threads_running_the_same_program(fast_switching):
    """Identical programs in every thread: same node sizes, same block
    pressure at the same moments, each thread with its own graph."""
    job = make_job(42)
    expected = compute(Value, job)
    for _ in range(ROUNDS):
        for result in run_in_threads(compute, [(Value, job)] * N_THREADS):
            assert_same(result, expected)


def test_threads_while_others_drop_graphs(fast_switching):
    """Half the threads build and drop graphs (freeing blocks) while the
    others build and check theirs."""
    job = make_job(7)
    expected = compute(Value, job)

    def churn():
        for _ in range(20):
            x = Value(0.1)
            v = x
            for _ in range(500):
                v = (v * 1.5 + x).tanh()
            v.backward()
            del v
        return None

    for _ in range(ROUNDS):
        results = run_in_threads(lambda which: compute(Value, job) if which else churn(),
                                 [(i % 2,) for i in range(N_THREADS)])
        for result in results[1::2]:
            assert_same(result, expected)


def test_threads_with_shared_read_only_leaves(fast_switching):
    """Threads may read the same leaves (e.g. a model's parameters) while
    building their graphs; only the data of shared nodes is read, and each
    thread's grads are on its own nodes."""
    params = [Value(0.05 * i - 0.3) for i in range(30)]

    def forward(seed):
        rng = random.Random(seed)
        xs = [Value(rng.uniform(-1, 1)) for _ in range(30)]
        out = sum(((p * x).tanh() for p, x in zip(params, xs)), Value(0.0))
        # backward from a copy of the parameters' data, so no shared grad is written
        mine = [Value(p.data) for p in params]
        out2 = sum(((p * x).tanh() for p, x in zip(mine, xs)), Value(0.0))
        out2.backward()
        return out.data, [p.grad for p in mine]

    expected = [forward(seed) for seed in range(N_THREADS)]
    for _ in range(ROUNDS):
        assert run_in_threads(forward, [(seed,) for seed in range(N_THREADS)]) == expected


def _full_block():
    """A block with no room left, as another thread may leave one."""
    blk = Block()
    while lib.cg_leaf(blk.ptr, 0.0) >= REF_MIN:
        pass
    return blk


@pytest.mark.parametrize("op", [
    lambda a, b: a + b,
    lambda a, b: a * 2.0,
    lambda a, b: a.tanh(),
    lambda a, b: a ** 2,
    lambda a, b: Value(3.0),
    lambda a, b: type(a)(a.data + b.data, (a, b), 'custom'),
], ids=["add", "mul_const", "tanh", "pow", "leaf", "custom"])
def test_retry_survives_a_fresh_block_filled_by_another_thread(monkeypatch, op):
    """The interleaving the thread tests hit, made deterministic: the current
    block is full, and so is the fresh one by the time this thread uses it
    (here: it is handed out full). The op must still make its node."""
    a, b = Value(1.5), Value(2.0)
    monkeypatch.setattr(_nodes, "current", _full_block())
    handed_out = []

    def new_block_filled_by_others(nodes=0):
        handed_out.append(nodes)
        return _full_block() if len(handed_out) == 1 else Block(nodes)
    monkeypatch.setattr(_nodes, "Block", new_block_filled_by_others)
    out = op(a, b)
    expected = op(reference.Value(1.5), reference.Value(2.0))
    assert out.data == expected.data
    assert handed_out  # the fresh-block path was taken


def test_concurrent_orderings_of_graphs_that_share_nodes():
    """Two threads ordering, at the same moment, graphs that share a long
    chain of interior nodes: each order is complete (the walk's marks live
    in the nodes, so walks must not overlap)."""
    from cgrad._core import lib
    for _ in range(10):
        x = Value(0.5)
        v = x
        for _ in range(20000):
            v = v.tanh()
        roots = [v.sin(), v.cos()]
        sizes = []
        barrier = threading.Barrier(2)

        def order(root):
            barrier.wait()
            sizes.append(lib.cg_sweep_size(root._sweep().sweep))
        threads = [threading.Thread(target=order, args=(r,)) for r in roots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sizes == [20001, 20001]


def test_concurrent_backward_over_shared_nodes():
    """Two threads backpropagating at the same moment from two roots over one
    shared chain: the sweeps take turns, so the grads are those of one
    backward after the other, in one order or the other."""
    def build():
        x = Value(0.5)
        v = x
        for _ in range(20000):
            v = v.tanh()
        return x, [v.sin(), v.cos()]

    def serial(first):
        x, roots = build()
        roots[first].backward()
        roots[1 - first].backward()
        return x.grad

    possible = {serial(0), serial(1)}
    for _ in range(10):
        x, roots = build()
        barrier = threading.Barrier(2)

        def backward(root):
            barrier.wait()
            root.backward()
        threads = [threading.Thread(target=backward, args=(r,)) for r in roots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert x.grad in possible
