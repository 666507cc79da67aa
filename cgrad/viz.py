"""cgrad.viz: the lecture's graph pictures, drawn with Graphviz.

`draw_dot(root)` returns a `graphviz.Digraph` as the lecture draws it: one
record per Value (its label when it has one, its data and its grad), one small
node per op, and edges operand -> op -> result. `render(root, path)` writes
that picture to a file, in the format the file's extension names.

Graphviz is optional (`pip install cgrad[viz]`): the `graphviz` Python package
is imported only when a graph is drawn, and the `dot` program only when one is
rendered. Missing either gives an error saying what to install.

The walk is iterative (deep graphs do not hit the recursion limit) and
counts Values as it goes, refusing a graph larger than `max_nodes` as soon as
it finds one Value too many, rather than handing graphviz a picture it would
take minutes to lay out. It reads only `_prev`, `_op`, `data`, `grad` and
`label`, so it also draws micrograd's own Values.
"""
import os
import shutil

__all__ = ["draw_dot", "render", "render_example", "DotNotFoundError", "MAX_NODES"]

MAX_NODES = 500

_INSTALL_PACKAGE = (
    "drawing a cgrad graph needs the graphviz Python package: "
    "pip install cgrad[viz]  (or: pip install graphviz)"
)
_INSTALL_DOT = (
    "rendering a graph needs the Graphviz program 'dot', which is not on PATH; "
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz, "
    "conda: conda install graphviz, others: https://graphviz.org/download/)"
)


class DotNotFoundError(RuntimeError):
    """The Graphviz program `dot` is not installed (or not on PATH)."""

    def __init__(self, msg=_INSTALL_DOT):
        super().__init__(msg)


def _import_graphviz():
    try:
        import graphviz
    except ImportError as e:
        raise ImportError(_INSTALL_PACKAGE, name="graphviz") from e
    return graphviz


_digraph_class = None


def _Digraph(graphviz):
    """graphviz.Digraph, whose renderings (`pipe`, `render`, `view`, and
    Jupyter's display, which pipes) say how to install Graphviz when `dot`
    is missing, instead of graphviz's bare 'failed to execute'."""
    global _digraph_class
    cls = _digraph_class
    if cls is not None and issubclass(cls, graphviz.Digraph):
        return cls

    class Digraph(graphviz.Digraph):
        __doc__ = graphviz.Digraph.__doc__

        def pipe(self, *args, **kwargs):
            try:
                return super().pipe(*args, **kwargs)
            except graphviz.ExecutableNotFound as e:
                raise DotNotFoundError() from e

        def render(self, *args, **kwargs):
            try:
                return super().render(*args, **kwargs)
            except graphviz.ExecutableNotFound as e:
                raise DotNotFoundError() from e

    Digraph.__module__ = __name__
    Digraph.__qualname__ = "Digraph"
    _digraph_class = Digraph
    return Digraph


def __getattr__(name):
    # cgrad.viz.Digraph, made when graphviz is first needed: there for pickle
    if name == "Digraph":
        return _Digraph(_import_graphviz())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _record_text(s):
    """s as the text of one field of a record label: the characters that
    structure a record ({ } | < >), the backslash, the quote and entities
    are escaped, so that a label shows as it is written."""
    s = str(s).replace("&", "&amp;")  # dot reads "&amp;" and the like as entities
    for ch in "\\{}|<>\"":
        s = s.replace(ch, "\\" + ch)
    return s.replace("\n", "\\n")


def _children(v, prev=None):
    """v's operands, `prev` (v's `_prev`, read here if not given), in the
    order they were given when that order is known (so the picture is the
    same from run to run):
    cgrad's Value gives them with `_operands()`, cgrad.reference's keeps
    them in `_children`. Anything else (micrograd's Value) keeps `_prev`'s
    order. Linear in the number of operands (a fused op may have 10^5)."""
    if prev is None:
        prev = v._prev
    if len(prev) < 2:
        return list(prev)
    ordered = getattr(v, "_children", None)
    if ordered is None and hasattr(v, "_operands"):
        ordered = v._operands()
    if ordered is not None:
        seen = set()  # ids: the operands themselves may define == and hash by value
        unique = []
        for c in ordered:
            if c is not None and id(c) not in seen:
                seen.add(id(c))
                unique.append(c)
        if len(unique) == len(prev) and all(c in prev for c in unique):
            return unique
    return list(prev)


def _escape(graphviz, s):
    """s as a plain node label, shown as written: backslashes and entities
    (&amp;) are not read as escapes."""
    s = s.replace("&", "&amp;")
    escape = getattr(graphviz, "escape", None)
    return escape(s) if escape is not None else s.replace("\\", "\\\\")


def _too_many(max_nodes):
    return (f"this graph has more than {max_nodes} Values, the limit of draw_dot "
            f"(Graphviz would take very long to lay it out); to draw it anyway, "
            f"raise the limit: draw_dot(root, max_nodes=...) (None for no limit)")


