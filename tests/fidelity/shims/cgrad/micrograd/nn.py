# micrograd.nn on cgrad: Module, Neuron, Layer, MLP (and Value, which
# micrograd.nn imports too).
from cgrad.nn import *  # noqa: F401,F403
from cgrad.nn import Layer, MLP, Module, Neuron, Value  # noqa: F401  (named, in case cgrad.nn sets __all__)
