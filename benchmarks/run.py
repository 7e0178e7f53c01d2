"""Run the in-process benchmarks and print Markdown tables of µs/request and ratios.

    python benchmarks/run.py                 # every group
    python benchmarks/run.py cors floor      # only these groups
    python benchmarks/run.py --quick         # fewer rounds, for a smoke run
    python benchmarks/run.py --plot docs/img/benchmarks.png   # also draw the bars

Each ``benchmarks/bench_*.py`` module provides ``cases() -> list[Case]``.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import platform
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks.harness import Case, format_rows, plot_rows, run_cases


def discover() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(pathlib.Path(__file__).parent.glob("bench_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        cases.extend(module.cases())
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("groups", nargs="*", help="only run these groups")
    parser.add_argument("--quick", action="store_true", help="3 rounds of ~0.1 s per case")
    parser.add_argument("--plot", metavar="PNG", help="also write a bar chart to this file")
    args = parser.parse_args(argv)
    cases = [c for c in discover() if not args.groups or c.group in args.groups]
    rounds, budget = (3, 0.1) if args.quick else (15, 1.5)
    print(f"Python {platform.python_version()} on {platform.machine()}, median of {rounds} rounds")
    print()
    rows = run_cases(cases, rounds=rounds, budget=budget)
    print(format_rows(rows))
    if args.plot:
        plot_rows(rows, args.plot)


if __name__ == "__main__":
    main()
