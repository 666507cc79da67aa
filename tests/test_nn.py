"""cgrad.nn, cgrad.optim, the moons demo, the micrograd runner, pickling."""
import copy
import os
import pickle
import random
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cgrad
from cgrad import Value, demo, nn, optim, reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def demo_losses(engine_name, steps):
    _, _, losses, accuracies = demo.train(engine_name, steps)
    return losses, accuracies


def test_same_losses_as_the_reference_engine_for_the_same_seed():
    fast, _ = demo_losses("cgrad", 10)
    slow, _ = demo_losses("reference", 10)
    assert len(fast) == 10
    assert fast == pytest.approx(slow, rel=1e-9, abs=0)
    assert len(set(fast)) == 10  # the model really trains: every step differs


def test_cgrad_nn_equals_micrograds_nn_op_by_op_on_cgrad():
    # micrograd's nn verbatim over cgrad.Value vs cgrad.nn's fused neurons.
    _, _, _, OpByOpMLP = reference.build_nn(Value)

    def forward_backward(MLP):
        random.seed(7)
        model = MLP(3, [4, 4, 1])
        out = model([0.5, -1.0, 2.0])
        out.backward()
        return out.data, [p.grad for p in model.parameters()]

    assert forward_backward(nn.MLP) == forward_backward(OpByOpMLP)


def test_the_demo_reaches_full_accuracy_within_100_steps():
    losses, accuracies = demo_losses("cgrad", 100)
    assert accuracies[-1] == 1.0
    assert losses[-1] < losses[0] / 10


