"""The synthesize stage's work: split the sources, store them at the working size, render val/test, write recipes.

Output layout (`out`):
    train_recipe.json                      what the training loader needs (PairRenderer.from_recipe)
    {train,val,test}/backgrounds/<id>.png  the split's backgrounds, resized and centre-cropped to the size
    {train,val,test}/cutouts/<id>.png      the split's cut-outs, cropped to the car, no taller than needed
    {val,test}/recipe.json                 the split's renderer (re-renders the pairs below exactly)
    {val,test}/{input,target,mask}/<pair_id>.png and recipes.jsonl (one row per pair)
Every path inside a recipe is relative to the recipe file's folder, so the folder can move.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from carremoval.io import InputError, atomic_dir, write_jsonl, write_png
from carremoval.synthesis.options import RenderOptions
from carremoval.synthesis.preview import mask_image, pair_grid
from carremoval.synthesis.render import Pair, PairRenderer
from carremoval.synthesis.sources import Source, cutout_max_height, load_background, load_cutout, read_manifest
from carremoval.synthesis.splits import SPLITS, assign_splits

RENDERED_SPLITS = ("val", "test")


@dataclass(frozen=True)
class SynthesisSettings:
    """The `synthesize` section of params.yaml."""

    size: tuple[int, int] = (128, 192)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    min_groups: int = 2
    val_pairs: int = 64
    test_pairs: int = 64
    pairs_per_epoch: int = 1024
    preview_pairs: int = 8
    render: RenderOptions = field(default_factory=RenderOptions)

    @classmethod
    def from_params(cls, section: dict[str, Any] | None, where: str = "params.yaml: synthesize") -> "SynthesisSettings":
        section = dict(section or {})
        unknown = sorted(set(section) - {item.name for item in fields(cls)})
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}")
        render = RenderOptions.from_dict(section.pop("render", None), f"{where}.render")
        if "size" in section:
            section["size"] = tuple(section["size"])
        try:
            return cls(render=render, **section)
        except TypeError as err:
            raise InputError(f"{where}: {err}") from None

    def pairs(self, split: str) -> int:
        return self.val_pairs if split == "val" else self.test_pairs


def split_sources(
    sources: Sequence[Source], seed: int, settings: SynthesisSettings, kind: str
) -> dict[str, list[Source]]:
    """{split: sources} with whole groups kept in one split."""
    assignment = assign_splits(
        (s.group for s in sources), seed, settings.val_fraction, settings.test_fraction, kind, settings.min_groups
    )
    return {split: [s for s in sources if assignment[s.group] == split] for split in SPLITS}


def store_sources(
    sources: Sequence[Source], folder: Path, prepare: Callable[[Path], np.ndarray], skipped: Counter, kind: str
) -> list[Source]:
    """Write each source prepared for rendering into `folder`; unreadable ones are skipped and counted."""
    folder.mkdir(parents=True, exist_ok=True)
    stored = []
    for source in tqdm(sources, desc=f"{kind}s -> {folder.parent.name}", unit="img", leave=False):
        try:
            image = prepare(source.path)
        except InputError as err:
            skipped[f"{kind}: {err}"] += 1
            continue
        path = folder / f"{source.id}.png"
        write_png(path, image)
        stored.append(Source(id=source.id, group=source.group, path=path))
    return stored


def render_split(renderer: PairRenderer, folder: Path, count: int) -> list[Pair]:
    """Render pairs 0..count-1 of epoch 0 into folder/{input,target,mask}/ and folder/recipes.jsonl."""
    rows, pairs = [], []
    for index in tqdm(range(count), desc=f"render {renderer.stream}", unit="pair", leave=False):
        pair = renderer.render(epoch=0, index=index)
        pair_id = f"{renderer.stream}_{index:05d}"
        files = {part: f"{part}/{pair_id}.png" for part in ("input", "target", "mask")}
        write_png(folder / files["input"], pair.input)
        write_png(folder / files["target"], pair.target)
        write_png(folder / files["mask"], mask_image(pair.mask))
        rows.append({"pair_id": pair_id, **files, **pair.recipe})
        pairs.append(pair)
    write_jsonl(folder / "recipes.jsonl", rows)
    return pairs


def synthesize(
    backgrounds_dir: Path, cutouts_dir: Path, out: Path, preview: Path, settings: SynthesisSettings, seed: int
) -> dict[str, Any]:
    """Run the whole stage; returns the metrics. `out` and `preview` are replaced atomically."""
    backgrounds = split_sources(read_manifest(backgrounds_dir), seed, settings, "background")
    cutouts = split_sources(read_manifest(cutouts_dir), seed, settings, "cut-out")
    max_height = cutout_max_height(settings.size, settings.render.scale[1])
    skipped: Counter = Counter()
    renderers: dict[str, PairRenderer] = {}
    with atomic_dir(out) as tmp:
        for split in SPLITS:
            stored_backgrounds = store_sources(
                backgrounds[split], tmp / split / "backgrounds",
                lambda path: load_background(path, settings.size), skipped, "background",
            )
            stored_cutouts = store_sources(
                cutouts[split], tmp / split / "cutouts", lambda path: load_cutout(path, max_height), skipped, "cut-out"
            )
            if not stored_backgrounds or not stored_cutouts:
                raise InputError(f"{split} split: no readable backgrounds or cut-outs left (see the skipped files)")
            renderers[split] = PairRenderer(
                stored_backgrounds, stored_cutouts, size=settings.size, options=settings.render, seed=seed,
                pairs_per_epoch=settings.pairs_per_epoch if split == "train" else settings.pairs(split), stream=split,
            )
        renderers["train"].write_recipe(tmp / "train_recipe.json")
        rendered = {}
        for split in RENDERED_SPLITS:
            renderers[split].write_recipe(tmp / split / "recipe.json")
            rendered[split] = render_split(renderers[split], tmp / split, settings.pairs(split))
        half = max(1, settings.preview_pairs // 2)
        shown = rendered["val"][:half] + [renderers["train"].render(0, index) for index in range(half)]
    write_png(preview, pair_grid(shown))
    return stage_metrics(seed, settings, backgrounds, cutouts, renderers, rendered, skipped)


def stage_metrics(
    seed: int,
    settings: SynthesisSettings,
    backgrounds: dict[str, list[Source]],
    cutouts: dict[str, list[Source]],
    renderers: dict[str, PairRenderer],
    rendered: dict[str, list[Pair]],
    skipped: Counter,
) -> dict[str, Any]:
    recipes = [pair.recipe for pairs in rendered.values() for pair in pairs]
    effects = Counter(effect["effect"] for recipe in recipes for effect in recipe["weather"])
    return {
        "seed": seed,
        "size": list(settings.size),
        "backgrounds": {split: len(renderers[split].backgrounds) for split in SPLITS},
        "background_groups": {split: len({s.group for s in backgrounds[split]}) for split in SPLITS},
        "cutouts": {split: len(renderers[split].cutouts) for split in SPLITS},
        "cutout_groups": {split: len({s.group for s in cutouts[split]}) for split in SPLITS},
        "skipped": sum(skipped.values()),
        "skipped_reasons": dict(sorted(skipped.items())),
        "pairs": {"train_per_epoch": settings.pairs_per_epoch, **{s: len(rendered[s]) for s in RENDERED_SPLITS}},
        "hole_fraction_mean": {
            split: round(float(np.mean([p.recipe["hole_fraction"] for p in rendered[split]])), 6)
            for split in RENDERED_SPLITS
        },
        "shadow_rate": round(sum(r["shadow"] is not None for r in recipes) / len(recipes), 6),
        "weather_rate": {name: round(effects[name] / len(recipes), 6) for name in sorted(effects)},
    }


def split_report(metrics: dict[str, Any]) -> str:
    """A short human summary of the stage's metrics."""
    lines = [
        f"pairs {metrics['size'][0]}x{metrics['size'][1]} (HxW): "
        + ", ".join(f"{split} {count}" for split, count in metrics["pairs"].items()),
    ]
    for kind in ("backgrounds", "cutouts"):
        groups = metrics[f"{kind[:-1]}_groups"]
        lines.append(
            f"{kind}: " + ", ".join(f"{s} {metrics[kind][s]} ({groups[s]} groups)" for s in SPLITS)
        )
    lines.append(f"skipped sources: {metrics['skipped']}")
    return "\n".join(lines)
