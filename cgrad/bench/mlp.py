"""(f) the MLP training step of the moons demo: rebuilt op by op on each
engine, with cgrad.nn, and replayed (the graph built once, re-run in C)."""
import gc
import statistics
from time import perf_counter

from cgrad import Value as CgradValue
from cgrad import demo
from cgrad.nn import MLP as CgradMLP
from cgrad.optim import SGD
from cgrad.reference import build_nn

from .baselines import load_micrograd
from .config import ENGINES, BenchmarkError
from .measure import WARM_UP_ROUNDS, cycle_collector, scaled
from .report import format_ratio
from .rows import Target, make_row, section

MLP_SEED = 1337       # the demo's seed
MLP_TOLERANCE = 1e-9  # relative: engines' losses for the same seed (micrograd sums in a set's order)
REPLAY_TOLERANCE = 1e-12
REPLAY_CHECK_STEPS = 10


def demo_learning_rate(k):
    """The demo's learning rate at step k: from 1.0 down by 0.9 over its 100
    steps, and restarted after them, so that it stays positive in longer
    runs (the interpreter comparison runs the replayed step well over a
    thousand times for PyPy's JIT)."""
    return 1.0 - 0.9 * (k % 100) / 100


def mlp_problem(config):
    """The moons demo's data (its first config.mlp_points points), seeded as
    the demo seeds it, which also seeds `random` for the model's weights.
    Python floats for every engine: micrograd keeps whatever it is given as
    data, and numpy scalars would slow its arithmetic, not its engine."""
    X, y = demo.moons_problem(MLP_SEED)
    n = config.mlp_points
    return X[:n].tolist(), y[:n].tolist()


class RebuildSteps:
    """The demo's training loop (cgrad.demo.train), one step at a time: build
    the loss graph, zero_grad, backward, SGD over every parameter. The
    previous step's graph is released while the next one is built, as in
    the demo's loop."""

    def __init__(self, Value, nn_MLP, config):
        self.Value = Value
        self.X, self.y = mlp_problem(config)
        self.model = nn_MLP(2, list(config.mlp_layers))
        self.k = 0
        self.losses = {}
        self.graph = None

    def step(self):
        model = self.model
        total_loss, acc = demo.demo_loss(model, self.Value, self.X, self.y)
        self.graph = total_loss  # drops the previous step's graph, as the demo's loop does
        model.zero_grad()
        total_loss.backward()
        learning_rate = demo_learning_rate(self.k)
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        self.losses[self.k] = total_loss.data
        self.k += 1

    def release(self):
        self.graph = None


class ReplaySteps:
    """cgrad.demo.train_replayed, one step at a time: the loss graph is built
    once (by the first step of each block), and every later step is
    `total_loss.forward(); optimizer.zero_grad(); total_loss.backward();
    optimizer.step()`, all in C."""

    def __init__(self, config):
        self.X, self.y = mlp_problem(config)
        self.model = CgradMLP(2, list(config.mlp_layers))
        self.optimizer = SGD(self.model.parameters(), lr=1.0)
        self.k = 0
        self.losses = {}
        self.graph = None

    def step(self):
        if self.graph is None:
            self.graph, _ = demo.demo_loss(self.model, CgradValue, self.X, self.y)
        else:
            self.graph.forward()  # re-evaluated in C with the updated parameters
        self.optimizer.zero_grad()
        self.graph.backward()
        self.optimizer.lr = demo_learning_rate(self.k)
        self.optimizer.step()
        self.losses[self.k] = self.graph.data
        self.k += 1

    def release(self):
        self.graph = None


def mlp_runners(config, micrograd):
    """{(variant, gc on?): a fresh steps object}, in the order they run."""
    makers = {
        "op by op on cgrad": lambda: RebuildSteps(ENGINES["cgrad"], build_nn(ENGINES["cgrad"])[3], config),
        "cgrad.nn": lambda: RebuildSteps(ENGINES["cgrad"], CgradMLP, config),
        "cgrad.nn, replayed": lambda: ReplaySteps(config),
        "reference": lambda: RebuildSteps(ENGINES["reference"], build_nn(ENGINES["reference"])[3], config),
    }
    if micrograd:
        makers["micrograd"] = lambda: RebuildSteps(micrograd[0], micrograd[1].MLP, config)
    return {(variant, gc_enabled): make() for variant, make in makers.items() for gc_enabled in (True, False)}


