"""Shadow benchmarks: how much of a car's shadow video removal leaves behind, with shadows `auto` and `off`.

- Fixed camera with ground truth (`fixed_camera`): the clean background is the temporal median of the video, the
  changed region the foreground blobs touching a car; PSNR there against the clean background, and the share
  of the frame that the shadow added to the hole away from any car.
- DAVIS car clips (`davis_residual`): the residual shadow in a band around the DAVIS body mask, against the frame
  warped from the nearest frame whose car is at least 40 px away, and E_warp over the body-only hole.
- Photos (`photo_rerenders`): the synthesize stage's test pairs rendered again with their car and shadow layers:
  the share of the shadow's pixels the photo shadow mask covers, and what it adds beside a car without a shadow.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from carremoval.inpainters import Inpainter
from carremoval.io import read_jsonl
from carremoval.masks import bounding_box, components, dilate, prepare_mask
from carremoval.segmentation_eval import read_davis
from carremoval.shadow import PHOTO_SHADOW, ShadowSettings, luma, shadow_mask
from carremoval.video.io import VideoReader
from carremoval.video.metrics import dis_flow, pair_flows, warp_error
from carremoval.video.temporal import TemporalConfig, remove_frames

Segmenter = Callable[[np.ndarray], np.ndarray]  # RGB -> HxW bool car pixels

FOREGROUND_DIFF = 25   # a pixel whose largest channel differs from the clean background by more is foreground
BAND_PX = 40           # DAVIS: the band around the body, and how far the car must be in the reference frame
MAX_COVERED = 0.02     # ... i.e. at most this share of the ground around the car is covered by it there
SHADOW_DARKENING = 0.1  # photos: a shadow pixel is one the rendered shadow darkens by at least this share


@dataclass(frozen=True)
class FixedCameraSettings:
    """The fixed-camera benchmark's segment of the video (CPU-sized) and the clean background's sampling."""

    start: int = 0
    frames: int = 300
    median_step: int = 4    # the clean background is the median of every median_step-th frame of the whole video

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> FixedCameraSettings:
        return cls(**(params or {}))


def run(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], inpaint: Inpainter, config: TemporalConfig
        ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The remover's outputs and the holes it actually filled."""
    holes: dict[int, np.ndarray] = {}
    outputs = list(remove_frames(frames, masks, inpaint, config, on_hole=holes.__setitem__))
    return outputs, [holes[t] for t in range(len(outputs))]


def clean_background(path: str | os.PathLike, step: int) -> np.ndarray:
    """The per-pixel temporal median of every `step`-th frame of a video."""
    return np.median(np.stack(list(itertools.islice(VideoReader(path), 0, None, step))), axis=0).astype(np.uint8)


