"""The command line of python -m cgrad.bench (see the package's docstring)."""
import argparse
import json
import shlex
import sys

from .baselines import torch_worker
from .config import CONFIGS
from .measure import Progress
from .memory import memory_probe
from .plot import PLOT_SECTIONS, plot_softmax, require_matplotlib
from .report import print_report
from .rows import SECTIONS
from .runner import run


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m cgrad.bench",
        description="Speed and memory of cgrad against its pure-Python reference engine "
                    "(micrograd's algorithm), micrograd and torch (when installed), measured side by side.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="a short run (about a minute): fewer repeats and steps, no N=100,000")
    size.add_argument("--tiny", action="store_true",
                      help="smoke-test sizes (seconds; the figures mean nothing)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document with every measurement instead of the table")
    parser.add_argument("--only", action="append", metavar="SECTION",
                        choices=[s.key for s in SECTIONS],
                        help="run only this section (repeatable): " + ", ".join(s.key for s in SECTIONS))
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also draw softmax-NLL time against N, log-log (needs matplotlib; "
                             "runs sections " + " and ".join(PLOT_SECTIONS) + ")")
    # Internal: torch's side of the fused section, in a process of its own (see TorchWorker).
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    # Internal: one memory measurement in a fresh process (see run_memory_probe).
    parser.add_argument("--memory-probe", nargs=3, metavar=("ENGINE", "GRAPH", "N"),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.memory_probe:
        engine, graph, n = args.memory_probe
        print(json.dumps(memory_probe(engine, graph, int(n))))
        return 0
    if args.torch_worker:
        return torch_worker()
    mode = "quick" if args.quick else "tiny" if args.tiny else "full"
    only = args.only
    if args.plot:
        require_matplotlib()
        if only:
            only = only + [key for key in PLOT_SECTIONS if key not in only]
    config = CONFIGS[mode]
    # The exact command with the figures, so that each can be rerun as it was made.
    result = run(config, Progress(), only=only, command=shlex.join(["python", "-m", "cgrad.bench", *argv]))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(result)
    if args.plot:
        plot_softmax(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
