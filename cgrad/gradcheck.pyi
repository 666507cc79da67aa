# Types of cgrad.gradcheck (see engine.pyi for what these stubs cover).
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from .engine import _Number

class _HasData(Protocol):
    """A Value of any class with a float `data` (cgrad's, micrograd's, ...)."""

    @property
    def data(self) -> float: ...

def numeric_grad(
    f: Callable[..., Any],
    inputs: Sequence[_Number | _HasData],
    h: float = 1e-6,
    method: Literal["central", "forward"] = "central",
) -> list[float]: ...
def gradcheck(
    f: Callable[..., Any],
    inputs: Sequence[_Number | _HasData],
    h: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    value_class: Callable[[float], Any] | None = None,
) -> Literal[True]: ...
