"""Per-frame inpainters with the project's Inpainter signature: (HxWx3 uint8 image, HxW bool hole) -> image.

OpenCV's Telea (fast marching) and Navier-Stokes inpainting are the baselines every learned or temporal method
is compared with. Every pixel outside the hole is returned bit-identical.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from carremoval.exemplar import ExemplarSettings, synthesize_texture

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


def patchmatch(patch_size: int = 3, seed: int = 0) -> Inpainter:
    """PatchMatch (Barnes et al. 2009; the `pypatchmatch` package, the classical fill IOPaint ships) as an
    Inpainter: `patch_size` is the patch radius, the search is seeded so a run is repeatable."""
    import patchmatch as native

    if not native.patchmatch_available:
        raise RuntimeError("pypatchmatch is installed without its native library; reinstall PyPatchMatch")

    def inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if not hole.any():
            return image.copy()
        native.set_random_seed(seed)
        painted = native.inpaint(np.ascontiguousarray(image[..., :3]), hole.astype(np.uint8) * 255,
                                 patch_size=patch_size)
        result = image.copy()
        result[..., :3][hole] = painted[hole]
        return result

    inpaint.__name__ = "patchmatch_inpaint"
    return inpaint


class TexturedInpainter:
    """A structure inpainter (the trained generator) says what goes where; exemplar synthesis guided by its fill
    copies the photo's own texture into the hole at full resolution (carremoval.exemplar). With `find_cars` (an
    RGB image -> HxW bool car segmenter), no pixel of another car is ever copied."""

    def __init__(self, structure: Inpainter, settings: ExemplarSettings = ExemplarSettings(),
                 find_cars: Callable[[np.ndarray], np.ndarray] | None = None):
        self.structure = structure
        self.settings = settings
        self.find_cars = find_cars

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if not hole.any():
            return image.copy()
        other_cars = None if self.find_cars is None else self.find_cars(image[..., :3])
        return synthesize_texture(image, hole, self.structure(image, hole), exclude=other_cars,
                                  settings=self.settings)
