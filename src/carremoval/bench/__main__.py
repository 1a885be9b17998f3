"""Run every benchmark section, print one table, write metrics/bench.json."""
from __future__ import annotations

import argparse
import importlib
import sys

from carremoval.bench import Section
from carremoval.io import write_json

SECTIONS = ["segmentation", "synthesis", "training", "video"]


def print_section(section: Section) -> None:
    print(f"\n== {section.name} ==")
    width = max([len(row.what) for row in section.rows] + [10])
    for row in section.rows:
        print(f"  {row.what:<{width}}  {row.value:>12.3f} {row.unit:<10} {row.note}")
    for check in section.checks:
        print(f"  [{'PASS' if check.ok else 'MISS'}] {check.target}: {check.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carremoval.bench", description=__doc__)
    parser.add_argument("--out", default="metrics/bench.json", help="where to write the results (JSON)")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, not for quoting)")
    args = parser.parse_args(argv)
    results = {}
    for name in args.only or SECTIONS:
        module = importlib.import_module(f"carremoval.bench.{name}")
        section = module.run(quick=args.quick)
        print_section(section)
        results[name] = section.to_dict()
    write_json(args.out, results)
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
