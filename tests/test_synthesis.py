"""Pair synthesis: splits, weather replay, harmonisation, shadow, and the renderer on the real shared data."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from carremoval.io import InputError, write_json
from carremoval.synthesis import Pair, PairRenderer
from carremoval.synthesis.harmonize import harmonize, lab_stats
from carremoval.synthesis.options import RenderOptions
from carremoval.synthesis.shadow import ShadowOptions, contact_shadow
from carremoval.synthesis.sources import Source
from carremoval.synthesis.splits import SPLITS, assign_splits
from carremoval.synthesis.weather import Weather, WeatherOptions

SIZE = (96, 144)
EVERY_EFFECT = {"rain": 1.0, "sun_flare": 1.0, "shadow": 1.0, "fog": 1.0, "rgb_shift": 1.0}


@pytest.fixture(scope="module")
def sources(shared_data: Path) -> tuple[list[Source], list[Source]]:
    """The real clean backgrounds and RGBA cut-outs; DAVIS frames of one sequence share a group."""
    backgrounds = [
        Source(path.stem, f"background:{path.stem}", path)
        for path in sorted((shared_data / "photos" / "backgrounds").iterdir())
    ]
    cutouts = [
        Source(path.stem, "davis:" + path.stem.split("_")[1] if path.stem.startswith("davis") else path.stem, path)
        for path in sorted((shared_data / "cutouts").glob("*.png"))
    ]
    return backgrounds, cutouts


def renderer_with(sources, **options) -> PairRenderer:
    return PairRenderer(*sources, size=SIZE, options=RenderOptions.from_dict(options), seed=7, pairs_per_epoch=50)


@pytest.fixture(scope="module")
def stormy(sources) -> PairRenderer:
    """Every weather effect on every pair, fog's blur included; no dilation hides a leak at the mask's edge."""
    return renderer_with(sources, weather=EVERY_EFFECT, mask_dilation=0)


def same_pair(a: Pair, b: Pair) -> bool:
    return (
        np.array_equal(a.input, b.input) and np.array_equal(a.target, b.target)
        and np.array_equal(a.mask, b.mask) and a.recipe == b.recipe
    )


# ---- splits ----------------------------------------------------------------------------------------------------

def test_adding_groups_never_moves_an_existing_group():
    groups = [f"youtube:video{n}" for n in range(300)]
    before = assign_splits(groups, seed=3, val=0.15, test=0.15, kind="background")
    after = assign_splits(groups + [f"oir_mobi:{n:064x}" for n in range(200)], seed=3, val=0.15, test=0.15,
                          kind="background")
    assert all(after[group] == split for group, split in before.items())
    shares = {split: sum(1 for s in before.values() if s == split) / len(groups) for split in SPLITS}
    assert 0.08 < shares["val"] < 0.22 and 0.08 < shares["test"] < 0.22


@pytest.mark.parametrize("count", [3, 5, 14])
def test_every_split_gets_a_group_even_with_few_groups(count):
    for seed in range(40):
        assignment = assign_splits([f"motorpage:{n}" for n in range(count)], seed, 0.15, 0.15, "cut-out")
        assert set(assignment.values()) == set(SPLITS), (count, seed)
        assert assignment == assign_splits([f"motorpage:{n}" for n in reversed(range(count))], seed, 0.15, 0.15, "x")


def test_thin_splits_are_topped_up_to_min_groups():
    for seed in range(40):
        assignment = assign_splits([f"motorpage:{n}" for n in range(14)], seed, 0.15, 0.15, "cut-out", min_groups=2)
        counts = [sum(1 for s in assignment.values() if s == split) for split in SPLITS]
        assert min(counts) >= 2, (seed, counts)
    few = assign_splits(["a", "b", "c", "d"], 0, 0.15, 0.15, "cut-out", min_groups=2)
    assert set(few.values()) == set(SPLITS)


def test_too_few_groups_is_a_clear_error():
    with pytest.raises(InputError, match="cut-outs: 2 source group"):
        assign_splits(["a", "b", "a"], 0, 0.15, 0.15, "cut-out")


# ---- weather -----------------------------------------------------------------------------------------------------

def test_weather_is_replayed_identically_and_seeded(sources):
    background = cv2.resize(cv2.imread(str(sources[0][3].path))[..., ::-1], SIZE[::-1])
    weather = Weather(WeatherOptions(**EVERY_EFFECT), SIZE)
    x, y, applied = weather.apply(background, background.copy(), seed=11)
    assert np.array_equal(x, y), "the same parameters must give the same pixels on both images"
    assert not np.array_equal(x, background)
    assert [effect["effect"] for effect in applied] == ["rain", "sun_flare", "shadow", "fog", "rgb_shift"]
    again, _, applied_again = weather.apply(background, background, seed=11)
    other, _, _ = weather.apply(background, background, seed=12)
    assert np.array_equal(again, x) and applied_again == applied
    assert not np.array_equal(other, x)


def test_weather_effects_are_drawn_independently():
    """Seeding each transform with the same seed would make every effect appear together or not at all."""
    weather = Weather(WeatherOptions(rain=0.5, sun_flare=0.5, shadow=0.5, fog=0.0, rgb_shift=0.5), (32, 48))
    image = np.full((32, 48, 3), 128, np.uint8)
    combos = {tuple(e["effect"] for e in weather.apply(image, image, seed)[2]) for seed in range(60)}
    assert len(combos) >= 8


# ---- harmonisation and shadow ------------------------------------------------------------------------------------

def test_harmonize_moves_the_car_stats_toward_the_context_by_strength():
    rng = np.random.default_rng(0)
    car = np.clip(rng.normal([0.7, 0.3, 0.3], 0.05, (20, 30, 3)), 0, 1).astype(np.float32)
    context = np.clip(rng.normal([0.35, 0.45, 0.6], 0.08, (40, 60, 3)), 0, 1).astype(np.float32)
    weight = np.ones(car.shape[:2], np.float32)

    def lab_mean(rgb):
        return lab_stats(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB), np.ones(rgb.shape[:2], np.float32))[0]

    assert harmonize(car, weight, context, 0.0) is car
    car_mean, context_mean = lab_mean(car), lab_mean(context)
    full = lab_mean(harmonize(car, weight, context, 1.0))
    half = lab_mean(harmonize(car, weight, context, 0.5))
    assert np.abs(full - context_mean).max() < 3.0
    assert np.abs(half - (car_mean + context_mean) / 2).max() < 3.0


def test_contact_shadow_is_a_soft_ellipse_under_the_wheels():
    options = ShadowOptions()
    shadow = contact_shadow((100, 160), [40, 30, 120, 80], options, opacity=0.6)
    assert shadow.max() == pytest.approx(0.6, abs=1e-4)
    rows, cols = np.nonzero(shadow)
    assert 72 <= np.average(rows, weights=shadow[rows, cols]) <= 82
    assert 75 <= np.average(cols, weights=shadow[rows, cols]) <= 85
    assert cols.min() >= 30 and cols.max() <= 130 and rows.min() > 60
    assert (shadow[(shadow > 0)] >= 0.01).all()


# ---- the renderer on real backgrounds and cut-outs ----------------------------------------------------------------

def test_x_equals_y_outside_the_mask_with_every_weather_effect(stormy):
    for index in range(16):
        pair = stormy.render(epoch=0, index=index)
        assert pair.input.shape == pair.target.shape == SIZE + (3,) and pair.input.dtype == np.uint8
        assert pair.mask.shape == SIZE and pair.mask.dtype == bool
        outside = ~pair.mask
        assert np.array_equal(pair.input[outside], pair.target[outside]), pair.recipe
        assert (pair.input[pair.mask] != pair.target[pair.mask]).any()
        assert pair.shadow[~pair.mask].sum() == 0, "the shadow is inside the mask by default"
        assert len(pair.recipe["weather"]) == 5


def test_an_unmasked_shadow_is_the_only_difference_outside_the_mask(sources):
    renderer = renderer_with(sources, shadow={"in_mask": False, "opacity": [0.6, 0.7]}, weather=EVERY_EFFECT)
    shadow_outside_mask = 0
    for index in range(10):
        pair = renderer.render(epoch=0, index=index)
        keep = ~(pair.mask | pair.shadow)
        assert np.array_equal(pair.input[keep], pair.target[keep])
        shadow_outside_mask += int((pair.shadow & ~pair.mask).sum())
    assert shadow_outside_mask > 0


def test_cars_stand_in_the_road_band_and_keep_their_size_range(sources):
    renderer = renderer_with(sources, shadow={"p": 0.0}, mask_dilation=0)
    height = SIZE[0]
    for index in range(30):
        pair = renderer.render(epoch=1, index=index)
        x0, y0, x1, y1 = pair.recipe["box"]
        assert 0.72 * height - 1 <= y1 <= 0.98 * height + 1
        rows = np.flatnonzero(pair.mask.any(axis=1))
        assert y1 - 2 <= rows.max() + 1 <= y1 + 3, "the car's lowest pixel is its box's bottom edge"
        assert 0.23 * 0.6 - 0.02 <= pair.recipe["scale"] <= 0.6 + 0.02
        assert 0 <= x0 and x1 <= SIZE[1]


def test_same_seed_epoch_index_gives_the_same_pair_and_others_differ(stormy):
    first = stormy.render(epoch=2, index=5)
    assert same_pair(first, stormy.render(epoch=2, index=5))
    assert not np.array_equal(first.input, stormy.render(epoch=2, index=6).input)
    assert not np.array_equal(first.input, stormy.render(epoch=3, index=5).input)
    unpickled = pickle.loads(pickle.dumps(stormy))
    assert same_pair(first, unpickled.render(epoch=2, index=5))


def _render_in_worker(args: tuple[PairRenderer, int]) -> tuple[bytes, bytes, bytes]:
    renderer, index = args
    pair = renderer.render(epoch=4, index=index)
    return pair.input.tobytes(), pair.target.tobytes(), pair.mask.tobytes()


def test_pairs_are_identical_across_processes_and_threads(stormy):
    expected = [_render_in_worker((stormy, index)) for index in range(4)]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.map(_render_in_worker, [(stormy, index) for index in range(4)]) == expected
    fresh = pickle.loads(pickle.dumps(stormy))
    with concurrent.futures.ThreadPoolExecutor(4) as threads:
        assert list(threads.map(_render_in_worker, [(fresh, index) for index in range(4)] * 2)) == expected * 2


def test_recipe_paths_resolve_against_the_recipe_file_not_the_cwd(sources, tmp_path, monkeypatch):
    renderer = renderer_with(sources)
    recipe = tmp_path / "pairs" / "train_recipe.json"
    renderer.write_recipe(recipe)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = PairRenderer.from_recipe(Path("..") / "pairs" / "train_recipe.json")
    assert loaded.size == SIZE and loaded.pairs_per_epoch == 50
    assert same_pair(loaded.render(epoch=0, index=3), renderer.render(epoch=0, index=3))


def test_bad_recipes_and_options_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="missing.json: file not found"):
        PairRenderer.from_recipe(tmp_path / "missing.json")
    write_json(tmp_path / "other.json", {"format": "something else"})
    with pytest.raises(InputError, match="other.json: not a pair recipe"):
        PairRenderer.from_recipe(tmp_path / "other.json")
    with pytest.raises(InputError, match="unknown key.*sclae"):
        RenderOptions.from_dict({"sclae": [0.2, 0.5]}, "params.yaml: synthesize.render")
    with pytest.raises(InputError, match="weather.fog: a probability"):
        RenderOptions.from_dict({"weather": {"fog": 2}})
    with pytest.raises(InputError, match="bottom must be"):
        RenderOptions.from_dict({"bottom": [0.9, 0.5]})
