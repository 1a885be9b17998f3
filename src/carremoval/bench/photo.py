"""Photo fill speed at a user's resolution (issue 13): `libcom_source_1.jpg` scaled to 2 megapixels, a hole of
the car-shadow mask 00013 scaled to 5% of the photo, the inpaint call alone, median of 3.

The textured fill (the trained generator's structure + exemplar synthesis) beside PatchMatch, Telea and the
generator alone, measured in the same run. The generator is models/generator.pt; without it a seeded random
generator of the same configuration stands in (its time is the same; its output is never used).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from carremoval.bench import Check, Row, Section, median_seconds
from carremoval.exemplar import ExemplarSettings
from carremoval.inpainters import Inpainter, TexturedInpainter, patchmatch, telea
from carremoval.io import read_mask, read_rgb
from carremoval.params import load_params, repo_root, resolve_path
from carremoval.removal import GeneratorInpainter

SHARED = Path("../shared/data")
PHOTO = SHARED / "photos/backgrounds/libcom_source_1.jpg"
MASK = SHARED / "videos/davis/car-shadow/masks/00013.png"
MEGAPIXELS = 2.0
HOLE_FRACTION = 0.05
BUDGET_SECONDS = 10.0


def photo_and_hole(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 2-megapixel photo and a car-shaped hole of 5% of it on the road (lower third, centred)."""
    image = read_rgb(resolve_path(PHOTO, root))
    scale = np.sqrt(MEGAPIXELS * 1e6 / (image.shape[0] * image.shape[1]))
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    car = read_mask(resolve_path(MASK, root))
    rows, cols = np.nonzero(car)
    car = car[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    grow = np.sqrt(HOLE_FRACTION * image.shape[0] * image.shape[1] / car.sum())
    car = cv2.resize(car.astype(np.uint8), (round(car.shape[1] * grow), round(car.shape[0] * grow)),
                     interpolation=cv2.INTER_NEAREST) > 0
    hole = np.zeros(image.shape[:2], bool)
    top, left = int(image.shape[0] * 0.62), (image.shape[1] - car.shape[1]) // 2
    hole[top:top + car.shape[0], left:left + car.shape[1]] = car[:image.shape[0] - top]
    return image, hole


def generator_fill(root: Path, device: torch.device) -> tuple[Inpainter, str]:
    """The trained generator, or (for timing only) a seeded random one of the configured architecture."""
    checkpoint = root / "models/generator.pt"
    if checkpoint.is_file():
        return GeneratorInpainter.from_checkpoint(checkpoint, device), "models/generator.pt"
    from carremoval.models import build_generator

    params = load_params()
    torch.manual_seed(0)
    network = build_generator(**params["train"]["generator"], image_size=params["synthesize"]["size"]).to(device)
    return GeneratorInpainter(network, tuple(params["synthesize"]["size"]), device), "random init (speed only)"


def run(quick: bool) -> Section:
    root = repo_root()
    image, hole = photo_and_hole(root)
    generator, source = generator_fill(root, torch.device("cpu"))
    methods = {
        "textured": TexturedInpainter(generator, ExemplarSettings.from_params(load_params().get("exemplar"))),
        "patchmatch": patchmatch(),
        "generator": generator,
        "telea": telea(),
    }
    repeats = 1 if quick else 3
    seconds = {name: median_seconds(lambda fill=fill: fill(image, hole), repeats=repeats, warmup=0)
               for name, fill in methods.items()}
    note = f"{image.shape[1]}x{image.shape[0]}, hole {hole.mean():.1%}, median of {repeats}"
    rows = [Row(f"photo fill: {name}", value, "s", note + (f", generator: {source}" if name in ("textured", "generator")
                                                          else "")) for name, value in seconds.items()]
    ratio = seconds["textured"] / seconds["patchmatch"]
    check = Check(f"textured photo fill <= {BUDGET_SECONDS:g} s and <= 0.5x PatchMatch at 2 MP, 5% hole",
                  seconds["textured"] <= BUDGET_SECONDS and ratio <= 0.5,
                  f"{seconds['textured']:.2f} s vs PatchMatch {seconds['patchmatch']:.2f} s ({ratio:.2f}x)")
    return Section("photo", rows=rows, checks=[check])
