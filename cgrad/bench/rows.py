"""The rows every section returns (one shape for all, so that one printer
and one JSON writer serve them), their targets, and the section registry."""
import re
import statistics
from dataclasses import asdict, dataclass

from .config import COLUMNS, RATIOS


@dataclass
class Target:
    """A goal for one figure of a row: `field` (a row key such as 'speedup',
    'cgrad' or 'cgrad_best') compared with `value` by `op` ('>=' or '<=')."""

    field: str
    op: str
    value: float
    text: str

    def met_by(self, row):
        x = row.get(self.field)
        if x is None:
            return None
        return x >= self.value if self.op == ">=" else x <= self.value


def make_row(section, name, metric, unit, *, samples=None, target=None, targets=(), params=None,
             note="", **figures):
    """One row of the table and the JSON. `samples` maps columns (COLUMNS)
    to lists of measurements in `unit`, whose medians are the row's figures;
    `figures` gives figures directly (and extras such as 'cgrad_best').
    Every ratio of RATIOS is computed (speedup = reference / cgrad, so higher
    is better for cgrad, times and bytes alike). A row may have several
    targets (`target` is one, `targets` a list); `passed` is False if one is
    missed, else True if all are met (None without targets, or if a target's
    figure is missing)."""
    samples = {column: list(xs) for column, xs in (samples or {}).items() if xs}
    for column, xs in samples.items():
        figures.setdefault(column, statistics.median(xs))
    unknown = set(figures) - set(COLUMNS) - {"cgrad_best", "reference_best"}
    if unknown:
        raise TypeError(f"unknown figures {sorted(unknown)}")
    row = {"section": section, "name": name, "metric": metric, "unit": unit}
    for column in COLUMNS:
        row[column] = figures.pop(column, None)
    row.update(figures)
    for key, (numerator, denominator, _) in RATIOS.items():
        top, bottom = row[numerator], row[denominator]
        row[key] = top / bottom if bottom and top is not None else None
    targets = ([target] if target else []) + list(targets)
    row["targets"] = [dict(asdict(t), measured=row.get(t.field), passed=t.met_by(row)) for t in targets]
    met = [t["passed"] for t in row["targets"]]
    row["passed"] = False if False in met else None if not met or None in met else True
    row["note"] = note
    row["params"] = params or {}
    row["samples"] = samples
    return row


@dataclass
class Section:
    key: str
    title: str
    run: object  # fn(config, progress) -> list of row dicts
    baselines: bool = False  # has micrograd / torch columns (printed under a header of its own)


SECTIONS = []


def section(key, title, baselines=False):
    """Registers a benchmark section. Sections run and print in the order of
    the letter their titles start with, "(a) ", "(b) ", ..., whatever the
    order their modules are imported in."""
    if not re.match(r"\([a-z]\) ", title):
        raise ValueError(f"section {key!r}: its title must start with its letter, as '(a) ', not {title!r}")

    def register(fn):
        SECTIONS.append(Section(key, title, fn, baselines))
        SECTIONS.sort(key=lambda s: s.title[:3])
        return fn
    return register
