"""The segmentation measurements of the evaluate stage: photo IoU, DAVIS recall / precision, mask stability and the
mask source's speed, on real photos and DAVIS frames (a few) and on inputs whose answer is known."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carremoval.masks import dilate
from carremoval.segmentation_eval import (
    DAVIS_SEQUENCES,
    PHOTO_CASES,
    davis_scores,
    mask_stability,
    photo_cases,
    photo_iou,
    read_davis,
    recall_precision,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PHOTOS = SHARED / "data" / "photos" / "cars"
DAVIS = SHARED / "data" / "videos" / "davis"
MODELS = SHARED / "models" / "espnetv2"
CITY = MODELS / "espnetv2_s_2.0_city_1024x512.pth"
PASCAL = MODELS / "espnetv2_s_2.0_pascal_384x384.pth"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing (real data and weights live in ../shared)")
    return path


@pytest.fixture(scope="module")
def cases():
    return photo_cases(need(PHOTOS))


@pytest.fixture(scope="module")
def segmenters():
    need(CITY), need(PASCAL)
    from carremoval.segmentation import removal_segmenter

    return (removal_segmenter("espnetv2", str(MODELS), device="cpu"),
            removal_segmenter("espnetv2_city", str(MODELS), device="cpu"))


def test_recall_and_precision_follow_their_definitions():
    truth = np.zeros((100, 100), bool)
    truth[40:60, 40:60] = True
    assert recall_precision(truth, truth) == (1.0, 1.0)
    shrunk = np.zeros_like(truth)
    shrunk[44:56, 44:56] = True  # 4 px inside (5.7 px at the corners): the 7 px dilation covers the truth
    assert recall_precision(shrunk, truth)[0] == 1.0
    far = np.zeros_like(truth)
    far[0:10, 0:10] = True
    recall, precision = recall_precision(truth | far, truth)
    assert recall == 1.0 and precision == pytest.approx(400 / 500)
    assert recall_precision(np.zeros_like(truth), truth) == (0.0, None)


def test_photo_iou_is_one_for_the_true_masks_and_zero_for_none(cases):
    assert [case.name for case in cases] == list(PHOTO_CASES)
    truths = {id(case.rgb): case.mask for case in cases}
    perfect = photo_iou(lambda rgb: truths[id(rgb)], cases)
    assert perfect["mean_iou"] == 1.0 and set(perfect["per_photo"]) == set(PHOTO_CASES)
    assert photo_iou(lambda rgb: np.zeros(rgb.shape[:2], bool), cases)["mean_iou"] == 0.0


def test_photo_iou_of_the_espnet_union(cases, segmenters):
    """Cityscapes at 512x256 with PASCAL at 256x256 (the photo default): mean IoU 0.81 when measured."""
    union, _ = segmenters
    scores = photo_iou(lambda rgb: union.masks([rgb])[0], cases)
    assert scores["mean_iou"] > 0.75, scores


def test_stability_is_high_for_real_masks_and_low_for_flicker():
    frames, truths = read_davis(need(DAVIS / "car-shadow"), 8)
    real = mask_stability(frames, truths)
    assert len(real) == 7 and min(real) > 0.85, real
    flicker = [dilate(mask, 12) if index % 2 else mask for index, mask in enumerate(truths)]
    flickering = mask_stability(frames, flicker)
    assert max(flickering) < 0.8 and np.mean(flickering) < np.mean(real) - 0.15, flickering
    empty = [np.zeros_like(mask) for mask in truths]
    assert mask_stability(frames, empty) == [1.0] * 7


def test_davis_scores_on_a_few_frames_of_car_shadow(segmenters):
    need(DAVIS)
    _, city = segmenters
    scores = davis_scores(city.probability, DAVIS,
                          sequences=("car-shadow",), limit=8)
    row = scores["sequences"]["car-shadow"]
    assert row["frames"] == 8 and row["empty_frames"] == 0
    assert row["recall"] > 0.95 and row["precision"] > 0.8 and row["stability"] > 0.85, row
    assert row["fps"] > 0 and scores["settings"]["cars"] == "largest"
    assert set(scores["mean"]) == {"recall", "precision", "stability", "fps"}


def test_a_segmenter_that_finds_nothing_scores_zero_recall():
    need(DAVIS)
    scores = davis_scores(lambda rgb: np.zeros(rgb.shape[:2], np.float32), DAVIS, sequences=("car-shadow",),
                          limit=4)
    row = scores["sequences"]["car-shadow"]
    assert row["recall"] == 0.0 and row["precision"] is None and row["empty_frames"] == 4


def test_every_davis_sequence_is_there():
    for name in DAVIS_SEQUENCES:
        frames, masks = read_davis(need(DAVIS / name), 2)
        assert len(frames) == 2 and masks[0].shape == frames[0].shape[:2] and masks[0].any()
