# micrograd.engine on cgrad: the one name micrograd's engine defines.
from cgrad import Value  # noqa: F401
