"""Smooth interpolation into holes (membrane, multigrid) and seam correction at a hole's border."""
from __future__ import annotations

import cv2
import numpy as np

from carremoval.masks import crop_slices

SEAM_WORK_PIXELS = 20_000  # the seam offset is interpolated on at most this many pixels


def normalised_blur(image: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """The weighted local mean of an HxWxC float image: its Gaussian blur (sigma px) weighted by `weights` (HxW),
    divided by the blurred weights (values where the weights vanish are meaningless but finite)."""
    blurred = cv2.GaussianBlur(image * weights[..., None], (0, 0), sigma)
    total = cv2.GaussianBlur(weights, (0, 0), sigma)
    return blurred / np.maximum(total, 1e-3)[..., None]


def smooth_fill(values: np.ndarray, known: np.ndarray, sweeps: int = 12) -> np.ndarray:
    """Fill the unknown pixels of a float image with the membrane (harmonic) interpolation of the known ones.

    Solves the Laplace equation in the unknown region with the known pixels as its boundary, coarse to fine: on
    each level of a pyramid the upsampled coarser solution is refined by `sweeps` Jacobi iterations. Linear
    ramps are reproduced exactly. values: HxW or HxWxC float32; known: HxW bool. Known pixels are returned
    unchanged; with nothing known the result is zero.
    """
    values = values.astype(np.float32, copy=False)
    if known.all():
        return values.copy()
    if not known.any():
        return np.zeros_like(values)
    levels = [(values, known)]
    while not levels[-1][1].all() and min(levels[-1][1].shape) > 3:
        levels.append(_half(*levels[-1]))
    level_values, level_known = levels[-1]
    solution = np.where(_channels(level_known, values), level_values, level_values[level_known].mean(axis=0))
    for level_values, level_known in reversed(levels[:-1]):
        height, width = level_known.shape
        guess = cv2.resize(solution, (width, height), interpolation=cv2.INTER_LINEAR)
        solution = _relax(np.where(_channels(level_known, values), level_values, guess), level_known, sweeps)
    return np.where(_channels(known, values), values, solution).astype(np.float32)


NEIGHBOURS = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)


def _channels(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    return mask[..., None] if like.ndim == 3 else mask


def _half(values: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The next pyramid level: each 2x2 block's mean over its known pixels; known where any pixel was."""
    height, width = known.shape
    size = ((width + 1) // 2, (height + 1) // 2)
    weight = cv2.resize(known.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    weighted = cv2.resize(values * _channels(known, values), size, interpolation=cv2.INTER_AREA)
    coarse_known = weight > 0
    safe = np.maximum(weight, 1e-6)
    return weighted / _channels(safe, values), coarse_known


def _relax(values: np.ndarray, known: np.ndarray, sweeps: int) -> np.ndarray:
    """Jacobi iterations of the Laplace equation on the unknown pixels (the known ones put back after each sweep
    by a multiply-add with 0/1 weights: exact, and 3x faster than np.where)."""
    keep = np.broadcast_to(_channels(known, values), values.shape).astype(np.float32)
    free, fixed = 1 - keep, values * keep
    for _ in range(sweeps):
        values = cv2.add(cv2.multiply(cv2.filter2D(values, -1, NEIGHBOURS, borderType=cv2.BORDER_REPLICATE), free),
                         fixed)
    return values


def nearest_values(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Each pixel's value at its nearest known pixel (`known` must have one)."""
    _, labels = cv2.distanceTransformWithLabels((~known).astype(np.uint8), cv2.DIST_L2, 3,
                                                labelType=cv2.DIST_LABEL_PIXEL)   # known pixels labelled 1.. in
    ys, xs = np.nonzero(known)                                                     # raster order, like nonzero
    return values[ys, xs][labels - 1]


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


def ring_around(hole: np.ndarray, width: int) -> np.ndarray:
    """The pixels outside the hole within `width` px of it (Euclidean distance); none when there is no hole."""
    if not hole.any():
        return np.zeros_like(hole)
    rows, cols = crop_slices(hole, margin=width)
    outside = ~hole[rows, cols]
    distance = cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, 3)
    ring = np.zeros_like(hole)
    ring[rows, cols] = outside & (distance <= width)
    return ring


def seam_correct(frame: np.ndarray, fill: np.ndarray, hole: np.ndarray, ring_valid: np.ndarray) -> np.ndarray:
    """Shift the fill so it meets the frame at the hole's border without a seam (membrane-style cloning).

    fill: HxWx3 float32 colours taken from other frames, meaningful on the hole and on `ring_valid` (pixels just
    outside the hole where the fill is known too). The colour offset frame - fill, measured on the ring, is
    interpolated smoothly across the hole and added to the fill there. Returns HxWx3 float32.
    """
    if not ring_valid.any() or not hole.any():
        return fill
    rows, cols = crop_slices(hole | ring_valid, margin=2)
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
    corrected[rows, cols] += np.where(hole[rows, cols, None], smooth, 0)  # a masked add, without fancy indexing
    return corrected
