"""Weather effects (rain, sun flare, shadow, fog, RGB shift) drawn once and applied identically to X and Y.

One albumentations Compose call transforms both images with the same sampled parameters ("target" is an
additional image target). Randomness comes from ONE numpy and ONE Python generator seeded per pair and shared by
all transforms (`Compose.set_random_state`). `Compose.set_random_seed` would give every transform its own
generator with the same seed, so every effect would draw the same first number and they would all appear together.

albumentations samples every parameter; rain, fog and the sun flare are then drawn by the functions below instead of
its own, which blend through OpenCV and simsimd code that rounds differently on different CPUs (docs/
reproducibility.md). Shadow and RGB shift are its own: NumPy element by element and a lookup table, exact already.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields
from numbers import Number
from typing import Any

import albumentations as A
import cv2
import numpy as np

from carremoval.synthesis import exact

EFFECT_NAMES = {
    "ExactRain": "rain",
    "ExactSunFlare": "sun_flare",
    "RandomShadow": "shadow",
    "ExactFog": "fog",
    "RGBShift": "rgb_shift",
}


@dataclass(frozen=True)
class WeatherOptions:
    """Probability of each effect per pair (0 disables it)."""

    rain: float = 0.15
    sun_flare: float = 0.1
    shadow: float = 0.2
    fog: float = 0.1
    rgb_shift: float = 0.3

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"weather.{item.name}: a probability in [0, 1] is expected, got {value}")


def add_rain(
    image: np.ndarray,
    slant: float,
    drop_length: int,
    drop_width: int,
    drop_color: tuple[int, int, int],
    blur_value: int,
    brightness: float,
    rain_drops: np.ndarray,
) -> np.ndarray:
    """albumentations' rain on uint8 RGB: drops drawn as lines, box-blurred, added, the image darkened."""
    if not rain_drops.size:
        return image.copy()
    layer = np.zeros_like(image)
    lines = np.stack((rain_drops, rain_drops + np.array([[slant, drop_length]])), axis=1)
    cv2.polylines(layer, lines.astype(np.int32), False, drop_color, drop_width, lineType=cv2.LINE_4)
    if blur_value > 1:
        layer = exact.box_blur_uint8(layer, blur_value)
    out = np.minimum(image.astype(np.int32) + layer, 255)
    return exact.to_uint8(out * brightness) if brightness != 1.0 else out.astype(np.uint8)


