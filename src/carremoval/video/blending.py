"""Smooth interpolation into holes (push-pull pyramid) and seam correction at a hole's border."""
from __future__ import annotations

import cv2
import numpy as np

from carremoval.video.mask_sources import dilate

MIN_WEIGHT = 1e-6
SEAM_WORK_PIXELS = 20_000  # the seam offset is interpolated on at most this many pixels


def smooth_fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown pixels of a float image smoothly from the known ones (push-pull over a Gaussian pyramid).

    values: HxW or HxWxC float32; known: HxW bool. Known pixels are returned unchanged; with nothing known the
    result is zero.
    """
    values = values.astype(np.float32, copy=False)
    if known.all():
        return values.copy()
    if not known.any():
        return np.zeros_like(values)
    weight = known.astype(np.float32)
    levels = []
    level_values = values * (weight[..., None] if values.ndim == 3 else weight)
    while min(weight.shape) > 2 and (weight < MIN_WEIGHT).any():
        levels.append((level_values, weight))
        level_values, weight = cv2.pyrDown(level_values), cv2.pyrDown(weight)
    estimate = _normalised(level_values, weight, fallback=_normalised_mean(level_values, weight))
    for level_values, weight in reversed(levels):
        coarse = cv2.pyrUp(estimate, dstsize=(weight.shape[1], weight.shape[0]))
        confidence = np.minimum(weight, 1.0)
        if values.ndim == 3:
            confidence = confidence[..., None]
        estimate = confidence * _normalised(level_values, weight, fallback=coarse) + (1 - confidence) * coarse
    return np.where(known[..., None] if values.ndim == 3 else known, values, estimate).astype(np.float32)


def _normalised(weighted: np.ndarray, weight: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    safe = np.maximum(weight, MIN_WEIGHT)
    mean = weighted / (safe[..., None] if weighted.ndim == 3 else safe)
    keep = weight > MIN_WEIGHT
    return np.where(keep[..., None] if weighted.ndim == 3 else keep, mean, fallback)


def _normalised_mean(weighted: np.ndarray, weight: np.ndarray) -> np.ndarray:
    total = max(float(weight.sum()), MIN_WEIGHT)
    mean = weighted.reshape(-1, weighted.shape[-1]).sum(0) / total if weighted.ndim == 3 else weighted.sum() / total
    return np.broadcast_to(np.asarray(mean, np.float32), weighted.shape)


def remap_points(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, interpolation: int) -> np.ndarray:
    """`image` read at the points (xs, ys) with cv2.remap: an N x C array (N x 1 for single-channel images)."""
    count = len(xs)
    width = 1024  # cv2.remap wants maps under 32767 wide: lay the points out in rows
    rows = max((count + width - 1) // width, 1)
    map_x = np.zeros(rows * width, np.float32)
    map_y = np.zeros(rows * width, np.float32)
    map_x[:count], map_y[:count] = xs, ys
    values = cv2.remap(image, map_x.reshape(rows, width), map_y.reshape(rows, width), interpolation,
                       borderMode=cv2.BORDER_REPLICATE)
    channels = image.shape[2] if image.ndim == 3 else 1
    return values.reshape(rows * width, channels)[:count]


def bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Row and column slices around the True pixels of `mask`, widened by `margin` (clipped to the image)."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    height, width = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, width)))


def ring_around(hole: np.ndarray, width: int) -> np.ndarray:
    """The band of pixels up to `width` px outside the hole."""
    return dilate(hole, width) & ~hole


def seam_correct(frame: np.ndarray, fill: np.ndarray, hole: np.ndarray, ring_valid: np.ndarray) -> np.ndarray:
    """Shift the fill so it meets the frame at the hole's border without a seam (membrane-style cloning).

    fill: HxWx3 float32 colours taken from other frames, meaningful on the hole and on `ring_valid` (pixels just
    outside the hole where the fill is known too). The colour offset frame - fill, measured on the ring, is
    interpolated smoothly across the hole and added to the fill there. Returns HxWx3 float32.
    """
    if not ring_valid.any() or not hole.any():
        return fill
    rows, cols = bounding_box(hole | ring_valid, margin=2)
    offset = frame[rows, cols].astype(np.float32) - fill[rows, cols]
    known = ring_valid[rows, cols]
    offset[~known] = 0
    height, width = known.shape
    factor = SEAM_WORK_PIXELS / (height * width)
    if factor < 1:
        # the offset is smooth: interpolate it at a lower resolution (ring values averaged, weight-normalised)
        size = (max(round(width * factor ** 0.5), 1), max(round(height * factor ** 0.5), 1))
        weight = cv2.resize(known.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        small = cv2.resize(offset, size, interpolation=cv2.INTER_AREA) / np.maximum(weight, 1e-6)[..., None]
        smooth = cv2.resize(smooth_fill(small, weight > 0), (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        smooth = smooth_fill(offset, known)
    corrected = fill.copy()
    inside = hole[rows, cols]
    corrected[rows, cols][inside] += smooth[inside]
    return corrected
