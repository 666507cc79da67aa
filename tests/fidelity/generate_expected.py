"""Makes tests/fidelity/NAME.expected: what each corpus program prints on
its reference (corpus.PROGRAMS). The .expected files of the "micrograd"
programs come from micrograd 0.1.0; regenerate only from that version:

    pip install micrograd==0.1.0 scikit-learn torch graphviz
    python tests/fidelity/generate_expected.py [--runs N]

It runs each program N times (default 5) under different PYTHONHASHSEEDs,
which moves where Python allocates the Values and so the order of the sets
micrograd's backward walks, writes the first run's output, and reports the
lines that differed between runs, with whether corpus.ORDER_DEPENDENT covers
them (it must: the harness is tolerant there and only there)."""
import argparse
import re
import sys

import corpus


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("programs", nargs="*", default=list(corpus.PROGRAMS))
    args = parser.parse_args()
    import micrograd  # noqa: F401  (the reference must be installed)
    uncovered = 0
    for program in args.programs:
        path = corpus.reference_path(corpus.PROGRAMS[program])
        outputs = []
        for seed in range(args.runs):
            done = corpus.run(program, path, hashseed=str(seed))
            if done.returncode != 0:
                sys.exit(f"{program} failed on its reference:\n{done.stderr}")
            outputs.append(done.stdout)
        (corpus.HERE / f"{program}.expected").write_text(outputs[0])
        varying = sorted({i for out in outputs[1:] for i, _, _ in
                          [(n, e, a) for n, e, a in _line_diffs(outputs[0], out)]})
        pattern = corpus.ORDER_DEPENDENT.get(program)
        lines = outputs[0].splitlines()
        print(f"{program}: {len(lines)} lines; {len(varying)} differ between runs")
        for n in varying:
            covered = pattern is not None and re.fullmatch(pattern, lines[n - 1]) is not None
            uncovered += not covered
            print(f"  line {n} {'(order-dependent)' if covered else 'NOT COVERED'}: {lines[n - 1]}")
    sys.exit(1 if uncovered else 0)


def _line_diffs(first, other):
    a, b = first.splitlines(), other.splitlines()
    return [(i + 1, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]


if __name__ == "__main__":
    main()
