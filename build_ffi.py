"""cffi builder for cgrad._cgrad (out-of-line API mode).

The declarations come from src/cgrad.h, the one contract: its preprocessor
lines are dropped (cffi's cdef does not take them) and the rest is the cdef.
set_source includes the same header, so the compiler checks the sources
against it. Every src/*.c is compiled in.

Besides the header's functions the module carries two build facts, defined
in the set_source preamble (not part of the C core, which knows nothing of
them): cgrad_build_hash(), the source_hash() of src/ it was built from, which
cgrad/_core.py compares with the checkout beside it to refuse a stale build,
and cgrad_build_flags(), the extra compiler flags it was built with.

Environment switches:
  CGRAD_SANITIZE=1   build with AddressSanitizer and UndefinedBehaviorSanitizer
                     (run Python with LD_PRELOAD=$(gcc -print-file-name=libasan.so)
                     and ASAN_OPTIONS=detect_leaks=0)
  CGRAD_WERROR=1     turn warnings into errors
"""
import hashlib
import os
import pathlib
import sys

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent
SRC = ROOT / "src"
# Every .c file in src/ is part of the core (a C-only test harness lives in tests/c/).
SOURCES = sorted(p.name for p in SRC.glob("*.c"))
HEADERS = sorted(p.name for p in SRC.glob("*.h"))

# Declared for cffi on top of the header; defined in the preamble below.
BUILD_INFO_CDEF = """
const char *cgrad_build_hash(void);
const char *cgrad_build_flags(void);
"""


def source_hash(src=SRC):
    """sha256 of every src/*.c and src/*.h, names and bytes, in name order.
    cgrad/_core.py has the same function (_source_hash); a test checks that
    the two agree."""
    h = hashlib.sha256()
    for path in sorted(pathlib.Path(src).iterdir()):
        if path.suffix in (".c", ".h") and path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def header_declarations(path=SRC / "cgrad.h"):
    """The header's text without preprocessor lines, for ffi.cdef."""
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def _msvc():
    return sys.platform == "win32" and "GCC" not in sys.version


def compile_args():
    if _msvc():  # Windows' cl: C11 with its (experimental) C11 atomics
        args = ["/std:c11", "/experimental:c11atomics", "/O2", "/fp:precise", "/W3"]
        if os.environ.get("CGRAD_WERROR") == "1":
            args.append("/WX")
        return args
    # -fvisibility=hidden: the module exports only its init function, so calls
    # between the core's files (the sweep calling each kernel) are direct,
    # not through the PLT.
    args = ["-std=c11", "-O2", "-Wall", "-Wextra", "-ffp-contract=off", "-fno-fast-math",
            "-fvisibility=hidden"]
    if os.environ.get("CGRAD_WERROR") == "1":
        args.append("-Werror")
    if os.environ.get("CGRAD_SANITIZE") == "1":
        # -fno-wrapv undoes Python's -fwrapv, so UBSan sees signed overflow too.
        args += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                 "-fno-sanitize-recover=all", "-fno-wrapv", "-O1", "-g"]
    return args


def link_args():
    if os.environ.get("CGRAD_SANITIZE") == "1" and not _msvc():
        return ["-fsanitize=address,undefined"]
    return []


def _c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def preamble():
    return "\n".join([
        '#include "cgrad.h"',
        "static const char *cgrad_build_hash(void) { return %s; }" % _c_string(source_hash()),
        "static const char *cgrad_build_flags(void) { return %s; }"
        % _c_string(" ".join(compile_args())),
    ])


ffibuilder = FFI()
ffibuilder.cdef(header_declarations())
ffibuilder.cdef(BUILD_INFO_CDEF)
ffibuilder.set_source(
    "cgrad._cgrad",
    preamble(),
    # Relative paths: setuptools wants them so, and the sdist carries src/.
    sources=[os.path.join("src", name) for name in SOURCES],
    depends=[os.path.join("src", name) for name in HEADERS],
    include_dirs=["src"],
    extra_compile_args=compile_args(),
    extra_link_args=link_args(),
    libraries=[] if sys.platform == "win32" else ["m"],
)

if __name__ == "__main__":
    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)
