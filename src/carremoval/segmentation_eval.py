"""How good automatic car masks are, on real data: photos whose every car is masked, and the DAVIS car clips.

- Photos (`PHOTO_CASES` in ../shared/data/photos/cars): IoU of the car pixels, per photo and mean.
- DAVIS (`DAVIS_SEQUENCES`, all frames; only the target car is masked there) through the automatic video masks
  with cars=largest: recall = share of the DAVIS mask covered by our mask dilated by the default 7 px; precision =
  share of our (undilated) mask inside the DAVIS mask dilated 15 px; both averaged over frames. Stability: mean
  IoU of each frame's mask with the next frame's mask warped back onto it along an independent DIS flow (1.0 =
  the mask moves exactly with the picture; edge flicker lowers it). Speed: frames/s of the mask source alone.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from carremoval.evaluation import real_removal
from carremoval.inpainters import Inpainter
from carremoval.io import read_mask, read_rgb
from carremoval.masks import dilate, iou
from carremoval.segmentation import Segmenter
from carremoval.video import TemporalConfig
from carremoval.video.auto_masks import AutoMaskSettings, Probability, auto_mask_source, upscale_flow, working_grey
from carremoval.video.metrics import warp

PHOTO_CASES = ("rembg_car-1.jpg", "rembg_car-2.jpg", "rembg_car-3.jpg", "dpst_tar29.png",
               "cityscapes_frankfurt_000000_000294.png")
DAVIS_SEQUENCES = ("bus", "car-roundabout", "car-shadow", "drift-chicane", "drift-straight")
RECALL_DILATION_PX = 7      # the remover's default dilation of the car mask
PRECISION_DILATION_PX = 15  # our mask may reach this far outside the DAVIS mask (shadows, soft edges)
STABILITY_FLOW_WIDTH = 427  # the stability flow is computed on frames this wide (DIS medium)

SegmentMask = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class PhotoCase:
    """A photo whose every car is masked."""

    name: str
    rgb: np.ndarray
    mask: np.ndarray


def photo_cases(folder: str | os.PathLike, names: Iterable[str] = PHOTO_CASES) -> list[PhotoCase]:
    """The photos `names` of `folder` with their `<stem>.mask.png`."""
    folder = Path(folder)
    cases = []
    for name in names:
        path = folder / name
        rgb = read_rgb(path)
        cases.append(PhotoCase(name, rgb, read_mask(folder / f"{path.stem}.mask.png", shape=rgb.shape[:2])))
    return cases


def photo_iou(segment_mask: SegmentMask, cases: Sequence[PhotoCase]) -> dict[str, Any]:
    """IoU of our car mask with the true one, per photo and the mean over photos."""
    per_photo = {case.name: round(iou(np.asarray(segment_mask(case.rgb), bool), case.mask), 4) for case in cases}
    return {"per_photo": per_photo, "mean_iou": round(float(np.mean(list(per_photo.values()))), 4)}


def recall_precision(ours: np.ndarray, truth: np.ndarray) -> tuple[float | None, float | None]:
    """(share of `truth` under `ours` dilated 7 px, share of `ours` inside `truth` dilated 15 px); None when the
    mask it is a share of is empty."""
    recall = None if not truth.any() else float((dilate(ours, RECALL_DILATION_PX) & truth).sum() / truth.sum())
    precision = None if not ours.any() else float(
        (ours & dilate(truth, PRECISION_DILATION_PX)).sum() / ours.sum())
    return recall, precision


def mask_stability(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                   flow_width: int = STABILITY_FLOW_WIDTH) -> list[float]:
    """Per pair of neighbouring frames: IoU of mask t with mask t+1 warped back onto frame t along the DIS flow
    t -> t+1 (medium preset, frames `flow_width` wide); 1.0 when both are empty."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    greys = [working_grey(frame, flow_width) for frame in frames]
    scores = []
    for t in range(len(frames) - 1):
        flow = dis.calc(greys[t], greys[t + 1], None)
        flow = upscale_flow(flow, masks[t].shape)
        following = warp(masks[t + 1].astype(np.float32), flow) > 0.5
        scores.append(iou(masks[t], following))
    return scores


def read_davis(folder: str | os.PathLike, limit: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A DAVIS sequence's frames (RGB) and masks, in order; the first `limit` frames when given."""
    folder = Path(folder)
    files = sorted((folder / "frames").glob("*.jpg"))[:limit]
    frames = [read_rgb(file) for file in files]
    masks = [read_mask(folder / "masks" / f"{file.stem}.png", shape=frame.shape[:2])
             for file, frame in zip(files, frames)]
    return frames, masks


def run_mask_source(probability: Probability, frames: Sequence[np.ndarray], settings: AutoMaskSettings,
                    size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], float]:
    """The automatic masks of `frames` (run on frames resized to `size`, (width, height), when given; masks
    returned at the frames' size) and the mask source's frames/s."""
    source = auto_mask_source(probability, settings)
    masks, elapsed = [], 0.0
    for index, frame in enumerate(frames):
        small = frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        start = time.perf_counter()
        mask = source(index, small)
        elapsed += time.perf_counter() - start
        if size is not None:
            mask = cv2.resize(mask.astype(np.uint8), (frame.shape[1], frame.shape[0]),
                              interpolation=cv2.INTER_NEAREST).astype(bool)
        masks.append(mask)
    return masks, len(frames) / max(elapsed, 1e-9)


