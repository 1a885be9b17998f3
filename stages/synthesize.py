"""DVC stage `synthesize`: backgrounds + cut-outs -> val/test pairs on disk, the train recipe, a preview grid."""
from __future__ import annotations

from carremoval.io import write_json
from carremoval.params import load_params, repo_root
from carremoval.stage import run_stage
from carremoval.synthesis.export import SynthesisSettings, split_report, synthesize

BACKGROUNDS = "data/interim/backgrounds"
CUTOUTS = "data/interim/cutouts"
OUT = "data/processed/pairs"
PREVIEW = "reports/pairs_preview.png"
METRICS = "metrics/synthesize.json"


def main() -> int:
    params = load_params()
    settings = SynthesisSettings.from_params(params.get("synthesize"))
    root = repo_root()
    metrics = synthesize(root / BACKGROUNDS, root / CUTOUTS, root / OUT, root / PREVIEW, settings, int(params["seed"]))
    write_json(root / METRICS, metrics)
    print(f"synthesize: {split_report(metrics)}\n-> {OUT}, {PREVIEW}, {METRICS}")
    return 0


if __name__ == "__main__":
    run_stage("synthesize", main)
