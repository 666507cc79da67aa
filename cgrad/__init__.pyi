# Types of cgrad's public API for editors and type checkers; the package
# ships py.typed. Each module's stub is beside it (engine.pyi, ...).
from . import bulk as bulk, engine as engine, functional as functional, viz as viz
from .bulk import data as data, grads as grads, set_data as set_data, values as values
from .engine import Value as Value
from .functional import (
    cross_entropy as cross_entropy,
    dot as dot,
    log_softmax as log_softmax,
    logsumexp as logsumexp,
    mean as mean,
    softmax as softmax,
    sum as sum,
)
from .gradcheck import gradcheck as gradcheck, numeric_grad as numeric_grad
from .viz import draw_dot as draw_dot

__version__: str

__all__ = ["Value", "gradcheck", "numeric_grad", "__version__",
           "mean", "dot", "logsumexp", "softmax", "log_softmax", "cross_entropy",
           "values", "data", "grads", "set_data", "draw_dot"]
