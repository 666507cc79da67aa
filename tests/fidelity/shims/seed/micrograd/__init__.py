# The reference Value of the seed programs: see engine.py.
