"""The evaluate stage's measurements: photo test pairs and videos, each method beside the baselines."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from carremoval.inpainters import Inpainter
from carremoval.io import InputError, read_mask, read_rgb, write_png
from carremoval.masks import prepare_mask
from carremoval.metrics import image_scores, mean_scores
from carremoval.video import RemovalStats, TemporalConfig, VideoWriter, read_frames, remove_frames
from carremoval.video.evaluation import borrowed_masks, evaluate_with_ground_truth, place_masks, read_frame_dir
from carremoval.video.metrics import flicker, pair_flows, warp_error


@dataclass
class PhotoPair:
    pair_id: str
    input: np.ndarray
    target: np.ndarray
    mask: np.ndarray


def iter_pairs(split_dir: str | Path) -> Iterator[PhotoPair]:
    """Rendered pairs of one split, sorted by id: {input,target,mask}/<id>.png."""
    split = Path(split_dir)
    for path in sorted((split / "input").glob("*.png")):
        yield PhotoPair(
            pair_id=path.stem,
            input=read_rgb(path),
            target=read_rgb(split / "target" / path.name),
            mask=read_mask(split / "mask" / path.name),
        )


def side_by_side(images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Images of one height in a row, separated by white gaps."""
    height = images[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    row: list[np.ndarray] = []
    for image in images:
        row += [image, spacer]
    return np.concatenate(row[:-1], axis=1)


def evaluate_photos(split_dir: str | Path, methods: dict[str, Inpainter], report_dir: str | Path | None = None,
                    report_count: int = 8) -> dict[str, dict[str, float]]:
    """Mean photo metrics per method over a split; writes input | methods... | target strips for a few pairs."""
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    pairs = list(iter_pairs(split_dir))
    for number, pair in enumerate(tqdm(pairs, desc="photo test pairs", unit="pair")):
        outputs = [inpaint(pair.input, pair.mask) for inpaint in methods.values()]
        for name, output in zip(methods, outputs):
            rows[name].append(image_scores(output, pair.target, pair.mask))
        if report_dir is not None and number < report_count:
            strip = side_by_side([pair.input, *outputs, pair.target])
            write_png(Path(report_dir) / f"{pair.pair_id}.png", strip)
    return {name: {"pairs": len(pairs), **mean_scores(method_rows)} for name, method_rows in rows.items()}


def resize_all(images: list[np.ndarray], size: tuple[int, int], interpolation: int) -> list[np.ndarray]:
    """Resize every image to size=(width, height)."""
    return [cv2.resize(image, size, interpolation=interpolation) for image in images]


def load_clip(frames: str | Path, size: tuple[int, int], limit: int, start: int = 0) -> list[np.ndarray]:
    """Up to `limit` frames of a frame folder or a video file, from the `start`-th, resized to size=(width,
    height)."""
    if Path(frames).is_file():
        return resize_all(list(itertools.islice(read_frames(frames), start, start + limit)), size, cv2.INTER_AREA)
    return read_frame_dir(frames, size, limit, start)


def ground_truth_clip(clip: dict[str, Any], size: tuple[int, int], limit: int, methods: dict[str, Inpainter],
                      fill: Inpainter, config: TemporalConfig) -> dict[str, dict[str, float]]:
    """The video-completion protocol on one clip: real frames are the truth, holes borrowed from another
    sequence (placed off the clip's own moving object when its masks are given). Optional keys: `start` (first
    frame, and first own mask) and `holes_start` (first borrowed mask)."""
    start = clip.get("start", 0)
    frames = load_clip(clip["frames"], size, limit, start)
    if not frames:
        raise InputError(f"{clip['frames']}: no frames from frame {start} on")
    holes = borrowed_masks(clip["holes_from"], len(frames), size, clip.get("holes_start", 0))
    if clip.get("own_masks"):
        own = borrowed_masks(clip["own_masks"], len(frames), size, start)
        holes = place_masks(holes, [prepare_mask(mask, 10) for mask in own])
    return evaluate_with_ground_truth(frames, holes, fill, config, baselines=methods)


def removal_strip_video(frames: list[np.ndarray], outputs: list[np.ndarray], path: Path, fps: float) -> None:
    """original | result, side by side, as an H.264 MP4."""
    first = side_by_side([frames[0], outputs[0]])
    with VideoWriter(path, first.shape[1], first.shape[0], Fraction(fps).limit_denominator(1001), crf=23) as writer:
        for frame, output in zip(frames, outputs):
            writer.write(side_by_side([frame, output]))


def real_removal(sequence: str | Path, fill: Inpainter, config: TemporalConfig, limit: int,
                 report: Path | None = None, fps: float = 24.0) -> dict[str, float]:
    """Remove a DAVIS car with its own masks; no ground truth, so E_warp (flow of each video itself, relative to
    the original's) and flicker inside the hole, plus speed and how much of the hole was really seen."""
    frames = read_frame_dir(Path(sequence) / "frames", limit=limit)
    masks = [read_mask(path) for path in sorted((Path(sequence) / "masks").glob("*.png"))[:len(frames)]]
    stats = RemovalStats()
    start = time.perf_counter()
    outputs = list(remove_frames(frames, masks, fill, config, stats))
    seconds = time.perf_counter() - start
    holes = [prepare_mask(mask, config.dilate_px, config.shadow_margin) for mask in masks]
    original_flows, output_flows = pair_flows(frames), pair_flows(outputs)
    if report is not None:
        removal_strip_video(frames, outputs, report, fps)
    return {
        "frames": len(frames),
        "fps": len(frames) / seconds,
        "e_warp": warp_error(outputs, output_flows),
        "e_warp_ratio": warp_error(outputs, output_flows) / warp_error(frames, original_flows),
        "flicker_hole": flicker(outputs, output_flows, holes),
        "propagated_fraction": stats.to_dict()["propagated_fraction"],
    }


def best_baseline(results: dict[str, dict[str, float]], baselines: list[str], key: str = "hole_psnr") -> float:
    return max(results[name][key] for name in baselines if name in results)


def target_checks(photos: dict[str, dict[str, float]], clips: dict[str, dict[str, dict[str, float]]],
                  per_frame: list[str]) -> dict[str, Any]:
    """Issue 6's quality targets, judged on figures from the same run.

    Photos: our hole PSNR at least 2 dB above the better of Telea and Navier-Stokes. Video with ground truth:
    the temporal remover's hole PSNR at least 3 dB above the best per-frame method, and E_warp at most 1.2x the
    original video's own, on every clip.
    """
    photo_margin = photos["generator"]["hole_psnr"] - best_baseline(photos, ["telea", "ns"])
    video_margins = {name: clip["temporal"]["hole_psnr"] - best_baseline(clip, per_frame) for name, clip in clips.items()}
    warp_ratios = {name: clip["temporal"]["e_warp_ratio"] for name, clip in clips.items()}
    return {
        "photo_hole_psnr_margin_db": photo_margin,
        "photo_target_met": bool(photo_margin >= 2.0),
        "video_hole_psnr_margin_db": video_margins,
        "video_target_met": bool(all(margin >= 3.0 for margin in video_margins.values())),
        "video_e_warp_ratio": warp_ratios,
        "e_warp_target_met": bool(all(ratio <= 1.2 for ratio in warp_ratios.values())),
    }
