"""Video removal with ground truth: real frames, object-shaped moving masks borrowed from another sequence.

The standard video-completion protocol: the original frames are the ground truth for the masked region. The
temporal remover and the per-frame baselines fill the same (dilated) holes; we report hole PSNR/SSIM and E_warp
(flow from the original video) against the original video's own E_warp.

    python -m carremoval.video.evaluation --frames DAVIS/car-shadow/frames --own-masks DAVIS/car-shadow/masks \
        --masks-from DAVIS/drift-straight/masks
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from carremoval.inpainters import Inpainter, navier_stokes, telea
from carremoval.io import InputError, read_mask, read_rgb
from carremoval.metrics import psnr, sliced_wasserstein, ssim
from carremoval.video.io import read_frames
from carremoval.masks import prepare_mask
from carremoval.video.metrics import flicker, pair_flows, warp_error
from carremoval.video.temporal import RemovalStats, TemporalConfig, remove_frames


def read_frame_dir(path: str | os.PathLike, size: tuple[int, int] | None = None, limit: int | None = None,
                   start: int = 0) -> list[np.ndarray]:
    """The images of a folder in name order as RGB, from the `start`-th, optionally resized to size=(width,
    height)."""
    files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = files[start:None if limit is None else start + limit]
    if not files:
        raise InputError(f"{path}: no frames in the folder")
    frames = [read_rgb(file) for file in files]
    return frames if size is None else [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def borrowed_masks(path: str | os.PathLike, count: int, size: tuple[int, int], start: int = 0) -> list[np.ndarray]:
    """`count` masks from another sequence's mask folder, from the `start`-th, resized to size=(width, height),
    played forwards and backwards (ping-pong) when the sequence is shorter than `count`."""
    files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() == ".png")[start:]
    if not files:
        raise InputError(f"{path}: no PNG masks in the folder")
    cycle = files + files[-2:0:-1] if len(files) > 1 else files
    masks = []
    for index in range(count):
        mask = read_mask(cycle[index % len(cycle)]).astype(np.uint8)
        masks.append(cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST).astype(bool))
    return masks


def shift_mask(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The mask moved by (dx, dy) pixels; what leaves the frame is lost."""
    moved = np.zeros_like(mask)
    height, width = mask.shape
    src_y, dst_y = slice(max(-dy, 0), height - max(dy, 0)), slice(max(dy, 0), height - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), width - max(dx, 0)), slice(max(dx, 0), width - max(-dx, 0))
    moved[dst_y, dst_x] = mask[src_y, src_x]
    return moved