def check_replay(steps=REPLAY_CHECK_STEPS):
    """demo.train("cgrad", steps) against demo.train_replayed(steps): the
    same losses to REPLAY_TOLERANCE, relative. Returns the largest relative
    difference."""
    _, _, rebuilt, _ = demo.train("cgrad", steps)
    _, _, replayed, _ = demo.train_replayed(steps)
    worst = 0.0
    for k, (a, b) in enumerate(zip(rebuilt, replayed)):
        diff = abs(b - a) / abs(a)
        if not diff <= REPLAY_TOLERANCE:
            raise BenchmarkError(f"graph replay: step {k} loss {b!r}, rebuilding gives {a!r}")
        worst = max(worst, diff)
    if len(replayed) != len(rebuilt):
        raise BenchmarkError(f"graph replay: {len(replayed)} losses, rebuilding {len(rebuilt)}")
    return worst


def check_mlp_losses(runners, first):
    """Every runner's losses equal the `first` runner's, step by step, to
    MLP_TOLERANCE (relative). Returns the largest relative difference."""
    expected = runners[first].losses
    worst = 0.0
    for key, runner in runners.items():
        if runner.losses.keys() != expected.keys():
            raise BenchmarkError(f"MLP step: {key[0]} ran steps {sorted(runner.losses)}, "
                                 f"{first[0]} {sorted(expected)}")
        for k, loss in runner.losses.items():
            diff = abs(loss - expected[k]) / abs(expected[k])
            if not diff <= MLP_TOLERANCE:
                gc_text = "" if key[1] else " (gc off)"
                raise BenchmarkError(f"MLP step {k}: {key[0]}{gc_text} loss {loss!r}, "
                                     f"{first[0]} {expected[k]!r}")
            worst = max(worst, diff)
    return worst


MLP_GOALS = {  # variant: (x faster than micrograd, x faster than micrograd with its collector off)
    "cgrad.nn": (50, 8),
    "cgrad.nn, replayed": (1000, 100),
}


def mlp_targets(variant, micrograd):
    """(targets, note) of an MLP row at the demo's size: MLP_GOALS against
    micrograd as users run it and against micrograd with its collector off,
    cgrad as users run it in both; against the reference engine when
    micrograd is missing, and the note says so."""
    if variant not in MLP_GOALS:
        return [], ""
    on, off = MLP_GOALS[variant]
    if micrograd:
        return [Target("speedup_micrograd", ">=", on, f"mg/cgrad >= {on}x"),
                Target("speedup_micrograd_gc_off", ">=", off, f"mg gc-off/cgrad >= {off}x")], ""
    return ([Target("speedup", ">=", on, f"ref/cgrad >= {on}x"),
             Target("speedup_reference_gc_off", ">=", off, f"ref gc-off/cgrad >= {off}x")],
            "micrograd is not installed: the targets are judged against the reference engine (micrograd's algorithm)")


@section("mlp", "(f) MLP training step, the moons demo's (build, zero_grad, backward, SGD), ms: "
                "cgrad columns = the row's way; reference, micrograd = their own nn op by op", baselines=True)
