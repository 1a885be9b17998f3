"""Binary car masks: clean-up (component choice, holes, blobs, edge), feathered alpha, crop box, and the hole
(dilation, ground-shadow extension) that removal replaces."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

KEEP_CHOICES = ("largest", "center", "all")


@dataclass(frozen=True)
class MaskCleaning:
    """How a model's mask is cleaned; fractions are relative to the largest component's area."""

    keep: str = "largest"             # largest | center (the instance nearest the image centre) | all
    instance_gap_px: int = 8          # parts closer than this belong to one car (split by a pole or leaves)
    min_blob_fraction: float = 0.02   # instances smaller than this are dropped
    max_hole_fraction: float = 0.05   # holes up to this size are filled; larger ones (occluders) stay
    smooth_radius: int = 2            # Gaussian edge smoothing radius in pixels; 0 = off

    def __post_init__(self) -> None:
        if self.keep not in KEEP_CHOICES:
            raise ValueError(f"mask cleaning: keep must be one of {KEEP_CHOICES}, got {self.keep!r}")
        if min(self.smooth_radius, self.instance_gap_px, self.min_blob_fraction, self.max_hole_fraction) < 0:
            raise ValueError("mask cleaning: sizes and fractions must not be negative")

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> "MaskCleaning":
        try:
            return cls(**(params or {}))
        except TypeError as err:
            raise ValueError(f"segment.cleaning: {err}") from None


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components: (labels, stats without the background row)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats[1:]


def small_parts(mask: np.ndarray, max_px: float) -> np.ndarray:
    """The mask's 8-connected components of fewer than `max_px` pixels."""
    labels, stats = components(mask)
    small = np.zeros(len(stats) + 1, bool)
    small[1:] = stats[:, cv2.CC_STAT_AREA] < max_px
    return small[labels]


def thin_parts(mask: np.ndarray, width: int) -> np.ndarray:
    """The mask's pixels where no disc of `width` px fits (cracks, lines, a blob's thin rim): the mask minus its
    opening."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, disc, borderType=cv2.BORDER_CONSTANT,
                              borderValue=0)   # OpenCV's default border would make a crack at the edge thick
    return mask & ~opened.astype(bool)


def instance_labels(mask: np.ndarray, gap: int) -> tuple[np.ndarray, int]:
    """Label the mask's pixels by instance: components closer than `gap` px (a car split by an occluder) join."""
    mask = mask.astype(np.uint8)
    grown = mask
    if gap > 0:
        grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1, 2 * gap + 1)))
    count, labels = cv2.connectedComponents(grown, connectivity=8)
    return np.where(mask > 0, labels, 0), count - 1


def select_instance(mask: np.ndarray, keep: str, gap: int = 0, min_fraction: float = 0.0) -> np.ndarray:
    """Keep the car that matters: the largest instance, or the one nearest the image centre, or all of them;
    instances under `min_fraction` of the largest are never kept."""
    labels, count = instance_labels(mask, gap)
    if count == 0:
        return mask.astype(bool)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    candidates = np.flatnonzero(areas >= min_fraction * areas.max())
    if keep == "largest":
        candidates = candidates[[int(np.argmax(areas[candidates]))]]
    elif keep == "center":
        centre = np.array([(mask.shape[0] - 1) / 2, (mask.shape[1] - 1) / 2])
        distances = [np.linalg.norm(np.argwhere(labels == index + 1).mean(axis=0) - centre) for index in candidates]
        candidates = candidates[[int(np.argmin(distances))]]
    return np.isin(labels, candidates + 1)


def fill_small_holes(mask: np.ndarray, max_fraction: float) -> np.ndarray:
    """Fill background regions enclosed by the mask whose area is at most `max_fraction` of the mask's area."""
    mask = mask.astype(bool)
    area = int(mask.sum())
    if area == 0:
        return mask
    labels, stats = components(~mask)
    height, width = mask.shape
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    enclosed = (left > 0) & (top > 0) & (right < width) & (bottom < height)
    small = stats[:, cv2.CC_STAT_AREA] <= max_fraction * area
    holes = np.flatnonzero(enclosed & small) + 1
    return mask | np.isin(labels, holes)