def place_masks(masks: Sequence[np.ndarray], avoid: Sequence[np.ndarray], steps: int = 8) -> list[np.ndarray]:
    """Shift a borrowed mask track as a whole so that it covers as little as possible of `avoid[t]` (the
    sequence's own moving object, whose pixels the background motion cannot predict) and stays in the frame.

    Tries a grid of steps x steps shifts (evaluated at 1/4 resolution) and returns the masks at the best one, with
    what still covers `avoid[t]` cut away: the truth there is a moving car, which a background fill must not be
    scored against (car-shadow and drift-straight overlapped their own car by up to 4400 px in some frames).
    """
    height, width = masks[0].shape
    small = (max(width // 4, 1), max(height // 4, 1))
    def shrink(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(mask.astype(np.uint8), small, interpolation=cv2.INTER_NEAREST).astype(bool)
    small_masks, small_avoid = [shrink(m) for m in masks], [shrink(m) for m in avoid]
    best, best_cost = (0, 0), None
    for dy in np.linspace(-small[1] // 2, small[1] // 2, steps).astype(int):
        for dx in np.linspace(-small[0] // 2, small[0] // 2, steps).astype(int):
            cost = 0
            for mask, other in zip(small_masks, small_avoid):
                moved = shift_mask(mask, dx, dy)
                cost += 2 * int((moved & other).sum()) + int(mask.sum()) - int(moved.sum())
            if best_cost is None or cost < best_cost or (cost == best_cost and abs(dx) + abs(dy) < sum(map(abs, best))):
                best, best_cost = (int(dx), int(dy)), cost
    scale_x, scale_y = width / small[0], height / small[1]
    return [shift_mask(mask, round(best[0] * scale_x), round(best[1] * scale_y)) & ~other
            for mask, other in zip(masks, avoid)]


def blank_holes(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The frame with the hole blacked out: no method may see (or its optical flow feel) the truth it must fill."""
    return np.where(hole[..., None], np.uint8(0), frame)


def per_frame(frames: Sequence[np.ndarray], holes: Sequence[np.ndarray], inpaint: Inpainter) -> list[np.ndarray]:
    """A baseline: the inpainter on every frame on its own."""
    return [inpaint(frame, hole) for frame, hole in zip(frames, holes)]


SWD_FRAME_STEP = 5   # hole SWD on every 5th frame with a hole (0.2 s a frame at 432x240; the stage's time budget)


def scores(outputs: Sequence[np.ndarray], truth: Sequence[np.ndarray], holes: Sequence[np.ndarray],
           flows, with_ssim: bool = True) -> dict[str, float]:
    """Hole PSNR/SSIM (means over frames with a hole) and SWD (over every SWD_FRAME_STEP-th of them), E_warp over
    the frame and in the hole, hole flicker."""
    with_hole = [t for t, hole in enumerate(holes) if hole.any()]
    result = {
        "hole_psnr": float(np.mean([psnr(outputs[t], truth[t], holes[t]) for t in with_hole])),
        "hole_swd": float(np.mean([sliced_wasserstein(outputs[t], truth[t], holes[t])
                                   for t in with_hole[::SWD_FRAME_STEP]])),
        "e_warp": warp_error(outputs, flows),
        "e_warp_hole": warp_error(outputs, flows, holes),
        "flicker_hole": flicker(outputs, flows, holes),
    }
    if with_ssim:
        result["hole_ssim"] = float(np.mean([ssim(outputs[t], truth[t], holes[t]) for t in with_hole]))
    return result


def evaluate_with_ground_truth(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], inpaint: Inpainter,
                               config: TemporalConfig, baselines: dict[str, Inpainter] | None = None,
                               with_ssim: bool = True, references: dict[str, Inpainter] | None = None
                               ) -> dict[str, dict[str, float]]:
    """Scores of the temporal remover (using `inpaint` for unseen pixels), of the temporal remover with each of
    `references` instead (as "temporal_<name>"), and of per-frame baselines (default: OpenCV Telea and
    Navier-Stokes), plus the original's own E_warp and the ratios to it. Every method gets the frames with the
    holes blacked out (`blank_holes`); the original frames are only the truth.

    Returns {"temporal": {...}, "telea": {...}, "ns": {...}, "original": {...}}; each method has hole_psnr, hole_swd,
    hole_ssim, e_warp, e_warp_hole, flicker_hole, e_warp_ratio, e_warp_hole_ratio (and speed for temporal).
    """
    baselines = baselines if baselines is not None else {"telea": telea(), "ns": navier_stokes()}
    holes = [prepare_mask(mask, config.dilate_px, config.shadow_margin) for mask in masks]
    damaged = [blank_holes(frame, hole) for frame, hole in zip(frames, holes)]
    flows = pair_flows(frames)
    original = {"e_warp": warp_error(frames, flows), "e_warp_hole": warp_error(frames, flows, holes),
                "flicker_hole": flicker(frames, flows, holes)}
    stats = RemovalStats()
    start = time.perf_counter()
    ours = list(remove_frames(damaged, masks, inpaint, config, stats))
    seconds = time.perf_counter() - start
    results = {"temporal": scores(ours, frames, holes, flows, with_ssim)}
    results["temporal"].update(fps=len(frames) / seconds, **{k: v for k, v in stats.to_dict().items()
                                                             if k.endswith("_fraction")})
    for name, reference in (references or {}).items():
        outputs = list(remove_frames(damaged, masks, reference, config))
        results[f"temporal_{name}"] = scores(outputs, frames, holes, flows, with_ssim)
    for name, baseline in baselines.items():
        results[name] = scores(per_frame(damaged, holes, baseline), frames, holes, flows, with_ssim)
    for name in results:
        results[name]["e_warp_ratio"] = results[name]["e_warp"] / original["e_warp"]
        results[name]["e_warp_hole_ratio"] = results[name]["e_warp_hole"] / original["e_warp_hole"]
    results["original"] = original
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carremoval.video.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", required=True, help="folder of ground-truth frames, or a video file")
    parser.add_argument("--masks-from", required=True, help="mask folder of another sequence (the holes)")
    parser.add_argument("--size", default="432x240", help="WIDTHxHEIGHT to resize to")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N frames")
    parser.add_argument("--dilate", type=int, default=0, help="dilation of the borrowed masks (px)")
    parser.add_argument("--own-masks", help="the sequence's own object masks: place the holes off that object")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    if Path(args.frames).is_file():
        frames = [cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                  for frame in itertools.islice(read_frames(args.frames), args.limit)]
    else:
        frames = read_frame_dir(args.frames, size, args.limit)
    masks = borrowed_masks(args.masks_from, len(frames), size)
    if args.own_masks:
        own = borrowed_masks(args.own_masks, len(frames), size)
        masks = place_masks(masks, [prepare_mask(mask, 10) for mask in own])
    results = evaluate_with_ground_truth(frames, masks, telea(), TemporalConfig(dilate_px=args.dilate))
    keys = ["hole_psnr", "hole_ssim", "e_warp", "e_warp_ratio", "e_warp_hole", "e_warp_hole_ratio", "flicker_hole"]
    print(f"{'method':<10}" + "".join(f"{key:>18}" for key in keys))
    for name, row in results.items():
        print(f"{name:<10}" + "".join(f"{row.get(key, float('nan')):>18.5f}" for key in keys))
    extra = {k: round(v, 3) for k, v in results["temporal"].items() if k in ("fps", "propagated_fraction")}
    print(f"temporal: {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
