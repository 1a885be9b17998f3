"""The hole SWD texture metric and the blur + noise control fill, on a real photo with a real car-shaped hole."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from carremoval.inpainters import telea
from carremoval.io import read_mask, read_rgb
from carremoval.metrics import blur_noise_control, image_scores, psnr, sliced_wasserstein

WIDTH = 512


@pytest.fixture(scope="module")
def truth(shared_data):
    image = read_rgb(shared_data / "photos/backgrounds/libcom_source_1.jpg")
    height = round(image.shape[0] * WIDTH / image.shape[1])
    return cv2.resize(image, (WIDTH, height), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def hole(shared_data, truth):
    """The DAVIS car-shadow car of frame 13, resized over the lower half of the photo."""
    height, width = truth.shape[:2]
    car = read_mask(shared_data / "videos/davis/car-shadow/masks/00013.png").astype(np.uint8)
    mask = np.zeros((height, width), bool)
    mask[height - height // 2:] = cv2.resize(car, (width, height // 2), interpolation=cv2.INTER_NEAREST) > 0
    assert 0.02 < mask.mean() < 0.5
    return mask


def pasted(fill: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The truth with `fill` inside the hole."""
    result = truth.copy()
    result[hole] = fill[hole]
    return result


@pytest.fixture(scope="module")
def blurred(truth, hole):
    return pasted(cv2.GaussianBlur(truth, (0, 0), 6.0), truth, hole)


@pytest.fixture(scope="module")
def control(truth, hole):
    return blur_noise_control(truth, hole)


def test_the_truth_against_itself_scores_zero(truth, hole):
    assert sliced_wasserstein(truth, truth, hole) == 0.0


def test_blur_wins_on_psnr_but_loses_to_the_noise_control_on_swd(truth, hole, blurred, control):
    swd_blur, swd_control = sliced_wasserstein(blurred, truth, hole), sliced_wasserstein(control, truth, hole)
    assert swd_blur > swd_control > 0
    assert psnr(blurred, truth, hole) > psnr(control, truth, hole)


def test_telea_scores_worse_than_a_sharp_misaligned_copy(truth, hole):
    shifted = pasted(np.roll(truth, (5, 7), axis=(0, 1)), truth, hole)
    assert sliced_wasserstein(telea()(truth, hole), truth, hole) > sliced_wasserstein(shifted, truth, hole)


def test_the_control_keeps_the_outside_and_is_deterministic(truth, hole, control):
    assert control.dtype == np.uint8 and control.shape == truth.shape
    assert np.array_equal(control[~hole], truth[~hole])
    assert not np.array_equal(control[hole], truth[hole])
    assert np.array_equal(blur_noise_control(truth, hole), control)


def test_swd_is_deterministic_and_nan_without_a_hole(truth, hole, blurred):
    assert sliced_wasserstein(blurred, truth, hole) == sliced_wasserstein(blurred, truth, hole)
    assert math.isnan(sliced_wasserstein(blurred, truth, np.zeros_like(hole)))


def test_image_scores_include_the_hole_swd(truth, hole, blurred):
    assert image_scores(blurred, truth, hole)["hole_swd"] == sliced_wasserstein(blurred, truth, hole)
