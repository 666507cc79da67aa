# micrograd's README.md, "Example usage": the code unchanged. Added at the
# end: the Values it leaves, printed whole (repr, and the Python type of
# .data and .grad), where a drop-in must print what micrograd prints too.
from micrograd.engine import Value

a = Value(-4.0)
b = Value(2.0)
c = a + b
d = a * b + b**3
c += c + 1
c += 1 + c + (-a)
d += d * 2 + (b + a).relu()
d += 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g += 10.0 / f
print(f'{g.data:.4f}') # prints 24.7041, the outcome of this forward pass
g.backward()
print(f'{a.grad:.4f}') # prints 138.8338, i.e. the numerical value of dg/da
print(f'{b.grad:.4f}') # prints 645.5773, i.e. the numerical value of dg/db

# ---- added: the values whole ----
for name, v in [('a', a), ('b', b), ('c', c), ('d', d), ('e', e), ('f', f), ('g', g)]:
    print(name, v, type(v.data).__name__, type(v.grad).__name__)
