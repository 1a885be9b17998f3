"""Per-frame inpainters with the project's Inpainter signature: (HxWx3 uint8 image, HxW bool hole) -> image.

OpenCV's Telea (fast marching) and Navier-Stokes inpainting are the baselines every learned or temporal method
is compared with. Every pixel outside the hole is returned bit-identical.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

Inpainter = Callable[[np.ndarray, np.ndarray], np.ndarray]

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def cv2_inpainter(method: str = "telea", radius: int = 3) -> Inpainter:
    """cv2.inpaint as an Inpainter: method 'telea' or 'ns', neighbourhood `radius` in pixels.

    Accepts HxW grey, HxWx3 and HxWx4 uint8 images (alpha is kept as it is).
    """
    if method not in METHODS:
        raise ValueError(f"inpainting method {method!r}: expected one of {', '.join(METHODS)}")
    flag = METHODS[method]

    def inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ValueError(f"{method} inpainting: expected an HxW, HxWx3 or HxWx4 uint8 image, "
                             f"got {image.shape} {image.dtype}")
        if hole.shape != image.shape[:2]:
            raise ValueError(f"{method} inpainting: hole {hole.shape} does not match the image {image.shape[:2]}")
        if not hole.any():
            return image.copy()
        colour = image[..., :3] if image.ndim == 3 else image
        painted = cv2.inpaint(np.ascontiguousarray(colour), hole.astype(np.uint8), radius, flag)
        result = image.copy()
        if image.ndim == 3:
            result[..., :3][hole] = painted[hole]
        else:
            result[hole] = painted[hole]
        return result

    inpaint.__name__ = f"{method}_inpaint"
    return inpaint


def telea(radius: int = 3) -> Inpainter:
    return cv2_inpainter("telea", radius)


def navier_stokes(radius: int = 3) -> Inpainter:
    return cv2_inpainter("ns", radius)
