# The reference Value of the lecture programs: see engine.py.
