# The seed exercises (shared/seed/micrograd-exercises.md): every code cell
# unchanged and in order, except the Value class cell (In [211]), replaced by
# the import: the seed's own class is the reference (see shims/seed), and its
# printed outputs are the ones recorded in the seed.

# In [204]
# here is a mathematical expression that takes 3 inputs and produces one output
from math import sin, cos

def f(a, b, c):
  return -a**3 + sin(3*b) - 1.0/c + b**2.5 - a**0.5

print(f(2, 3, 4))

# In [205]
# ------
# TODO
def gradf(a, b, c):
    dfda = -3 * a ** 2 - 1 / 2 * a ** (-1 / 2)
    dfdb = 3 * cos(3 * b) + 5 / 2 * b ** (3 / 2)
    dfdc = c ** (-2)

    grad = [dfda, dfdb, dfdc]
    return grad
# ------

# In [206]
# expected answer is the list of 
ans = [-12.353553390593273, 10.25699027111255, 0.0625]
yours = gradf(2, 3, 4)
for dim in range(3):
  ok = 'OK' if abs(yours[dim] - ans[dim]) < 1e-5 else 'WRONG!'
  print(f"{ok} for dim {dim}: expected {ans[dim]}, yours returns {yours[dim]}")

# In [207]
# ------
# TODO
def gradf_numeric(a, b, c, h = 1e-6):
    dfda = (f(a + h, b, c) - f(a, b, c)) / h
    dfdb = (f(a, b + h, c) - f(a, b, c)) / h
    dfdc = (f(a, b, c + h) - f(a, b, c)) / h

    grad = [dfda, dfdb, dfdc]
    return grad

numerical_grad = gradf_numeric(2, 3, 4)
# ------

# In [208]
for dim in range(3):
  ok = 'OK' if abs(numerical_grad[dim] - ans[dim]) < 1e-5 else 'WRONG!'
  print(f"{ok} for dim {dim}: expected {ans[dim]}, yours returns {numerical_grad[dim]}")

# In [209]
# ------
# TODO
def gradf_numeric2(a, b, c, h = 1e-6):
    dfda = (f(a + h, b, c) - f(a - h, b, c)) / (2 * h)
    dfdb = (f(a, b + h, c) - f(a, b - h, c)) / (2 * h)
    dfdc = (f(a, b, c + h) - f(a, b, c - h)) / (2 * h)

    grad = [dfda, dfdb, dfdc]
    return grad

numerical_grad2 = gradf_numeric2(2, 3, 4)
# ------

# In [210]
for dim in range(3):
  ok = 'OK' if abs(numerical_grad2[dim] - ans[dim]) < 1e-5 else 'WRONG!'
  print(f"{ok} for dim {dim}: expected {ans[dim]}, yours returns {numerical_grad2[dim]}")

# In [211]: the class cell, here the import
from micrograd.engine import Value

# In [213]
# this is the softmax function
# https://en.wikipedia.org/wiki/Softmax_function
def softmax(logits):
    counts = [logit.exp() for logit in logits]
    denominator = sum(counts)
    out = [c / denominator for c in counts]
    return out

# In [214]
# this is the negative log likelihood loss function, pervasive in classification
logits = [Value(0.0), Value(3.0), Value(-2.0), Value(1.0)]
probs = softmax(logits)
print(f"probs: {[round(p.data, 5) for p in probs]}")

loss = -probs[3].log() # dim 3 acts as the label for this input example
loss.backward()
print(loss.data)

# In [215]
ans = [0.041772570515350445, 0.8390245074625319, 0.005653302662216329, -0.8864503806400986]
for dim in range(4):
  ok = 'OK' if abs(logits[dim].grad - ans[dim]) < 1e-5 else 'WRONG!'
  print(f"{ok} for dim {dim}: expected {ans[dim]}, yours returns {logits[dim].grad}")

# In [216]
import torch

logits = torch.tensor([[0.0, 3.0, -2.0, 1.0]], requires_grad=True)
probs = torch.softmax(logits, dim=1)[0]
print(f"probs: {probs}")
loss = -probs[3].log()
loss.backward()

print(f"logits.grad: {logits.grad}")
