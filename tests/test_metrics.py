"""Photo metrics on a real background with a known corruption inside a hole."""
from __future__ import annotations

import numpy as np
import pytest

from carremoval.io import read_rgb
from carremoval.metrics import image_scores, l1, mean_scores, psnr, ssim


@pytest.fixture(scope="module")
def background(shared_data):
    return read_rgb(shared_data / "photos/backgrounds/dpst_in32.png")


def test_identical_images_score_perfectly(background):
    mask = np.zeros(background.shape[:2], bool)
    mask[100:200, 100:300] = True
    scores = image_scores(background, background, mask)
    assert scores["hole_l1"] == 0 and scores["psnr"] == 100.0 and scores["hole_ssim"] == pytest.approx(1.0)


def test_hole_metrics_see_only_the_hole(background):
    mask = np.zeros(background.shape[:2], bool)
    mask[100:200, 100:300] = True
    damaged = background.copy()
    damaged[mask] = 0
    assert l1(damaged, background, mask) == pytest.approx(background[mask].mean() / 255.0)
    assert psnr(damaged, background, mask) < psnr(damaged, background)
    assert ssim(damaged, background, mask) < ssim(damaged, background) < 1.0
    assert l1(damaged, background, ~mask) == 0


def test_empty_hole_gives_nan_and_the_mean_ignores_it(background):
    empty = np.zeros(background.shape[:2], bool)
    assert np.isnan(l1(background, background, empty))
    assert mean_scores([{"a": 1.0}, {"a": float("nan")}, {"a": 3.0}]) == {"a": 2.0}
