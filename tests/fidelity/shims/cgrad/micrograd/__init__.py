# `micrograd` on cgrad, for tests/test_fidelity.py: put this folder first on
# PYTHONPATH and an unchanged micrograd program imports cgrad. (micrograd's
# own __init__.py is empty.)
