# Types of cgrad.bulk: numpy bulk I/O (see engine.pyi for what these stubs
# cover).
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from .engine import Value
from .functional import ValueList

# A ValueList for a 0- or 1-dimensional array; nested lists of Values for more.
def values(array: npt.ArrayLike) -> ValueList | list[Any]: ...
def data(values: Iterable[Value]) -> npt.NDArray[np.float64]: ...
def grads(values: Iterable[Value]) -> npt.NDArray[np.float64]: ...
def set_data(values: Iterable[Value], array: npt.ArrayLike) -> None: ...

__all__ = ["values", "data", "grads", "set_data"]
