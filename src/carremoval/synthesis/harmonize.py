"""Colour harmonisation: move the car's CIELAB mean and spread part of the way toward its surroundings."""
from __future__ import annotations

import cv2
import numpy as np


def lab_stats(lab: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted per-channel mean and standard deviation of HxWx3 LAB pixels."""
    total = max(float(weight.sum()), 1e-6)
    mean = (lab * weight[..., None]).sum(axis=(0, 1)) / total
    var = (((lab - mean) ** 2) * weight[..., None]).sum(axis=(0, 1)) / total
    return mean, np.sqrt(np.maximum(var, 0.0))


def harmonize(car_rgb: np.ndarray, car_weight: np.ndarray, context_rgb: np.ndarray, strength: float) -> np.ndarray:
    """Partial Reinhard transfer of float RGB in [0, 1]: 0 leaves the car as it is, 1 copies the context's stats.

    `car_weight` (HxW, e.g. the alpha) says which car pixels count; `context_rgb` (any HxWx3) is the
    background around the car.
    """
    if strength <= 0 or float(car_weight.sum()) < 1.0:
        return car_rgb
    car_lab = cv2.cvtColor(car_rgb, cv2.COLOR_RGB2LAB)
    context_lab = cv2.cvtColor(np.ascontiguousarray(context_rgb, dtype=np.float32), cv2.COLOR_RGB2LAB)
    car_mean, car_std = lab_stats(car_lab, car_weight)
    ctx_mean, ctx_std = lab_stats(context_lab, np.ones(context_lab.shape[:2], np.float32))
    target_mean = car_mean + strength * (ctx_mean - car_mean)
    target_std = car_std + strength * (ctx_std - car_std)
    gain = target_std / np.maximum(car_std, 1e-3)
    out_lab = ((car_lab - car_mean) * gain + target_mean).astype(np.float32)
    out_lab[..., 0] = np.clip(out_lab[..., 0], 0.0, 100.0)
    return np.clip(cv2.cvtColor(out_lab, cv2.COLOR_LAB2RGB), 0.0, 1.0)


def context_box(box: list[int], size: tuple[int, int], grow: float = 0.5) -> tuple[slice, slice]:
    """The car's box [x0, y0, x1, y1] grown by `grow` of its size on each side, clipped to the canvas."""
    x0, y0, x1, y1 = box
    dx, dy = round(grow * (x1 - x0)), round(grow * (y1 - y0))
    rows = slice(max(0, y0 - dy), min(size[0], y1 + dy))
    cols = slice(max(0, x0 - dx), min(size[1], x1 + dx))
    return rows, cols
