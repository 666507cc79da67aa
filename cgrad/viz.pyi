# Types of cgrad.viz (see engine.pyi for what these stubs cover).
import os
from typing import Any, Literal, TypeVar

from .engine import Value

_Path = TypeVar("_Path", str, os.PathLike[str])

MAX_NODES: int

class DotNotFoundError(RuntimeError):
    """The Graphviz program `dot` is not installed (or not on PATH)."""

    def __init__(self, msg: str = ...) -> None: ...

# A graphviz.Digraph; typed Any because the graphviz package ships no types.
def draw_dot(
    root: Value, format: str = "svg", rankdir: Literal["LR", "TB"] = "LR", max_nodes: int | None = 500
) -> Any: ...
def render(
    root: Value,
    path: _Path,
    format: str | None = None,
    rankdir: Literal["LR", "TB"] = "LR",
    max_nodes: int | None = 500,
) -> _Path: ...
def example() -> Value: ...
def render_example(path: _Path, rankdir: Literal["LR", "TB"] = "LR") -> _Path: ...

__all__ = ["draw_dot", "render", "render_example", "DotNotFoundError", "MAX_NODES"]
