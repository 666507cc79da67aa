"""Tests over the source tree: the C core's files depend on each other
without a circle.

A file depends on the files it includes (`#include "..."`) and on the files
that define the cg_/cg__ functions it calls. Creators (ops.c, fused.c) and the
sweep sit on the kernels (forward.h, kernels.h) and the arena; if any two
files reached each other, one concept would be split across them and neither
could be read alone."""
import graphlib
import pathlib
import re

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
if not SRC.is_dir():
    pytest.skip("tests of the source tree: no src/ beside tests/ (a run against an installed wheel)",
                allow_module_level=True)

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
DIRECTIVE = re.compile(r"^\s*#[^\n]*(?:\\\n[^\n]*)*", re.M)
NAME_THEN_PAREN = re.compile(r"\b(cg_\w+)\s*\(")


def _code(text):
    """The text without comments and preprocessor lines (macro bodies, which
    have no braces of their own to place them, are left out)."""
    return DIRECTIVE.sub("", COMMENT.sub(" ", text))


def _closing_paren(code, start):
    """Index just past the parenthesis that closes the one at start."""
    depth = 0
    for i in range(start, len(code)):
        if code[i] == "(":
            depth += 1
        elif code[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced parentheses")


def functions(text):
    """(defined, used): the cg_/cg__ functions a C file defines, and the ones
    it names inside a function body (calls, or taking an address). At brace
    depth 0 a name followed by a parameter list and `{` is a definition; one
    followed by `;` is a declaration, neither defined nor used."""
    code = _code(text)
    depth_at = []
    depth = 0
    for ch in code:
        depth_at.append(depth)
        depth += (ch == "{") - (ch == "}")
    defined, used = set(), set()
    for m in NAME_THEN_PAREN.finditer(code):
        name = m.group(1)
        if depth_at[m.start()] > 0:
            used.add(name)
            continue
        after = code[_closing_paren(code, m.end() - 1):].lstrip()
        if after.startswith("{"):
            defined.add(name)
    return defined, used - defined


def dependencies(src):
    """{file name: set of file names it depends on}, over src/*.c and src/*.h."""
    files = {p.name: p.read_text() for p in sorted(src.iterdir()) if p.suffix in (".c", ".h")}
    parsed = {name: functions(text) for name, text in files.items()}
    home = {}
    for name, (defined, _) in parsed.items():
        for function in defined:
            assert function not in home, f"{function} is defined in {home[function]} and {name}"
            home[function] = name
    graph = {}
    for name, text in files.items():
        deps = {inc for inc in INCLUDE.findall(text) if inc in files}
        deps |= {home[f] for f in parsed[name][1] if f in home}
        deps.discard(name)
        graph[name] = deps
    return graph


def find_cycle(graph):
    """A list of files that reach each other in a circle, or None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        return e.args[1]
    return None


def test_the_c_core_has_no_circle():
    cycle = find_cycle(dependencies(SRC))
    assert cycle is None, "src/ files depend on each other in a circle: " + " -> ".join(cycle)


def test_the_parser_sees_the_known_dependencies():
    # So that the test above cannot pass by seeing nothing.
    graph = dependencies(SRC)
    assert "arena.c" in graph["ops.c"]  # cg__alloc_nodes
    assert "arena.c" in graph["fused.c"]  # cg__alloc_args
    assert "node.h" in graph["arena.c"]  # #include
    assert "cgrad.h" in graph["node.h"]
    defined, used = functions((SRC / "ops.c").read_text())
    assert {"cg_add", "cg_leaf", "cg_unary"} <= defined
    assert "cg__alloc_nodes" in used


def test_forward_and_backward_kernels_have_one_home_each():
    # Replay (sweep.c) and creation (ops.c, fused.c) share forward.h, and
    # the sweep's backward kernels are kernels.h's; the kernels stand on the
    # node layout alone, not on any .c file.
    graph = dependencies(SRC)
    for creator in ("ops.c", "fused.c", "sweep.c"):
        assert "forward.h" in graph[creator]
    assert "kernels.h" in graph["sweep.c"]
    for kernels in ("forward.h", "kernels.h"):
        assert not {f for f in graph[kernels] if f.endswith(".c")}, graph[kernels]
    for creator in ("ops.c", "fused.c"):
        assert not graph[creator] & {"sweep.c", "ops.c", "fused.c"}


C_CALLING_EACH_OTHER = {
    "a.c": '#include "x.h"\nint cg_a(int n)\n{\n    return n ? cg_b(n - 1) : 0; /* cg_c( */\n}\n',
    "b.c": '#include "x.h"\nint cg_b(int n)\n{\n    return cg_a(n);\n}\n',
    "x.h": "int cg_a(int n);\nint cg_b(int n);\n",
}


def test_a_circle_between_two_files_is_found(tmp_path):
    for name, text in C_CALLING_EACH_OTHER.items():
        (tmp_path / name).write_text(text)
    graph = dependencies(tmp_path)
    assert graph == {"a.c": {"x.h", "b.c"}, "b.c": {"x.h", "a.c"}, "x.h": set()}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"a.c", "b.c"}


def test_declarations_and_comments_are_not_uses():
    defined, used = functions(C_CALLING_EACH_OTHER["a.c"])
    assert defined == {"cg_a"} and used == {"cg_b"}
    assert functions(C_CALLING_EACH_OTHER["x.h"]) == (set(), set())

