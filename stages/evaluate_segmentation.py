"""DVC stage `evaluate_segmentation`: how good `--masks auto` is -> metrics/segmentation.json, reports/eval_segmentation/.

Photos whose every car is masked (IoU), the DAVIS car clips through the automatic video masks (recall, precision,
stability), the segmenter's speed, and real removal of the DAVIS cars with automatic masks beside their given masks.
"""
from __future__ import annotations

import logging

from carremoval.device import configure_cpu_threads
from carremoval.inpainters import telea
from carremoval.io import atomic_dir, write_json
from carremoval.params import load_params, repo_root, resolve_path
from carremoval.segmentation import removal_segmenter
from carremoval.segmentation_eval import (
    auto_removal_scores,
    segmentation_section,
    segmentation_targets,
    segmenter_speed,
)
from carremoval.stage import run_stage
from carremoval.video import TemporalConfig
from carremoval.video.auto_masks import AutoMaskSettings


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    params, root = load_params(), repo_root()
    settings = params["evaluate_segmentation"]
    configure_cpu_threads()
    weights = str(resolve_path(params["segment"]["weights"], root))
    photo_segmenter = removal_segmenter(settings["photo_model"], weights)
    video_segmenter = removal_segmenter(settings["video_model"], weights, video=True)
    auto = AutoMaskSettings(**settings.get("auto_masks", {}))
    config = TemporalConfig.from_params(params["remove"])
    sequences = [resolve_path(sequence, root) for sequence in params["evaluate"]["real"]]
    davis = resolve_path(settings["davis"], root)
    with atomic_dir(root / "reports/eval_segmentation") as report:
        metrics = segmentation_section(photo_segmenter, video_segmenter, resolve_path(settings["photos"], root),
                                       davis, auto)
        metrics["speed"] = segmenter_speed({settings["photo_model"]: photo_segmenter,
                                            settings["video_model"]: video_segmenter}, davis)
        metrics["real_removal"] = auto_removal_scores(video_segmenter, sequences, telea(), config, auto,
                                                      settings["real_max_frames"], report)
    metrics["models"] = {"photo": settings["photo_model"], "video": settings["video_model"]}
    metrics["targets"] = segmentation_targets(metrics)
    write_json(root / "metrics/segmentation.json", metrics)
    print(f"segmentation: photo mean IoU {metrics['photos']['mean_iou']:.3f}; DAVIS mean recall "
          f"{metrics['davis']['mean']['recall']:.3f}, precision {metrics['davis']['mean']['precision']:.3f}; "
          f"targets {metrics['targets']}")


if __name__ == "__main__":
    run_stage("evaluate_segmentation", main)
