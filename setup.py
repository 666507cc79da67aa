"""Metadata lives in pyproject.toml; this file only hooks in the cffi build
(build_ffi.py compiles every src/*.c into cgrad._cgrad)."""
import sys
import sysconfig

from setuptools import setup

options = {}
# cffi builds cgrad._cgrad against the stable ABI (Py_LIMITED_API) on CPython,
# so one wheel serves every CPython >= 3.9: tag it cp39-abi3. Not on PyPy or
# free-threaded CPython, which have no stable ABI.
if sys.implementation.name == "cpython" and not sysconfig.get_config_var("Py_GIL_DISABLED"):
    options["bdist_wheel"] = {"py_limited_api": "cp39"}

setup(cffi_modules=["build_ffi.py:ffibuilder"], options=options)