def changed_region(frame: np.ndarray, background: np.ndarray, cars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the cars' body within the foreground, the foreground blobs touching a body)."""
    foreground = np.abs(frame.astype(np.int16) - background.astype(np.int16)).max(-1) > FOREGROUND_DIFF
    body = cars & foreground
    labels, _ = components(foreground)
    touching = np.unique(labels[body])
    return body, np.isin(labels, touching[touching > 0])


def fixed_camera(path: str | os.PathLike, segmenter: Segmenter, inpaint: Inpainter, config: TemporalConfig,
                 settings: FixedCameraSettings = FixedCameraSettings()) -> dict[str, float]:
    """Changed-region PSNR against the clean background with shadow auto and off (both given the bodies only),
    the mean share of the frame added to the hole outside the changed region (stray), and the share of the
    changed region outside the body-only hole (the most a shadow mask can still add)."""
    background = clean_background(path, settings.median_step)
    frames = list(itertools.islice(VideoReader(path), settings.start, settings.start + settings.frames))
    bodies, changed = zip(*(changed_region(frame, background, segmenter(frame)) for frame in frames))
    result: dict[str, float] = {"frames": len(frames)}
    holes_by_mode = {}
    for mode in ("off", "auto"):
        outputs, holes = run(frames, bodies, inpaint, _with_shadow(config, mode))
        holes_by_mode[mode] = holes
        result[f"psnr_{mode}"] = region_psnr(outputs, [background] * len(frames), changed)
    added = [auto & ~off for auto, off in zip(holes_by_mode["auto"], holes_by_mode["off"])]
    result["added_share"] = float(np.mean([a.mean() for a in added]))
    result["stray_share"] = float(np.mean([(a & ~c).mean() for a, c in zip(added, changed)]))
    result["shadow_covered"] = _share([a & c & ~dilate(b, config.dilate_px) for a, b, c in zip(added, bodies, changed)],
                                      [c & ~dilate(b, config.dilate_px) for b, c in zip(bodies, changed)])
    result["changed_beyond_body_hole"] = _share([c & ~h for c, h in zip(changed, holes_by_mode["off"])], changed)
    result["psnr_gain"] = result["psnr_auto"] - result["psnr_off"]
    return result


def region_psnr(outputs: Sequence[np.ndarray], truth: Sequence[np.ndarray], regions: Sequence[np.ndarray]) -> float:
    """PSNR over the union of the frames' regions (one mean squared error over all their pixels)."""
    errors = [((o.astype(np.float64) - t.astype(np.float64))[r] ** 2).sum() for o, t, r in zip(outputs, truth, regions)]
    count = 3 * sum(int(r.sum()) for r in regions)
    if count == 0:
        return float("nan")
    mse = sum(errors) / count
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def _share(part: Sequence[np.ndarray], whole: Sequence[np.ndarray]) -> float:
    total = sum(int(w.sum()) for w in whole)
    return sum(int(p.sum()) for p in part) / total if total else float("nan")


def _with_shadow(config: TemporalConfig, mode: str) -> TemporalConfig:
    return replace(config, shadow=mode)


def ground_homography(flow: np.ndarray, avoid: np.ndarray, avoid_next: np.ndarray, top: int) -> np.ndarray:
    """The homography taking a frame's ground to the next frame's: RANSAC on their DIS flow below row `top` (the
    car's roof: the road the car stands on), outside the cars and their surroundings; identity when it fails."""
    ys, xs = np.nonzero(~avoid[top:])
    ys = ys + top
    pick = np.linspace(0, len(ys) - 1, min(4000, len(ys))).astype(np.int64) if len(ys) else np.zeros(0, np.int64)
    ys, xs = ys[pick], xs[pick]
    targets = np.stack([xs, ys], 1).astype(np.float32) + flow[ys, xs]
    tx, ty = np.rint(targets[:, 0]).astype(int), np.rint(targets[:, 1]).astype(int)
    inside = (tx >= 0) & (ty >= 0) & (tx < flow.shape[1]) & (ty < flow.shape[0])
    inside[inside] &= ~avoid_next[ty[inside], tx[inside]]
    if inside.sum() < 50:
        return np.eye(3)
    sources = np.stack([xs, ys], 1).astype(np.float32)[inside]
    homography, _ = cv2.findHomography(sources, targets[inside], cv2.RANSAC, 1.0)
    return np.eye(3) if homography is None else homography


def chained_homographies(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per frame t, the ground homography from frame 0 to frame t (chained over neighbouring frames, where the
    flow is reliable)."""
    avoid = [dilate(mask, BAND_PX) for mask in masks]
    chain = [np.eye(3)]
    for t in range(len(frames) - 1):
        box = bounding_box(masks[t])
        top = 0 if box is None else box[1]
        step = ground_homography(dis_flow(frames[t], frames[t + 1]), avoid[t], avoid[t + 1], top)
        chain.append(step @ chain[-1])
    return chain


def references(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per frame: (the nearest frame whose car, carried by the ground's motion, is at least BAND_PX away from this
    frame's car, warped onto this frame by that motion; where it is valid), or None when no frame qualifies."""
    height, width = masks[0].shape
    chain = chained_homographies(frames, masks)
    result = []
    for t, frame in enumerate(frames):
        near = dilate(masks[t], BAND_PX)
        found = None
        for s in sorted(range(len(frames)), key=lambda s: (abs(s - t), s)):
            if s == t:
                continue
            t_to_s = chain[s] @ np.linalg.inv(chain[t])

            def onto_t(image: np.ndarray, homography: np.ndarray = t_to_s) -> np.ndarray:
                return cv2.warpPerspective(image, homography, (width, height),
                                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            if (onto_t(masks[s].astype(np.uint8)) > 0)[near].mean() <= MAX_COVERED:
                found = (onto_t(frames[s]), onto_t(np.ones((height, width), np.uint8)) > 0)
                break
        result.append(found)
    return result


def residual_shadow(outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                    refs: Sequence[tuple[np.ndarray, np.ndarray] | None], dilate_px: int, ground: bool = False) -> float:
    """Mean over the band pixels (all frames with a reference) of max(0, reference luma - output luma). With
    `ground`, only the band's pixels below the middle of the car: the ground a shadow falls on (above it, buildings
    and poles off the road's plane are misaligned by the ground's motion and read as residual)."""
    total, count = 0.0, 0
    for output, mask, ref in zip(outputs, masks, refs):
        if ref is None:
            continue
        band = dilate(mask, BAND_PX) & ~dilate(mask, dilate_px) & ref[1]
        if ground:
            box = bounding_box(mask)
            band[:(box[1] + box[3]) // 2] = False
        total += float(np.maximum(0.0, luma(ref[0]) - luma(output))[band].sum())
        count += int(band.sum())
    return total / count if count else float("nan")


def davis_residual(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], inpaint: Inpainter,
                   config: TemporalConfig) -> dict[str, float]:
    """Residual shadow in the band and E_warp over the body-only hole, shadows off and auto (real removal of the
    clip's own car with its DAVIS mask)."""
    refs = references(frames, masks)
    flows = pair_flows(frames)
    body_holes = [prepare_mask(mask, config.dilate_px) for mask in masks]
    result: dict[str, float] = {"frames": len(frames), "with_reference": sum(r is not None for r in refs)}
    result["residual_input"] = residual_shadow(frames, masks, refs, config.dilate_px)
    for mode in ("off", "auto"):
        outputs, holes = run(frames, masks, inpaint, _with_shadow(config, mode))
        result[f"residual_{mode}"] = residual_shadow(outputs, masks, refs, config.dilate_px)
        result[f"residual_ground_{mode}"] = residual_shadow(outputs, masks, refs, config.dilate_px, ground=True)
        result[f"e_warp_hole_{mode}"] = warp_error(outputs, flows, body_holes)
        result[f"hole_growth_{mode}"] = float(np.mean([h.sum() / max(b.sum(), 1) for h, b in zip(holes, body_holes)]))
    result["residual_ratio"] = result["residual_auto"] / result["residual_off"] if result["residual_off"] else 0.0
    result["residual_ground_ratio"] = (result["residual_ground_auto"] / result["residual_ground_off"]
                                       if result["residual_ground_off"] else 0.0)
    return result


def resize_clip(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], size: tuple[int, int] | None
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (INTER_AREA) and masks (nearest) at size=(width, height); unchanged for None."""
    if size is None:
        return list(frames), [np.asarray(m, bool) for m in masks]
    return ([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames],
            [cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0 for m in masks])


def read_davis_clip(folder: Path, size: tuple[int, int], limit: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first `limit` frames of a DAVIS sequence and their body masks at size (width, height)."""
    return resize_clip(*read_davis(folder, limit), size)


def photo_rerenders(recipe: Path, dilate_px: int, settings: ShadowSettings = PHOTO_SHADOW) -> dict[str, float]:
    """The pairs listed beside `recipe` (a synthesize split) rendered again, with shadows and with none (`shadow.p`
    0: the same draws otherwise), each given its car's body mask: the share of shadow pixels inside the hole with
    shadows auto and off (the hole dilated by `dilate_px` as the CLI does) and in the shadow mask alone
    (`shadow_found`), and the shadow mask's area beside the shadowless cars as a share of their area."""
    from carremoval.synthesis import PairRenderer

    shaded = PairRenderer.from_recipe(recipe)
    options = shaded.options
    plain = PairRenderer.from_recipe(recipe, options=replace(options, shadow=replace(options.shadow, p=0.0)))
    pairs = [(row["epoch"], row["index"]) for row in read_jsonl(recipe.parent / "recipes.jsonl")]
    shadow_px, covered_auto, covered_off, covered_found, body_px, grown_px = 0, 0, 0, 0, 0, 0
    for epoch, index in pairs:
        pair = shaded.render(epoch, index)
        shadow = (pair.darkening >= SHADOW_DARKENING) & ~pair.body
        found = shadow_mask(pair.input, pair.body, settings)
        shadow_px += int(shadow.sum())
        covered_auto += int((prepare_mask(pair.body | found, dilate_px) & shadow).sum())
        covered_off += int((prepare_mask(pair.body, dilate_px) & shadow).sum())
        covered_found += int((found & shadow).sum())
        bare = plain.render(epoch, index)
        body_px += int(bare.body.sum())
        grown_px += int(shadow_mask(bare.input, bare.body, settings).sum())
    return {"pairs": len(pairs), "shadow_covered_auto": covered_auto / max(shadow_px, 1),
            "shadow_covered_off": covered_off / max(shadow_px, 1), "shadow_found": covered_found / max(shadow_px, 1),
            "growth_without_shadow": grown_px / max(body_px, 1)}


def shadow_targets(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's targets on the measured section (the DAVIS residual on the ground band, see residual_shadow)."""
    fixed = section["fixed_camera"]
    davis = section["davis"]
    worst_ratio = max(row["residual_ground_ratio"] for row in davis.values())
    worst_warp = max(row["e_warp_hole_auto"] / row["e_warp_hole_off"] for row in davis.values())
    photos = section["photos"]
    return {
        "photo_shadow_covered_80pct": {"ok": photos["shadow_covered_auto"] >= 0.8,
                                       "detail": f"{photos['shadow_covered_auto']:.1%} of the rendered shadows' "
                                                 f"pixels (off: {photos['shadow_covered_off']:.1%})"},
        "photo_growth_under_5pct": {"ok": photos["growth_without_shadow"] <= 0.05,
                                    "detail": f"{photos['growth_without_shadow']:.1%} of the car's area beside "
                                              "cars without a shadow"},
        "fixed_camera_psnr_gain_3db": {"ok": fixed["psnr_gain"] >= 3.0,
                                       "detail": f"{fixed['psnr_gain']:+.2f} dB over the changed region"},
        "fixed_camera_stray_under_1pct": {"ok": fixed["stray_share"] < 0.01,
                                          "detail": f"{fixed['stray_share']:.2%} of the frame"},
        "davis_residual_halved": {"ok": worst_ratio <= 0.5, "detail": f"worst auto/off ratio {worst_ratio:.2f}"},
        "davis_e_warp_not_worse": {"ok": worst_warp <= 1.0, "detail": f"worst auto/off ratio {worst_warp:.3f}"},
    }
