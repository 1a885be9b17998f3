"""The pair renderer: X = background with a pasted car, Y = the same background, and the hole mask.

A pair is a pure function of (seed, stream, epoch, index): every random draw comes from one numpy generator
seeded with those four numbers, so the same pair comes out in any process, thread or order.
"""
from __future__ import annotations

import functools
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from carremoval.io import InputError, read_json, write_json
from carremoval.synthesis.harmonize import context_box, harmonize
from carremoval.synthesis.options import RenderOptions
from carremoval.synthesis.paste import (
    Placement, composite, draw_jitter, jitter_colours, place_car, scale_car, to_canvas,
)
from carremoval.synthesis.shadow import contact_shadow
from carremoval.synthesis.sources import Source, cutout_max_height, load_background, load_cutout
from carremoval.synthesis.weather import Weather

RECIPE_FORMAT = "carremoval-pairs/1"
RECIPE_KEYS = ("format", "seed", "stream", "size", "pairs_per_epoch", "options", "backgrounds", "cutouts")


@dataclass
class Pair:
    """input/target: HxWx3 uint8 RGB; mask: HxW bool, True = hole; shadow: HxW bool, the ground-shadow area
    (inside `mask` when the shadow is masked); recipe: how the pair was made (JSON-able); body: HxW bool, the
    car's own pixels; darkening: HxW float, the share of the ground's light the shadow takes (0 where none)."""

    input: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    recipe: dict[str, Any]
    shadow: np.ndarray
    body: np.ndarray
    darkening: np.ndarray


@dataclass(frozen=True)
class Draws:
    """The random choices behind one pair (indices into the renderer's source lists)."""

    background: int
    cutout: int
    placement: Placement
    scale: float
    flip: bool
    jitter: dict[str, float]
    shadow_opacity: float | None
    weather_seed: int


