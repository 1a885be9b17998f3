"""Mask clean-up on real DAVIS masks corrupted with holes, speckles and a second blob; feathered alpha; crop box."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from carremoval.io import read_mask
from carremoval.masks import (
    MaskCleaning,
    bounding_box,
    clean_mask,
    crop_box,
    feathered_alpha,
    fill_small_holes,
    iou,
    select_instance,
    thin_parts,
    touches_border,
)

DAVIS_FRAMES = [
    ("car-roundabout", "00024"),
    ("car-shadow", "00026"),
    ("drift-straight", "00016"),
    ("drift-chicane", "00030"),
    ("bus", "00053"),  # real holes where leaves cover the bus: they must survive the hole filling
]


def corrupt(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Punch small holes into the car, sprinkle speckles over the frame and add a second blob away from the car."""
    noisy = mask.copy().astype(np.uint8)
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    for index in rng.choice(len(ys), size=12, replace=False):
        cv2.circle(noisy, (int(xs[index]), int(ys[index])), int(rng.integers(2, 5)), 0, -1)
    for _ in range(300):
        x, y = int(rng.integers(0, width - 3)), int(rng.integers(0, height - 3))
        noisy[y : y + int(rng.integers(1, 4)), x : x + int(rng.integers(1, 4))] = 1
    return noisy.astype(bool) | second_blob(mask)


def second_blob(mask: np.ndarray) -> np.ndarray:
    """A filled circle of 40% of the car's area in a corner at least 20 px away from the car."""
    height, width = mask.shape
    radius = int(np.sqrt(0.4 * mask.sum() / np.pi))
    near_car = cv2.dilate(mask.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0
    for x in (radius + 1, width - radius - 2):
        for y in (radius + 1, height - radius - 2):
            blob = cv2.circle(np.zeros_like(mask, np.uint8), (x, y), radius, 1, -1) > 0
            if not (blob & near_car).any():
                return blob
    raise AssertionError("no room for a second blob away from the car")


@pytest.mark.parametrize("sequence,frame", DAVIS_FRAMES)
def test_cleaning_restores_corrupted_davis_masks(shared_data, sequence, frame):
    original = read_mask(shared_data / "videos" / "davis" / sequence / "masks" / f"{frame}.png")
    noisy = corrupt(original, np.random.default_rng(7))
    assert iou(noisy, original) < 0.9, "the corruption must be strong enough to matter"
    cleaned = clean_mask(noisy, MaskCleaning())
    assert iou(cleaned, original) >= 0.95


def test_center_keeps_the_component_nearest_the_centre():
    mask = np.zeros((100, 200), bool)
    mask[5:60, 5:80] = True          # big, in the corner
    mask[40:60, 90:110] = True       # small, in the centre
    centre = select_instance(mask, "center")
    largest = select_instance(mask, "largest")
    assert centre[50, 100] and not centre[10, 10]
    assert largest[10, 10] and not largest[50, 100]
    assert np.array_equal(select_instance(mask, "all"), mask)


def test_only_small_holes_are_filled():
    mask = np.zeros((120, 120), bool)
    mask[10:110, 10:110] = True
    mask[20:23, 20:23] = False       # 9 px: a speckle hole
    mask[40:80, 40:80] = False       # 1600 px: an occluder, kept
    filled = fill_small_holes(mask, 0.05)
    assert filled[21, 21] and not filled[60, 60]


def test_unknown_keep_choice_is_a_clear_error():
    with pytest.raises(ValueError, match="keep must be one of"):
        MaskCleaning(keep="biggest")


@pytest.mark.parametrize("width", [0, 2, 3, 8])
def test_feathered_alpha_thresholds_back_to_the_exact_mask(width):
    mask = np.zeros((60, 80), bool)
    mask[10:50, 10:30] = True
    mask[30, 30:70] = True           # a one-pixel-thin antenna must survive the feathering
    alpha = feathered_alpha(mask, width)
    assert alpha.dtype == np.uint8
    assert np.array_equal(alpha > 127, mask)
    soft = np.count_nonzero((alpha > 0) & (alpha < 255))
    assert soft == 0 if width == 0 else soft > 0


def test_crop_box_adds_the_margin_and_clips_at_the_edge():
    mask = np.zeros((50, 60), bool)
    mask[2:20, 30:40] = True
    assert bounding_box(mask) == (30, 2, 40, 20)
    assert crop_box(mask, 4) == (26, 0, 44, 24)
    assert crop_box(np.zeros((5, 5), bool), 4) is None
    assert not touches_border(mask) and touches_border(mask[:, 35:])


def test_thin_parts_are_the_cracks_even_at_the_border_and_not_a_blob():
    mask = np.zeros((60, 80), bool)
    mask[10:40, 0:30] = True          # a blob touching the left border
    mask[50:52, 0:80] = True          # a 2-px crack from border to border
    thin = thin_parts(mask, 5)
    assert thin[50:52].all()
    assert not thin[14:36, 0:26].any()   # the blob's inside (its rim may go: the opening rounds its corners)
