"""One run of the bench: a warm-up, then every registered section in turn,
collected into one JSON-ready dict."""
import datetime
import gc
import os
import platform
from time import perf_counter

import cgrad

# Every section, imported so that it registers itself (rows.section).
from . import chain, fused, memory, mlp, ops, softmax  # noqa: F401
from .baselines import load_micrograd, package_version, torch_installed
from .chain import build_chain
from .config import ENGINES
from .measure import WARM_UP_ROUNDS, Progress, describe_interpreter, interpreter_info
from .rows import SECTIONS
from .seed import SEED, build_softmax_nll, softmax_inputs


def warm_up():
    """Small runs of each engine, so that first-call costs (cffi's lazy setup,
    the allocators' first arenas; on PyPy, compiling the hot loops) land in
    no measurement."""
    for _ in range(WARM_UP_ROUNDS):
        for Value in ENGINES.values():
            build_softmax_nll(Value, *softmax_inputs(100))[1].backward()
            build_chain(Value, 1000)[1].backward()
    gc.collect()


def run(config, progress=None, only=None, command=None):
    """Runs the registered sections (or those whose keys are in `only`) and
    returns the whole result as one JSON-ready dict. `command`: the command
    line to print with the figures (default: the one that runs this config)."""
    progress = progress if progress is not None else Progress()
    started = perf_counter()
    interpreter = interpreter_info()
    meta = {
        "command": command or "python -m cgrad.bench" + ("" if config.mode == "full" else f" --{config.mode}"),
        "mode": config.mode,
        "cgrad_version": cgrad.__version__,
        "micrograd_version": package_version("micrograd") if load_micrograd() else None,
        "torch_version": package_version("torch") if torch_installed() else None,
        "python": describe_interpreter(interpreter),
        "interpreter": interpreter,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_before": os.getloadavg(),
        "seed": SEED,
    }
    warm_up()
    sections = []
    for sec in SECTIONS:
        if only and sec.key not in only:
            continue
        rows = sec.run(config, progress)
        progress.end()
        sections.append({"key": sec.key, "title": sec.title, "baselines": sec.baselines, "rows": rows})
    meta["loadavg_after"] = os.getloadavg()
    meta["seconds"] = perf_counter() - started
    targets = [{"section": row["section"], "name": row["name"], "metric": row["metric"],
                "target": target["text"], "passed": target["passed"], "measured": target["measured"]}
               for s in sections for row in s["rows"] for target in row["targets"]]
    return {"meta": meta, "sections": sections, "targets": targets}