def add_fog(
    image: np.ndarray, intensity: float, alpha_coef: float, positions: list[tuple[int, int]], radiuses: list[int]
) -> np.ndarray:
    """albumentations' fog on uint8 RGB: white discs blended in one after another, then a light Gaussian blur.

    Each disc is blended over its own box only: elsewhere the blend gives back the same pixels exactly.
    """
    result = image.copy()
    alpha = alpha_coef * intensity
    height, width = image.shape[:2]
    for (x, y), radius in zip(positions, radiuses):
        top, left = max(0, y - radius - 1), max(0, x - radius - 1)
        bottom, right = min(height, y + radius + 2), min(width, x + radius + 2)
        if top >= bottom or left >= right:
            continue
        patch = result[top:bottom, left:right]
        overlay = patch.copy()
        cv2.circle(overlay, (x - left, y - top), radius, (255, 255, 255), -1)
        result[top:bottom, left:right] = exact.blend_uint8(overlay, alpha, patch, 1 - alpha)
    return exact.gaussian_blur_uint8(result, max(3, min(height, width) // 30) | 1)


def add_sun_flare(
    image: np.ndarray,
    flare_center: tuple[float, float],
    src_radius: int,
    src_color: tuple[int, ...],
    circles: list[Any],
) -> np.ndarray:
    """albumentations' overlay sun flare on uint8 RGB: flare circles blended in, then the sun's rings."""
    overlay = image.copy()
    output = image.copy()
    weighted_brightness = 0.0
    total_radius = 0.0
    for alpha, (x, y), radius, colour in circles:
        weighted_brightness += alpha * radius
        total_radius += radius
        cv2.circle(overlay, (x, y), radius, colour, -1)
        output = exact.blend_uint8(overlay, alpha, output, 1 - alpha)
    point = [int(value) for value in flare_center]
    overlay = output.copy()
    rings = src_radius // 10
    alphas = np.linspace(0.0, min(weighted_brightness / total_radius * 5, 1.0), num=rings)
    radii = np.linspace(1, src_radius, num=rings)
    for ring in range(rings):
        cv2.circle(overlay, point, int(radii[ring]), src_color, -1)
        fade = float(alphas[rings - ring - 1])
        alpha = fade * fade * fade   # multiplied out: a float power would go through libm
        output = exact.blend_uint8(overlay, alpha, output, 1 - alpha)
    return output


class ExactRain(A.RandomRain):
    """RandomRain's drops, drawn by `add_rain`."""

    def apply(
        self, img: np.ndarray, slant: float, drop_length: int, rain_drops: np.ndarray, **params: Any
    ) -> np.ndarray:
        return add_rain(img, slant, drop_length, self.drop_width, self.drop_color, self.blur_value,
                        self.brightness_coefficient, rain_drops)


class ExactFog(A.RandomFog):
    """RandomFog's particles, drawn by `add_fog`."""

    def apply(
        self, img: np.ndarray, particle_positions: list[tuple[int, int]], radiuses: list[int], intensity: float,
        **params: Any,
    ) -> np.ndarray:
        return add_fog(img, intensity, self.alpha_coef, particle_positions, radiuses)


class ExactSunFlare(A.RandomSunFlare):
    """RandomSunFlare's overlay flare, drawn by `add_sun_flare`."""

    def apply(
        self, img: np.ndarray, flare_center: tuple[float, float], circles: list[Any], **params: Any
    ) -> np.ndarray:
        return add_sun_flare(img, flare_center, self.src_radius, self.src_color, circles)


def build_compose(options: WeatherOptions, size: tuple[int, int]) -> A.Compose:
    """The weather pipeline for images of `size` (H, W); effect sizes scale with the image."""
    width = size[1]
    return A.Compose(
        [
            ExactRain(blur_value=max(1, round(width / 96)), brightness_coefficient=0.85, p=options.rain),
            ExactSunFlare(src_radius=max(8, round(0.3 * width)), method="overlay", p=options.sun_flare),
            A.RandomShadow(shadow_intensity_range=(0.3, 0.6), p=options.shadow),
            ExactFog(fog_coef_range=(0.2, 0.6), p=options.fog),
            A.RGBShift(r_shift_limit=15, g_shift_limit=15, b_shift_limit=15, p=options.rgb_shift),
        ],
        additional_targets={"target": "image"},
        save_applied_params=True,
    )


def summarize(params: dict[str, Any]) -> dict[str, Any]:
    """The recipe-sized view of a transform's parameters: scalars and short vectors; long lists as counts."""
    summary: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        if key == "shape":
            continue
        if isinstance(value, (bool, str, Number)):
            summary[key] = value.item() if isinstance(value, np.generic) else value
            continue
        numbers = _as_numbers(value)
        if numbers is not None and numbers.size <= 4:
            summary[key] = [float(item) for item in numbers]
        else:
            summary[f"{key}_count"] = len(value)
    return summary


def _as_numbers(value: Any) -> np.ndarray | None:
    """A flat float array of a (nested) numeric sequence, or None when it is ragged or not numeric."""
    try:
        return np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None


class Weather:
    """Seeded, replayed weather: `apply(x, y, seed)` gives both images the same effects. Thread safe."""

    def __init__(self, options: WeatherOptions, size: tuple[int, int]):
        self.options = options
        self.size = tuple(size)
        self._local = threading.local()

    def _compose(self) -> A.Compose:
        compose = getattr(self._local, "compose", None)
        if compose is None:
            compose = self._local.compose = build_compose(self.options, self.size)
        return compose

    def apply(self, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """(x', y', applied effects with their summarised parameters), deterministic in `seed`."""
        compose = self._compose()
        compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = compose(image=x, target=y)
        applied = [
            {"effect": EFFECT_NAMES[name], **summarize(params)} for name, params in out["applied_transforms"]
        ]
        return out["image"], out["target"], applied

    def __getstate__(self) -> dict:
        return {"options": self.options, "size": self.size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["options"], state["size"])
