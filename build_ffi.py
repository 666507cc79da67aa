"""cffi builder for cgrad._cgrad (out-of-line API mode).

The declarations come from src/cgrad.h, the one contract: its preprocessor
lines are dropped (cffi's cdef does not take them) and the rest is the cdef.
set_source includes the same header, so the compiler checks the sources
against it.

Environment switches:
  CGRAD_SANITIZE=1   build with AddressSanitizer and UndefinedBehaviorSanitizer
  CGRAD_WERROR=1     turn warnings into errors
"""
import os
import pathlib

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent
SRC = ROOT / "src"
# Every .c file in src/ is part of the core (a C-only test harness lives in tests/c/).
SOURCES = sorted(p.name for p in SRC.glob("*.c"))


def header_declarations(path=SRC / "cgrad.h"):
    """The header's text without preprocessor lines, for ffi.cdef."""
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def compile_args():
    args = ["-std=c11", "-O2", "-Wall", "-Wextra", "-ffp-contract=off", "-fno-fast-math"]
    if os.environ.get("CGRAD_WERROR") == "1":
        args.append("-Werror")
    if os.environ.get("CGRAD_SANITIZE") == "1":
        args += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                 "-fno-sanitize-recover=undefined", "-O1", "-g"]
    return args


def link_args():
    if os.environ.get("CGRAD_SANITIZE") == "1":
        return ["-fsanitize=address,undefined"]
    return []


ffibuilder = FFI()
ffibuilder.cdef(header_declarations())
ffibuilder.set_source(
    "cgrad._cgrad",
    '#include "cgrad.h"',
    # Relative paths: setuptools wants them so, and the sdist carries src/.
    sources=[os.path.join("src", name) for name in SOURCES],
    include_dirs=["src"],
    extra_compile_args=compile_args(),
    extra_link_args=link_args(),
    libraries=["m"],
)

if __name__ == "__main__":
    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)
