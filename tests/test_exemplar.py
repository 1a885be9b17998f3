"""The exemplar synthesis (guided PatchMatch) and the textured inpainter, on a real road photo."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from carremoval.exemplar import ExemplarSettings, synthesize_texture
from carremoval.inpainters import TexturedInpainter, telea
from carremoval.io import read_mask, read_rgb
from carremoval.params import load_params, repo_root


@pytest.fixture(scope="module")
def road(shared_data) -> tuple[np.ndarray, np.ndarray]:
    """The libcom road photo at 640 px wide, with a car-shaped hole on the road."""
    image = read_rgb(shared_data / "photos/backgrounds/libcom_source_1.jpg")
    image = cv2.resize(image, (640, round(640 * image.shape[0] / image.shape[1])), interpolation=cv2.INTER_AREA)
    car = read_mask(shared_data / "videos/davis/car-shadow/masks/00013.png")
    rows, cols = np.nonzero(car)
    car = car[rows.min():rows.max() + 1, cols.min():cols.max() + 1].astype(np.uint8)
    car = cv2.resize(car, (car.shape[1] * 3 // 4, car.shape[0] * 3 // 4), interpolation=cv2.INTER_NEAREST) > 0
    hole = np.zeros(image.shape[:2], bool)
    top, left = 270, (640 - car.shape[1]) // 2
    hole[top:top + car.shape[0], left:left + car.shape[1]] = car
    return image, hole


def high_frequency_energy(image: np.ndarray, hole: np.ndarray) -> float:
    """Mean squared Laplacian inside the hole (eroded, so the seam does not count)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    inner = cv2.erode(hole.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    return float((cv2.Laplacian(grey, cv2.CV_32F) ** 2)[inner].mean())


def test_the_fill_is_sharp_where_the_structure_is_smooth(road):
    image, hole = road
    structure = telea()(image, hole)
    filled = synthesize_texture(image, hole, structure)
    truth_energy = high_frequency_energy(image, hole)
    assert high_frequency_energy(structure, hole) < 0.2 * truth_energy
    assert 0.4 * truth_energy < high_frequency_energy(filled, hole) < 2.5 * truth_energy


def test_pixels_outside_the_hole_are_untouched_and_the_run_repeats(road):
    image, hole = road
    structure = telea()(image, hole)
    first = synthesize_texture(image, hole, structure)
    np.testing.assert_array_equal(first[~hole], image[~hole])
    np.testing.assert_array_equal(first, synthesize_texture(image, hole, structure))


def test_excluded_pixels_are_never_copied(road):
    image, hole = road
    marked = image.copy()
    rows, cols = np.nonzero(hole)
    other_car = np.zeros_like(hole)
    other_car[rows.min() - 60:rows.min() - 20, cols.max() + 10:cols.max() + 90] = True
    marked[other_car] = (255, 0, 255)
    structure = telea()(marked, hole | other_car)
    filled = synthesize_texture(marked, hole, structure, exclude=other_car)
    magenta = (filled[..., 0] > 200) & (filled[..., 1] < 60) & (filled[..., 2] > 200)
    assert not magenta[hole].any()
    pulled = np.where(hole[..., None], marked[other_car][0], marked)   # a structure that asks for magenta
    strong_guide = ExemplarSettings(guide_falloff=1.0, match_border=False)
    guarded = synthesize_texture(marked, hole, pulled, exclude=other_car, settings=strong_guide)
    unguarded = synthesize_texture(marked, hole, pulled, settings=strong_guide)
    assert ((guarded[..., 1] < 60) & (guarded[..., 0] > 200))[hole].mean() < 0.01
    assert ((unguarded[..., 1] < 60) & (unguarded[..., 0] > 200))[hole].mean() > 0.05


def test_texture_gain_zero_keeps_the_structure_s_low_frequencies(road):
    image, hole = road
    structure = telea()(image, hole)
    flat = synthesize_texture(image, hole, structure, settings=ExemplarSettings(texture_gain=0.0))
    assert high_frequency_energy(flat, hole) < high_frequency_energy(structure, hole) + 1.0


def test_nothing_to_copy_from_returns_the_structure():
    image = np.full((20, 30, 3), 90, np.uint8)
    hole = np.ones((20, 30), bool)
    structure = np.full_like(image, 40)
    np.testing.assert_array_equal(synthesize_texture(image, hole, structure), structure)


def test_tiny_holes_and_tiny_images(road):
    image, _ = road
    one = np.zeros(image.shape[:2], bool)
    one[0, 0] = True
    filled = synthesize_texture(image, one, telea()(image, one))
    np.testing.assert_array_equal(filled[~one], image[~one])
    pixel = image[:1, :2].copy()
    hole = np.array([[True, False]])
    assert synthesize_texture(pixel, hole, pixel).shape == (1, 2, 3)


def test_textured_inpainter_uses_its_structure(road):
    image, hole = road
    result = TexturedInpainter(telea())(image, hole)
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert not np.array_equal(result[hole], telea()(image, hole)[hole])


def test_settings_are_checked():
    with pytest.raises(ValueError, match="patch"):
        ExemplarSettings(patch=4)
    with pytest.raises(ValueError, match="exemplar"):
        ExemplarSettings.from_params({"texture": 1})


def test_a_fill_brighter_than_its_surroundings_leaves_no_outline(road):
    """A structure too bright in the hole (as the generator's can be) gives an outline of the hole, unless the fill
    is matched to the photo at the hole's border."""
    image, hole = road
    brighter = telea()(image, hole).astype(np.int16)
    brighter[hole] += 40
    brighter = np.clip(brighter, 0, 255).astype(np.uint8)
    inner = hole & ~(cv2.erode(hole.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
    outer = (cv2.dilate(hole.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~hole

    def step_at_border(filled: np.ndarray) -> float:
        grey = cv2.cvtColor(filled, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return abs(float(grey[inner].mean() - grey[outer].mean()))

    unmatched = synthesize_texture(image, hole, brighter, settings=ExemplarSettings(match_border=False,
                                                                                     guide_falloff=1.0))
    matched = synthesize_texture(image, hole, brighter, settings=ExemplarSettings(guide_falloff=1.0))
    assert step_at_border(image) < 5
    assert step_at_border(unmatched) > 10
    assert step_at_border(matched) < 5


def test_params_yaml_holds_the_settings_the_cli_uses():
    """The CLI fills with the code's defaults; the evaluate stage measures params.yaml's: they must agree."""
    section = load_params(repo_root() / "params.yaml")["exemplar"]
    assert ExemplarSettings.from_params(section) == ExemplarSettings()
    assert ExemplarSettings.from_params(section, video=True) == ExemplarSettings().for_video()
    assert ExemplarSettings().for_video() != ExemplarSettings()
    with pytest.raises(ValueError, match="exemplar"):
        ExemplarSettings.from_params({"video": {"texture": 1}}, video=True)