def _trace(root, max_nodes=MAX_NODES):
    """The Values reachable from root (root first, each once) and the edges
    (operand index, result index) between them, walked without recursion.
    ValueError as soon as more than max_nodes Values are found (None: no
    limit)."""
    if max_nodes is not None:
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int):
            raise TypeError(f"max_nodes must be an int or None, not {type(max_nodes).__name__!r}")
        if max_nodes < 1:
            raise ValueError(f"max_nodes must be at least 1, not {max_nodes}")
    index = {id(root): 0}  # id -> position in nodes; nodes keeps every Value alive
    nodes = [root]
    edges = []
    stack = [root]
    while stack:
        v = stack.pop()
        vi = index[id(v)]
        prev = v._prev
        # v and its distinct operands alone may be too many: say so before
        # ordering 10^5 operands
        if max_nodes is not None and len(prev) >= max_nodes:
            raise ValueError(_too_many(max_nodes))
        found = []
        for child in _children(v, prev):
            ci = index.get(id(child))
            if ci is None:
                if max_nodes is not None and len(nodes) >= max_nodes:
                    raise ValueError(_too_many(max_nodes))
                ci = index[id(child)] = len(nodes)
                nodes.append(child)
                found.append(child)
            edges.append((ci, vi))
        stack.extend(reversed(found))  # the first operand is walked first
    return nodes, edges


def draw_dot(root, format="svg", rankdir="LR", max_nodes=MAX_NODES):
    """The graph of root as the lecture draws it, a `graphviz.Digraph`: a
    record per Value with its label (when set), data and grad ("%.4f"), an
    op node for each Value an op made, edges operand -> op -> result.

    format is the output format of the Digraph's render/pipe (e.g. 'svg',
    'png'); rankdir is 'LR' (left to right) or 'TB' (top to bottom).
    Graphs with more than max_nodes Values (default 500) are refused with a
    ValueError; pass a larger max_nodes, or None, to draw them anyway.

    In Jupyter the Digraph shows itself; elsewhere use `render(root, path)`
    or the Digraph's own `.render()` / `.pipe()`.
    """
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', not {rankdir!r}")
    graphviz = _import_graphviz()
    nodes, edges = _trace(root, max_nodes)
    dot = _Digraph(graphviz)(format=format, graph_attr={"rankdir": rankdir})
    ops = []
    for i, n in enumerate(nodes):
        label = getattr(n, "label", "")
        fields = f"data {n.data:.4f} | grad {n.grad:.4f}"
        if label is not None and str(label) != "":
            fields = f"{_record_text(label)} | {fields}"
        dot.node(name=f"v{i}", label=f"{{ {fields} }}", shape="record")
        op = n._op
        ops.append(op)
        if op:
            dot.node(name=f"op{i}", label=_escape(graphviz, str(op)))
            dot.edge(f"op{i}", f"v{i}")
    for ci, vi in edges:
        # micrograd draws an operand into its result's op node; a Value with
        # operands but no op (a custom op left unnamed) gets the edge itself.
        dot.edge(f"v{ci}", f"op{vi}" if ops[vi] else f"v{vi}")
    return dot


def _format_of(path):
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if not ext:
        raise ValueError(f"cannot tell the format of {os.fspath(path)!r}: give the file an extension "
                         "such as .svg, .png or .pdf, or pass format=")
    return ext


def render(root, path, format=None, rankdir="LR", max_nodes=MAX_NODES):
    """Draws root's graph (see draw_dot) into the file path, in the format its
    extension names (.svg, .png, .pdf, ...) or `format` says. Format 'gv' or
    'dot' writes the DOT source, which needs no Graphviz program. Returns path.
    DotNotFoundError, saying how to install Graphviz, if `dot` is missing."""
    graphviz = _import_graphviz()
    fmt = (format or _format_of(path)).lower()
    if fmt in ("dot", "gv"):
        dot = draw_dot(root, rankdir=rankdir, max_nodes=max_nodes)
        with open(path, "w", encoding="utf-8") as f:
            f.write(dot.source)
        return path
    if fmt not in getattr(graphviz, "FORMATS", (fmt,)):
        raise ValueError(f"Graphviz has no output format {fmt!r} (from {os.fspath(path)!r}); try .svg, .png or .pdf")
    dot = draw_dot(root, format=fmt, rankdir=rankdir, max_nodes=max_nodes)
    if shutil.which("dot") is None:
        raise DotNotFoundError()
    data = dot.pipe(format=fmt)  # raises DotNotFoundError too, should dot vanish meanwhile
    with open(path, "wb") as f:
        f.write(data)
    return path


def example():
    """The lecture's neuron, o = tanh(x1*w1 + x2*w2 + b), every Value
    labelled, after o.backward(). Returns o."""
    from .engine import Value

    x1 = Value(2.0, label="x1")
    x2 = Value(0.0, label="x2")
    w1 = Value(-3.0, label="w1")
    w2 = Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.label = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o


def render_example(path, rankdir="LR"):
    """Renders the graph of the lecture's neuron (see `example`) into path,
    in the format its extension names. Returns path."""
    return render(example(), path, rankdir=rankdir)
