"""Torch datasets over the synthesize stage's pairs: fresh renders for training, rendered folders for val/test.

Every item is a dict of tensors: input and target 3xHxW float in [-1, 1], mask 1xHxW float in {0, 1} (1 = hole),
plus its `id`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from carremoval.io import InputError, read_mask, read_rgb

__all__ = ["Augment", "PairFolder", "RenderedPairs", "image_to_tensor", "mask_to_tensor", "tensor_to_image"]


class Renderer(Protocol):
    """What RenderedPairs needs of carremoval.synthesis.PairRenderer."""

    size: tuple[int, int]
    pairs_per_epoch: int

    def render(self, epoch: int, index: int) -> Any: ...


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [-1, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1.0


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """HxW bool (True = hole) -> 1xHxW float32 in {0, 1}."""
    return torch.from_numpy(np.array(mask, dtype=bool)).unsqueeze(0).float()


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """3xHxW float in [-1, 1] -> HxWx3 uint8 (rounded; exact for values that came from uint8)."""
    scaled = ((tensor.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return scaled.to(torch.uint8).permute(1, 2, 0).numpy()


def pair_item(pair_id: str, image: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    return {"id": pair_id, "input": image_to_tensor(image), "target": image_to_tensor(target),
            "mask": mask_to_tensor(mask)}


@dataclass(frozen=True)
class Augment:
    """The same random flip, zoom and colour change applied to a pair's input, target and mask.

    With few background photos a generator can learn what lies behind the car in each of them; a new framing and
    colour every time makes that memory useless and leaves the general skill. `zoom` is the largest
    magnification (a random crop of 1/zoom .. 1 of the side, resized back), `colour` the largest relative change
    of brightness, contrast and per-channel gain. The hole grows to every pixel the resized car touches, and the
    input equals the target outside it, as in the renderer's pairs.
    """

    flip: float = 0.5
    zoom: float = 1.0
    colour: float = 0.0

    @property
    def active(self) -> bool:
        return self.flip > 0 or self.zoom > 1 or self.colour > 0

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> Augment:
        section = section or {}
        return cls(flip=float(section.get("flip", 0.0)), zoom=float(section.get("zoom", 1.0)),
                   colour=float(section.get("colour", 0.0)))

    def __call__(self, image: np.ndarray, target: np.ndarray, mask: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        height, width = mask.shape
        fraction = 1.0 / rng.uniform(1.0, max(self.zoom, 1.0))
        crop_h, crop_w = max(8, round(height * fraction)), max(8, round(width * fraction))
        top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
        flip = rng.random() < self.flip
        gains = 1.0 + self.colour * rng.uniform(-1.0, 1.0, size=4)  # brightness, then R, G, B gain
        contrast = 1.0 + self.colour * rng.uniform(-1.0, 1.0)

        def geometry(array: np.ndarray, interpolation: int) -> np.ndarray:
            crop = array[top:top + crop_h, left:left + crop_w]
            if (crop_h, crop_w) != (height, width):
                crop = cv2.resize(crop, (width, height), interpolation=interpolation)
            return crop[:, ::-1] if flip else crop

        mean = target.reshape(-1, 3).mean(axis=0)

        def colour(array: np.ndarray) -> np.ndarray:
            shifted = (array.astype(np.float32) - mean) * contrast + mean
            return np.clip(shifted * gains[0] * gains[1:], 0, 255).round().astype(np.uint8)

        hole = geometry(mask.astype(np.float32), cv2.INTER_LINEAR) > 0
        moved_target = colour(geometry(target, cv2.INTER_LINEAR))
        moved_input = np.where(hole[..., None], colour(geometry(image, cv2.INTER_LINEAR)), moved_target)
        return moved_input, moved_target, hole


class RenderedPairs(Dataset):
    """Training pairs rendered on the fly: item `n` is pair (epoch n // per_epoch, index n % per_epoch).

    Keys run past one epoch, so a sampler over range(start, stop) walks the epochs in order and a run that
    resumes at sample `start` sees exactly the pairs it would have seen (augmentation is seeded per pair too).
    """

    def __init__(self, renderer: Renderer, augment: Augment | None = None, seed: int = 0):
        self.renderer, self.augment, self.seed = renderer, augment, seed
        self.per_epoch = int(renderer.pairs_per_epoch)
        if self.per_epoch < 1:
            raise ValueError(f"the pair renderer offers {self.per_epoch} pairs per epoch; need at least one")

    def __len__(self) -> int:
        return self.per_epoch

    def __getitem__(self, sample: int) -> dict[str, Any]:
        epoch, index = divmod(int(sample), self.per_epoch)
        pair = self.renderer.render(epoch=epoch, index=index)
        image, target, mask = pair.input, pair.target, pair.mask
        if self.augment is not None and self.augment.active:
            rng = np.random.default_rng([self.seed, epoch, index, 0xA06])
            image, target, mask = self.augment(image, target, mask, rng)
        return pair_item(f"{epoch}-{index}", image, target, mask)


class PairFolder(Dataset):
    """A rendered split, <root>/{input,target,mask}/<pair_id>.png, checked to hold complete pairs of one size."""

    def __init__(self, root: str | os.PathLike, size: tuple[int, int] | None = None, limit: int | None = None):
        self.root = Path(root)
        inputs = self.root / "input"
        if not inputs.is_dir():
            raise InputError(f"{inputs}: no such folder (expected <split>/{{input,target,mask}}/<pair_id>.png)")
        self.ids = sorted(path.stem for path in inputs.glob("*.png"))
        if not self.ids:
            raise InputError(f"{inputs}: no pairs (no .png files)")
        for folder in ("target", "mask"):
            missing = [pair_id for pair_id in self.ids if not (self.root / folder / f"{pair_id}.png").is_file()]
            if missing:
                raise InputError(f"{self.root / folder}: {len(missing)} pairs lack this part, e.g. {missing[0]}.png")
        self.ids = self.ids[:limit] if limit else self.ids
        self.size = tuple(size) if size else read_rgb(inputs / f"{self.ids[0]}.png").shape[:2]

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input, target, mask) of pair `index` as uint8 / bool arrays, with their sizes checked."""
        pair_id = self.ids[index]
        image = read_rgb(self.root / "input" / f"{pair_id}.png")
        target = read_rgb(self.root / "target" / f"{pair_id}.png")
        if image.shape[:2] != self.size:
            raise InputError(f"{self.root / 'input' / pair_id}.png: is {image.shape[1]}x{image.shape[0]}, "
                             f"the working size is {self.size[1]}x{self.size[0]} (WxH)")
        if target.shape != image.shape:
            raise InputError(f"{self.root / 'target' / pair_id}.png: size differs from its input")
        mask = read_mask(self.root / "mask" / f"{pair_id}.png", shape=image.shape[:2])
        return image, target, mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        return pair_item(self.ids[index], *self.arrays(index))
