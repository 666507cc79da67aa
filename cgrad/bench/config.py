"""What the bench compares and how much of it: the engines, the measured
columns, the ratios every row carries, and the sizes and repeat counts of a
full, quick or tiny run."""
from dataclasses import dataclass

from cgrad import Value as CgradValue
from cgrad.reference import Value as ReferenceValue

ENGINES = {"cgrad": CgradValue, "reference": ReferenceValue}

# The measured columns: (column, engine, cycle collector on?). Each column is
# a key of every row dict (None where a section does not measure it).
VARIANTS = (
    ("cgrad", "cgrad", True),
    ("cgrad_gc_off", "cgrad", False),
    ("reference", "reference", True),
    ("reference_gc_off", "reference", False),
)
# Optional baselines, in sections that have them (None elsewhere): micrograd
# itself (PyPI 0.1.0) with and without the collector, and torch.
ENGINE_COLUMNS = tuple(column for column, _, _ in VARIANTS)
BASELINE_COLUMNS = ("micrograd", "micrograd_gc_off", "torch")
COLUMNS = ENGINE_COLUMNS + BASELINE_COLUMNS

# Ratios every row carries (None where a figure is missing): key ->
# (numerator column, denominator column, label in the table and targets).
# Higher is better for cgrad in all but vs_torch, which is cgrad's time over
# torch's. The "gc-off" ones compare cgrad as users run it (collector on)
# with the other engine at its best (collector off).
RATIOS = {
    "speedup": ("reference", "cgrad", "ref/cgrad"),
    "speedup_reference_gc_off": ("reference_gc_off", "cgrad", "ref gc-off/cgrad"),
    "speedup_micrograd": ("micrograd", "cgrad", "mg/cgrad"),
    "speedup_micrograd_gc_off": ("micrograd_gc_off", "cgrad", "mg gc-off/cgrad"),
    "vs_torch": ("cgrad", "torch", "cgrad/torch"),
}


class BenchmarkError(AssertionError):
    """The engines disagree (or one of them is wrong): the run stops here."""


# ---- configuration ----------------------------------------------------------


@dataclass
class Config:
    """Sizes and repeat counts of one kind of run. Medians need several
    repeats; the reference engine at large N needs seconds per repeat, so
    repeats shrink as sizes grow."""

    mode: str
    softmax_repeats: dict        # N (number of logits) -> repeats
    op_calls: int                # op calls per timing loop
    op_repeats: int
    chain_nodes_cgrad: int
    chain_nodes_reference: int
    chain_repeats: int           # fresh builds (each followed by one backward)
    chain_backward_repeats: int  # backward() calls on one built chain
    memory_chain_nodes_cgrad: int
    memory_chain_nodes_reference: int
    memory_softmax_n: int
    fused_min_seconds: float     # each timing of a fused / torch call loops at least this long
    mlp_points: int              # the moons demo's problem: first points of its 100
    mlp_layers: tuple            # MLP(2, list(mlp_layers))
    mlp_rounds: int              # rounds of blocks of consecutive steps, one block per engine
    mlp_steps: int               # timed steps per block (after one untimed step)

    @property
    def softmax_sizes(self):
        return tuple(self.softmax_repeats)


CONFIGS = {
    "full": Config(
        mode="full",
        softmax_repeats={100: 21, 1_000: 11, 10_000: 5, 100_000: 3},
        op_calls=100_000, op_repeats=15,
        chain_nodes_cgrad=10**6, chain_nodes_reference=10**5,
        chain_repeats=3, chain_backward_repeats=7,
        memory_chain_nodes_cgrad=10**6, memory_chain_nodes_reference=2 * 10**5,
        memory_softmax_n=100_000,
        fused_min_seconds=0.05,
        mlp_points=100, mlp_layers=(16, 16, 1), mlp_rounds=2, mlp_steps=4,
    ),
    "quick": Config(
        mode="quick",
        softmax_repeats={100: 9, 1_000: 5, 10_000: 3},
        op_calls=50_000, op_repeats=5,
        chain_nodes_cgrad=10**6, chain_nodes_reference=2 * 10**4,
        chain_repeats=1, chain_backward_repeats=5,
        memory_chain_nodes_cgrad=2 * 10**5, memory_chain_nodes_reference=5 * 10**4,
        memory_softmax_n=10_000,
        fused_min_seconds=0.02,
        mlp_points=100, mlp_layers=(16, 16, 1), mlp_rounds=1, mlp_steps=3,
    ),
    # Smoke-test sizes for the tests: seconds in all, the figures mean nothing.
    "tiny": Config(
        mode="tiny",
        softmax_repeats={10: 2, 50: 2},
        op_calls=200, op_repeats=2,
        chain_nodes_cgrad=500, chain_nodes_reference=200,
        chain_repeats=1, chain_backward_repeats=2,
        memory_chain_nodes_cgrad=2_000, memory_chain_nodes_reference=1_000,
        memory_softmax_n=100,
        fused_min_seconds=0.001,
        mlp_points=10, mlp_layers=(4, 4, 1), mlp_rounds=1, mlp_steps=2,
    ),
}
