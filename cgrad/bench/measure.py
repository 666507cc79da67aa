"""How the bench measures: the cycle collector on or off around a
measurement, timing loops, progress on stderr, and which interpreter runs
(PyPy's JIT needs warming up before anything is timed)."""
import contextlib
import gc
import os
import platform
import sys
from time import perf_counter


@contextlib.contextmanager
def cycle_collector(enabled):
    """Runs the block with Python's cycle collector on or off, starting from
    a clean heap, and restores the collector's previous state."""
    was_enabled = gc.isenabled()
    gc.collect()
    if enabled:
        gc.enable()
    else:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


def scaled(samples, factor):
    """{column: [seconds]} -> {column: [seconds * factor]}, e.g. 1e3 for ms."""
    return {column: [x * factor for x in xs] for column, xs in samples.items()}


class Progress:
    """Progress on stderr: one line per repeat, with each step written as it
    starts ("cgrad build... backward... "), so a slow step shows what it is."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.open = False

    def begin(self, text):
        self.end()
        self._write(text + ": ")
        self.open = True

    def step(self, text):
        self._write(text + "... ")

    def note(self, text):
        self._write(text + " ")

    def line(self, text):
        """A line of its own, ending any open one."""
        self.end()
        self._write(text + "\n")

    def end(self):
        if self.open:
            self._write("\n")
            self.open = False

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


class SilentProgress(Progress):
    def _write(self, text):
        pass


def time_calls(fn, number):
    """Seconds for `number` calls of fn()."""
    t0 = perf_counter()
    for _ in range(number):
        fn()
    return perf_counter() - t0


def calls_per_timing(fn, min_seconds):
    """How many calls of fn one timing makes so that it lasts at least
    min_seconds (timeit's autorange, doubling), for calls too short to time
    one by one."""
    number = 1
    while time_calls(fn, number) < min_seconds:
        number *= 2
    return number


@contextlib.contextmanager
def recursion_limit(limit):
    """Runs the block with sys.setrecursionlimit at least `limit`."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# ---- the interpreter --------------------------------------------------------

ON_PYPY = sys.implementation.name == "pypy"
# Untimed rounds of a workload before its timings: PyPy's JIT compiles a loop
# after about a thousand iterations and a function after some 1,600 calls,
# and compiles more (bridges) as new paths get hot; CPython needs one round
# for first-call costs (cffi's lazy setup, the allocators' first arenas).
WARM_UP_ROUNDS = 20 if ON_PYPY else 1


def interpreter_info():
    """Which interpreter runs this process, for the report and the JSON. The
    executable's path is absolute with no `..` (as given to a subprocess, it
    may be either), so that two reports of one interpreter compare equal."""
    implementation = platform.python_implementation()
    if ON_PYPY:
        version = ".".join(str(part) for part in sys.pypy_version_info[:3])
    else:
        version = platform.python_version()
    return {"implementation": implementation, "version": version,
            "python_version": platform.python_version(), "executable": os.path.abspath(sys.executable)}


def describe_interpreter(info):
    """"CPython 3.11.7", or "PyPy 7.3.11 (Python 3.9.16)"."""
    text = f"{info['implementation']} {info['version']}"
    if info["version"] != info["python_version"]:
        text += f" (Python {info['python_version']})"
    return text
