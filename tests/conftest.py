"""Shared fixtures for cgrad's tests, the stress tests' opt-in and the hang guard."""
import faulthandler
import gc
import os
import sys

import pytest

# Every test, its fixtures' setup and teardown included, gets this many
# seconds (CGRAD_TEST_TIMEOUT; 0: no limit); past it the whole run stops
# with every thread's traceback and exit status 1. A backstop against hangs
# (a thread test that deadlocks in the pytest process would otherwise stall
# the suite, and CI, forever), not a speed target: the slowest test takes a
# minute under the sanitizers, and the tests that run a child process give
# it at most 300 s.
HANG_SECONDS = float(os.environ.get("CGRAD_TEST_TIMEOUT", "900"))
# The terminal, for the hang guard's tracebacks (pytest_configure): dumped to
# pytest's captured stderr they would vanish with the process.
_terminal_fd = None


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
                   "bit against one thread, for tens of seconds (tests/test_stress.py); not in the default "
                   "run: `pytest -m stress` runs them alone, `pytest -m 'stress or not stress'` everything")
    global _terminal_fd
    _terminal_fd = os.dup(sys.stderr.fileno())  # pytest's capture is off during configure


def pytest_unconfigure(config):
    os.close(_terminal_fd)


def pytest_collection_modifyitems(config, items):
    """Stress tests run only when asked for: with any -m expression (which
    then selects as usual) or with their file named on the command line.
    The default run (`python -m pytest -q`) leaves them out."""
    if config.getoption("markexpr"):
        return
    here = config.invocation_params.dir
    named_files = {(here / arg.split("::")[0]).resolve() for arg in config.args}
    stress = [item for item in items if item.get_closest_marker("stress")
              and item.path.resolve() not in named_files]
    if stress:
        config.hook.pytest_deselected(items=stress)
        left_out = set(stress)
        items[:] = [item for item in items if item not in left_out]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """The hang guard (HANG_SECONDS): faulthandler's watchdog is a C thread
    that needs no GIL, so it fires even when the hung thread holds it, and
    PyPy has it too."""
    if HANG_SECONDS > 0:
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True, file=_terminal_fd)
    yield
    if HANG_SECONDS > 0:
        faulthandler.cancel_dump_traceback_later()
