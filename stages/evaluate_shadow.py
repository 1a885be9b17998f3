"""DVC stage `evaluate_shadow`: how much of a car's shadow video removal leaves, shadows auto against off ->
metrics/shadow.json.

A fixed camera with ground truth (the clean background is the video's temporal median), the DAVIS car clips
with their body masks (the residual shadow against the ground seen in other frames, E_warp), and the synthesize
stage's test pairs rendered again with their car and shadow layers (photos: the shadow pixels covered).
"""
from __future__ import annotations

import logging

from carremoval.device import configure_cpu_threads
from carremoval.inpainters import telea
from carremoval.io import write_json
from carremoval.params import load_params, repo_root, resolve_path
from carremoval.segmentation import build_segmenter
from carremoval.shadow_eval import (
    FixedCameraSettings,
    davis_residual,
    fixed_camera,
    photo_rerenders,
    read_davis_clip,
    shadow_targets,
)
from carremoval.stage import run_stage
from carremoval.video import TemporalConfig


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    params, root = load_params(), repo_root()
    settings = params["evaluate_shadow"]
    configure_cpu_threads()
    config = TemporalConfig.from_params(params["remove"])
    segmenter = build_segmenter({"model": settings["body_model"], "classes": ["car", "truck", "bus"],
                                 "weights": str(resolve_path(params["segment"]["weights"], root))})
    height, width = settings["davis_size"]
    fixed = fixed_camera(resolve_path(settings["fixed_camera"], root), lambda rgb: segmenter.probability(rgb) > 0.5,
                         telea(), config, FixedCameraSettings.from_params(settings["fixed_camera_frames"]))
    clips = [resolve_path(clip, root) for clip in settings["davis"]]
    davis = {clip.name: davis_residual(*read_davis_clip(clip, (width, height), settings["max_frames"]), telea(),
                                       config)
             for clip in clips}
    photos = photo_rerenders(resolve_path(settings["photo_recipe"], root), config.dilate_px)
    metrics = {"fixed_camera": fixed, "davis": davis, "photos": photos}
    metrics["targets"] = shadow_targets(metrics)
    write_json(root / "metrics/shadow.json", metrics)
    print(f"shadow: photos {photos['shadow_covered_off']:.1%} -> {photos['shadow_covered_auto']:.1%} of the shadow "
          f"covered; fixed camera {fixed['psnr_off']:.2f} -> {fixed['psnr_auto']:.2f} dB; DAVIS ground residual "
          + ", ".join(f"{name} {row['residual_ground_off']:.2f} -> {row['residual_ground_auto']:.2f}"
                      for name, row in davis.items()) + f"; targets {metrics['targets']}")


if __name__ == "__main__":
    run_stage("evaluate_shadow", main)
