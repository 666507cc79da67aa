# Types of cgrad.nn: micrograd's Module, Neuron, Layer and MLP (see
# engine.pyi for what these stubs cover).
from collections.abc import Iterable

from .engine import _Number, _Operand, _SubclassType, Value
from .functional import ValueList

# A neuron's fused sum, shown as micrograd's last '+' (see nn.py), and the
# products and partial sums before it, made when it is first looked at.
class NeuronSum(Value, metaclass=_SubclassType): ...

class NeuronSumPart(Value, metaclass=_SubclassType):
    @property
    def grad(self) -> float: ...
    @grad.setter
    def grad(self, g: _Number) -> None: ...

class Module:
    def zero_grad(self) -> None: ...
    def parameters(self) -> list[Value]: ...

class Neuron(Module):
    w: ValueList
    b: Value
    nonlin: bool
    def __init__(self, nin: int, nonlin: bool = True) -> None: ...
    def __call__(self, x: Iterable[_Operand]) -> Value: ...

class Layer(Module):
    neurons: list[Neuron]
    def __init__(self, nin: int, nout: int, *, nonlin: bool = True) -> None: ...
    # One Value for a layer of one neuron, else a list of them (micrograd's).
    def __call__(self, x: Iterable[_Operand]) -> Value | list[Value]: ...

class MLP(Module):
    layers: list[Layer]
    def __init__(self, nin: int, nouts: list[int]) -> None: ...
    # The last layer's output: one Value if it has one neuron, else a list.
    def __call__(self, x: Iterable[_Operand]) -> Value | list[Value]: ...
