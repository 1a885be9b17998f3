"""Colour harmonisation: move the car's CIELAB mean and spread part of the way toward its surroundings."""
from __future__ import annotations

import numpy as np

from carremoval.synthesis import exact


def lab_stats(lab: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted per-channel mean and standard deviation of HxWx3 LAB pixels (float64)."""
    lab = np.asarray(lab, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    total = max(float(weight.sum()), 1e-6)
    mean = (lab * weight[..., None]).sum(axis=(0, 1)) / total
    spread = lab - mean
    var = (spread * spread * weight[..., None]).sum(axis=(0, 1)) / total
    return mean, np.sqrt(np.maximum(var, 0.0))


def harmonize(car_rgb: np.ndarray, car_weight: np.ndarray, context_rgb: np.ndarray, strength: float) -> np.ndarray:
    """Partial Reinhard transfer of float RGB in [0, 1]: 0 leaves the car as it is, 1 copies the context's stats.

    `car_weight` (HxW, e.g. the alpha) says which car pixels count; `context_rgb` (any HxWx3, float in [0, 1] or
    uint8) is the background around the car. Computed in float64, exact on every CPU (exact.rgb_to_lab,
    exact.lab_to_rgb), and returned in the car's dtype.
    """
    if strength <= 0 or float(car_weight.sum()) < 1.0:
        return car_rgb
    car_lab = exact.rgb_to_lab(car_rgb)
    context_lab = exact.rgb_to_lab(context_rgb)
    car_mean, car_std = lab_stats(car_lab, car_weight)
    ctx_mean, ctx_std = lab_stats(context_lab, np.ones(context_lab.shape[:2]))
    target_mean = car_mean + strength * (ctx_mean - car_mean)
    target_std = car_std + strength * (ctx_std - car_std)
    gain = target_std / np.maximum(car_std, 1e-3)
    out_lab = (car_lab - car_mean) * gain + target_mean
    out_lab[..., 0] = np.clip(out_lab[..., 0], 0.0, 100.0)
    return exact.lab_to_rgb(out_lab).astype(car_rgb.dtype)


def context_box(box: list[int], size: tuple[int, int], grow: float = 0.5) -> tuple[slice, slice]:
    """The car's box [x0, y0, x1, y1] grown by `grow` of its size on each side, clipped to the canvas."""
    x0, y0, x1, y1 = box
    dx, dy = round(grow * (x1 - x0)), round(grow * (y1 - y0))
    rows = slice(max(0, y0 - dy), min(size[0], y1 + dy))
    cols = slice(max(0, x0 - dx), min(size[1], x1 + dx))
    return rows, cols
