# The reference Value of lecture_second_half.py: see engine.py.
