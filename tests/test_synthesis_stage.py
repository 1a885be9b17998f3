"""The synthesize stage end to end on real backgrounds and cut-outs: determinism, leakage, files, recipes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carremoval.io import InputError, read_jsonl, read_mask, read_rgb, write_jsonl
from carremoval.params import load_params
from carremoval.synthesis import PairRenderer
from carremoval.synthesis.export import SynthesisSettings, synthesize
from carremoval.synthesis.splits import SPLITS

SETTINGS = {"size": [64, 96], "val_pairs": 6, "test_pairs": 5, "pairs_per_epoch": 40, "preview_pairs": 4,
            "render": {"weather": {"rain": 0.5, "sun_flare": 0.5, "shadow": 0.5, "fog": 0.5, "rgb_shift": 0.5}}}


def write_manifests(shared_data: Path, root: Path) -> tuple[Path, Path]:
    """Manifests in the backgrounds/cut-outs stage contract over the real shared files."""
    backgrounds, cutouts = root / "backgrounds", root / "cutouts"
    rows = []
    for path in sorted((shared_data / "photos" / "backgrounds").iterdir()):
        width, height = Image.open(path).size
        rows.append({"id": path.stem, "path": os.path.relpath(path, backgrounds), "width": width, "height": height,
                     "source": "dataset:shared", "group": f"dataset:shared:{path.stem}", "origin": str(path),
                     "phash": "0" * 16, "car_check": "unchecked"})
    backgrounds.mkdir(parents=True)
    write_jsonl(backgrounds / "manifest.jsonl", rows)
    rows = []
    for path in sorted((shared_data / "cutouts").glob("*.png")):
        width, height = Image.open(path).size
        sequence = path.stem.split("_")[1] if path.stem.startswith("davis_") else None
        rows.append({"id": path.stem, "path": os.path.relpath(path, cutouts), "width": width, "height": height,
                     "source_url": f"https://example.org/{path.name}", "source_sha256": "0" * 64,
                     "group": f"davis:{sequence}" if sequence else f"photo:{path.stem}", "brand": "", "model": "",
                     "generation": "", "method": "alpha", "score": 1.0, "mask_area": 0.1,
                     "bbox": [0, 0, width, height]})
    cutouts.mkdir(parents=True)
    write_jsonl(cutouts / "manifest.jsonl", rows)
    return backgrounds, cutouts


@pytest.fixture(scope="module")
def runs(shared_data: Path, tmp_path_factory) -> tuple[Path, Path, dict]:
    """Two complete, independent runs of the stage into different folders."""
    root = tmp_path_factory.mktemp("synthesize")
    backgrounds, cutouts = write_manifests(shared_data, root / "interim")
    settings = SynthesisSettings.from_params(SETTINGS)
    metrics = synthesize(backgrounds, cutouts, root / "a" / "pairs", root / "a" / "preview.png", settings, seed=42)
    synthesize(backgrounds, cutouts, root / "b" / "pairs", root / "b" / "preview.png", settings, seed=42)
    return root / "a", root / "b", metrics


def tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_two_runs_are_byte_identical(runs):
    first, second, _ = runs
    assert tree(first) == tree(second)
    assert (first / "preview.png").is_file() and not list(first.rglob("*.tmp*"))


def test_no_source_group_is_in_two_splits(runs):
    """Leakage: backgrounds and cut-outs of one group (a photo, a video) stay in one split, pairs too."""
    folder, _, metrics = runs
    recipes = {"train": json.loads((folder / "pairs" / "train_recipe.json").read_text())}
    for split in ("val", "test"):
        recipes[split] = json.loads((folder / "pairs" / split / "recipe.json").read_text())
    for kind in ("backgrounds", "cutouts"):
        groups = {split: {row["group"] for row in recipes[split][kind]} for split in SPLITS}
        assert all(groups[split] for split in SPLITS), f"every split needs {kind}"
        for one, other in [("train", "val"), ("train", "test"), ("val", "test")]:
            assert not groups[one] & groups[other], (kind, one, other)
    davis = {split for split in SPLITS for row in recipes[split]["cutouts"] if row["group"] == "davis:car-roundabout"}
    assert len(davis) == 1, "the four car-roundabout frames are one source"
    for split in ("val", "test"):
        allowed_backgrounds = {row["id"] for row in recipes[split]["backgrounds"]}
        allowed_cutouts = {row["id"] for row in recipes[split]["cutouts"]}
        for row in read_jsonl(folder / "pairs" / split / "recipes.jsonl"):
            assert row["background"] in allowed_backgrounds and row["cutout"] in allowed_cutouts
    assert sum(metrics["cutouts"].values()) == 22 and sum(metrics["backgrounds"].values()) == 36


def test_rendered_pairs_follow_the_contract(runs):
    folder = runs[0] / "pairs"
    for split, count in (("val", 6), ("test", 5)):
        rows = read_jsonl(folder / split / "recipes.jsonl")
        assert [row["pair_id"] for row in rows] == [f"{split}_{n:05d}" for n in range(count)]
        for row in rows:
            image, target = read_rgb(folder / split / row["input"]), read_rgb(folder / split / row["target"])
            mask_png = np.asarray(Image.open(folder / split / row["mask"]))
            assert image.shape == target.shape == (64, 96, 3) and mask_png.dtype == np.uint8
            assert set(np.unique(mask_png)) <= {0, 255}
            mask = mask_png == 255
            assert np.array_equal(image[~mask], target[~mask]) and mask.any()
            for key in ("background", "cutout", "scale", "box", "flip", "jitter", "harmonize", "shadow", "weather"):
                assert key in row, key


def test_val_pairs_re_render_exactly_from_their_recipe(runs):
    folder = runs[0] / "pairs" / "val"
    renderer = PairRenderer.from_recipe(folder / "recipe.json")
    for index in (0, 5):
        pair = renderer.render(epoch=0, index=index)
        assert np.array_equal(pair.input, read_rgb(folder / "input" / f"val_{index:05d}.png"))
        assert np.array_equal(pair.target, read_rgb(folder / "target" / f"val_{index:05d}.png"))
        assert np.array_equal(pair.mask, read_mask(folder / "mask" / f"val_{index:05d}.png"))


def test_train_recipe_gives_the_training_loader_its_renderer(runs):
    renderer = PairRenderer.from_recipe(runs[0] / "pairs" / "train_recipe.json")
    assert renderer.size == (64, 96) and renderer.pairs_per_epoch == 40
    pair = renderer.render(epoch=3, index=39)
    assert pair.input.shape == (64, 96, 3) and pair.recipe["stream"] == "train"
    stored = runs[0] / "pairs" / "train" / "backgrounds"
    assert all(Path(s.path).parent == stored for s in renderer.backgrounds)
    assert read_rgb(next(stored.iterdir())).shape == (64, 96, 3)


def test_bad_sources_are_skipped_and_bad_manifests_are_named(shared_data, tmp_path):
    backgrounds, cutouts = write_manifests(shared_data, tmp_path)
    rows = read_jsonl(cutouts / "manifest.jsonl")
    (cutouts / "broken.png").write_bytes(b"not a png")
    rows.append({**rows[0], "id": "broken", "path": "broken.png", "group": "photo:broken"})
    write_jsonl(cutouts / "manifest.jsonl", rows)
    settings = SynthesisSettings.from_params({**SETTINGS, "val_pairs": 1, "test_pairs": 1, "preview_pairs": 2})
    metrics = synthesize(backgrounds, cutouts, tmp_path / "pairs", tmp_path / "preview.png", settings, seed=1)
    assert metrics["skipped"] == 1 and "broken.png" in next(iter(metrics["skipped_reasons"]))
    write_jsonl(cutouts / "manifest.jsonl", [{k: v for k, v in rows[0].items() if k != "group"}])
    with pytest.raises(InputError, match=r"cutouts/manifest.jsonl:1: missing or empty field\(s\) group"):
        synthesize(backgrounds, cutouts, tmp_path / "pairs", tmp_path / "preview.png", settings, seed=1)
    assert (tmp_path / "pairs" / "train_recipe.json").is_file(), "a failed run leaves the good output in place"


def test_the_repository_params_are_valid(repo):
    settings = SynthesisSettings.from_params(load_params(repo / "params.yaml")["synthesize"])
    assert settings.size == (128, 192) and settings.render.shadow.in_mask
