"""DVC stage `backgrounds`: data/raw/{oir_mobi,youtube,datasets} -> curated backgrounds (data/interim/backgrounds)."""
from __future__ import annotations

import logging

from carremoval.backgrounds import run_backgrounds
from carremoval.device import configure_cpu_threads
from carremoval.io import InputError
from carremoval.params import load_params, repo_root
from carremoval.stage import run_stage

RAW = "data/raw"
OUT = "data/interim/backgrounds"
METRICS = "metrics/backgrounds.json"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = repo_root()
    configure_cpu_threads()
    metrics = run_backgrounds(load_params(), root / RAW, root / OUT, root / METRICS, root)
    print(
        f"backgrounds: kept {metrics['kept']} of {metrics['candidates']} ({metrics['kept_by_source']}); "
        f"skipped {metrics['skipped']}; car check: {metrics['car_check']} -> {OUT}"
    )
    return 0


if __name__ == "__main__":
    run_stage("backgrounds", main, errors=(InputError, ValueError))
