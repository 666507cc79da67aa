"""python -m cgrad.demo: micrograd's moons demo, trained end to end.

An MLP(2, [16, 16, 1]) learns scikit-learn's "moons" (100 points, noise 0.1)
with micrograd's demo.ipynb recipe: hinge loss, 1e-4 L2, 100 steps of SGD with
a decaying learning rate. `--engine reference` runs the same on the
pure-Python engine, to compare.
"""
import argparse
import random
import sys
import time

import numpy as np


def make_moons(n_samples=100, noise=None, random_state=None):
    """Two interleaving half circles: scikit-learn's make_moons formula (and,
    for the same numpy random state, its very numbers), without scikit-learn.
    Returns X (n_samples, 2) and y in {0, 1}."""
    rs = np.random.mtrand._rand if random_state is None else np.random.RandomState(random_state)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    outer = np.linspace(0, np.pi, n_out)
    inner = np.linspace(0, np.pi, n_in)
    X = np.vstack([np.append(np.cos(outer), 1 - np.cos(inner)),
                   np.append(np.sin(outer), 1 - np.sin(inner) - 0.5)]).T
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])
    order = np.arange(n_samples)
    rs.shuffle(order)
    X, y = X[order], y[order]
    if noise is not None:
        X += rs.normal(scale=noise, size=X.shape)
    return X, y


def engine(name):
    """(Value, MLP) of the named engine."""
    if name == "cgrad":
        from cgrad import Value
        from cgrad.nn import MLP
    else:
        from cgrad.reference import MLP, Value
    return Value, MLP


def moons_problem(seed=1337):
    """The demo's data, seeded as micrograd's notebook seeds it: y in {-1, 1}."""
    np.random.seed(seed)
    random.seed(seed)
    X, y = make_moons(n_samples=100, noise=0.1)
    return X, y * 2 - 1


def demo_loss(model, Value, X, y):
    """micrograd's demo loss: (total loss Value, accuracy, scores)."""
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    alpha = 1e-4
    reg_loss = alpha * sum((p * p for p in model.parameters()))
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    return total_loss, sum(accuracy) / len(accuracy)


def train(engine_name="cgrad", steps=100, seed=1337, report=None):
    """Trains the demo; report(step, loss, accuracy) after each step.
    Returns (model, Value class, losses, accuracies)."""
    Value, MLP = engine(engine_name)
    X, y = moons_problem(seed)
    model = MLP(2, [16, 16, 1])
    losses, accuracies = [], []
    for k in range(steps):
        total_loss, acc = demo_loss(model, Value, X, y)
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(total_loss.data)
        accuracies.append(acc)
        if report:
            report(k, total_loss.data, acc)
    return model, Value, losses, accuracies


def train_replayed(steps=100, seed=1337, report=None):
    """The same training with graph replay: the loss graph is built once, and
    each step re-runs it in C (forward, backward, SGD in one call each).
    Returns (model, Value class, losses, accuracies), as train() does."""
    from cgrad import Value, data
    from cgrad.nn import MLP
    from cgrad.optim import SGD
    X, y = moons_problem(seed)
    model = MLP(2, [16, 16, 1])
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    total_loss = sum(losses) * (1.0 / len(losses)) + 1e-4 * sum((p * p for p in model.parameters()))
    optimizer = SGD(model.parameters(), lr=1.0)
    loss_history, accuracies = [], []
    for k in range(steps):
        if k:
            total_loss.forward()  # the graph, re-evaluated with the updated parameters
        acc = float(np.mean((y > 0) == (data(scores) > 0)))
        optimizer.zero_grad()
        total_loss.backward()
        optimizer.lr = 1.0 - 0.9 * k / 100
        optimizer.step()
        loss_history.append(total_loss.data)
        accuracies.append(acc)
        if report:
            report(k, total_loss.data, acc)
    return model, Value, loss_history, accuracies


def progress_bar(steps, out=sys.stderr, width=30):
    """A report() that draws a one-line progress bar with loss and accuracy."""
    def report(k, loss, acc):
        done = (k + 1) * width // steps
        out.write(f"\rstep {k + 1:3d}/{steps} [{'#' * done}{'.' * (width - done)}] "
                  f"loss {loss:.4f} accuracy {acc * 100:5.1f}%")
        if k + 1 == steps:
            out.write("\n")
        out.flush()
    return report


def plot_decision_boundary(model, Value, path, seed=1337):
    """Saves the model's decision boundary over the data as an image."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install cgrad[plot]  (or: pip install matplotlib)")
    X, y = moons_problem(seed)
    h = 0.25
    xx, yy = np.meshgrid(np.arange(X[:, 0].min() - 1, X[:, 0].max() + 1, h),
                         np.arange(X[:, 1].min() - 1, X[:, 1].max() + 1, h))
    grid = np.c_[xx.ravel(), yy.ravel()]
    scores = [model(list(map(Value, row))) for row in grid]
    Z = np.array([s.data > 0 for s in scores]).reshape(xx.shape)
    fig = plt.figure()
    plt.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    plt.scatter(X[:, 0], X[:, 1], c=y, s=40, cmap=plt.cm.Spectral)
    plt.xlim(xx.min(), xx.max())
    plt.ylim(yy.min(), yy.max())
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cgrad.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["cgrad", "reference"], default="cgrad")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--plot", metavar="FILE.png", help="save the decision boundary (needs matplotlib)")
    parser.add_argument("--replay", action="store_true",
                        help="build the graph once and replay it in C every step (cgrad engine)")
    parser.add_argument("--graph", metavar="FILE.svg",
                        help="draw the lecture's neuron graph to a file (needs graphviz) and exit")
    args = parser.parse_args(argv)

    if args.graph:
        from .viz import render_example
        render_example(args.graph)
        print(f"wrote {args.graph}")
        return 0

    if args.replay and args.engine != "cgrad":
        parser.error("--replay needs --engine cgrad")
    start = time.perf_counter()
    if args.replay:
        model, Value, losses, accuracies = train_replayed(args.steps, args.seed, progress_bar(args.steps))
    else:
        model, Value, losses, accuracies = train(args.engine, args.steps, args.seed,
                                                 progress_bar(args.steps))
    elapsed = time.perf_counter() - start
    how = f"{args.engine}{' (replay)' if args.replay else ''}"
    print(f"{how}: {args.steps} steps in {elapsed:.2f} s ({elapsed / args.steps * 1e3:.1f} ms/step); "
          f"final loss {losses[-1]:.6f}, accuracy {accuracies[-1] * 100:.0f}%")
    if args.plot:
        plot_decision_boundary(model, Value, args.plot, args.seed)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
