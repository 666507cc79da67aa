"""The optional baselines: micrograd (PyPI 0.1.0), loaded when it imports,
with the seed's exp and log added as its users add them, and torch, run in a
worker process of its own."""
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys

import cgrad

from .config import BenchmarkError
from .measure import calls_per_timing, time_calls


def load_micrograd():
    """micrograd (PyPI 0.1.0) as (its Value class, its nn module), or None
    when it is not installed."""
    try:
        import micrograd.engine
        import micrograd.nn
    except ImportError:
        return None
    return micrograd.engine.Value, micrograd.nn


def torch_installed():
    """Whether torch can be imported, without importing it (see TorchWorker)."""
    return importlib.util.find_spec("torch") is not None


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def seed_exp_log(Value):
    """exp and log as the seed exercise adds them to its Value (closures,
    micrograd's style), for a Value class that lacks them: micrograd 0.1.0
    has neither, and the seed's softmax-NLL needs both."""

    def exp(self):
        x = self.data
        out = Value(math.exp(x), (self, ), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self):
        x = self.data
        out = Value(math.log(x), (self, ), 'log')

        def _backward():
            self.grad += (x **-1) * out.grad
        out._backward = _backward
        return out

    return {"exp": exp, "log": log}


@contextlib.contextmanager
def seed_ops_on(Value):
    """Runs the block with the seed's exp and log on Value where it lacks
    them (as the seed's users monkeypatch them on), and takes them off
    afterwards. Yields the names added."""
    methods = seed_exp_log(Value)
    added = [name for name in methods if not hasattr(Value, name)]
    for name in added:
        setattr(Value, name, methods[name])
    try:
        yield added
    finally:
        for name in added:
            delattr(Value, name)


def child_env():
    """The environment for a child Python that imports this very cgrad."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(cgrad.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


class TorchWorker:
    """torch in a process of its own, timed in turn with the other engines.

    The bench process never imports torch: its 140,000-odd objects tracked by
    the cycle collector would slow every collector pass of every later
    measurement (micrograd's above all), and no micrograd user's process has
    them. The worker answers one JSON command per line (see torch_worker)."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cgrad.bench", "--torch-worker"], env=child_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self.request()
        self.version, self.threads = hello["torch"], hello["threads"]

    def request(self, **command):
        if command:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchmarkError(f"the torch worker exited (status {self.process.wait()}); see its stderr above")
        reply = json.loads(line)
        if "error" in reply:
            raise BenchmarkError(f"torch worker: {reply['error']}")
        return reply

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def start_torch_worker():
    """A TorchWorker, or None when torch is not installed."""
    return TorchWorker() if torch_installed() else None


def torch_worker():
    """The worker's loop (python -m cgrad.bench --torch-worker): a hello line,
    then one reply line per command line: {"op": "setup", "xs", "label"},
    {"op": "calibrate", "min_seconds"} -> {"calls"}, {"op": "time", "calls"}
    -> {"seconds"} (seconds per call, collector on as users run torch),
    {"op": "result"} -> {"loss", "grads"} of a fresh tensor."""
    import torch

    def reply(**answer):
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    reply(torch=torch.__version__, threads=torch.get_num_threads())
    state = {}
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "setup":
                xs, label = command["xs"], command["label"]
                tensor = torch.tensor(xs, dtype=torch.float64, requires_grad=True)

                def call():
                    tensor.grad = None  # a fresh grad each call, as zero_grad(set_to_none=True) leaves it
                    (-torch.log_softmax(tensor, 0)[label]).backward()

                call()  # first-call costs land in no timing
                state.update(xs=xs, label=label, call=call)
                reply()
            elif op == "calibrate":
                reply(calls=calls_per_timing(state["call"], command["min_seconds"]))
            elif op == "time":
                gc.collect()
                reply(seconds=time_calls(state["call"], command["calls"]) / command["calls"])
            elif op == "result":
                t = torch.tensor(state["xs"], dtype=torch.float64, requires_grad=True)
                loss = -torch.log_softmax(t, 0)[state["label"]]
                loss.backward()
                reply(loss=loss.item(), grads=t.grad.tolist())
            else:
                reply(error=f"unknown command {op!r}")
        except Exception as error:  # reported to the bench, which stops there
            reply(error=f"{op}: {type(error).__name__}: {error}")
    return 0


def micrograd_recursion_limit(n):
    """The recursion limit the micrograd rows run with for N logits: its
    backward's topological sort recurses about N deep (the seed's sum of N
    exps is a chain), and RecursionError comes at the default 1,000."""
    return 10 * n + 1000
