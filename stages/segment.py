"""DVC stage `segment`: car photos (data/raw/motorpage) -> RGBA cut-outs (data/interim/cutouts) + metrics."""
from __future__ import annotations

import logging

from carremoval.cutouts import run_segment
from carremoval.device import configure_cpu_threads
from carremoval.io import InputError
from carremoval.params import load_params, repo_root
from carremoval.stage import run_stage

RAW = "data/raw/motorpage"
OUT = "data/interim/cutouts"
METRICS = "metrics/segment.json"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = repo_root()
    configure_cpu_threads()
    metrics = run_segment(load_params()["segment"], root / RAW, root / OUT, root / METRICS, root)
    print(
        f"segment: {metrics['cutouts']} cut-outs from {metrics['photos']} photos, by method {metrics['methods']}; "
        f"skipped {metrics['skipped']}; pretrained weights: {metrics['pretrained_weights']} -> {OUT}"
    )
    return 0


if __name__ == "__main__":
    run_stage("segment", main, errors=(InputError, ValueError))
