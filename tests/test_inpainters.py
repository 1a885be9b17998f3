"""The OpenCV per-frame baselines as Inpainters: they fill the hole and leave every other pixel bit-identical."""
from __future__ import annotations

import numpy as np
import pytest

from carremoval.inpainters import cv2_inpainter, navier_stokes, telea
from carremoval.io import read_mask, read_rgb
from carremoval.metrics import psnr


@pytest.fixture(scope="module")
def photo_and_hole(shared_data):
    """A real background photo with a real car-shaped hole (a DAVIS car mask, resized)."""
    import cv2

    photo = read_rgb(shared_data / "photos/backgrounds/dpst_in32.png")
    mask = read_mask(shared_data / "photos/cars/davis_car-shadow_00013.mask.png").astype(np.uint8)
    hole = cv2.resize(mask, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
    return photo, hole


@pytest.mark.parametrize("make", [telea, navier_stokes])
def test_fills_the_hole_and_keeps_the_rest(photo_and_hole, make):
    photo, hole = photo_and_hole
    damaged = photo.copy()
    damaged[hole] = 0
    result = make()(damaged, hole)
    assert result.shape == photo.shape and result.dtype == np.uint8
    assert np.array_equal(result[~hole], damaged[~hole])
    # the fill is close to the hidden background, far better than leaving the hole black
    assert psnr(result, photo, hole) > psnr(damaged, photo, hole) + 8


def test_empty_hole_returns_the_image_unchanged(photo_and_hole):
    photo, hole = photo_and_hole
    assert np.array_equal(telea()(photo, np.zeros_like(hole)), photo)


def test_grey_and_rgba_images(photo_and_hole):
    photo, hole = photo_and_hole
    grey = photo[..., 1].copy()
    assert np.array_equal(telea()(grey, hole)[~hole], grey[~hole])
    rgba = np.dstack([photo, np.full(hole.shape, 200, np.uint8)])
    result = navier_stokes()(rgba, hole)
    assert result.shape == rgba.shape and np.array_equal(result[..., 3], rgba[..., 3])
    assert np.array_equal(result[~hole], rgba[~hole])


def test_bad_arguments_are_clear_errors(photo_and_hole):
    photo, hole = photo_and_hole
    with pytest.raises(ValueError, match="inpainting method 'blur'"):
        cv2_inpainter("blur")
    with pytest.raises(ValueError, match="does not match"):
        telea()(photo, hole[:-1])
    with pytest.raises(ValueError, match="uint8"):
        telea()(photo.astype(np.float32), hole)
