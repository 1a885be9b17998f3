"""DVC stage `train`: the GAN on the synthesize stage's pairs -> models/generator.pt, metrics, one MLflow run.

Paths are taken in the workspace this script lives in (DVC runs `dvc exp run --temp/--queue` in a copy); the
MLflow store is the repository root's (DVC_ROOT), so every experiment lands in one place. A killed run resumes
from models/checkpoints/ (a persisted output) on the next `dvc repro`.
"""
from __future__ import annotations

from pathlib import Path

from carremoval.data import PairFolder
from carremoval.params import load_params, tracking_root
from carremoval.stage import run_stage
from carremoval.synthesis import PairRenderer
from carremoval.training import TrainOutputs, TrainSettings, run_training

WORKSPACE = Path(__file__).resolve().parents[1]
PAIRS = "data/processed/pairs"
OUTPUTS = TrainOutputs(model=WORKSPACE / "models/generator.pt", checkpoints=WORKSPACE / "models/checkpoints",
                       metrics=WORKSPACE / "metrics/train.json", losses=WORKSPACE / "metrics/train_losses.csv",
                       val=WORKSPACE / "metrics/train_val.csv")


def report(metrics: dict) -> str:
    val, references = metrics["val"], metrics["reference"]
    l1 = ", ".join(f"{name} {scores['hole_l1']:.4f}" for name, scores in references.items())
    telea = references["telea"]
    return (f"train: {metrics['steps']} steps in {metrics['seconds']:.0f} s ({metrics['images_per_second']} img/s, "
            f"{metrics['device']}); val hole L1 {val['hole_l1']:.4f} ({l1}), hole PSNR {val['hole_psnr']:.2f} dB "
            f"(Telea {telea['hole_psnr']:.2f}), hole SSIM {val['hole_ssim']:.3f} (Telea {telea['hole_ssim']:.3f}); "
            f"pretrained VGG: "
            f"{metrics['vgg_pretrained']}\n-> {OUTPUTS.model.relative_to(WORKSPACE)}, "
            f"{OUTPUTS.metrics.relative_to(WORKSPACE)}, {OUTPUTS.losses.relative_to(WORKSPACE)}, "
            f"{OUTPUTS.val.relative_to(WORKSPACE)}")


def main() -> int:
    params_path = WORKSPACE / "params.yaml"
    settings = TrainSettings.from_params(load_params(params_path), str(params_path))
    recipe = WORKSPACE / PAIRS / "train_recipe.json"
    renderer = PairRenderer.from_recipe(recipe)
    val = PairFolder(WORKSPACE / PAIRS / "val")
    metrics = run_training(settings, renderer, val, OUTPUTS, tracking_root=tracking_root(WORKSPACE), recipe=recipe)
    print(report(metrics))
    return 0


if __name__ == "__main__":
    run_stage("train", main)