class PairRenderer:
    """Renders training pairs from backgrounds and car cut-outs; deterministic in (seed, stream, epoch, index)."""

    def __init__(
        self,
        backgrounds: Sequence[Source],
        cutouts: Sequence[Source],
        *,
        size: tuple[int, int],
        options: RenderOptions | None = None,
        seed: int = 0,
        pairs_per_epoch: int = 1000,
        stream: str = "train",
        cache_size: int = 512,
    ):
        if not backgrounds or not cutouts:
            raise InputError(f"pair renderer ({stream}): needs at least one background and one cut-out")
        if len(size) != 2 or min(size) < 8:
            raise InputError(f"pair renderer: size must be [H, W] of at least 8 pixels, got {size}")
        if seed < 0 or pairs_per_epoch < 1:
            raise InputError("pair renderer: seed must be >= 0 and pairs_per_epoch >= 1")
        self.backgrounds = list(backgrounds)
        self.cutouts = list(cutouts)
        self._size = (int(size[0]), int(size[1]))
        self.options = options or RenderOptions()
        self.seed = int(seed)
        self._pairs_per_epoch = int(pairs_per_epoch)
        self.stream = stream
        self.cache_size = cache_size
        self._start()

    def _start(self) -> None:
        """Per-process state: image caches and the weather pipeline (rebuilt after unpickling)."""
        self._stream_code = zlib.crc32(self.stream.encode("utf-8"))
        self._max_car_height = cutout_max_height(self._size, self.options.scale[1])
        self._background = functools.lru_cache(maxsize=self.cache_size)(self._read_background)
        self._cutout = functools.lru_cache(maxsize=self.cache_size)(self._read_cutout)
        self._weather = Weather(self.options.weather, self._size)
        radius = self.options.mask_dilation
        self._dilation = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def pairs_per_epoch(self) -> int:
        return self._pairs_per_epoch

    def _read_background(self, number: int) -> np.ndarray:
        image = load_background(self.backgrounds[number].path, self._size)
        image.setflags(write=False)
        return image

    def _read_cutout(self, number: int) -> np.ndarray:
        car = load_cutout(self.cutouts[number].path, self._max_car_height)
        car.setflags(write=False)
        return car

    def preload(self) -> None:
        """Read every background and cut-out into the cache now (when the cache is big enough to hold them)."""
        for number in range(min(len(self.backgrounds), self.cache_size)):
            self._background(number)
        for number in range(min(len(self.cutouts), self.cache_size)):
            self._cutout(number)

    def render(self, epoch: int, index: int) -> Pair:
        """The pair number `index` of `epoch`; the same arguments always give the same pixels."""
        if epoch < 0 or index < 0:
            raise ValueError(f"epoch and index must be >= 0, got epoch={epoch}, index={index}")
        draws = self._draw(np.random.default_rng(np.random.SeedSequence([self.seed, self._stream_code, epoch, index])))
        background = self._background(draws.background)
        pasted, car_area, darkening = self._paste(background, self._cutout(draws.cutout), draws)
        shadow_area = darkening > 0
        hole = car_area | shadow_area if self.options.shadow.in_mask else car_area
        if self.options.mask_dilation:
            hole = cv2.dilate(hole.astype(np.uint8), self._dilation).astype(bool)
        x, y, weather = self._weather.apply(pasted, background, draws.weather_seed)
        # Weather that mixes neighbourhoods (fog's blur) would carry car pixels outside the hole: X keeps its own
        # pixels only where it may differ from Y, so X == Y everywhere else, exactly.
        x = np.where((hole | shadow_area)[..., None], x, y)
        recipe = self._recipe(epoch, index, draws, weather, hole)
        return Pair(input=x, target=y, mask=hole, recipe=recipe, shadow=shadow_area, body=car_area,
                    darkening=darkening)

    def _draw(self, rng: np.random.Generator) -> Draws:
        """Every random choice of one pair, always drawn in the same order."""
        options = self.options
        background = int(rng.integers(len(self.backgrounds)))
        cutout = int(rng.integers(len(self.cutouts)))
        placement, scale = place_car(
            rng, self._cutout(cutout).shape[:2], self._size, options.scale, options.max_width, options.bottom,
            options.perspective,
        )
        flip = bool(rng.random() < options.flip)
        jitter = draw_jitter(rng, options.jitter)
        has_shadow = bool(rng.random() < options.shadow.p)
        opacity = float(rng.uniform(*options.shadow.opacity))
        return Draws(background, cutout, placement, scale, flip, jitter, opacity if has_shadow else None,
                     int(rng.integers(2**63 - 1)))

    def _paste(
        self, background: np.ndarray, car: np.ndarray, draws: Draws
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X before weather, the car's footprint, the shadow's darkening); X equals `background` where both are 0."""
        placement, box = draws.placement, draws.placement.to_list()
        rgb, alpha, margin = scale_car(car, placement, draws.flip, self.options.edge_feather)
        rgb = jitter_colours(rgb, alpha, draws.jitter)
        rows, cols = context_box(box, self._size)
        rgb = harmonize(rgb, alpha, background[rows, cols], self.options.harmonize)
        car_alpha = to_canvas(alpha, placement.top - margin, placement.left - margin, self._size)
        car_rgb = to_canvas(rgb, placement.top - margin, placement.left - margin, self._size)
        ground = background.astype(np.float64)
        shadow = np.zeros(self._size, np.float64)
        if draws.shadow_opacity is not None:
            shadow = contact_shadow(self._size, box, self.options.shadow, draws.shadow_opacity)
            ground *= 1.0 - shadow[..., None]
        pasted = np.clip(np.rint(composite(ground, car_rgb, car_alpha)), 0, 255).astype(np.uint8)
        car_area = car_alpha > 0
        return np.where((car_area | (shadow > 0))[..., None], pasted, background), car_area, shadow

    def _recipe(self, epoch: int, index: int, draws: Draws, weather: list[dict], hole: np.ndarray) -> dict[str, Any]:
        background, cutout = self.backgrounds[draws.background], self.cutouts[draws.cutout]
        shadow = draws.shadow_opacity
        return {
            "stream": self.stream,
            "seed": self.seed,
            "epoch": int(epoch),
            "index": int(index),
            "background": background.id,
            "background_group": background.group,
            "cutout": cutout.id,
            "cutout_group": cutout.group,
            "scale": round(draws.scale, 6),
            "box": draws.placement.to_list(),
            "flip": draws.flip,
            "jitter": {key: round(value, 6) for key, value in draws.jitter.items()},
            "harmonize": self.options.harmonize,
            "shadow": None if shadow is None else {"opacity": round(shadow, 6), "in_mask": self.options.shadow.in_mask},
            "weather_seed": draws.weather_seed,
            "weather": weather,
            "hole_fraction": round(float(hole.mean()), 6),
        }

    def recipe(self, folder: str | os.PathLike) -> dict[str, Any]:
        """Everything needed to rebuild this renderer; source paths are written relative to `folder`."""
        folder = Path(folder).resolve()

        def listing(sources: Sequence[Source]) -> list[dict[str, str]]:
            return [
                {"id": s.id, "group": s.group, "path": os.path.relpath(Path(s.path).resolve(), folder)}
                for s in sources
            ]

        return {
            "format": RECIPE_FORMAT,
            "seed": self.seed,
            "stream": self.stream,
            "size": list(self._size),
            "pairs_per_epoch": self._pairs_per_epoch,
            "options": self.options.to_dict(),
            "backgrounds": listing(self.backgrounds),
            "cutouts": listing(self.cutouts),
        }

    def write_recipe(self, path: str | os.PathLike) -> None:
        """Write the recipe JSON; its source paths are relative to the recipe file's own folder."""
        write_json(path, self.recipe(Path(path).parent))

    @classmethod
    def from_recipe(cls, path: str | os.PathLike, **overrides: Any) -> "PairRenderer":
        """Rebuild a renderer from a recipe file (paths inside resolve against the file's folder, not the cwd)."""
        path = Path(path)
        recipe = read_json(path)
        if not isinstance(recipe, dict) or recipe.get("format") != RECIPE_FORMAT:
            raise InputError(f"{path}: not a pair recipe (expected format {RECIPE_FORMAT!r})")
        missing = [key for key in RECIPE_KEYS if key not in recipe]
        if missing:
            raise InputError(f"{path}: missing key(s) {', '.join(missing)}")
        folder = path.resolve().parent

        def sources(kind: str) -> list[Source]:
            try:
                return [Source(id=row["id"], group=row["group"], path=folder / row["path"]) for row in recipe[kind]]
            except (KeyError, TypeError):
                raise InputError(f"{path}: every entry of {kind!r} needs id, group and path") from None

        arguments = {
            "size": tuple(recipe["size"]),
            "options": RenderOptions.from_dict(recipe["options"], f"{path}: options"),
            "seed": recipe["seed"],
            "pairs_per_epoch": recipe["pairs_per_epoch"],
            "stream": recipe["stream"],
            **overrides,
        }
        return cls(sources("backgrounds"), sources("cutouts"), **arguments)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_background", "_cutout", "_weather", "_dilation"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start()
