"""Run the benchmark sections, print one table, write metrics/bench.json (sections not run keep their old figures)."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from carremoval.bench import Check, Section
from carremoval.io import write_json

SECTIONS = ["segmentation", "synthesis", "training", "photo", "video"]


def print_section(section: Section) -> None:
    print(f"\n== {section.name} ==")
    width = max([len(row.what) for row in section.rows] + [10])
    for row in section.rows:
        print(f"  {row.what:<{width}}  {row.value:>12.3f} {row.unit:<10} {row.note}")
    for check in section.checks:
        print(f"  [{'PASS' if check.ok else 'MISS'}] {check.target}: {check.detail}")


def row_value(section: dict, *parts: str) -> float | None:
    """The value of the first row whose label contains every one of `parts`."""
    return next((row["value"] for row in section.get("rows", []) if all(part in row["what"] for part in parts)), None)


def rendering_keeps_up(results: dict) -> Check | None:
    """Issue 4's target: rendered pairs/s at the training size above training images/s (same run)."""
    if "synthesis" not in results or "training" not in results:
        return None
    pairs = row_value(results["synthesis"], "render", "(params)")
    images = row_value(results["training"], "full GAN step")
    if pairs is None or images is None:
        return None
    return Check("pair rendering is not the training bottleneck", pairs > images,
                 f"{pairs:.1f} pairs/s rendered vs {images:.1f} images/s trained ({pairs / images:.1f}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carremoval.bench", description=__doc__)
    parser.add_argument("--out", default="metrics/bench.json", help="where to write the results (JSON)")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, not for quoting)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for name in args.only or SECTIONS:
        section = importlib.import_module(f"carremoval.bench.{name}").run(quick=args.quick)
        print_section(section)
        results[name] = section.to_dict()
    cross = rendering_keeps_up(results)
    if cross is not None:
        results["cross"] = Section("cross-section", checks=[cross]).to_dict()
        print_section(Section("cross-section", checks=[cross]))
    write_json(out, results)
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