def test_demo_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cgrad.demo", "--steps", "3"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "cgrad: 3 steps" in result.stdout
    assert "step   3/3" in result.stderr  # the progress bar
    plot = tmp_path / "moons.png"
    pytest.importorskip("matplotlib")
    result = subprocess.run([sys.executable, "-m", "cgrad.demo", "--steps", "2", "--plot", str(plot)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_replay_and_graph_command_lines(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cgrad.demo", "--replay", "--steps", "3"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "cgrad (replay): 3 steps" in result.stdout
    refused = subprocess.run([sys.executable, "-m", "cgrad.demo", "--replay", "--engine", "reference"],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert refused.returncode != 0 and "--replay needs --engine cgrad" in refused.stderr
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("the Graphviz program dot is not installed (apt-get install graphviz)")
    svg = tmp_path / "neuron.svg"
    result = subprocess.run([sys.executable, "-m", "cgrad.demo", "--graph", str(svg)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg")) and "tanh" in svg.read_text()


def test_make_moons_formula():
    X, y = demo.make_moons(n_samples=100, noise=None, random_state=0)
    assert X.shape == (100, 2) and sorted(set(y.tolist())) == [0, 1]
    outer, inner = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0)  # unit half circle
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1, inner[:, 1] - 0.5), 1.0)
    X1, _ = demo.make_moons(100, noise=0.1, random_state=3)
    X2, _ = demo.make_moons(100, noise=0.1, random_state=3)
    assert (X1 == X2).all() and not np.allclose(X1, X)


def test_reprs_are_micrograds():
    random.seed(0)
    model = nn.MLP(2, [3, 1])
    assert repr(model) == ("MLP of [Layer of [ReLUNeuron(2), ReLUNeuron(2), ReLUNeuron(2)], "
                           "Layer of [LinearNeuron(3)]]")
    assert repr(nn.Neuron(4, nonlin=False)) == "LinearNeuron(4)"
    assert repr(nn.Layer(2, 2)) == "Layer of [ReLUNeuron(2), ReLUNeuron(2)]"


def test_initialisation_is_micrograds_draw_order():
    random.seed(42)
    model = nn.MLP(2, [2, 1])
    random.seed(42)
    expected = [random.uniform(-1, 1) for _ in range(2)] + [0.0] + \
               [random.uniform(-1, 1) for _ in range(2)] + [0.0] + \
               [random.uniform(-1, 1) for _ in range(2)] + [0.0]
    assert [p.data for p in model.parameters()] == expected
    assert len(model.parameters()) == 9


def test_layer_of_one_returns_a_value_and_inputs_may_be_numbers_values_or_arrays():
    random.seed(1)
    layer = nn.Layer(3, 1, nonlin=False)
    x = [0.5, -2.0, 3.0]
    outs = [layer(x), layer(np.array(x)), layer([Value(v) for v in x]), layer(cgrad.values(x))]
    assert all(isinstance(o, Value) for o in outs)
    assert len({o.data for o in outs}) == 1
    wide = nn.Layer(3, 4)(x)
    assert isinstance(wide, list) and len(wide) == 4


def test_a_layer_is_one_c_call_with_the_graph_of_its_neurons():
    random.seed(4)
    layer = nn.Layer(3, 4)
    x = cgrad.values([0.5, -1.0, 2.0])
    fused = layer(x)
    one_by_one = [n(x) for n in layer.neurons]
    for y, z, n in zip(fused, one_by_one, layer.neurons):
        assert (y.data, y._op) == (z.data, z._op) == (y.data, "ReLU")
        (d,) = y._prev  # the fused dot, shown as micrograd's last '+' (tests/test_nn_graph.py)
        assert type(d) is nn.NeuronSum and d._op == "+" and d._cg_a == (n.b, *n.w, *x)
    assert "_params" in layer.__dict__  # the weights' C arrays, kept
    # Changing a neuron's weights is seen at once.
    layer.neurons[1].w[0] = Value(100.0)
    assert layer(x)[1].data == layer.neurons[1](x).data
    # Neurons that disagree fall back to calling them one by one.
    layer.neurons[2] = nn.Neuron(3, nonlin=False)
    mixed = layer(x)
    assert [y._op for y in mixed] == ["ReLU", "ReLU", "+", "ReLU"]
    assert [y.data for y in mixed] == [n(x).data for n in layer.neurons]


def test_zip_truncation_as_in_micrograd():
    random.seed(3)
    n = nn.Neuron(3, nonlin=False)
    w = [p.data for p in n.w]
    assert n([1.0, 2.0]).data == w[0] * 1.0 + w[1] * 2.0
    assert n([1.0, 2.0, 3.0, 4.0]).data == n([1.0, 2.0, 3.0]).data


def test_zero_grad():
    model = nn.MLP(2, [2, 1])
    model([1.0, 2.0]).backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


# ---- optimizers against torch.optim ------------------------------------------

def quadratic_problem(engine_values, xs):
    """A small non-trivial loss over parameters w: sum((w.x_i - t_i)^2) + w0*w1."""
    w = engine_values
    loss = w[0] * w[1]
    for i, x in enumerate(xs):
        pred = sum(wi * xi for wi, xi in zip(w, x))
        loss = loss + (pred - float(i)) ** 2
    return loss


@pytest.mark.parametrize("kind, kwargs", [
    ("SGD", dict(lr=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
])
def test_optimizer_matches_torch(kind, kwargs, torch):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=4)
    xs = rng.normal(size=(5, 4)).tolist()
    params = cgrad.values(w0)
    ours = getattr(optim, kind)(params, **kwargs)
    tw = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    theirs = getattr(torch.optim, kind)([tw], **kwargs)
    for step in range(20):
        if step == 10:  # a schedule may change lr between steps
            ours.lr = theirs.param_groups[0]["lr"] = kwargs["lr"] / 2
        ours.zero_grad()
        quadratic_problem(params, xs).backward()
        ours.step()
        theirs.zero_grad()
        quadratic_problem(list(tw), xs).backward()
        theirs.step()
        np.testing.assert_allclose(cgrad.data(params), tw.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert not np.allclose(cgrad.data(params), w0)


def test_optimizer_zero_grad_and_lr_decay_in_the_demo_loop():
    random.seed(0)
    model = nn.MLP(2, [4, 1])
    opt = optim.SGD(model.parameters(), lr=0.1)
    model([1.0, -1.0]).backward()
    before = [p.data - 0.1 * p.grad for p in model.parameters()]
    opt.step()
    assert [p.data for p in model.parameters()] == before
    opt.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
    model([0.5, 2.0]).backward()  # and again, every step
    assert any(p.grad != 0.0 for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


# ---- pickle and deepcopy -------------------------------------------------------

def test_pickle_and_deepcopy_a_trained_model():
    model, _, _, _ = demo.train("cgrad", 5)
    X, _ = demo.moons_problem()
    expected = [model(list(row)).data for row in X[:10]]
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert repr(clone) == repr(model)
        assert [p.data for p in clone.parameters()] == [p.data for p in model.parameters()]
        assert [p.grad for p in clone.parameters()] == [p.grad for p in model.parameters()]
        assert [clone(list(row)).data for row in X[:10]] == expected
        # The clone's parameters are its own.
        clone.parameters()[0].data += 1.0
        assert clone.parameters()[0].data != model.parameters()[0].data


def test_pickle_values():
    leaf = Value(2.5, label="a")
    leaf.grad = 0.5
    leaf.m = 0.25  # optimizer-style state
    back = pickle.loads(pickle.dumps(leaf))
    assert (back.data, back.grad, back.label, back.m) == (2.5, 0.5, "a", 0.25)
    out = leaf * 3.0 + 1.0
    out.backward()
    flat = pickle.loads(pickle.dumps(out))  # a non-leaf comes back as a leaf
    assert (flat.data, flat.grad, flat._op, flat._prev) == (out.data, 1.0, "", set())
    shared = [leaf, leaf]
    copied = copy.deepcopy(shared)
    assert copied[0] is copied[1] and copied[0] is not leaf


# ---- running unmodified micrograd scripts --------------------------------------

def test_micrograd_runner_runs_an_unmodified_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import sys
        import micrograd
        from micrograd.engine import Value
        from micrograd.nn import MLP
        import micrograd.engine
        assert micrograd.engine.Value is Value
        import random
        random.seed(int(sys.argv[1]))
        model = MLP(2, [4, 1])
        loss = sum((model([x, -x]) - x) ** 2 for x in [0.5, 1.0, 1.5])
        loss.backward()
        print(type(Value).__module__, Value.__module__, repr(loss.data))
    """))
    result = subprocess.run([sys.executable, "-m", "cgrad.micrograd", str(script), "11"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    module, value_module, loss = result.stdout.split()
    assert value_module == "cgrad.engine"
    random.seed(11)
    _, _, _, OpByOpMLP = reference.build_nn(reference.Value)
    model = OpByOpMLP(2, [4, 1])
    expected = sum((model([x, -x]) - x) ** 2 for x in [0.5, 1.0, 1.5])
    assert float(loss) == pytest.approx(expected.data, rel=1e-12)
