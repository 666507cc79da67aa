"""Shared fixtures for cgrad's tests."""
import gc

import pytest


@pytest.fixture(scope="session")
def torch():
    """torch, in float64 and on one thread; skips the test where torch is absent."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.fixture
def gc_disabled():
    """Runs the test with the cycle collector off, so that anything freed
    during the test was freed by reference counting. (pytest may leave
    garbage of its own between this fixture and the test: a test that counts
    what gc.collect() finds calls it once first.) On PyPy, which has no
    reference counting, this stops the GC's automatic major collections:
    memory is freed only by an explicit gc.collect() then."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@pytest.fixture
def gc_frozen():
    """Moves every object that exists before the test out of the collector's
    sight (gc.freeze), so that the test's many gc.collect() calls examine only
    what the test made and stay fast with torch and friends loaded. PyPy has
    no gc.freeze: there this only collects first (and each gc.collect()
    walks the whole heap, so such tests take fewer rounds on PyPy)."""
    gc.collect()
    if not hasattr(gc, "freeze"):
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "stress: threads, custom ops, replay, fork and finalizers at once, checked bit for "
                   "bit against one thread (tests/test_stress.py; run alone with `pytest -m stress`)")