def bench_mlp(config, progress):
    micrograd = load_micrograd()
    progress.begin(f"graph replay: demo.train_replayed({REPLAY_CHECK_STEPS}) against demo.train")
    replay_diff = check_replay()
    progress.note(f"(same losses, largest relative difference {replay_diff:.2g})")

    runners = mlp_runners(config, micrograd)
    seconds = {key: [] for key in runners}
    for round_ in range(config.mlp_rounds):
        for (variant, gc_enabled), runner in runners.items():
            gc_text = "" if gc_enabled else ", gc off"
            progress.begin(f"MLP step {variant}{gc_text} [{round_ + 1}/{config.mlp_rounds}]")
            # A block of consecutive steps, as a training loop runs them:
            # untimed steps first (the first builds the replayed graph; for
            # the others they leave a previous graph for the first timed step
            # to drop). One on CPython; on PyPy enough for its JIT to compile.
            with cycle_collector(gc_enabled):
                progress.step("first step" if WARM_UP_ROUNDS == 1 else f"{WARM_UP_ROUNDS} untimed steps")
                for _ in range(WARM_UP_ROUNDS):
                    runner.step()
                for _ in range(config.mlp_steps):
                    progress.step("step")
                    t0 = perf_counter()
                    runner.step()
                    seconds[variant, gc_enabled].append(perf_counter() - t0)
            runner.release()
            gc.collect()
    progress.end()
    loss_diff = check_mlp_losses(runners, ("cgrad.nn", True))
    progress.line(f"MLP step: every engine gives the same losses (largest relative difference {loss_diff:.2g})")

    baselines = {"reference": seconds["reference", True], "reference_gc_off": seconds["reference", False]}
    if micrograd:
        baselines.update(micrograd=seconds["micrograd", True], micrograd_gc_off=seconds["micrograd", False])
    demo_size = config.mlp_points == 100 and tuple(config.mlp_layers) == (16, 16, 1)
    name = f"MLP(2, {list(config.mlp_layers)}) step"
    params = {"points": config.mlp_points, "layers": list(config.mlp_layers), "seed": MLP_SEED,
              "rounds": config.mlp_rounds, "steps_per_round": config.mlp_steps, "untimed_steps": WARM_UP_ROUNDS,
              "losses": {f"{variant}{'' if on else ' gc off'}": [runner.losses[k] for k in sorted(runner.losses)]
                         for (variant, on), runner in runners.items()},
              "max_rel_loss_diff": loss_diff, "replay_check_steps": REPLAY_CHECK_STEPS,
              "replay_max_rel_diff": replay_diff}
    parameters = len(runners["cgrad.nn", True].model.parameters())
    untimed = "an untimed one" if WARM_UP_ROUNDS == 1 else f"{WARM_UP_ROUNDS} untimed ones (PyPy's JIT warming up)"
    notes = {
        "op by op on cgrad": [
            f"{config.mlp_points} points, {parameters} parameters, hinge loss + 1e-4 L2; inputs as Python "
            f"floats for every engine (micrograd would keep numpy scalars as its data, slowing its "
            f"arithmetic); median of {config.mlp_rounds * config.mlp_steps} steps (blocks of {config.mlp_steps} "
            f"consecutive steps after {untimed}, engines in turn); losses equal across engines to "
            f"{loss_diff:.2g} relative",
            "micrograd's nn classes over cgrad.Value (cgrad.reference.build_nn)"],
        "cgrad.nn": [],
        "cgrad.nn, replayed": [
            f"built once per block; demo.train_replayed({REPLAY_CHECK_STEPS}) gives demo.train's losses to "
            f"{replay_diff:.2g} relative"],
    }
    base, label = ("micrograd", "mg") if micrograd else ("reference", "ref")
    rows = []
    for variant, variant_notes in notes.items():
        samples = dict(baselines, cgrad=seconds[variant, True], cgrad_gc_off=seconds[variant, False])
        targets, note = mlp_targets(variant, micrograd is not None) if demo_size else ([], "")
        both_off = statistics.median(samples[f"{base}_gc_off"]) / statistics.median(samples["cgrad_gc_off"])
        variant_notes = variant_notes + ([note] if note else []) + [
            f"both collectors off: {label} gc-off/cgrad gc-off = {format_ratio(both_off)}"]
        rows.append(make_row("mlp", name, variant, "ms", params=params, targets=targets,
                             samples=scaled(samples, 1e3), note="; ".join(variant_notes)))
    return rows
