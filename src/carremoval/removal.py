"""Photo car removal: the trained generator as an Inpainter, applied to a crop around each hole."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from carremoval.data import image_to_tensor, mask_to_tensor, tensor_to_image
from carremoval.inpainters import Inpainter
from carremoval.io import InputError
from carremoval.masks import hole_boxes
from carremoval.photo_io import LoadedPhoto, PhotoPixels


@dataclass(frozen=True)
class CropPolicy:
    """How much context goes around a hole, and how the seam is blended."""

    context: float = 2.0       # crop side = hole bounding-box side x context (before fitting the working aspect)
    min_crop_fraction: float = 1.0  # a crop is at least this fraction of the working size, in input pixels: at 1,
                                    # a small hole is filled at the pixel scale the generator was trained at, not
                                    # zoomed in (val hole PSNR 18.85 dB against 18.82 at 0)
    feather_px: int = 0        # width of the blend ramp inside the hole's border (0 = hard paste); keep it under
                               # the mask's dilation, so that only background pixels are blended in


def context_crop(box: tuple[int, int, int, int], image_size: tuple[int, int], working_size: tuple[int, int],
                 policy: CropPolicy) -> tuple[int, int, int, int]:
    """A crop around `box` with context, in the working aspect ratio, shifted to stay inside the image.

    Where the image is smaller than the crop in one direction, the crop is clipped there; the caller pads it
    (reflect) back to the working aspect, so the photo is never squashed.
    """
    height, width = image_size
    work_h, work_w = working_size
    x0, y0, x1, y1 = box
    aspect = work_w / work_h
    crop_h = max((y1 - y0) * policy.context, (x1 - x0) * policy.context / aspect, work_h * policy.min_crop_fraction)
    crop_h = int(np.ceil(crop_h))
    crop_w = int(np.ceil(crop_h * aspect))
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(centre_x - crop_w / 2))
    top = int(round(centre_y - crop_h / 2))
    left = min(max(left, 0), max(width - crop_w, 0))
    top = min(max(top, 0), max(height - crop_h, 0))
    return left, top, min(left + crop_w, width), min(top + crop_h, height)


def _pad_to_aspect(crop: np.ndarray, aspect: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad a crop (right and bottom) to the working aspect; returns it and the original (h, w)."""
    height, width = crop.shape[:2]
    target_w = max(width, int(np.ceil(height * aspect)))
    target_h = max(height, int(np.ceil(target_w / aspect)))
    pad = ((0, target_h - height), (0, target_w - width)) + ((0, 0),) * (crop.ndim - 2)
    mode = "reflect" if min(height, width) > 1 else "edge"
    return np.pad(crop, pad, mode=mode), (height, width)


def blend_weights(mask: np.ndarray, feather_px: int) -> np.ndarray:
    """Per-pixel weight of the new content: 1 deep inside the hole, ramping to ~0 at its border, 0 outside."""
    if feather_px <= 0:
        return mask.astype(np.float32)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(inside / float(feather_px), 0.0, 1.0).astype(np.float32) * mask


def paste(original: np.ndarray, filled: np.ndarray, mask: np.ndarray, feather_px: int) -> np.ndarray:
    """Blend `filled` into `original` inside `mask` only; every pixel outside the mask stays bit-identical."""
    weight = blend_weights(mask, feather_px)[..., None]
    mixed = original.astype(np.float32) * (1.0 - weight) + filled.astype(np.float32) * weight
    result = original.copy()
    result[mask] = np.clip(np.rint(mixed[mask]), 0, 255).astype(np.uint8)
    return result


class GeneratorInpainter:
    """The trained generator as an Inpainter: each hole is filled from a context crop at the working size."""

    def __init__(self, generator: torch.nn.Module, working_size: tuple[int, int], device: torch.device,
                 policy: CropPolicy = CropPolicy()):
        self.generator = generator.eval()
        self.working_size = (int(working_size[0]), int(working_size[1]))
        self.device = device
        self.policy = policy

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: torch.device, policy: CropPolicy = CropPolicy()):
        """Load models/generator.pt (state dict + config) with weights_only=True."""
        from carremoval.models import load_generator

        if not Path(path).is_file():
            raise InputError(f"{path}: no trained generator there (run `make repro`, or pass --model)")
        generator, config = load_generator(path, device)
        return cls(generator, tuple(config["image_size"]), device, policy)

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        result = image
        for box in hole_boxes(mask):
            crop_box = context_crop(box, image.shape[:2], self.working_size, self.policy)
            result = self._fill_crop(result, mask, crop_box)
        return result

    def _fill_crop(self, image: np.ndarray, mask: np.ndarray, crop_box: tuple[int, int, int, int]) -> np.ndarray:
        left, top, right, bottom = crop_box
        crop_mask = mask[top:bottom, left:right]
        filled = self.fill(image[top:bottom, left:right], crop_mask)
        result = image.copy()
        result[top:bottom, left:right] = paste(image[top:bottom, left:right], filled, crop_mask,
                                               self.policy.feather_px)
        return result

    @torch.no_grad()
    def fill(self, crop: np.ndarray, crop_mask: np.ndarray) -> np.ndarray:
        """The generator's output for one crop, at the crop's size (not yet blended)."""
        work_h, work_w = self.working_size
        padded, (height, width) = _pad_to_aspect(crop, work_w / work_h)
        padded_mask, _ = _pad_to_aspect(crop_mask.astype(np.uint8), work_w / work_h)
        shrinking = padded.shape[0] > work_h
        small = cv2.resize(padded, (work_w, work_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
        small_mask = cv2.resize(padded_mask * 255, (work_w, work_h), interpolation=cv2.INTER_AREA) > 0
        x = image_to_tensor(small)[None].to(self.device)
        m = mask_to_tensor(small_mask)[None].to(self.device)
        output = tensor_to_image(self.generator(x, m)[0])
        large = cv2.resize(output, (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_CUBIC)
        return large[:height, :width]


def remove_from_photo(photo: LoadedPhoto, mask: np.ndarray, inpaint: Inpainter) -> PhotoPixels:
    """Fill `mask` in the photo with `inpaint`; pixels outside the mask keep their original values (and depth)."""
    if mask.shape != photo.rgb.shape[:2]:
        raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]}, the photo is "
                         f"{photo.rgb.shape[1]}x{photo.rgb.shape[0]}")
    if not mask.any():
        return photo.source
    filled = inpaint(photo.rgb, mask)
    return photo.restore(filled, mask)
