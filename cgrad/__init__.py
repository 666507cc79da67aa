"""cgrad: micrograd's Value with the graph, the ordering and every backward kernel in C."""
__version__ = "0.1.0"

from .bulk import data, grads, set_data, values
from .engine import Value
from .functional import cross_entropy, dot, log_softmax, logsumexp, mean, softmax
from .functional import sum  # noqa: F401  (cgrad.sum, kept out of __all__: see below)
from .gradcheck import gradcheck, numeric_grad
from .viz import draw_dot

# Not "sum": `from cgrad import *` must not shadow Python's sum, which
# cgrad.sum is not (no values is a ValueError); cgrad.sum is still there.
__all__ = ["Value", "gradcheck", "numeric_grad", "__version__",
           "mean", "dot", "logsumexp", "softmax", "log_softmax", "cross_entropy",
           "values", "data", "grads", "set_data", "draw_dot"]
