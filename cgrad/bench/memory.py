"""(d) memory: RSS growth while a graph is built, each measured in a fresh
process (python -m cgrad.bench --memory-probe ENGINE GRAPH N)."""
import gc
import json
import os
import subprocess
import sys

from .baselines import child_env
from .chain import build_chain
from .config import ENGINES, BenchmarkError
from .rows import Target, make_row, section
from .seed import build_softmax_nll, softmax_inputs


def rss_bytes():
    """The process's resident set size, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def count_nodes(root):
    """Distinct Values reachable from root through _prev: the graph as
    micrograd shows it (constants included)."""
    seen = {id(root)}
    stack = [root]
    keep = [root]  # cgrad makes constants' Values on demand: keep ids valid
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
                keep.append(child)
    return len(seen)


def memory_probe(engine, graph, n):
    """Run in a fresh process: RSS growth while building `graph` ('chain':
    build_chain with n nodes; 'softmax': build_softmax_nll with n logits)
    with `engine`. Returns a dict; 'nodes' counts micrograd's nodes."""
    Value = ENGINES[engine]
    # Warm up first, so the interpreter's and allocator's one-time state is
    # in the baseline rather than charged to the graph.
    build_chain(Value, 1000)[1].backward()
    build_softmax_nll(Value, *softmax_inputs(100))[1].backward()
    xs, label = softmax_inputs(n) if graph == "softmax" else (None, None)
    gc.collect()
    before = rss_bytes()
    if graph == "chain":
        x, root = build_chain(Value, n)
    else:
        logits, root = build_softmax_nll(Value, xs, label)
    after = rss_bytes()
    nodes = n + 1 if graph == "chain" else count_nodes(root)  # counted after the reading
    return {"engine": engine, "graph": graph, "n": n, "nodes": nodes,
            "rss_before": before, "rss_after": after, "bytes": after - before}


def run_memory_probe(engine, graph, n):
    """memory_probe in a fresh interpreter (an RSS reading in this process
    would count memory freed by earlier sections and reused)."""
    done = subprocess.run(
        [sys.executable, "-m", "cgrad.bench", "--memory-probe", engine, graph, str(n)],
        env=child_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"memory probe {engine} {graph} {n} failed:\n{done.stderr}")
    return json.loads(done.stdout)


@section("memory", "(d) memory: RSS growth while a graph is built, Python objects included")
def bench_memory(config, progress):
    rows = []
    chain_sizes = {"cgrad": config.memory_chain_nodes_cgrad, "reference": config.memory_chain_nodes_reference}
    probes = {}
    for engine in ENGINES:
        progress.begin(f"memory {engine}")
        progress.step(f"chain of {chain_sizes[engine]:,} '+' nodes")
        probes["chain", engine] = run_memory_probe(engine, "chain", chain_sizes[engine])
        progress.step(f"softmax-NLL N={config.memory_softmax_n:,}")
        probes["softmax", engine] = run_memory_probe(engine, "softmax", config.memory_softmax_n)
        progress.end()

    if probes["softmax", "cgrad"]["nodes"] != probes["softmax", "reference"]["nodes"]:
        raise BenchmarkError("softmax-NLL graphs differ in size: "
                             f"cgrad {probes['softmax', 'cgrad']['nodes']}, "
                             f"reference {probes['softmax', 'reference']['nodes']}")

    def per_node(graph, engine):
        probe = probes[graph, engine]
        return probe["bytes"] / probe["nodes"]

    rows.append(make_row(
        "memory", "chain y = y + x", "RSS per node", "bytes",
        # The target is for graphs large enough that RSS pages measure them.
        target=Target("cgrad", "<=", 200, "<= 200 B") if chain_sizes["cgrad"] >= 10**5 else None,
        params={"cgrad": probes["chain", "cgrad"], "reference": probes["chain", "reference"]},
        note=(f"'+' nodes of two Values; cgrad {chain_sizes['cgrad']:,} nodes, "
              f"reference {chain_sizes['reference']:,}"),
        cgrad=per_node("chain", "cgrad"), reference=per_node("chain", "reference")))
    # Per logit, not per node: the seed's softmax makes 5N+4 nodes, of which
    # only 3N+6 are reachable from the loss (micrograd's graph); the other
    # probabilities are dropped, and each engine keeps a different share of
    # their memory (cgrad's arena keeps their C nodes while the graph lives).
    n = config.memory_softmax_n
    rows.append(make_row(
        "memory", f"softmax-NLL N={n:,}", "RSS per logit", "bytes",
        params={"cgrad": probes["softmax", "cgrad"], "reference": probes["softmax", "reference"]},
        note=(f"whole build / N; {probes['softmax', 'cgrad']['nodes']:,} nodes reachable from the loss, "
              f"5N+4 made"),
        cgrad=probes["softmax", "cgrad"]["bytes"] / n,
        reference=probes["softmax", "reference"]["bytes"] / n))
    return rows
