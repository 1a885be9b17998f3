"""A car's ground shadow: the region attached to the car's lower part that is darker than the ground around it
with the ground's chromaticity kept.

One rule for photos and video: compare each pixel near the car with a reference of the clean ground there (a
photo: a smooth estimate of the ground from the pixels around the car, with the stricter PHOTO_SHADOW settings; a
video: the background seen in other frames) and keep the darker pixels with the ground's chromaticity that are
connected to the car's lower part.
The growth is capped at a multiple of the car's area (and logged when it is).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from carremoval.blending import normalised_blur
from carremoval.masks import bounding_box, components, crop_slices, dilate, within

log = logging.getLogger(__name__)

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class ShadowSettings:
    """How shadows are found: the defaults are the video's (an observed background to compare with)."""

    reach: float = 0.6            # search this far from the car, as a fraction of its height
    sideways: float | None = None  # ... and at most this far beyond its left and right ends, as a fraction of its
                                  # width (None: as far as `reach`)
    lower_part: float = 0.4       # a shadow attaches below this fraction of the car's height (from its top)
    seed_ratio: float = 0.72      # a pixel this much darker than the ground (luma ratio) starts a shadow
    grow_ratio: float = 0.85      # ... and pixels up to this ratio, connected to a seed, extend it
    min_ratio: float = 0.02       # darker than this is not a shadow: against the ground another frame saw, only
                                  # noise on black; a car's contact shadow in sun is 7-12% of the ground's luma
    max_chroma: float = 0.06      # largest chromaticity (r, g share) difference to the ground
    max_growth: float = 1.0       # the shadow's area is capped at this multiple of the car's area
    change_seed: float = 40.0     # fixed camera: a pixel beside the car whose largest channel differs from the clean
                                  # background by more than this starts an attached change ...
    change_grow: float = 20.0     # ... and pixels differing by more than this, connected to it, extend it
    own_ground_ratio: float = 0.95  # video, panning camera: a shadow is also at most this bright against the
                                    # frame's own ground beside the car (not only against what other frames saw)
    min_body_px: int = 30         # smaller cars get no shadow
    work_px: int = 24             # the photo's ground estimate is computed where the car's reach is this many px

    def __post_init__(self) -> None:
        if not 0 < self.min_ratio < self.seed_ratio <= self.grow_ratio < 1:
            raise ValueError("shadow: expected 0 < min_ratio < seed_ratio <= grow_ratio < 1")
        if min(self.reach, self.max_chroma, self.max_growth) <= 0 or not 0 <= self.lower_part <= 1:
            raise ValueError("shadow: reach, max_chroma and max_growth must be > 0, lower_part in [0, 1]")
        if not 0 < self.change_grow <= self.change_seed:
            raise ValueError("shadow: expected 0 < change_grow <= change_seed")
        if not 0 < self.own_ground_ratio <= 1:
            raise ValueError("shadow: own_ground_ratio must be in (0, 1]")
        if self.sideways is not None and self.sideways < 0:
            raise ValueError("shadow: sideways must be >= 0 (or None)")

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> ShadowSettings:
        """Build from a params mapping; unknown keys are an error."""
        params = dict(params or {})
        unknown = sorted(set(params) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"shadow: unknown setting(s) {', '.join(unknown)}")
        return cls(**params)


# Photos have no observed ground to compare with, only a smooth estimate from around the car, so dark ground
# (grass, bushes, tyre marks, other things' shadows) reads as shadow: a photo's shadow is searched closer under the
# car and grows less far. Chosen on the val re-renders (docs/shadows.md). Against that estimate black things (tyres,
# holes, a letterbox border) are darker than any shadow, so the darkest pixels (min_ratio) are none.
PHOTO_SHADOW = ShadowSettings(reach=0.4, sideways=0.2, lower_part=0.85, grow_ratio=0.8, min_ratio=0.12)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Luminance (float32, 0-255)."""
    return rgb.astype(np.float32) @ LUMA


def chromaticity(rgb: np.ndarray) -> np.ndarray:
    """The (r, g) shares of each pixel's R+G+B (HxWx2 float32)."""
    rgb = rgb.astype(np.float32)
    total = rgb[..., 0] + rgb[..., 1] + rgb[..., 2] + 1.0   # channel adds: numpy's sum(-1) is several times slower
    return rgb[..., :2] / total[..., None]


