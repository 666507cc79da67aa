# The micrograd lecture's first half (the video's cells, as in
# lectures/micrograd/micrograd_lecture_first_half_roughly.ipynb): the
# expression L = (a*b + c) * f with its numerical derivative (lol), then the
# neuron's backward done by hand, node by node (`o._backward()`, ...), then by
# the topological order, then by o.backward(); and the `a + a` cell that
# shows why grads accumulate. Cells unchanged; the class cell replaced by the
# import (the lecture's class is the reference: see shims/lecture); each
# draw_dot display replaced by prints of the grads it would show.
from micrograd.engine import Value

a = Value(2.0, label='a')
b = Value(-3.0, label='b')
c = Value(10.0, label='c')
e = a*b; e.label = 'e'
d = e + c; d.label = 'd'
f = Value(-2.0, label='f')
L = d * f; L.label = 'L'
print(L.data, L.label, L._op, sorted(v.label for v in L._prev))

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

def show():  # what draw_dot(o) shows of the grads
  print([(v.label, v.grad) for v in (o, n, b, x1w1x2w2, x1w1, x2w2, x1, w1, x2, w2)])

o.grad = 1.0
o._backward()
n._backward()
b._backward()
x1w1x2w2._backward()
x2w2._backward()
x1w1._backward()
show()

for v in (o, n, b, x1w1x2w2, x1w1, x2w2, x1, w1, x2, w2):  # (added: start again from zero)
  v.grad = 0.0

o.grad = 1.0

topo = []
visited = set()
def build_topo(v):
  if v not in visited:
    visited.add(v)
    for child in v._prev:
      build_topo(child)
    topo.append(v)
build_topo(o)

for node in reversed(topo):
  node._backward()
show()
print(len(topo), sorted(v.label for v in topo))

for v in topo:  # (added: start again from zero)
  v.grad = 0.0
o.backward()
show()

a = Value(3.0, label='a')
b = a + a   ; b.label = 'b'
b.backward()
print(a.grad, b.grad)

a = Value(-2.0, label='a')
b = Value(3.0, label='b')
d = a * b    ; d.label = 'd'
e = a + b    ; e.label = 'e'
f = d * e    ; f.label = 'f'

f.backward()
print([(v.label, v.data, v.grad) for v in (a, b, d, e, f)])
