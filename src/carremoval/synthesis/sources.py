"""Backgrounds and cut-outs: reading the stage manifests and bringing each image to the working size."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carremoval.io import InputError, open_image, read_jsonl, read_rgb
from carremoval.synthesis import exact

REQUIRED_FIELDS = ("id", "path", "group")
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Source:
    """One background or cut-out: its id, its leakage group and its image file."""

    id: str
    group: str
    path: Path


def read_manifest(folder: str | Path) -> list[Source]:
    """The sources listed in `folder`/manifest.jsonl (paths relative to `folder`), sorted by id."""
    folder = Path(folder)
    manifest = folder / "manifest.jsonl"
    sources = []
    for number, row in enumerate(read_jsonl(manifest), start=1):
        missing = [name for name in REQUIRED_FIELDS if not isinstance(row.get(name), str) or not row[name]]
        if missing:
            raise InputError(f"{manifest}:{number}: missing or empty field(s) {', '.join(missing)}")
        if not SAFE_ID.match(row["id"]):
            raise InputError(f"{manifest}:{number}: id {row['id']!r} is not a safe file name")
        sources.append(Source(id=row["id"], group=row["group"], path=folder / row["path"]))
    ids = [source.id for source in sources]
    if len(set(ids)) != len(ids):
        raise InputError(f"{manifest}: duplicate ids")
    return sorted(sources, key=lambda source: source.id)


def fit_background(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to cover `size` (H, W) keeping the aspect (area average when shrinking, linear when growing, exact on
    every CPU), then crop the centre; a no-op at the right size."""
    height, width = size
    if rgb.shape[:2] == (height, width):
        return rgb
    scale = max(height / rgb.shape[0], width / rgb.shape[1])
    cover = (max(width, round(rgb.shape[1] * scale)), max(height, round(rgb.shape[0] * scale)))
    resized = exact.to_uint8(exact.resize(rgb, *cover))
    top = (resized.shape[0] - height) // 2
    left = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def read_rgba(path: str | Path) -> np.ndarray:
    """A cut-out as HxWx4 uint8; an image without transparency is refused (it has no car mask)."""
    image = open_image(path)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        raise InputError(f"{path}: a cut-out needs an alpha channel, the image is {image.mode}")
    return np.asarray(image.convert("RGBA"))


def resize_premultiplied(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize float RGBA (straight alpha in [0, 1]) with premultiplied colour, so no fringe from hidden pixels;
    float64, exact on every CPU (exact.resize)."""
    rgba = np.asarray(rgba, dtype=np.float64)
    premultiplied = np.dstack([rgba[..., :3] * rgba[..., 3:], rgba[..., 3]])
    resized = exact.resize(premultiplied, width, height)
    alpha = np.clip(resized[..., 3], 0.0, 1.0)
    rgb = np.where(alpha[..., None] > 1e-6, resized[..., :3] / np.maximum(alpha[..., None], 1e-6), 0.0)
    return np.dstack([np.clip(rgb, 0.0, 1.0), alpha])


def fit_cutout(rgba: np.ndarray, max_height: int) -> np.ndarray:
    """Crop to the visible car and shrink it to at most `max_height` rows; uint8 RGBA, hidden colour zeroed."""
    rows = np.flatnonzero(rgba[..., 3].any(axis=1))
    cols = np.flatnonzero(rgba[..., 3].any(axis=0))
    if rows.size == 0:
        raise ValueError("the cut-out's alpha channel is empty")
    car = rgba[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if car.shape[0] > max_height:
        width = max(1, round(car.shape[1] * max_height / car.shape[0]))
        resized = resize_premultiplied(car / 255.0, width, max_height)
        car = np.rint(resized * 255.0).astype(np.uint8)
    car = car.copy()
    car[car[..., 3] == 0, :3] = 0
    return car


def cutout_max_height(size: tuple[int, int], largest_scale: float) -> int:
    """The tallest a car is ever drawn on a canvas of `size`: cut-outs are stored no taller."""
    return max(1, math.ceil(largest_scale * size[0]))


def load_background(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    return fit_background(read_rgb(path), size)


def load_cutout(path: str | Path, max_height: int) -> np.ndarray:
    rgba = read_rgba(path)
    try:
        return fit_cutout(rgba, max_height)
    except ValueError as err:
        raise InputError(f"{path}: {err}") from None

