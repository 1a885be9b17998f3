"""DVC stage crawl@<source>: crawl one site (its offline snapshot, or live when `snapshot` is null) into
data/raw/<source>/{images/, manifest.jsonl} and metrics/crawl/<source>.json."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from carremoval.io import InputError, write_json
from carremoval.params import load_params, repo_root
from crawlers.runner import CrawlInterrupted, crawl_source
from crawlers.spiders import SPIDERS


def summary(source: str, metrics: dict, out_dir: Path) -> str:
    skipped = ", ".join(f"{reason} {count}" for reason, count in metrics["skipped"].items() if count) or "none"
    pages = sum(metrics["pages_fetched"].values())
    return (
        f"crawl {source}: {pages} pages fetched, {metrics['image_urls']} image URLs, "
        f"{metrics['images_kept']} images kept -> {out_dir}; skipped: {skipped}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", choices=sorted(SPIDERS))
    parser.add_argument("--stats-out", type=Path, help="also write Scrapy's stats of this run here (JSON)")
    parser.add_argument("--access-log", type=Path, help="snapshot mode: log every request the snapshot answers")
    args = parser.parse_args(argv)
    root = repo_root()
    out_dir = root / "data" / "raw" / args.source
    try:
        result = crawl_source(args.source, load_params(), root, out_dir, access_log=args.access_log)
    except (InputError, CrawlInterrupted) as err:
        print(f"crawl {args.source}: {err}", file=sys.stderr)
        return 1
    write_json(root / "metrics" / "crawl" / f"{args.source}.json", result.metrics)
    if args.stats_out:
        args.stats_out.write_text(json.dumps(result.stats, indent=2, sort_keys=True, default=str), encoding="utf-8")
    print(summary(args.source, result.metrics, out_dir.relative_to(root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
