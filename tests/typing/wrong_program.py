"""Mistakes that cgrad's types must catch: tests/test_typing.py runs
`mypy --strict` on this file and expects an error on each line whose
comment starts with "error", and on no other line."""
import cgrad
from cgrad import Value
from cgrad.nn import MLP
from cgrad.optim import SGD

a = Value(1.0) + "x"  # error
b = cgrad.softmax(3)  # error
c: str = Value(1.0).data  # error
d = MLP(2, [3, 1])([1.0, 2.0]).relu()  # error: may be a list of Values
e = cgrad.draw_dot(Value(1.0), rankdir="XY")  # error
f = Value(1.0).nosuch()  # error
g = cgrad.cross_entropy([Value(1.0)], 0.5)  # error: the target is an index
h = SGD([Value(1.0)], lr="fast")  # error
i: list[float] = cgrad.numeric_grad(lambda x: x, [1.0], method="backward")  # error
Value(1.0).backward().data  # error: backward returns None
