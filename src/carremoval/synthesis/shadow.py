"""A synthetic ground contact shadow: a soft dark ellipse under the car's wheels."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from carremoval.synthesis import exact

# Shadow strength below this is dropped, so the shadow's footprint (and the mask over it) is finite.
CUTOFF = 0.01


@dataclass(frozen=True)
class ShadowOptions:
    """`p`: chance of a shadow; `opacity`: darkening at its centre; `width`, `height`: the ellipse's full size
    as fractions of the car's width and height; `softness`: blur sigma as a fraction of the ellipse's height;
    `in_mask`: the pair's mask covers the shadow (the model learns to remove it)."""

    p: float = 1.0
    opacity: tuple[float, float] = (0.35, 0.7)
    width: float = 1.05
    height: float = 0.12
    softness: float = 0.5
    in_mask: bool = True


def contact_shadow(size: tuple[int, int], box: list[int], options: ShadowOptions, opacity: float) -> np.ndarray:
    """HxW float64 darkening in [0, opacity] centred on the bottom edge of the car box [x0, y0, x1, y1]; the ellipse is
    rasterised in integers and blurred by exact.gaussian_blur, so exact on every CPU."""
    x0, y0, x1, y1 = box
    half_w = max(1.0, options.width * (x1 - x0) / 2)
    half_h = max(1.0, options.height * (y1 - y0) / 2)
    centre = ((x0 + x1) / 2, y1 - 0.3 * half_h)
    shadow = np.zeros(size, np.float64)
    scale = 16  # cv2.ellipse draws sub-pixel geometry with `shift` bits
    cv2.ellipse(
        shadow,
        (round(centre[0] * scale), round(centre[1] * scale)),
        (round(half_w * scale), round(half_h * scale)),
        0, 0, 360, 1.0, thickness=-1, lineType=cv2.LINE_8, shift=4,
    )
    sigma = max(0.5, options.softness * 2 * half_h)
    shadow = exact.gaussian_blur(shadow, sigma)
    shadow *= opacity / max(float(shadow.max()), 1e-6)
    return np.where(shadow < CUTOFF, 0.0, shadow)
