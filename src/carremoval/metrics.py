"""Image quality metrics over the whole image and inside the hole (uint8 RGB in, floats out)."""
from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.metrics import structural_similarity

PSNR_CAP = 100.0  # reported for identical images instead of infinity, so means stay finite


def _as_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) / 255.0


def _region(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean HxW region: the mask, or everything when the mask is None."""
    return np.ones(shape[:2], bool) if mask is None else mask.astype(bool)


def psnr(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB over the region (all channels); NaN for an empty region."""
    region = _region(mask, target.shape)
    if not region.any():
        return float("nan")
    error = (_as_float(prediction)[region] - _as_float(target)[region]) ** 2
    mse = float(error.mean())
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10.0 * math.log10(1.0 / mse))


def l1(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error in [0, 1] units over the region; NaN for an empty region."""
    region = _region(mask, target.shape)
    if not region.any():
        return float("nan")
    return float(np.abs(_as_float(prediction)[region] - _as_float(target)[region]).mean())


def ssim(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM (scikit-image, Gaussian window) averaged over the region; NaN for an empty region."""
    region = _region(mask, target.shape)
    if not region.any():
        return float("nan")
    channel_axis = -1 if target.ndim == 3 else None
    _, ssim_map = structural_similarity(
        _as_float(prediction), _as_float(target), data_range=1.0, channel_axis=channel_axis,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True,
    )
    if ssim_map.ndim == 3:
        ssim_map = ssim_map.mean(axis=-1)
    return float(ssim_map[region].mean())


def image_scores(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The photo metrics of DESIGN.md section 6: PSNR and SSIM whole and in the hole, L1 and SWD in the hole."""
    return {
        "psnr": psnr(prediction, target),
        "ssim": ssim(prediction, target),
        "hole_psnr": psnr(prediction, target, mask),
        "hole_ssim": ssim(prediction, target, mask),
        "hole_l1": l1(prediction, target, mask),
        "hole_swd": sliced_wasserstein(prediction, target, mask),
    }


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over rows, ignoring NaNs (empty holes)."""
    if not rows:
        return {}
    return {key: float(np.nanmean([row[key] for row in rows])) for key in rows[0]}


SWD_STD_FLOOR = 1e-3  # floor of the truth's per-dimension patch std, so flat truth patches stay finite


def _laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Laplacian bands of a float image, finest first; the last entry is the coarsest Gaussian level."""
    gaussians = [image]
    for _ in range(levels - 1):
        gaussians.append(cv2.pyrDown(gaussians[-1]))
    bands = [fine - cv2.pyrUp(coarse, dstsize=(fine.shape[1], fine.shape[0]))
             for fine, coarse in zip(gaussians, gaussians[1:])]
    return bands + [gaussians[-1]]


def _halve(hole: np.ndarray) -> np.ndarray:
    """2x2 any-pooling of a boolean mask, to cv2.pyrDown's size ((n + 1) // 2 per side)."""
    padded = np.pad(hole, ((0, hole.shape[0] % 2), (0, hole.shape[1] % 2)))
    return padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).any(axis=(1, 3))


def _hole_pyramid(hole: np.ndarray, levels: int) -> list[np.ndarray]:
    """The hole at each pyramid level: a pixel is hole if any full-resolution pixel of its 2^k block is."""
    holes = [hole]
    for _ in range(levels - 1):
        holes.append(_halve(holes[-1]))
    return holes


def _span(indices: np.ndarray, size: int, margin: int, step: int) -> slice:
    """From the first to the last index grown by `margin`, the start aligned down to `step`, within 0..size."""
    return slice(max(0, int(indices[0]) - margin) // step * step, min(size, int(indices[-1]) + 1 + margin))


def _hole_window(hole: np.ndarray, levels: int, patch: int) -> tuple[slice, slice]:
    """A crop around the hole whose pyramid matches the full image's wherever the hole's patches look."""
    margin, step = (patch // 2 + 8) * 2 ** levels, 2 ** levels
    return (_span(np.flatnonzero(hole.any(axis=1)), hole.shape[0], margin, step),
            _span(np.flatnonzero(hole.any(axis=0)), hole.shape[1], margin, step))


def _hole_centres(hole: np.ndarray, max_patches: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the hole's pixels, at most `max_patches` of them sampled without replacement."""
    rows, cols = np.nonzero(hole)
    if rows.size > max_patches:
        keep = np.sort(np.random.default_rng(seed).choice(rows.size, max_patches, replace=False))
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def _patches(band: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch: int) -> np.ndarray:
    """N x (patch*patch*channels) patches of a HxWxC band centred on (rows, cols), reflect-padded at the edges."""
    half = patch // 2
    padded = np.pad(band, ((half, half), (half, half), (0, 0)), mode="reflect")
    offsets = np.arange(patch)
    block = padded[rows[:, None, None] + offsets[None, :, None], cols[:, None, None] + offsets[None, None, :]]
    return block.reshape(rows.size, -1)


def _directions(dimensions: int, count: int, seed: int) -> np.ndarray:
    """dimensions x count random unit vectors (normalised Gaussian samples)."""
    directions = np.random.default_rng(seed).standard_normal((dimensions, count))
    return directions / np.linalg.norm(directions, axis=0, keepdims=True)


def _sorted_projections(patches: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """directions x N: the (normalised) patches projected on each direction and sorted, in float32 for speed."""
    return np.sort(directions.T.astype(np.float32) @ patches.T.astype(np.float32), axis=1)


def _sliced_distance(prediction: np.ndarray, target: np.ndarray, directions: np.ndarray) -> float:
    """Mean absolute difference of the sorted projections, both sets normalised by the target's statistics."""
    mean = target.mean(axis=0)
    std = np.maximum(target.std(axis=0), SWD_STD_FLOOR)
    return float(np.abs(_sorted_projections((prediction - mean) / std, directions)
                        - _sorted_projections((target - mean) / std, directions)).mean())


def sliced_wasserstein(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray, levels: int = 4,
                       patch: int = 7, max_patches: int = 4096, directions: int = 512, seed: int = 0) -> float:
    """Sliced Wasserstein distance x 1e3 of Laplacian-pyramid patches in the hole (Karras 2018); NaN if no hole."""
    hole = mask.astype(bool)
    if not hole.any():
        return float("nan")
    window = _hole_window(hole, levels, patch)
    unit = _directions(patch * patch * target.shape[2], directions, seed)
    distances = []
    for level, (level_hole, predicted_band, target_band) in enumerate(zip(
            _hole_pyramid(hole[window], levels),
            _laplacian_pyramid(prediction[window].astype(np.float64), levels),
            _laplacian_pyramid(target[window].astype(np.float64), levels))):
        rows, cols = _hole_centres(level_hole, max_patches, seed + level)
        if rows.size:
            distances.append(_sliced_distance(_patches(predicted_band, rows, cols, patch),
                                              _patches(target_band, rows, cols, patch), unit))
    return float(np.mean(distances)) * 1e3


def _noise_bands(noise: np.ndarray, truth: np.ndarray, hole: np.ndarray, levels: int) -> list[np.ndarray]:
    """The noise's band-pass levels, each scaled per channel to the truth's band std inside the hole."""
    scaled = []
    for noise_band, truth_band, level_hole in zip(_laplacian_pyramid(noise, levels)[:-1],
                                                  _laplacian_pyramid(truth, levels)[:-1], _hole_pyramid(hole, levels)):
        gain = truth_band[level_hole].std(axis=0) / np.maximum(noise_band[level_hole].std(axis=0), 1e-12)
        scaled.append(noise_band * gain)
    return scaled


def _collapse(bands: list[np.ndarray]) -> np.ndarray:
    """Sum pyramid levels (finest first) back to the finest level's size."""
    image = bands[-1]
    for band in reversed(bands[:-1]):
        image = band + cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0]))
    return image


def blur_noise_control(target: np.ndarray, mask: np.ndarray, sigma: float = 6.0, levels: int = 4,
                       seed: int = 0) -> np.ndarray:
    """Control fill from the truth: hole = blurred truth + pyramid-band-matched noise; outside = truth."""
    hole = mask.astype(bool)
    result = target.copy()
    if not hole.any():
        return result
    truth = target.astype(np.float64)
    blurred = cv2.GaussianBlur(truth, (0, 0), sigma)
    noise = np.random.default_rng(seed).standard_normal(truth.shape)
    fill = blurred + _collapse(_noise_bands(noise, truth, hole, levels)) if levels > 1 else blurred
    result[hole] = np.clip(np.rint(fill[hole]), 0, 255).astype(np.uint8)
    return result
