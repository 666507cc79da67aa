"""cgrad.viz: the lecture's graph pictures.

Graphs are rendered to SVG with the real `dot` and read back with
xml.etree: the nodes (records and op ellipses, with their texts) and the edges
are compared with the expression drawn. micrograd's own draw_dot (from its
trace_graph.ipynb) and micrograd 0.1.0's Value are embedded below as the
oracle: micrograd's draw_dot must draw a cgrad expression exactly as it draws
the same expression built from micrograd's Values.

Only the tests that need it skip when the graphviz Python package or the
`dot` program is missing; the error messages for those cases are tested with
both simulated away.
"""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

import cgrad
from cgrad import Value
from cgrad import reference
from cgrad import viz

from seed_data import more_ops


@pytest.fixture
def graphviz():
    return pytest.importorskip("graphviz")


@pytest.fixture
def dot(graphviz):
    if shutil.which("dot") is None:
        pytest.skip("the Graphviz program 'dot' is not installed (apt-get install graphviz)")
    return graphviz


# ---- the oracle: micrograd 0.1.0's Value and micrograd's draw_dot -----------


class MgValue:
    """ stores a single scalar value and its gradient """

    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0
        # internal variables used for autograd graph construction
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op # the op that produced this node, for graphviz / debugging / etc

    def __add__(self, other):
        other = other if isinstance(other, MgValue) else MgValue(other)
        out = MgValue(self.data + other.data, (self, other), '+')

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward

        return out

    def __mul__(self, other):
        other = other if isinstance(other, MgValue) else MgValue(other)
        out = MgValue(self.data * other.data, (self, other), '*')

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward

        return out

    def __pow__(self, other):
        assert isinstance(other, (int, float)), "only supporting int/float powers for now"
        out = MgValue(self.data**other, (self,), f'**{other}')

        def _backward():
            self.grad += (other * self.data**(other-1)) * out.grad
        out._backward = _backward

        return out

    def relu(self):
        out = MgValue(0 if self.data < 0 else self.data, (self,), 'ReLU')

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward

        return out

    def backward(self):

        # topological order all of the children in the graph
        topo = []
        visited = set()
        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)
        build_topo(self)

        # go one variable at a time and apply the chain rule to get its gradient
        self.grad = 1
        for v in reversed(topo):
            v._backward()

    def __neg__(self): # -self
        return self * -1

    def __radd__(self, other): # other + self
        return self + other

    def __sub__(self, other): # self - other
        return self + (-other)

    def __rsub__(self, other): # other - self
        return other + (-self)

    def __rmul__(self, other): # other * self
        return self * other

    def __truediv__(self, other): # self / other
        return self * other**-1

    def __rtruediv__(self, other): # other / self
        return other * self**-1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def mg_trace(root):
    nodes, edges = set(), set()
    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)
    build(root)
    return nodes, edges


def mg_draw_dot(root, format='svg', rankdir='LR'):
    from graphviz import Digraph
    assert rankdir in ['LR', 'TB']
    nodes, edges = mg_trace(root)
    dot = Digraph(format=format, graph_attr={'rankdir': rankdir})
    for n in nodes:
        dot.node(name=str(id(n)), label = "{ data %.4f | grad %.4f }" % (n.data, n.grad), shape='record')
        if n._op:
            dot.node(name=str(id(n)) + n._op, label=n._op)
            dot.edge(str(id(n)) + n._op, str(id(n)))
    for n1, n2 in edges:
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)
    return dot


# ---- reading the SVG back -----------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(svg):
    """(nodes, edges) of an SVG rendered by dot: nodes maps each node's name
    to (kind, texts), kind 'op' for an ellipse and 'record' for a record,
    texts its text elements in order; edges lists (tail name, head name)."""
    root = ET.fromstring(svg)
    nodes, edges = {}, []
    for g in root.iter(SVG + "g"):
        kind = g.get("class")
        if kind not in ("node", "edge"):
            continue
        title = g.find(SVG + "title").text
        if kind == "node":
            shape = "op" if g.find(SVG + "ellipse") is not None else "record"
            nodes[title] = (shape, tuple(t.text or "" for t in g.findall(SVG + "text")))
        else:
            tail, head = title.split("->")
            edges.append((tail, head))
    return nodes, edges


def render_svg(digraph):
    return parse_svg(digraph.pipe(format="svg"))


def structure(digraph):
    """The graph with the names (ids) forgotten: the multiset of node
    (kind, texts) and the multiset of edges as pairs of those."""
    nodes, edges = render_svg(digraph)
    return Counter(nodes.values()), Counter((nodes[t], nodes[h]) for t, h in edges)


