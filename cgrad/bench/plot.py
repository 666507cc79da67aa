"""--plot: softmax-NLL time against N, log-log, drawn with matplotlib."""

PLOT_HINT = "--plot needs matplotlib: pip install cgrad[plot]  (or: pip install matplotlib)"
PLOT_SECTIONS = ("softmax", "fused")


def require_matplotlib():
    """Exits with an install hint if matplotlib is missing (checked before
    any benchmarking starts, so a long run does not end in an ImportError)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit(PLOT_HINT) from None


def softmax_series(result):
    """The plot's lines: {label: [(N, ms), ...]} from the softmax sections'
    forward + backward medians (collector on)."""
    series = {}

    def add(label, n, ms):
        if ms is not None:
            series.setdefault(label, []).append((n, ms))

    for sec in result["sections"]:
        for row in sec["rows"]:
            n = row["params"].get("n")
            if sec["key"] == "softmax" and row["metric"] == "build+backward":
                add("cgrad, op by op", n, row["cgrad"])
                add("reference engine, op by op", n, row["reference"])
            elif sec["key"] == "fused":
                add("micrograd, op by op", n, row["micrograd"])
                add("cgrad.cross_entropy (fused)", n, row["cgrad"])
                add("torch log_softmax, float64", n, row["torch"])
    return {label: sorted(points) for label, points in series.items()}


def plot_softmax(result, path):
    """Draws softmax-NLL time against N, log-log, to `path` (a PNG)."""
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    series = softmax_series(result)
    if not series:
        raise ValueError("nothing to plot: sections 'softmax' and 'fused' did not run")
    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    for label, points in series.items():
        ns, ms = zip(*points)
        fused = "fused" in label or "torch" in label
        ax.plot(ns, ms, marker="o", linestyle="--" if fused else "-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (logits)")
    ax.set_ylabel("forward + backward, ms (median, collector on)")
    meta = result["meta"]
    ax.set_title(f"softmax-NLL over N logits: forward (op by op: building the graph) + backward\n"
                 f"$ {meta['command']}  (cgrad {meta['cgrad_version']}, {meta['python']})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
