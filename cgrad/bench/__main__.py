"""python -m cgrad.bench: see the package's docstring (cgrad/bench/__init__.py)."""
import sys

from .cli import main

sys.exit(main())
