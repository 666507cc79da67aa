"""cgrad.optim: SGD and Adam that update every parameter in one C call.

Once the graph is fast, micrograd's `for p in params: p.data -= lr * p.grad`
is the slow part of a step. These keep their state in numpy arrays, follow
torch.optim's formulas, and read `lr` (and the other settings) at every step,
so a schedule can change them between steps.
"""
import numpy as np

from ._core import ffi, lib
from .engine import Value
from ._values import snapshot

# Bound once: `lib.name` is a lookup, and a slow one in PyPy's interpreter
# (a training loop shorter than PyPy's JIT threshold runs there).
_cg_zero_grads = lib.cg_zero_grads
_cg_sgd_step = lib.cg_sgd_step


class Optimizer:
    def __init__(self, params, lr):
        params = list(params)
        for p in params:
            if not isinstance(p, Value):
                raise TypeError(f"{type(self).__name__}: parameters must be Values (model.parameters()), "
                                f"not {type(p).__name__!r}")
        # C is handed _nodes and their count, len(_params): both fixed here.
        # _params holds the Values, and so their nodes, for as long as the
        # optimizer lives, and `params` only shows it: assigning to `params`
        # cannot make C read past the array or write to freed nodes.
        self._params, self._nodes = snapshot(params)
        self.lr = lr
        self.steps = 0

    @property
    def params(self):
        """The parameters (a tuple), fixed when the optimizer is made."""
        return self._params

    def _state(self):
        """A zeroed float64 array of one number per parameter, and its C view."""
        array = np.zeros(len(self._params))
        return array, ffi.from_buffer("double[]", array)

    def zero_grad(self):
        """Sets every parameter's grad to 0 (micrograd's int 0), in one C call."""
        _cg_zero_grads(self._nodes, len(self._params))


class SGD(Optimizer):
    """p -= lr * grad, or with momentum, torch's p -= lr * buf where
    buf = momentum * buf + grad."""

    def __init__(self, params, lr, momentum=0.0):
        super().__init__(params, lr)
        self.momentum = momentum
        self.buf, self._buf = self._state()

    def step(self):
        _cg_sgd_step(self._nodes, len(self._params), self.lr, self.momentum, self._buf, self.steps == 0)
        self.steps += 1


class Adam(Optimizer):
    """torch.optim.Adam (no amsgrad): weight_decay adds weight_decay * p to
    the grad, as torch's Adam does (not AdamW's decoupled decay)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.m, self._m = self._state()
        self.v, self._v = self._state()

    def step(self):
        self.steps += 1
        beta1, beta2 = self.betas
        lib.cg_adam_step(self._nodes, len(self._params), self.lr, beta1, beta2, self.eps,
                         self.weight_decay, self.steps, self._m, self._v)
