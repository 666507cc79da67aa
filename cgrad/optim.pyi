# Types of cgrad.optim: SGD and Adam (see engine.pyi for what these stubs
# cover).
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from .engine import Value

class Optimizer:
    @property
    def params(self) -> tuple[Value, ...]: ...
    lr: float
    steps: int
    def __init__(self, params: Iterable[Value], lr: float) -> None: ...
    def zero_grad(self) -> None: ...

class SGD(Optimizer):
    momentum: float
    buf: npt.NDArray[np.float64]
    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0) -> None: ...
    def step(self) -> None: ...

class Adam(Optimizer):
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    m: npt.NDArray[np.float64]
    v: npt.NDArray[np.float64]
    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None: ...
    def step(self) -> None: ...
