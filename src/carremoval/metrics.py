"""Image quality metrics over the whole image and inside the hole (uint8 RGB in, floats out)."""
from __future__ import annotations

import math

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
    """The photo metrics of DESIGN.md section 6: PSNR and SSIM whole and in the hole, L1 in the hole."""
    return {
        "psnr": psnr(prediction, target),
        "ssim": ssim(prediction, target),
        "hole_psnr": psnr(prediction, target, mask),
        "hole_ssim": ssim(prediction, target, mask),
        "hole_l1": l1(prediction, target, mask),
    }


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over rows, ignoring NaNs (empty holes)."""
    if not rows:
        return {}
    return {key: float(np.nanmean([row[key] for row in rows])) for key in rows[0]}
