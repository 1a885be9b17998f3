"""DVC stage `evaluate`: photo test pairs, full-resolution photos and videos, ours beside OpenCV Telea /
Navier-Stokes and PatchMatch, speed included.

Video settings are chosen on the `ground_truth_val` clips (`video_validation` in eval.json) and reported on the
`ground_truth` clips, which the targets are checked on.

Photo settings (the exemplar synthesis) are chosen on the `val` half of `photo_hd` and checked on its `test` half.

Writes metrics/eval.json and reports/eval/ (photo strips input | generator | textured | telea | ns | patchmatch |
target, photo_hd crops input | textured | patchmatch | telea | truth at 100%, side-by-side MP4s).
"""
from __future__ import annotations

from pathlib import Path

from carremoval.device import configure_cpu_threads, select_device
from carremoval.evaluation import (
    evaluate_hd, evaluate_photos, ground_truth_clip, real_removal, sharp_fill_checks, target_checks,
)
from carremoval.espnet_segmenter import EspnetCarSegmenter
from carremoval.exemplar import ExemplarSettings
from carremoval.inpainters import TexturedInpainter, navier_stokes, patchmatch, telea
from carremoval.io import atomic_dir, write_json
from carremoval.params import load_params, repo_root, resolve_path
from carremoval.photo_hd import davis_frame_cases, split_background_cases
from carremoval.removal import GeneratorInpainter
from carremoval.stage import run_stage
from carremoval.synthesis.options import RenderOptions
from carremoval.video import TemporalConfig


CLIP_PATHS = ("frames", "holes_from", "own_masks")


def with_paths_resolved(clip: dict, root: Path) -> dict:
    return {key: resolve_path(value, root) if key in CLIP_PATHS else value for key, value in clip.items()}


def hd_cases(params: dict, root: Path, split: str, find_cars) -> list:
    """The photo_hd cases of a split: its backgrounds at their own size, and frames of its DAVIS clips."""
    settings = params["evaluate"]
    hd = settings["photo_hd"]
    cases = split_background_cases(root / "data/processed/pairs", root / "data/interim/backgrounds",
                                   root / "data/interim/cutouts", root, split, hd["per_background"], params["seed"],
                                   RenderOptions.from_dict(params["synthesize"]["render"]))
    clips = settings["ground_truth" if split == "test" else "ground_truth_val"]
    for clip in clips:
        if clip.get("own_masks"):
            cases += davis_frame_cases(with_paths_resolved(clip, root), settings["max_frames"], hd["frames_per_clip"],
                                       find_cars)
    return cases


def main() -> None:
    params, root = load_params(), repo_root()
    settings = params["evaluate"]
    config = TemporalConfig.from_params(params["remove"])
    configure_cpu_threads()
    generator = GeneratorInpainter.from_checkpoint(root / "models/generator.pt", select_device(settings["device"]))
    segmenter = EspnetCarSegmenter.from_file(resolve_path(settings["car_segmenter"], root), "cityscapes",
                                             classes=("car", "truck", "bus"))
    exemplar = ExemplarSettings.from_params(params["exemplar"])
    textured = TexturedInpainter(generator, exemplar, segmenter.mask)
    keyframes = ExemplarSettings.from_params(params["exemplar"], video=True)
    keyframe_fill = TexturedInpainter(generator, keyframes)   # video: no segmenter call per keyframe (speed)
    baselines = {"telea": telea(), "ns": navier_stokes(), "patchmatch": patchmatch()}
    methods = {"generator": generator, "textured": textured, **baselines}
    video_baselines = {"generator": generator, "telea": baselines["telea"], "ns": baselines["ns"]}
    height, width = settings["video_size"]
    limit = settings["max_frames"]
    with atomic_dir(root / "reports/eval") as report:
        photos = evaluate_photos(root / "data/processed/pairs" / settings["photo_split"], methods,
                                 report / "photos", settings["report_pairs"])
        tuning = {name: methods[name] for name in ("generator", "textured", "telea")}   # val: what settings move
        photo_hd = {"val": evaluate_hd(hd_cases(params, root, "val", segmenter.mask), tuning, None, "photo_hd val"),
                    "test": evaluate_hd(hd_cases(params, root, "test", segmenter.mask), methods, report / "photo_hd",
                                        "photo_hd test")}

        def score_clips(key: str, references: dict) -> dict:
            return {clip["name"]: ground_truth_clip(with_paths_resolved(clip, root), (width, height),
                                                    clip.get("max_frames", limit), video_baselines, keyframe_fill, config,
                                                    references)
                    for clip in settings[key]}

        clips = score_clips("ground_truth", {"generator": generator})
        validation = score_clips("ground_truth_val", {})
        (report / "videos").mkdir()
        real = {
            Path(sequence).name: real_removal(resolve_path(sequence, root), keyframe_fill, config,
                                              settings["real_max_frames"], report / "videos" / f"{Path(sequence).name}.mp4")
            for sequence in settings["real"]
        }
    metrics = {"photos": photos, "photo_hd": photo_hd, "video_ground_truth": clips, "video_validation": validation,
               "real_removal": real, "targets": {**target_checks(photos, clips, list(video_baselines)),
                           **sharp_fill_checks(photo_hd["test"], clips)}}
    write_json(root / "metrics/eval.json", metrics)
    test = photo_hd["test"]
    print(f"photo_hd test ({test['cases']} cases): hole PSNR / SWD textured {test['textured']['hole_psnr']:.2f} dB / "
          f"{test['textured']['hole_swd']:.1f}, patchmatch {test['patchmatch']['hole_psnr']:.2f} / "
          f"{test['patchmatch']['hole_swd']:.1f}, telea {test['telea']['hole_psnr']:.2f} / "
          f"{test['telea']['hole_swd']:.1f}, control {test['control']['hole_swd']:.1f}; targets {metrics['targets']}")


if __name__ == "__main__":
    run_stage("evaluate", main)