def record(v, label=None):
    texts = (f"data {v.data:.4f}", f"grad {v.grad:.4f}")
    return ("record", texts if label is None else (label,) + texts)


# ---- expressions, built the same way from any Value class ---------------------


def lecture(V):
    a, b, c, f = V(2.0), V(-3.0), V(10.0), V(-2.0)
    e = a * b
    d = e + c
    return d * f


def constants(V):
    a, b = V(1.5), V(-0.75)
    return a * 2 + (-a) + (a + 1) + (2 - a) + a / 4 + 3 / a + b**2 + a**-1.5 + a**0.5 * b


def reuse(V):
    a, b = V(3.0), V(-2.0)
    return a * a + a + (a + b) * (a - b) + (a + a)


def relus(V):
    a, b, c = V(2.0), V(-3.0), V(4.0)
    return (a * b + c).relu() + (a * b).relu() * c + (c - a).relu()


def micrograd_sanity(V):  # micrograd's test_sanity_check
    x = V(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    return h + q + q * x


def micrograd_more_ops(V):  # micrograd's test_more_ops
    return more_ops(V(-4.0), V(2.0))


EXPRESSIONS = [lecture, constants, reuse, relus, micrograd_sanity, micrograd_more_ops]


def neuron(V):
    """The lecture's neuron, every Value labelled; returns (o, {label: Value})."""
    x1 = V(2.0, label="x1")
    x2 = V(0.0, label="x2")
    w1 = V(-3.0, label="w1")
    w2 = V(1.0, label="w2")
    b = V(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.label = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    values = {v.label: v for v in (x1, x2, w1, w2, b, x1w1, x2w2, x1w1x2w2, n, o)}
    return o, values


# operand labels -> (op, result label) in the neuron
NEURON_OPS = {
    "x1*w1": ("*", {"x1", "w1"}),
    "x2*w2": ("*", {"x2", "w2"}),
    "x1*w1 + x2*w2": ("+", {"x1*w1", "x2*w2"}),
    "n": ("+", {"x1*w1 + x2*w2", "b"}),
    "o": ("tanh", {"n"}),
}


# ---- the picture, rendered by dot and read back -------------------------------


def check_neuron_svg(nodes, edges, values):
    records = {name: texts for name, (kind, texts) in nodes.items() if kind == "record"}
    ops = {name: texts for name, (kind, texts) in nodes.items() if kind == "op"}
    assert len(records) == 10
    assert len(ops) == 5
    assert len(edges) == 14
    # every Value's record: its label, then data and grad as "%.4f"
    assert sorted(records.values()) == sorted(record(v, lbl)[1] for lbl, v in values.items())
    label_of = {name: texts[0] for name, texts in records.items()}
    assert Counter(texts for texts in ops.values()) == Counter({("*",): 2, ("+",): 2, ("tanh",): 1})
    # each op node has one edge out, to its result, and one in per operand
    result_of = {}
    for t, h in edges:
        if t in ops:
            assert h in records and t not in result_of
            result_of[t] = label_of[h]
    assert set(result_of) == set(ops)
    operands = {}
    for t, h in edges:
        if h in ops:
            assert t in records
            operands.setdefault(result_of[h], set()).add(label_of[t])
    assert {r: (ops[o][0], operands[r]) for o, r in result_of.items()} == NEURON_OPS


def test_render_example_draws_the_lecture_neuron(dot, tmp_path):
    path = tmp_path / "neuron.svg"
    assert viz.render_example(path) == path
    nodes, edges = parse_svg(path.read_bytes())
    _, values = neuron(Value)
    check_neuron_svg(nodes, edges, values)
    # the lecture's numbers
    texts = {t for _, ts in nodes.values() for t in ts}
    assert {"data 0.7071", "grad 1.0000", "data 0.8814", "grad 0.5000", "grad -1.5000", "data 6.8814"} <= texts


def test_draw_dot_neuron(dot):
    o, values = neuron(Value)
    d = viz.draw_dot(o)
    assert isinstance(d, dot.Digraph)
    assert d.format == "svg"
    check_neuron_svg(*render_svg(d), values)


def test_draw_dot_same_picture_as_pure_python_reference(dot):
    # cgrad.reference has tanh and labels; micrograd 0.1.0 has neither
    assert structure(viz.draw_dot(neuron(Value)[0])) == structure(viz.draw_dot(neuron(reference.Value)[0]))


def test_unlabelled_records_are_micrograds(dot):
    a = Value(2.0)
    b = Value(-3.0, label="b")
    nodes, edges = render_svg(viz.draw_dot(a * b))
    assert sorted(nodes.values()) == sorted([
        ("op", ("*",)),
        ("record", ("data -6.0000", "grad 0.0000")),
        ("record", ("data 2.0000", "grad 0.0000")),
        ("record", ("b", "data -3.0000", "grad 0.0000")),
    ])
    assert len(edges) == 3


def test_format_and_rankdir(dot):
    o = lecture(Value)
    d = viz.draw_dot(o, format="png", rankdir="TB")
    assert d.format == "png"
    assert "rankdir=TB" in d.source
    assert d.pipe()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rankdir=LR" in viz.draw_dot(o).source
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw_dot(o, rankdir="RL")


# ---- micrograd's draw_dot draws cgrad's Values as it draws its own ------------


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_micrograd_draw_dot_same_graph(dot, expr, backward):
    c, m = expr(Value), expr(MgValue)
    if backward:
        c.backward()
        m.backward()
    mg = structure(mg_draw_dot(m))
    assert structure(mg_draw_dot(c)) == mg
    # and cgrad's draw_dot draws that same picture, for both
    assert structure(viz.draw_dot(c)) == mg
    assert structure(viz.draw_dot(m)) == mg


def test_micrograd_draw_dot_sees_stable_constants(graphviz):
    # the leaf Value of a constant (a * 2) is made when _prev is first read:
    # read again, it must be the same object, or micrograd's ids would differ
    c = constants(Value)
    first, second = mg_draw_dot(c), mg_draw_dot(c)
    assert first.source.count("shape=record") == second.source.count("shape=record")
    assert set(first.body) == set(second.body)


def test_constants_are_leaf_values(dot):
    a = Value(1.5)
    for expr, const, op in [(a * 2, 2.0, "*"), (-a, -1.0, "*"), (a + 3, 3.0, "+"), (2 - a, -1.0, "*")]:
        nodes, edges = render_svg(viz.draw_dot(expr))
        leaves = {n for n, (kind, _) in nodes.items() if kind == "record"} - {h for _, h in edges}
        assert ("record", (f"data {const:.4f}", "grad 0.0000")) in {nodes[n] for n in leaves}
        assert ("op", (op,)) in nodes.values()


def test_operand_used_twice_is_one_edge(dot):
    a = Value(3.0)
    nodes, edges = render_svg(viz.draw_dot(a + a))
    assert len(nodes) == 3 and len(edges) == 2  # a -> +, + -> result, as micrograd draws it
    assert structure(viz.draw_dot(a + a)) == structure(mg_draw_dot(a + a))


def test_custom_ops(dot):
    # a Value made by hand, as the lecture's custom ops: named or not
    a, b = Value(2.0), Value(3.0)
    named = Value(5.0, (a, b), "myop")
    nodes, edges = render_svg(viz.draw_dot(named))
    assert ("op", ("myop",)) in nodes.values() and len(edges) == 3
    unnamed = Value(5.0, (a, b))  # micrograd draws the operands straight into the record
    nodes, edges = render_svg(viz.draw_dot(unnamed))
    assert len(nodes) == 3 and len(edges) == 2
    for c in (named, unnamed):
        ma, mb = MgValue(2.0), MgValue(3.0)
        m = MgValue(5.0, (ma, mb), c._op)
        assert structure(viz.draw_dot(c)) == structure(mg_draw_dot(m)) == structure(mg_draw_dot(c))


def test_labels_and_ops_show_as_written(dot):
    weird = 'a{b}|c<d>"e\\f &amp; g'
    a = Value(1.5, label=weird)
    c = Value(3.0, (a,), _op='op\\n"x"<y> & &lt;')
    c.label = "<b>not html</b>"
    nodes, _ = render_svg(viz.draw_dot(c))
    assert sorted(nodes.values()) == sorted([
        ("record", (weird, "data 1.5000", "grad 0.0000")),
        ("record", ("<b>not html</b>", "data 3.0000", "grad 0.0000")),
        ("op", ('op\\n"x"<y> & &lt;',)),
    ])


# ---- the size limit -------------------------------------------------------------


def chain(n):
    """A graph of exactly n Values: a leaf and n-1 unary ops."""
    v = Value(0.5)
    for _ in range(n - 1):
        v = v.relu()
    return v


def test_limit_refuses_large_graphs(graphviz):
    assert viz.MAX_NODES == 500
    viz.draw_dot(chain(500))  # at the limit: drawn
    with pytest.raises(ValueError) as e:
        viz.draw_dot(chain(501))
    msg = str(e.value)
    assert "500" in msg and "draw_dot(root, max_nodes=...)" in msg
    assert viz.draw_dot(chain(501), max_nodes=501).source.count("shape=record") == 501
    with pytest.raises(ValueError, match="more than 10 Values"):
        viz.draw_dot(chain(11), max_nodes=10)
    assert viz.draw_dot(chain(11), max_nodes=None).source.count("shape=record") == 11
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_nodes"):
            viz.draw_dot(chain(2), max_nodes=bad)
    with pytest.raises(TypeError, match="max_nodes"):
        viz.draw_dot(chain(2), max_nodes=10.0)


class Endless:
    """A micrograd-like node whose operands are made as they are asked for:
    an endless graph, which only a walk that stops early can refuse."""

    reads = 0
    data = grad = 0.0
    _op = "+"

    @property
    def _prev(self):
        Endless.reads += 1
        return {Endless(), Endless()}


def test_limit_stops_the_walk_early(graphviz):
    Endless.reads = 0
    with pytest.raises(ValueError, match="more than 50 Values"):
        viz.draw_dot(Endless(), max_nodes=50)
    assert Endless.reads <= 50


def test_deep_graph_needs_no_recursion(graphviz):
    depth = sys.getrecursionlimit() * 3
    d = viz.draw_dot(chain(depth), max_nodes=None)
    assert d.source.count("shape=record") == depth
    assert d.source.count("->") == 2 * (depth - 1)


# ---- render(): the format from the file name ----------------------------------


def test_render_formats(dot, tmp_path):
    o = lecture(Value)
    assert viz.render(o, tmp_path / "g.svg") == tmp_path / "g.svg"
    assert len(parse_svg((tmp_path / "g.svg").read_bytes())[0]) == 7 + 3  # Values + ops
    viz.render(o, str(tmp_path / "g.PNG"))
    assert (tmp_path / "g.PNG").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    viz.render(o, tmp_path / "g.pdf")
    assert (tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"
    viz.render(o, tmp_path / "g.out", format="svg")
    assert len(parse_svg((tmp_path / "g.out").read_bytes())[0]) == 10
    viz.render(o, tmp_path / "g.gv")
    assert (tmp_path / "g.gv").read_text().startswith("digraph {")
    with pytest.raises(ValueError, match="extension"):
        viz.render(o, tmp_path / "noext")
    with pytest.raises(ValueError, match="no output format 'xyz'"):
        viz.render(o, tmp_path / "g.xyz")
    with pytest.raises(ValueError, match="max_nodes"):
        viz.render(chain(501), tmp_path / "big.svg")
    assert not (tmp_path / "big.svg").exists()


# ---- what is missing, and what to install ---------------------------------------


def test_missing_graphviz_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # `import graphviz` now fails
    o = lecture(Value)
    for call in (lambda: viz.draw_dot(o), lambda: viz.render(o, tmp_path / "g.svg"),
                 lambda: viz.render_example(tmp_path / "n.svg")):
        with pytest.raises(ImportError) as e:
            call()
        assert "pip install cgrad[viz]" in str(e.value)
        assert "pip install graphviz" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_cgrad_imports_without_graphviz():
    # drawing is optional: importing cgrad (and cgrad.viz) must not need graphviz
    root = os.path.dirname(os.path.dirname(os.path.abspath(cgrad.__file__)))
    code = (
        "import sys; sys.modules['graphviz'] = None\n"
        "import cgrad, cgrad.viz\n"
        "try:\n"
        "    cgrad.viz.draw_dot(cgrad.Value(1.0))\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert "pip install cgrad[viz]" in out.stdout


def test_missing_dot_program(graphviz, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert shutil.which("dot") is None
    o = lecture(Value)
    with pytest.raises(viz.DotNotFoundError) as e:
        viz.render(o, tmp_path / "g.svg")
    msg = str(e.value)
    assert "install Graphviz" in msg and "apt-get install graphviz" in msg
    assert isinstance(e.value, RuntimeError)
    assert not (tmp_path / "g.svg").exists()
    with pytest.raises(viz.DotNotFoundError, match="apt-get install graphviz"):
        viz.render_example(tmp_path / "n.png")
    # the Digraph itself says the same when asked to render (as Jupyter does)
    d = viz.draw_dot(o)
    with pytest.raises(viz.DotNotFoundError, match="apt-get install graphviz"):
        d.pipe()
    with pytest.raises(viz.DotNotFoundError, match="apt-get install graphviz"):
        d._repr_mimebundle_()
    with pytest.raises(viz.DotNotFoundError, match="apt-get install graphviz"):
        d.render(directory=tmp_path)
    # the DOT source needs no dot program
    viz.render(o, tmp_path / "g.gv")
    assert (tmp_path / "g.gv").read_text().startswith("digraph {")


def test_digraph_copies_and_pickles(dot):
    import pickle

    d = viz.draw_dot(viz.example())
    for other in (d.copy(), pickle.loads(pickle.dumps(d))):
        assert isinstance(other, dot.Digraph)
        assert other.source == d.source
        assert render_svg(other) == render_svg(d)
