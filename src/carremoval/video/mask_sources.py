"""Per-frame car masks: from a folder of PNGs, one PNG for every frame, or a function (the segmenter).

Masks are HxW bool, True = car. carremoval.masks.prepare_mask turns a car mask into the hole that gets replaced.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from carremoval.io import InputError, read_mask

MASK_SUFFIXES = (".png",)


class MaskSource:
    """The bool car mask for (frame_index, frame); `expected_frames` is how many frames it has masks for."""

    def __init__(self, describe: str, get: Callable[[int, np.ndarray], np.ndarray], expected_frames: int | None = None,
                 see_upcoming: Callable[[np.ndarray | None], None] | None = None):
        self.describe = describe
        self._get = get
        self.expected_frames = expected_frames
        self.see_upcoming = see_upcoming or (lambda frame: None)   # told the frame after the one asked for next

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        if self.expected_frames is not None and index >= self.expected_frames:
            raise InputError(f"{self.describe}: {self.expected_frames} masks, but the video has more frames")
        mask = np.asarray(self._get(index, frame))
        if mask.shape != frame.shape[:2]:
            raise InputError(f"{self.describe}: the mask for frame {index} is {_size(mask.shape)}, "
                             f"the frame is {_size(frame.shape)}")
        return mask.astype(bool, copy=False)

    def check_count(self, frames: int) -> None:
        """InputError when the source holds masks for a different number of frames than the video has."""
        if self.expected_frames is not None and frames != self.expected_frames:
            raise InputError(f"{self.describe}: {self.expected_frames} masks for a video of {frames} frames")


def with_masks(frames: Iterable[np.ndarray], masks: MaskSource) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(frame, mask) in order, reading one frame ahead so that the source sees the frame after each one it is asked
    about (automatic masks judge a first frame's motion by it)."""
    frames = iter(frames)
    current = next(frames, None)
    index = 0
    while current is not None:
        upcoming = next(frames, None)
        masks.see_upcoming(upcoming)
        yield current, masks(index, current)
        current, index = upcoming, index + 1


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}"


def masks_from_dir(path: str | os.PathLike) -> MaskSource:
    """One binary PNG per frame in a folder, matched to the frames in sorted file-name order."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{path}: mask folder not found")
    files = sorted(file for file in folder.iterdir() if file.suffix.lower() in MASK_SUFFIXES)
    if not files:
        raise InputError(f"{path}: no PNG masks in the folder")

    def get(index: int, frame: np.ndarray) -> np.ndarray:
        return read_mask(files[index], shape=frame.shape[:2])

    return MaskSource(str(folder), get, expected_frames=len(files))


def mask_from_file(path: str | os.PathLike) -> MaskSource:
    """One binary PNG used for every frame (a fixed region, e.g. a parked car under a static camera)."""
    mask = read_mask(path)

    def get(index: int, frame: np.ndarray) -> np.ndarray:
        if mask.shape != frame.shape[:2]:
            raise InputError(f"{path}: mask is {_size(mask.shape)}, the frame is {_size(frame.shape)}")
        return mask

    return MaskSource(str(path), get)


def masks_from_function(fn: Callable[[int, np.ndarray], np.ndarray], describe: str = "mask function") -> MaskSource:
    """Masks computed per frame, e.g. by the car segmenter (`--masks auto`)."""
    return MaskSource(describe, fn)


def mask_source(spec: str | os.PathLike) -> MaskSource:
    """A folder of PNGs or a single PNG, by what `spec` points at."""
    return masks_from_dir(spec) if Path(spec).is_dir() else mask_from_file(spec)
