# Metadata lives in pyproject.toml; this file only hooks in the cffi build.
from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
