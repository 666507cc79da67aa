# The micrograd lecture's first half (karpathy/nn-zero-to-hero,
# lectures/micrograd/micrograd_lecture_first_half_roughly.ipynb): its cells
# from the Value class on, unchanged and in the notebook's order, with the
# class replaced by the import (the lecture's class is the reference: see
# shims/lecture_first_half). Changes: each draw_dot(...) display is described
# instead (describe(): counts, labels and edges by label, sorted); values the
# notebook displays as reprs are printed as their .data (the lecture's repr is
# `Value(data=...)`, micrograd's and cgrad's add the grad), and `topo`, whose
# order follows a set, sorted; show() prints the grads after the hand-run
# backward steps, which the notebook looked at in its drawings.
import re

from micrograd.engine import Value


a = Value(2.0, label='a')
b = Value(-3.0, label='b')
c = Value(10.0, label='c')
e = a*b; e.label = 'e'
d = e + c; d.label = 'd'
f = Value(-2.0, label='f')
L = d * f; L.label = 'L'
print(L.data)

from graphviz import Digraph

def trace(root):
  # builds a set of all nodes and edges in a graph
  nodes, edges = set(), set()
  def build(v):
    if v not in nodes:
      nodes.add(v)
      for child in v._prev:
        edges.add((child, v))
        build(child)
  build(root)
  return nodes, edges

def draw_dot(root):
  dot = Digraph(format='svg', graph_attr={'rankdir': 'LR'}) # LR = left to right
  
  nodes, edges = trace(root)
  for n in nodes:
    uid = str(id(n))
    # for any value in the graph, create a rectangular ('record') node for it
    dot.node(name = uid, label = "{ %s | data %.4f | grad %.4f }" % (n.label, n.data, n.grad), shape='record')
    if n._op:
      # if this value is a result of some operation, create an op node for it
      dot.node(name = uid + n._op, label = n._op)
      # and connect this node to it
      dot.edge(uid + n._op, uid)

  for n1, n2 in edges:
    # connect n1 to the op node of n2
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


describe('L', draw_dot(L))

a.data += 0.01 * a.grad
b.data += 0.01 * b.grad
c.data += 0.01 * c.grad
f.data += 0.01 * f.grad

e = a * b
d = e + c
L = d * f

print(L.data)

def lol():
  
  h = 0.001
  
  a = Value(2.0, label='a')
  b = Value(-3.0, label='b')
  c = Value(10.0, label='c')
  e = a*b; e.label = 'e'
  d = e + c; d.label = 'd'
  f = Value(-2.0, label='f')
  L = d * f; L.label = 'L'
  L1 = L.data
  
  a = Value(2.0, label='a')
  b = Value(-3.0, label='b')
  b.data += h
  c = Value(10.0, label='c')
  e = a*b; e.label = 'e'
  d = e + c; d.label = 'd'
  f = Value(-2.0, label='f')
  L = d * f; L.label = 'L'
  L2 = L.data
  
  print((L2 - L1)/h)
  
lol()

# inputs x1,x2
x1 = Value(2.0, label='x1')
x2 = Value(0.0, label='x2')
# weights w1,w2
w1 = Value(-3.0, label='w1')
w2 = Value(1.0, label='w2')
# bias of the neuron
b = Value(6.8813735870195432, label='b')
# x1*w1 + x2*w2 + b
x1w1 = x1*w1; x1w1.label = 'x1*w1'
x2w2 = x2*w2; x2w2.label = 'x2*w2'
x1w1x2w2 = x1w1 + x2w2; x1w1x2w2.label = 'x1*w1 + x2*w2'
n = x1w1x2w2 + b; n.label = 'n'
o = n.tanh(); o.label = 'o'


def show(when):
  print(when, [(v.label, v.grad) for v in (o, n, b, x1w1x2w2, x1w1, x2w2, x1, w1, x2, w2)])


describe('neuron', draw_dot(o))

o.backward()
show('o.backward()')

topo = []
visited = set()
def build_topo(v):
  if v not in visited:
    visited.add(v)
    for child in v._prev:
      build_topo(child)
    topo.append(v)
build_topo(o)
print(len(topo), sorted(v.data for v in topo))

o.grad = 1.0

o._backward()

n._backward()

b._backward()

x1w1x2w2._backward()

x2w2._backward()
x1w1._backward()
show('by hand, after o.backward()')

x1.grad = w1.data * x1w1.grad
w1.grad = x1.data * x1w1.grad

x2.grad = w2.data * x2w2.grad
w2.grad = x2.data * x2w2.grad

x1w1.grad = 0.5
x2w2.grad = 0.5

x1w1x2w2.grad = 0.5
b.grad = 0.5

n.grad = 0.5

o.grad = 1.0
show('set by hand')

print(1 - o.data**2)

a = Value(3.0, label='a')
b = a + a   ; b.label = 'b'
b.backward()
describe('a + a', draw_dot(b))

a = Value(-2.0, label='a')
b = Value(3.0, label='b')
d = a * b    ; d.label = 'd'
e = a + b    ; e.label = 'e'
f = d * e    ; f.label = 'f'

f.backward()

describe('(a * b) * (a + b)', draw_dot(f))
