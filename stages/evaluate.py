"""DVC stage `evaluate`: photo test pairs and videos, ours beside OpenCV Telea / Navier-Stokes, speed included.

Video settings are chosen on the `ground_truth_val` clips (`video_validation` in eval.json) and reported on the
`ground_truth` clips, which the targets are checked on.

Writes metrics/eval.json and reports/eval/ (photo strips input | ours | telea | ns | target, side-by-side MP4s).
"""
from __future__ import annotations

from pathlib import Path

from carremoval.device import configure_cpu_threads, select_device
from carremoval.evaluation import evaluate_photos, ground_truth_clip, real_removal, target_checks
from carremoval.inpainters import navier_stokes, telea
from carremoval.io import atomic_dir, write_json
from carremoval.params import load_params, repo_root, resolve_path
from carremoval.removal import GeneratorInpainter
from carremoval.stage import run_stage
from carremoval.video import TemporalConfig


CLIP_PATHS = ("frames", "holes_from", "own_masks")


def with_paths_resolved(clip: dict, root: Path) -> dict:
    return {key: resolve_path(value, root) if key in CLIP_PATHS else value for key, value in clip.items()}


def main() -> None:
    params, root = load_params(), repo_root()
    settings = params["evaluate"]
    config = TemporalConfig.from_params(params["remove"])
    configure_cpu_threads()
    generator = GeneratorInpainter.from_checkpoint(root / "models/generator.pt", select_device(settings["device"]))
    methods = {"generator": generator, "telea": telea(), "ns": navier_stokes()}
    height, width = settings["video_size"]
    limit = settings["max_frames"]
    with atomic_dir(root / "reports/eval") as report:
        photos = evaluate_photos(root / "data/processed/pairs" / settings["photo_split"], methods,
                                 report / "photos", settings["report_pairs"])
        def score_clips(key: str) -> dict:
            return {clip["name"]: ground_truth_clip(with_paths_resolved(clip, root), (width, height),
                                                    clip.get("max_frames", limit), methods, generator, config)
                    for clip in settings[key]}

        clips, validation = score_clips("ground_truth"), score_clips("ground_truth_val")
        (report / "videos").mkdir()
        real = {
            Path(sequence).name: real_removal(resolve_path(sequence, root), generator, config,
                                              settings["real_max_frames"], report / "videos" / f"{Path(sequence).name}.mp4")
            for sequence in settings["real"]
        }
    metrics = {"photos": photos, "video_ground_truth": clips, "video_validation": validation, "real_removal": real,
               "targets": target_checks(photos, clips, list(methods))}
    write_json(root / "metrics/eval.json", metrics)
    print(f"photos: generator hole PSNR {photos['generator']['hole_psnr']:.2f} dB, telea "
          f"{photos['telea']['hole_psnr']:.2f}, ns {photos['ns']['hole_psnr']:.2f}; targets {metrics['targets']}")


if __name__ == "__main__":
    run_stage("evaluate", main)
