# The reference Value of lecture_first_half.py: see engine.py.
