"""Pasting a car cut-out: where and how big, flip, colour jitter, and compositing through its feathered alpha."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carremoval.synthesis import exact
from carremoval.synthesis.sources import resize_premultiplied


@dataclass(frozen=True)
class JitterOptions:
    """Largest colour change of the car: factors are drawn from [1 - x, 1 + x], hue from [-hue, hue] turns."""

    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.2
    hue: float = 0.03


@dataclass(frozen=True)
class Placement:
    """The car's box on the canvas; it may stick out at the top (rows above 0 are cut off)."""

    left: int
    top: int
    width: int
    height: int

    def to_list(self) -> list[int]:
        return [self.left, self.top, self.left + self.width, self.top + self.height]


def place_car(
    rng: np.random.Generator,
    car_shape: tuple[int, int],
    size: tuple[int, int],
    scale: tuple[float, float],
    max_width: float,
    bottom: tuple[float, float],
    perspective: float,
) -> tuple[Placement, float]:
    """Draw the car's height (fraction of canvas height) and put its bottom edge in the `bottom` band.

    A car standing higher in the band is further away: its height shrinks by up to `perspective` (at the band's
    top edge). The car keeps its aspect and is shrunk when wider than `max_width` of the canvas. Returns the box
    and the height fraction actually used.
    """
    canvas_h, canvas_w = size
    car_h, car_w = car_shape
    fraction = float(rng.uniform(*scale))
    ground = float(rng.uniform(*bottom))
    depth = (ground - bottom[0]) / (bottom[1] - bottom[0]) if bottom[1] > bottom[0] else 1.0
    height = max(2, round(fraction * (1.0 - perspective * (1.0 - depth)) * canvas_h))
    width = max(2, round(height * car_w / car_h))
    if width > max_width * canvas_w:
        width = max(2, int(max_width * canvas_w))
        height = max(2, round(width * car_h / car_w))
    left = int(rng.integers(0, max(1, canvas_w - width + 1)))
    return Placement(left=left, top=round(ground * canvas_h) - height, width=width, height=height), height / canvas_h


def draw_jitter(rng: np.random.Generator, options: JitterOptions) -> dict[str, float]:
    return {
        "brightness": float(rng.uniform(1 - options.brightness, 1 + options.brightness)),
        "contrast": float(rng.uniform(1 - options.contrast, 1 + options.contrast)),
        "saturation": float(rng.uniform(1 - options.saturation, 1 + options.saturation)),
        "hue": float(rng.uniform(-options.hue, options.hue)),
    }


def jitter_colours(rgb: np.ndarray, weight: np.ndarray, jitter: dict[str, float]) -> np.ndarray:
    """Brightness, contrast (about the car's mean), saturation and hue of float RGB in [0, 1]; float64, exact on
    every CPU."""
    out = np.asarray(rgb, dtype=np.float64) * jitter["brightness"]
    weight = np.asarray(weight, dtype=np.float64)
    mean = (out * weight[..., None]).sum(axis=(0, 1)) / max(float(weight.sum()), 1e-6)
    centre = (mean[0] + mean[1] + mean[2]) / 3.0
    out = (out - centre) * jitter["contrast"] + centre
    grey = (0.299 * out[..., 0] + 0.587 * out[..., 1] + 0.114 * out[..., 2])[..., None]
    out = np.clip(grey + (out - grey) * jitter["saturation"], 0.0, 1.0)
    if jitter["hue"]:
        hsv = exact.rgb_to_hsv(out)
        hue = hsv[..., 0] + 360.0 * jitter["hue"]
        hsv[..., 0] = np.where(hue >= 360.0, hue - 360.0, np.where(hue < 0.0, hue + 360.0, hue))
        out = exact.hsv_to_rgb(hsv)
    return out


def scale_car(car: np.ndarray, placement: Placement, flip: bool, feather: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The uint8 RGBA cut-out at the placement's size: (straight RGB float in [0, 1], alpha in [0, 1], margin).

    `feather` is the sigma (pixels) of a Gaussian softening of the alpha edge. The layers grow by `margin` pixels
    on every side to hold the softened edge, whose colour is bled outward from the car so it has no dark fringe.
    Alpha below 1/512 is zeroed so the car's footprint is exact. float64, exact on every CPU.
    """
    rgba = resize_premultiplied(car / 255.0, placement.width, placement.height)
    if flip:
        rgba = np.ascontiguousarray(rgba[:, ::-1])
    rgb, alpha = rgba[..., :3], rgba[..., 3]
    margin = int(np.ceil(3 * feather)) if feather > 0 else 0
    if margin:
        rgb = np.pad(rgb, ((margin, margin), (margin, margin), (0, 0)))
        hard = np.pad(alpha, margin)
        alpha = exact.gaussian_blur(hard, feather)
        spread = exact.gaussian_blur(rgb * hard[..., None], feather) / np.maximum(alpha[..., None], 1e-6)
        rgb = np.where(hard[..., None] > 0, rgb, np.clip(spread, 0.0, 1.0))
    alpha = np.where(alpha < 1 / 512, 0.0, alpha)
    return rgb, alpha, margin


def to_canvas(layer: np.ndarray, top: int, left: int, size: tuple[int, int]) -> np.ndarray:
    """A layer (HxW or HxWxC) with its top-left corner at (top, left) on a zero canvas of `size`, clipped."""
    canvas = np.zeros(tuple(size) + layer.shape[2:], dtype=layer.dtype)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(size[0], top + layer.shape[0]), min(size[1], left + layer.shape[1])
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = layer[y0 - top : y1 - top, x0 - left : x1 - left]
    return canvas


def composite(background: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Over-composite canvas-sized car colour (float [0, 1]) with its alpha onto a float [0, 255] background
    (element by element: exact on every CPU)."""
    weight = alpha[..., None]
    return background * (1.0 - weight) + rgb * 255.0 * weight
