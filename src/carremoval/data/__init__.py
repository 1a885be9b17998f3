"""Torch datasets over the synthesize stage's pairs: fresh renders for training, rendered folders for val/test.

Every item is a dict of tensors: input and target 3xHxW float in [-1, 1], mask 1xHxW float in {0, 1} (1 = hole),
plus its `id`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from carremoval.io import InputError, read_mask, read_rgb

__all__ = ["PairFolder", "RenderedPairs", "image_to_tensor", "mask_to_tensor", "tensor_to_image"]


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


class RenderedPairs(Dataset):
    """Training pairs rendered on the fly: item `n` is pair (epoch n // per_epoch, index n % per_epoch).

    Keys run past one epoch, so a sampler over range(start, stop) walks the epochs in order and a run that
    resumes at sample `start` sees exactly the pairs it would have seen.
    """

    def __init__(self, renderer: Renderer):
        self.renderer = renderer
        self.per_epoch = int(renderer.pairs_per_epoch)
        if self.per_epoch < 1:
            raise ValueError(f"the pair renderer offers {self.per_epoch} pairs per epoch; need at least one")

    def __len__(self) -> int:
        return self.per_epoch

    def __getitem__(self, sample: int) -> dict[str, Any]:
        epoch, index = divmod(int(sample), self.per_epoch)
        pair = self.renderer.render(epoch=epoch, index=index)
        return pair_item(f"{epoch}-{index}", pair.input, pair.target, pair.mask)


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