def smooth_edge(mask: np.ndarray, radius: int) -> np.ndarray:
    """Round off jagged edges: Gaussian blur of the mask, thresholded at one half."""
    if radius <= 0:
        return mask.astype(bool)
    size = 2 * radius + 1
    blurred = cv2.GaussianBlur(mask.astype(np.float32), (size, size), sigmaX=radius / 2)
    return blurred > 0.5


def clean_mask(mask: np.ndarray, cleaning: MaskCleaning) -> np.ndarray:
    """Keep the car that matters (dropping speckles and other blobs), fill small holes, smooth the edge."""
    mask = select_instance(mask, cleaning.keep, cleaning.instance_gap_px, cleaning.min_blob_fraction)
    mask = fill_small_holes(mask, cleaning.max_hole_fraction)
    return smooth_edge(mask, cleaning.smooth_radius)


def feathered_alpha(mask: np.ndarray, width: float) -> np.ndarray:
    """An 8-bit alpha that ramps linearly across `width` pixels centred on the mask edge.

    The ramp follows the signed distance to the edge, so `alpha > 127` is exactly the input mask (thin parts
    included), while the edge fades over `width` pixels; width 0 gives a hard 0/255 alpha.
    """
    mask = mask.astype(bool)
    if width <= 0 or not mask.any() or mask.all():
        return np.where(mask, 255, 0).astype(np.uint8)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    signed = np.where(mask, inside - 0.5, 0.5 - outside)
    alpha = np.clip(0.5 + signed / width, 0.0, 1.0)
    alpha = np.where(mask, np.maximum(alpha, 128 / 255), np.minimum(alpha, 127 / 255))
    return np.round(alpha * 255).astype(np.uint8)


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the True pixels, x1/y1 exclusive; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def crop_box(mask: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    """The bounding box grown by `margin` pixels on each side and clipped to the image."""
    box = bounding_box(mask)
    if box is None:
        return None
    height, width = mask.shape
    x0, y0, x1, y1 = box
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def crop_slices(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """crop_box as (rows, columns) slices for indexing; the mask must not be empty."""
    box = crop_box(mask, margin)
    if box is None:
        raise ValueError("crop_slices: the mask is empty")
    x0, y0, x1, y1 = box
    return slice(y0, y1), slice(x0, x1)


def touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def shadow_extend(mask: np.ndarray, margin: int) -> np.ndarray:
    """The mask extended `margin` px down and margin/2 px to each side, to take the car's ground shadow too."""
    if margin <= 0:
        return mask.astype(bool)
    half = margin // 2
    below = np.ones((margin + 1, 2 * half + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), below, anchor=(half, margin)).astype(bool)


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """The mask grown by `px` pixels in every direction (a disc)."""
    if px <= 0:
        return mask.astype(bool)
    grown = np.zeros(mask.shape, bool)
    box = crop_box(mask, px)
    if box is None:
        return grown
    x0, y0, x1, y1 = box   # only pixels within px of the mask's box can change: dilate that crop alone
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    grown[y0:y1, x0:x1] = cv2.dilate(mask[y0:y1, x0:x1].astype(np.uint8), disc).astype(bool)
    return grown


def within(mask: np.ndarray, px: float) -> np.ndarray:
    """The pixels at most `px` from the mask (Euclidean): `dilate` by a true disc, at a cost that does not grow
    with `px` (for reaches of tens of pixels)."""
    near = np.zeros(mask.shape, bool)
    box = crop_box(mask, int(np.ceil(px)))
    if box is None:
        return near
    x0, y0, x1, y1 = box   # as in `dilate`: nothing farther than px from the mask's box can be near it
    outside = ~mask[y0:y1, x0:x1].astype(bool)
    near[y0:y1, x0:x1] = cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= px
    return near


def prepare_mask(mask: np.ndarray, dilate_px: int = 0, shadow_margin: int = 0) -> np.ndarray:
    """The hole to fill: the car mask extended over its ground shadow, then dilated to cover its soft edges."""
    return dilate(shadow_extend(mask, shadow_margin), dilate_px)


def hole_boxes(mask: np.ndarray, min_gap: int = 16) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1, exclusive) of the mask's blobs, merging blobs closer than `min_gap`."""
    grown = dilate(mask, min_gap // 2).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = []
    for label in range(1, count):
        x, y, w, h = (int(value) for value in stats[label, :4])
        box = bounding_box(mask[y:y + h, x:x + w])
        if box is not None:
            boxes.append((x + box[0], y + box[1], x + box[2], y + box[3]))
    return sorted(boxes)
