"""The full-resolution photo benchmark (eval.json `photo_hd`): fills judged at the photo's own size.

Two kinds of cases, each a PhotoPair (input with the hole's truth replaced, truth, hole):
- a split's backgrounds as crawled (their raw file, at its own size) with the split's cut-outs pasted at that
  size by the training pairs' renderer (weather off: the scene is what is judged);
- single DAVIS frames at 854x480 with a hole borrowed from another sequence's car mask, shifted off the frame's
  own moving car and off its other (parked) cars where a car segmenter gives them: the photo form of the video
  ground-truth protocol.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from carremoval.evaluation import PhotoPair
from carremoval.io import InputError, read_jsonl, read_mask, read_rgb
from carremoval.masks import dilate
from carremoval.synthesis.options import RenderOptions
from carremoval.synthesis.render import PairRenderer
from carremoval.synthesis.sources import Source, read_manifest
from carremoval.synthesis.weather import WeatherOptions
from carremoval.video.evaluation import place_masks

CarFinder = Callable[[np.ndarray], np.ndarray]   # RGB frame -> HxW bool, the cars in it


def split_ids(pairs_dir: str | Path, split: str, kind: str) -> list[str]:
    """The ids of a split's backgrounds or cut-outs (the synthesize stage's split assignment)."""
    folder = Path(pairs_dir) / split / kind
    ids = sorted(path.stem for path in folder.glob("*.png"))
    if not ids:
        raise InputError(f"{folder}: no {kind} there (run the synthesize stage)")
    return ids


def raw_backgrounds(backgrounds_dir: str | Path, ids: Sequence[str], root: Path) -> list[Source]:
    """The crawled file behind each curated background id (the manifest's `origin`), at its own size."""
    rows = {row["id"]: row for row in read_jsonl(Path(backgrounds_dir) / "manifest.jsonl")}
    missing = [background for background in ids if background not in rows]
    if missing:
        raise InputError(f"{backgrounds_dir}/manifest.jsonl: no row for background(s) {', '.join(missing)}")
    return [Source(id=background, group=rows[background]["group"], path=root / rows[background]["origin"])
            for background in ids]


def background_cases(sources: Sequence[Source], cutouts: Sequence[Source], per_background: int, seed: int,
                     options: RenderOptions, split: str) -> list[PhotoPair]:
    """`per_background` pairs on each background at its own size, cut-outs pasted at that size."""
    options = dataclasses.replace(options, weather=WeatherOptions(rain=0, sun_flare=0, shadow=0, fog=0, rgb_shift=0))
    cases = []
    for source in sources:
        size = read_rgb(source.path).shape[:2]
        renderer = PairRenderer([source], cutouts, size=size, options=options, seed=seed,
                                pairs_per_epoch=per_background, stream=f"hd_{split}_{source.id}")
        for index in range(per_background):
            pair = renderer.render(epoch=0, index=index)
            cases.append(PhotoPair(f"{source.id}_{index}", pair.input, pair.target, pair.mask))
    return cases


def split_background_cases(pairs_dir: Path, backgrounds_dir: Path, cutouts_dir: Path, root: Path, split: str,
                           per_background: int, seed: int, options: RenderOptions) -> list[PhotoPair]:
    sources = raw_backgrounds(backgrounds_dir, split_ids(pairs_dir, split, "backgrounds"), root)
    cut_ids = set(split_ids(pairs_dir, split, "cutouts"))
    cutouts = [source for source in read_manifest(cutouts_dir) if source.id in cut_ids]
    return background_cases(sources, cutouts, per_background, seed, options, split)


def frame_indices(first: int, count: int, samples: int) -> list[int]:
    """`samples` frame numbers spread evenly over [first, first + count)."""
    return sorted({int(round(value)) for value in np.linspace(first, first + count - 1, samples)})


def davis_frame_cases(clip: dict[str, Any], limit: int, samples: int, find_cars: CarFinder | None = None,
                      avoid_px: int = 10) -> list[PhotoPair]:
    """Frames of one DAVIS clip (`frames`, `own_masks`, `holes_from`, optional `start`, `holes_start`,
    `max_frames`) at their own size, each with the borrowed hole of the same clip time, placed off the frame's
    own car and (with `find_cars`) off every other car."""
    frames = sorted(Path(clip["frames"]).glob("*.jpg")) + sorted(Path(clip["frames"]).glob("*.png"))
    masks = sorted(Path(clip["own_masks"]).glob("*.png"))
    holes = sorted(Path(clip["holes_from"]).glob("*.png"))
    start, holes_start = clip.get("start", 0), clip.get("holes_start", 0)
    count = min(clip.get("max_frames", limit), len(frames) - start)
    cases = []
    for index in frame_indices(start, count, samples):
        frame = read_rgb(frames[index])
        avoid = read_mask(masks[index], shape=frame.shape[:2])
        if find_cars is not None:
            avoid = avoid | find_cars(frame)
        hole_file = holes[min(holes_start + index - start, len(holes) - 1)]
        hole = read_mask(hole_file, shape=frame.shape[:2])
        placed = place_masks([hole], [dilate(avoid, avoid_px)])[0]
        if placed.any():
            cases.append(PhotoPair(f"{clip['name']}_{index:05d}", np.where(placed[..., None], 0, frame)
                                   .astype(np.uint8), frame, placed))
    return cases