def reach_px(body: np.ndarray, settings: ShadowSettings) -> int:
    """How far from the car a shadow is searched (px)."""
    box = bounding_box(body)
    return 0 if box is None else max(round(settings.reach * (box[3] - box[1])), 3)


def search_region(body: np.ndarray, settings: ShadowSettings) -> np.ndarray:
    """Pixels within the reach of the car, level with or below its lower part, outside the car."""
    box = bounding_box(body)
    region = within(body, reach_px(body, settings)) & ~body
    region[:box[1] + int(settings.lower_part * (box[3] - box[1]))] = False
    if settings.sideways is not None:
        beyond = round(settings.sideways * (box[2] - box[0]))
        region[:, :max(box[0] - beyond, 0)] = False
        region[:, box[2] + beyond:] = False
    return region


def darkness(rgb: np.ndarray, reference: np.ndarray, known: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """(luma ratio image / reference, chromaticity difference) per pixel; ratio 1 where the reference is unknown."""
    ratio = luma(rgb) / np.maximum(luma(reference), 1.0)
    difference = np.abs(chromaticity(rgb) - chromaticity(reference))
    chroma = np.maximum(difference[..., 0], difference[..., 1])
    if known is not None:
        ratio[~known], chroma[~known] = 1.0, 0.0
    return ratio, chroma


def attached(candidates: np.ndarray, body: np.ndarray, settings: ShadowSettings, lower_part: bool = True
             ) -> np.ndarray:
    """The candidate pixels 8-connected to the car's lower part (with `lower_part` False: to any part of it)."""
    box = bounding_box(body)
    edge = dilate(body, 2) & ~body
    if lower_part:
        edge[:box[1] + int(settings.lower_part * (box[3] - box[1]))] = False
    labels, _ = components(candidates | (edge & dilate(candidates, 2)))
    touching = np.unique(labels[edge & (labels > 0)])
    return np.isin(labels, touching[touching > 0]) & candidates


def hysteresis(seeds: np.ndarray, grow: np.ndarray) -> np.ndarray:
    """The 8-connected components of `grow` that hold a seed."""
    labels, _ = components(grow)
    return np.isin(labels, np.unique(labels[seeds & (labels > 0)])) & grow


def shadow_from_ratio(ratio: np.ndarray, chroma: np.ndarray, body: np.ndarray, region: np.ndarray,
                      settings: ShadowSettings, seedable: np.ndarray | None = None) -> np.ndarray:
    """The shadow given the darkness images: hysteresis on the luma ratio (seeds, only where `seedable` when given;
    then growth) within `region`, the ground's chromaticity kept, attached to the car, capped."""
    plausible = region & ((chroma <= settings.max_chroma) | (ratio <= settings.seed_ratio)) & (ratio >= settings.min_ratio)
    seeds = plausible & (ratio <= settings.seed_ratio)
    if seedable is not None:
        seeds &= seedable
    seeds = cv2.morphologyEx(seeds.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    shadow = attached(hysteresis(seeds, plausible & (ratio <= settings.grow_ratio)), body, settings)
    shadow = cv2.morphologyEx(shadow.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(bool)
    return cap_growth(shadow & region, body, settings)


def cap_growth(shadow: np.ndarray, body: np.ndarray, settings: ShadowSettings) -> np.ndarray:
    """At most `max_growth` times the car's area, the pixels nearest the car kept; logged when capped."""
    limit = int(settings.max_growth * body.sum())
    area = int(shadow.sum())
    if area <= limit:
        return shadow
    distance = cv2.distanceTransform((~body).astype(np.uint8), cv2.DIST_L2, 3)
    cut = np.sort(distance[shadow])[limit] if limit > 0 else 0.0
    log.info("shadow: %d px found beside a car of %d px, capped at %d px", area, int(body.sum()), limit)
    return shadow & (distance < cut)


def ground_estimate(rgb: np.ndarray, car: np.ndarray, body: np.ndarray, settings: ShadowSettings) -> np.ndarray:
    """A smooth image of the clean ground around `car`: normalised convolution of the pixels that are no car of
    the mask (`body`, which holds `car`), twice: the second time also without the pixels the first estimate finds
    dark (a shadow) or as much brighter (lane markings, a paler lane beside the car's)."""
    reach = reach_px(car, settings)
    scale = min(1.0, settings.work_px / reach)
    height, width = car.shape
    size = (max(round(width * scale), 8), max(round(height * scale), 8))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    avoid = dilate(body, 2)
    box = bounding_box(car)
    avoid[:box[1] + int(settings.lower_part * (box[3] - box[1]))] = True  # the ground level with the car's lower part
    avoid = cv2.resize(avoid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    sigma = max(settings.work_px / 2, 2.0)
    weights = (~avoid).astype(np.float32)
    for _ in range(2):
        estimate = normalised_blur(small, weights, sigma)
        brightness, expected = luma(small), luma(estimate)
        outlier = (brightness < settings.grow_ratio * expected) | (brightness * settings.grow_ratio > expected)
        weights = (~avoid & ~outlier).astype(np.float32)
    return cv2.resize(estimate, (width, height), interpolation=cv2.INTER_LINEAR)


def shadow_mask(rgb: np.ndarray, body: np.ndarray, settings: ShadowSettings = PHOTO_SHADOW) -> np.ndarray:
    """The ground shadow of the car(s) in a photo (HxW bool, the car excluded); empty when there is none."""
    body = np.asarray(body, bool)
    if body.sum() < settings.min_body_px or body.all():
        return np.zeros(body.shape, bool)
    shadow = np.zeros(body.shape, bool)
    for car in cars(body, settings):
        shadow |= _car_shadow(rgb, car, settings, body)
    return shadow & ~body


def cars(body: np.ndarray, settings: ShadowSettings) -> list[np.ndarray]:
    """Each car of the mask (parts within 8 px of each other are one) that is big enough for a shadow."""
    labels, stats = components(dilate(body, 8))
    found = [body & (labels == index + 1) for index in range(len(stats))]
    return [car for car in found if car.sum() >= settings.min_body_px]


def _car_shadow(rgb: np.ndarray, car: np.ndarray, settings: ShadowSettings, body: np.ndarray) -> np.ndarray:
    """One car's shadow against the ground around it (the mask's other cars, `body`, are no ground)."""
    region = search_region(car, settings)
    shadow = np.zeros(car.shape, bool)
    if region.any():
        rows, cols, ground = _ground_beside(rgb, car, body, settings)
        ratio, chroma = darkness(rgb[rows, cols], ground)
        shadow[rows, cols] = shadow_from_ratio(ratio, chroma, car[rows, cols], region[rows, cols], settings)
    return shadow


def _ground_beside(rgb: np.ndarray, car: np.ndarray, body: np.ndarray, settings: ShadowSettings
                   ) -> tuple[slice, slice, np.ndarray]:
    """The crop around `car` (`_ground_crop`) and the ground estimated in it, every car of `body` left out."""
    rows, cols = _ground_crop(car, settings)
    return rows, cols, ground_estimate(rgb[rows, cols], car[rows, cols], body[rows, cols], settings)


def _ground_crop(car: np.ndarray, settings: ShadowSettings) -> tuple[slice, slice]:
    """The car with room around it for the ground estimate: twice its reach on every side."""
    margin = 2 * reach_px(car, settings) + 4
    x0, y0, x1, y1 = bounding_box(car)
    return (slice(max(0, y0 - margin), min(car.shape[0], y1 + margin)),
            slice(max(0, x0 - margin), min(car.shape[1], x1 + margin)))


def darker_than_own_ground(rgb: np.ndarray, body: np.ndarray, settings: ShadowSettings) -> np.ndarray:
    """The pixels within each car's search region at most `own_ground_ratio` as bright as the frame's own ground
    beside the car (the photo rule's estimate). A shadow is darker than the ground around it in the same frame;
    a panning camera's other frames may show another ground there (a dashcam passes from asphalt to concrete)."""
    body = np.asarray(body, bool)
    darker = np.zeros(body.shape, bool)
    for car in cars(body, settings):
        region = search_region(car, settings)
        if region.any():
            rows, cols, ground = _ground_beside(rgb, car, body, settings)
            darker[rows, cols] |= region[rows, cols] & (luma(rgb[rows, cols]) <= settings.own_ground_ratio
                                                        * np.maximum(luma(ground), 1.0))
    return darker


def shadow_search_region(body: np.ndarray, settings: ShadowSettings = ShadowSettings()) -> np.ndarray:
    """Where the shadows of the mask's cars may be: each car's search region (outside the cars)."""
    region = np.zeros(body.shape, bool)
    for car in cars(np.asarray(body, bool), settings):
        region |= search_region(car, settings)
    return region & ~body


def shadow_where_darker(rgb: np.ndarray, background: np.ndarray, body: np.ndarray, known: np.ndarray,
                        settings: ShadowSettings = ShadowSettings(), margin_px: int = 0,
                        seen: np.ndarray | None = None) -> np.ndarray:
    """The cars' shadows given the clean background (video: what the other frames show there): pixels of `known`
    darker than it with its chromaticity, attached to a car's lower part, capped; grown by `margin_px` (the soft
    edge) within the search region. With `seen`, a shadow starts only where the background was seen, and extends
    from there into the rest of `known` (a made-up background: the evidence of being darker is weaker there)."""
    shadow = np.zeros(body.shape, bool)
    for car in cars(np.asarray(body, bool), settings):
        region = search_region(car, settings)
        if not region.any():
            continue
        rows, cols = crop_slices(region | car, margin=4)   # the car and its search region, with a morphology border
        ratio, chroma = darkness(rgb[rows, cols], background[rows, cols], known[rows, cols])
        found = shadow_from_ratio(ratio, chroma, car[rows, cols], region[rows, cols] & known[rows, cols], settings,
                                  None if seen is None else seen[rows, cols])
        shadow[rows, cols] |= dilate(found, margin_px) & region[rows, cols]
    return shadow & ~body


def effects_region(body: np.ndarray, settings: ShadowSettings = ShadowSettings()) -> np.ndarray:
    """Where a fixed camera looks for what a car changes beside its mask: within each car's reach on every side."""
    region = np.zeros(body.shape, bool)
    for car in cars(np.asarray(body, bool), settings):
        region |= within(car, reach_px(car, settings))
    return region & ~body


def attached_change(rgb: np.ndarray, background: np.ndarray, body: np.ndarray, known: np.ndarray,
                    settings: ShadowSettings = ShadowSettings()) -> np.ndarray:
    """Fixed camera: the pixels of `known` within each car's reach that differ from the clean background and are
    attached to the car (on any side), capped: its shadow, and the parts of the car its mask missed (a roof the
    segmenter did not see, a bumper's edge). Hysteresis on the largest channel difference (`change_seed`, then
    `change_grow`)."""
    changed = np.zeros(body.shape, bool)
    for car in cars(np.asarray(body, bool), settings):
        region = within(car, reach_px(car, settings)) & ~car & known
        if not region.any():
            continue
        rows, cols = crop_slices(region | car, margin=4)
        difference = np.abs(rgb[rows, cols].astype(np.int16) - background[rows, cols].astype(np.int16)).max(-1)
        grow = region[rows, cols] & (difference > settings.change_grow)
        found = attached(hysteresis(grow & (difference > settings.change_seed), grow), car[rows, cols], settings,
                         lower_part=False)
        changed[rows, cols] |= cap_growth(found, car[rows, cols], settings)
    return changed & ~body
