# micrograd's trace_graph.ipynb: its cells unchanged, in order, with each
# displayed graph described instead of rendered (describe() below: the node
# and edge counts of the dot source, its node labels and its edges by label,
# sorted, since node names are ids). Then the README's tracing snippet, and
# (added) a graph walk with trace() over an MLP, as code that counts nodes does.
import collections
import re

# brew install graphviz
# pip install graphviz
from graphviz import Digraph

from micrograd.engine import Value

def trace(root):
    nodes, edges = set(), set()
    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)
    build(root)
    return nodes, edges

def draw_dot(root, format='svg', rankdir='LR'):
    """
    format: png | svg | ...
    rankdir: TB (top to bottom graph) | LR (left to right)
    """
    assert rankdir in ['LR', 'TB']
    nodes, edges = trace(root)
    dot = Digraph(format=format, graph_attr={'rankdir': rankdir}) #, node_attr={'rankdir': 'TB'})
    
    for n in nodes:
        dot.node(name=str(id(n)), label = "{ data %.4f | grad %.4f }" % (n.data, n.grad), shape='record')
        if n._op:
            dot.node(name=str(id(n)) + n._op, label=n._op)
            dot.edge(str(id(n)) + n._op, str(id(n)))
    
    for n1, n2 in edges:
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)
    
    return dot


def describe(title, dot):
    """What the drawing shows, in an order that does not depend on ids."""
    labels, edges = {}, []
    for line in dot.source.splitlines():
        edge = re.fullmatch(r'\t(\S+) -> (\S+)', line)
        node = re.fullmatch(r'\t(\S+) \[label=(.*?)(?: shape=record)?\]', line)
        if edge:
            edges.append(edge.groups())
        elif node:
            labels[node.group(1)] = node.group(2)
    print(f'{title}: {len(labels)} nodes, {len(edges)} edges')
    for label in sorted(labels.values()):
        print('  node', label)
    for tail, head in sorted((labels[t], labels[h]) for t, h in edges):
        print('  edge', tail, '->', head)


# a very simple example
x = Value(1.0)
y = (x * 2 + 1).relu()
y.backward()
describe('simple example', draw_dot(y))

# a simple 2D neuron
import random
from micrograd import nn

random.seed(1337)
n = nn.Neuron(2)
x = [Value(1.0), Value(-2.0)]
y = n(x)
y.backward()

dot = draw_dot(y)
describe('2D neuron', dot)

# dot.render('gout')  (rendering to a file: not needed, the source is described above)

# ---- the README's "Tracing / visualization" snippet (seeded here, so that
# its random weights, and so its labels, are the same in every run) ----
random.seed(1337)
from micrograd import nn
n = nn.Neuron(2)
x = [Value(1.0), Value(-2.0)]
y = n(x)
dot = draw_dot(y)
describe('README neuron', dot)

# ---- added: walking an MLP's graph with trace() ----
random.seed(1337)
model = nn.MLP(2, [4, 4, 1])
out = model([Value(0.5), Value(-1.5)])
out.backward()
nodes, edges = trace(out)
print('MLP(2, [4, 4, 1]) graph:', len(nodes), 'nodes,', len(edges), 'edges')
print('  ops:', sorted(collections.Counter(v._op for v in nodes).items()))
print('  parameter grads:', [p.grad for p in model.parameters()])
