"""cgrad: micrograd's Value with the graph, the ordering and every backward kernel in C."""
__version__ = "0.1.0"

from .engine import Value
from .gradcheck import gradcheck, numeric_grad

__all__ = ["Value", "gradcheck", "numeric_grad", "__version__"]
