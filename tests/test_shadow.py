"""Photo shadow detection: the dark ground attached to the car's lower part, bounded growth, bad inputs."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from carremoval.io import read_mask, read_rgb
from carremoval.shadow import ShadowSettings, shadow_mask


def _scene(shadow: bool = True, road: int = 160, car: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A grey road with a textured surface, a car box and, optionally, its darker shadow beneath and to the left."""
    rng = np.random.default_rng(0)
    image = np.clip(road + rng.normal(0, 4, (200, 300, 1)), 0, 255).repeat(3, 2).astype(np.uint8)
    body = np.zeros((200, 300), bool)
    body[60:120, 100:200] = True
    if shadow:
        image[115:140, 80:210] = (image[115:140, 80:210] * 0.55).astype(np.uint8)
    image[body] = car
    return image, body


def test_synthetic_shadow_is_found_and_excludes_the_car():
    image, body = _scene()
    found = shadow_mask(image, body)
    truth = np.zeros_like(body)
    truth[115:140, 80:210] = True
    truth &= ~body
    assert not (found & body).any()
    assert (found & truth).sum() >= 0.8 * truth.sum()
    assert (found & ~truth).sum() <= 0.1 * truth.sum()


def test_no_shadow_no_growth():
    image, body = _scene(shadow=False)
    assert shadow_mask(image, body).sum() <= 0.05 * body.sum()


def test_white_car_on_white_road_does_not_run_away():
    image, body = _scene(shadow=False, road=245, car=250)
    assert shadow_mask(image, body).sum() <= 0.05 * body.sum()


def test_growth_is_capped_and_logged(caplog):
    image, body = _scene()
    image[100:200] = (image[100:200] * 0.5).astype(np.uint8)  # everything below the car is dark
    image[50:100, 0:60] = 200
    with caplog.at_level(logging.INFO, logger="carremoval.shadow"):
        found = shadow_mask(image, body, ShadowSettings(max_growth=0.3))
    assert found.sum() <= 0.3 * body.sum() + 1


def test_bad_inputs_do_not_crash():
    image, body = _scene()
    assert not shadow_mask(image, np.zeros_like(body)).any()
    assert not shadow_mask(image, np.ones_like(body)).any()
    border = np.zeros_like(body)
    border[150:200, 0:80] = True  # a car cut by the frame's corner
    assert shadow_mask(image, border).sum() <= border.sum()
    two = body.copy()
    two[60:120, 220:290] = True  # a second car whose shadow merges with the first's
    found = shadow_mask(image, two)
    assert not (found & two).any() and found.sum() <= two.sum()


def test_photo_shadow_stops_a_fifth_of_the_car_beside_it():
    """Dark ground that runs on to the side (another car's shadow, a kerb) is not taken beyond the photo setting's
    reach sideways; the video's settings, with an observed background to check against, reach further."""
    image, body = _scene()
    image[115:140, 40:80] = (image[115:140, 40:80] * 0.55).astype(np.uint8)
    found = shadow_mask(image, body)
    assert found[115:140, 80:100].any() and not found[:, :80].any()
    assert shadow_mask(image, body, ShadowSettings())[:, :80].any()


def test_settings_from_params():
    assert ShadowSettings.from_params({"reach": 0.5}).reach == 0.5
    with pytest.raises(ValueError):
        ShadowSettings.from_params({"reech": 0.5})
    with pytest.raises(ValueError):
        ShadowSettings(seed_ratio=0.9, grow_ratio=0.8)
    with pytest.raises(ValueError):
        ShadowSettings(sideways=-0.1)


def test_davis_car_shadow_frame(shared_data):
    """car-shadow 00013: the dark ground under and beside the car is taken, within a bound, nothing above it."""
    image = read_rgb(shared_data / "photos/cars/davis_car-shadow_00013.jpg")
    body = read_mask(shared_data / "photos/cars/davis_car-shadow_00013.mask.png", image.shape[:2])
    found = shadow_mask(image, body)
    ys, xs = np.nonzero(body)
    bottom = ys.max()
    under = np.zeros_like(body)
    under[bottom - 15:bottom + 10, xs.min():xs.max()] = True
    under &= ~body
    assert (found & under).sum() >= 0.3 * under.sum()        # the shadow under the car
    assert found.sum() <= 0.8 * body.sum()                   # bounded
    top = ys.min() + (ys.max() - ys.min()) // 3
    assert not found[:top].any()                             # nothing level with the car's upper part


def test_rendered_pairs_give_the_layers_the_photo_benchmark_scores(shared_data, tmp_path):
    """Training-pair renders with their car and shadow layers: the shadow mask covers more of the rendered
    shadows than the car's mask alone, and adds a bounded area beside cars rendered without a shadow."""
    from carremoval.io import write_jsonl
    from carremoval.shadow_eval import photo_rerenders
    from carremoval.synthesis import PairRenderer
    from carremoval.synthesis.options import RenderOptions
    from carremoval.synthesis.sources import Source

    backgrounds = [Source(path.stem, path.stem, path)
                   for path in sorted((shared_data / "photos" / "backgrounds").iterdir())[:3]]
    cutouts = [Source(path.stem, path.stem, path) for path in sorted((shared_data / "cutouts").glob("*.png"))[:4]]
    options = RenderOptions.from_dict({"weather": {name: 0.0 for name in ("rain", "sun_flare", "shadow", "fog",
                                                                          "rgb_shift")}})
    renderer = PairRenderer(backgrounds, cutouts, size=(128, 192), options=options, seed=3, pairs_per_epoch=12)
    pair = renderer.render(0, 0)
    assert pair.body.any() and not (pair.body & ~pair.mask).any()
    assert pair.darkening.max() > 0.3 and (pair.darkening[pair.shadow] > 0).all()
    renderer.write_recipe(tmp_path / "recipe.json")
    write_jsonl(tmp_path / "recipes.jsonl", [{"epoch": 0, "index": index} for index in range(12)])
    scores = photo_rerenders(tmp_path / "recipe.json", dilate_px=0)
    assert scores["pairs"] == 12
    assert scores["shadow_covered_auto"] > scores["shadow_covered_off"] + 0.2
    assert scores["growth_without_shadow"] < 0.1   # 0.03 on these renders (0.22 with the video's settings)


def test_tyre_marks_beside_a_drifting_car_are_not_its_shadow(shared_data):
    """drift-straight 00016: the dark tyre marks around the car grew the mask to 94% of the car's area with the
    video's settings; a photo's mask keeps to the shadow under the car."""
    image = read_rgb(shared_data / "photos/cars/davis_drift-straight_00016.jpg")
    body = read_mask(shared_data / "photos/cars/davis_drift-straight_00016.mask.png", image.shape[:2])
    found = shadow_mask(image, body)
    ys, xs = np.nonzero(body)
    under = np.zeros_like(body)
    under[ys.max() - 15:ys.max() + 10, xs.min():xs.max()] = True
    under &= ~body
    assert (found & under).sum() >= 0.8 * under.sum()
    assert found.sum() <= 0.5 * body.sum()