def sequence_scores(masks: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                    frames: Sequence[np.ndarray]) -> dict[str, Any]:
    """Recall, precision (means over frames; the worst frame's recall too), stability and empty-mask count."""
    pairs = [recall_precision(ours, truth) for ours, truth in zip(masks, truths)]
    recalls = [r for r, _ in pairs if r is not None]
    precisions = [p for _, p in pairs if p is not None]
    stability = mask_stability(frames, masks)
    return {
        "frames": len(masks),
        "recall": round(float(np.mean(recalls)), 4) if recalls else None,
        "min_recall": round(float(np.min(recalls)), 4) if recalls else None,
        "precision": round(float(np.mean(precisions)), 4) if precisions else None,
        "stability": round(float(np.mean(stability)), 4) if stability else 1.0,
        "empty_frames": int(sum(not mask.any() for mask in masks)),
    }


def davis_scores(probability: Probability, davis_root: str | os.PathLike,
                 settings: AutoMaskSettings | None = None, sequences: Sequence[str] = DAVIS_SEQUENCES,
                 size: tuple[int, int] | None = None, limit: int | None = None) -> dict[str, Any]:
    """Per DAVIS sequence (all frames, or the first `limit`): recall, precision, stability and frames/s of the
    automatic mask source with cars=largest (settings' other fields kept), and the means over sequences."""
    settings = dataclasses.replace(settings or AutoMaskSettings(), cars="largest")
    per_sequence = {}
    for name in sequences:
        frames, truths = read_davis(Path(davis_root) / name, limit)
        masks, fps = run_mask_source(probability, frames, settings, size)
        per_sequence[name] = {**sequence_scores(masks, truths, frames), "fps": round(fps, 2)}
    means = {key: _mean([row[key] for row in per_sequence.values()]) for key in ("recall", "precision", "stability",
                                                                                    "fps")}
    return {"sequences": per_sequence, "mean": means,
            "settings": {"every": settings.every, "cars": settings.cars, "size": list(size) if size else None}}


def segmentation_section(photo_segmenter: Segmenter, video_segmenter: Segmenter, photos_dir: str | os.PathLike,
                         davis_root: str | os.PathLike, settings: AutoMaskSettings | None = None) -> dict[str, Any]:
    """Photo IoU of the photo segmenter's cleaned masks (every car) and the DAVIS scores of the automatic video
    masks made from the video segmenter's probabilities."""
    return {"photos": photo_iou(lambda rgb: photo_segmenter.masks([rgb])[0], photo_cases(photos_dir)),
            "davis": davis_scores(video_segmenter.probability, davis_root, settings)}


def segmenter_speed(segmenters: dict[str, Segmenter], davis_root: str | os.PathLike, repeats: int = 3
                    ) -> dict[str, dict[str, float]]:
    """Images/s of each segmenter's probability map on a DAVIS frame at 854x480 and at 432x240 (median of
    `repeats`, after a warm-up)."""
    frame = read_davis(Path(davis_root) / DAVIS_SEQUENCES[0], 1)[0][0]
    sizes = {"854x480": frame, "432x240": cv2.resize(frame, (432, 240), interpolation=cv2.INTER_AREA)}
    speeds = {}
    for name, segmenter in segmenters.items():
        speeds[name] = {}
        for label, image in sizes.items():
            segmenter.probability(image)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                segmenter.probability(image)
                times.append(time.perf_counter() - start)
            speeds[name][label] = round(1.0 / float(np.median(times)), 2)
    return speeds


def auto_removal_scores(segmenter: Segmenter, sequences: Sequence[Path], fill: Inpainter, config: TemporalConfig,
                        settings: AutoMaskSettings, limit: int, report: Path) -> dict[str, Any]:
    """Per DAVIS clip: removal with its given masks and with automatic ones (E_warp, flicker in the car's hole,
    frames/s), their ratios, and side-by-side videos of the automatic run in `report`."""
    scores = {}
    for sequence in sequences:
        given = real_removal(sequence, fill, config, limit)
        source = auto_mask_source(segmenter.probability, settings)
        auto = real_removal(sequence, fill, config, limit, report / f"{sequence.name}_auto_masks.mp4",
                            find_masks=source)
        scores[sequence.name] = {"given": given, "auto": auto,
                                 "e_warp_ratio": round(auto["e_warp"] / given["e_warp"], 4),
                                 "flicker_ratio": round(auto["flicker_hole"] / given["flicker_hole"], 4)}
    return scores


def segmentation_targets(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's targets, judged on the measured section."""
    rows = section["davis"]["sequences"]
    removal = section["real_removal"]
    worst_recall = min(row["recall"] or 0.0 for row in rows.values())
    worst_precision = min(row["precision"] or 0.0 for row in rows.values())
    worst_ratio = max(max(row["e_warp_ratio"], row["flicker_ratio"]) for row in removal.values())
    return {
        "davis_recall_0.97_precision_0.8_every_sequence": {
            "ok": worst_recall >= 0.97 and worst_precision >= 0.8,
            "detail": f"worst recall {worst_recall:.3f}, worst precision {worst_precision:.3f}"},
        "photos_mean_iou_0.8": {"ok": section["photos"]["mean_iou"] >= 0.8,
                                "detail": f"mean IoU {section['photos']['mean_iou']:.3f}"},
        "auto_removal_within_10pct_of_given": {"ok": worst_ratio <= 1.1,
                                               "detail": f"worst E_warp or flicker ratio {worst_ratio:.3f}"},
    }


def _mean(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return round(float(np.mean(known)), 4) if known else None
