"""The report: the result as aligned text tables, with the notes and the
targets met."""
import sys

from .config import RATIOS


def format_number(x):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def format_ratio(x):
    if x is None:
        return "-"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x"


TEXT_HEADER = ("benchmark", "measure", "unit")
# (header, row key, format) of the figures; a block of the table shows those
# that some row of it has.
FIGURE_COLUMNS = (
    ("cgrad", "cgrad", format_number),
    ("cgrad gc-off", "cgrad_gc_off", format_number),
    ("reference", "reference", format_number),
    ("ref gc-off", "reference_gc_off", format_number),
    ("micrograd", "micrograd", format_number),
    ("mg gc-off", "micrograd_gc_off", format_number),
    ("torch", "torch", format_number),
    (RATIOS["speedup"][2], "speedup", format_ratio),
    (RATIOS["speedup_micrograd"][2], "speedup_micrograd", format_ratio),
)
TARGET_HEADER = ("target", "measured", "")


def format_measured(target):
    fmt = format_ratio if target["field"] in RATIOS else format_number
    return fmt(target["measured"])


def table_blocks(result):
    """Runs of consecutive sections alike in having baselines (micrograd,
    torch) or not: each run is printed under a header of its own."""
    blocks = []
    for sec in result["sections"]:
        if blocks and blocks[-1][0]["baselines"] == sec["baselines"]:
            blocks[-1].append(sec)
        else:
            blocks.append([sec])
    return blocks


def table_lines(result):
    """The result as aligned text tables: one per block of sections (see
    table_blocks), one line per row, a further line per further target."""
    with_targets = any(row["targets"] for sec in result["sections"] for row in sec["rows"])
    rendered = []  # (header cells, [title or cells], numeric column indices)
    for block in table_blocks(result):
        rows = [row for sec in block for row in sec["rows"]]
        figures = [column for column in FIGURE_COLUMNS if any(row[column[1]] is not None for row in rows)]
        header = TEXT_HEADER + tuple(h for h, _, _ in figures) + (TARGET_HEADER if with_targets else ())
        numeric = set(range(len(TEXT_HEADER), len(TEXT_HEADER) + len(figures)))
        numeric |= {len(header) - 2} if with_targets else set()  # 'measured'
        lines = []
        for sec in block:
            lines.append(sec["title"])
            previous_name = None
            for row in sec["rows"]:
                targets = row["targets"] or [None]
                for i, target in enumerate(targets):
                    if i == 0:
                        cells = (row["name"] if row["name"] != previous_name else "", row["metric"], row["unit"],
                                 *(fmt(row[key]) for _, key, fmt in figures))
                    else:
                        cells = ("",) * (len(TEXT_HEADER) + len(figures))
                    if with_targets:
                        cells += (target["text"], format_measured(target),
                                  {True: "PASS", False: "MISS", None: ""}[target["passed"]]) if target else ("",) * 3
                    lines.append(cells)
                previous_name = row["name"]
        rendered.append((header, lines, numeric))

    # The text columns line up across blocks; the figures within a block.
    text_widths = [max(len(cells[i]) for header, lines, _ in rendered
                       for cells in [header, *(line for line in lines if not isinstance(line, str))])
                   for i in range(len(TEXT_HEADER))]
    out = []
    for header, lines, numeric in rendered:
        cell_lines = [header] + [line for line in lines if not isinstance(line, str)]
        widths = text_widths + [max(len(cells[i]) for cells in cell_lines)
                                for i in range(len(TEXT_HEADER), len(header))]

        def render(cells):
            return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                             for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()

        if out:
            out.append("")
        top = render(header)
        out += [top, "-" * len(top)]
        out += [line if isinstance(line, str) else render(line) for line in lines]
    return out


def baselines_text(meta):
    parts = []
    for name in ("micrograd", "torch"):
        version = meta.get(f"{name}_version")
        parts.append(f"{name} {version}" if version else f"{name} not installed")
    return ", ".join(parts)


def print_report(result, stream=None):
    stream = stream if stream is not None else sys.stdout
    meta = result["meta"]
    baselines = any(sec["baselines"] for sec in result["sections"])
    print(f"$ {meta['command']}", file=stream)
    print(f"cgrad {meta['cgrad_version']} vs cgrad.reference (micrograd's algorithm)"
          f"{'; ' + baselines_text(meta) if baselines else ''}; "
          f"{meta['python']}, {meta['cpu_count']} CPUs; "
          f"load {meta['loadavg_before'][0]:.2f} -> {meta['loadavg_after'][0]:.2f}; "
          f"{meta['seconds']:.0f} s", file=stream)
    engines = "cgrad/reference/micrograd" if baselines else "cgrad/reference"
    ratios = "ref/cgrad, mg/cgrad" if baselines else "ref/cgrad"
    print(f"Medians of repeats. {engines}: cycle collector on, as users run them; "
          f"gc-off: the same with it disabled.\n{ratios}: how many times faster (or smaller) "
          f"cgrad is, both with the collector on.", file=stream)
    if baselines:
        print("mg gc-off/cgrad, ref gc-off/cgrad: against the other engine with its collector off, cgrad's on; "
              "cgrad/torch: cgrad's time over torch's.", file=stream)
    print(file=stream)
    for line in table_lines(result):
        print(line, file=stream)
    notes = [(row["name"], row["metric"], row["note"])
             for sec in result["sections"] for row in sec["rows"] if row["note"]]
    if notes:
        print(file=stream)
        print("Notes:", file=stream)
        for name, metric, note in notes:
            print(f"  {name}, {metric.strip()}: {note}", file=stream)
    targets = result["targets"]
    if targets:
        met = sum(1 for t in targets if t["passed"])
        print(f"\nTargets met: {met} of {len(targets)}", file=stream)
