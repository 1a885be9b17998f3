"""Weather effects (rain, sun flare, shadow, fog, RGB shift) drawn once and applied identically to X and Y.

One albumentations Compose call transforms both images with the same sampled parameters ("target" is an
additional image target). Randomness comes from ONE numpy and ONE Python generator seeded per pair and shared by
all transforms (`Compose.set_random_state`). `Compose.set_random_seed` would give every transform its own
generator with the same seed, so every effect would draw the same first number and they would all appear together.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields
from numbers import Number
from typing import Any

import albumentations as A
import numpy as np

EFFECT_NAMES = {
    "RandomRain": "rain",
    "RandomSunFlare": "sun_flare",
    "RandomShadow": "shadow",
    "RandomFog": "fog",
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


def build_compose(options: WeatherOptions, size: tuple[int, int]) -> A.Compose:
    """The weather pipeline for images of `size` (H, W); effect sizes scale with the image."""
    height, width = size
    return A.Compose(
        [
            A.RandomRain(blur_value=max(1, round(width / 96)), brightness_coefficient=0.85, p=options.rain),
            A.RandomSunFlare(src_radius=max(8, round(0.3 * width)), p=options.sun_flare),
            A.RandomShadow(shadow_intensity_range=(0.3, 0.6), p=options.shadow),
            A.RandomFog(fog_coef_range=(0.2, 0.6), p=options.fog),
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
