"""Photo removal around real car masks: crop with context, never squash, blend inside the mask only."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from carremoval.io import InputError, read_mask, read_rgb
from carremoval.masks import dilate
from carremoval.photo_io import load_photo, save_photo
from carremoval.removal import (
    CropPolicy,
    GeneratorInpainter,
    context_crop,
    hole_boxes,
    remove_from_photo,
)


class MeanFill(torch.nn.Module):
    """A stand-in generator: fills the hole with the mean colour of the visible pixels of its input."""

    def __init__(self):
        super().__init__()
        self.seen_shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.seen_shapes.append(tuple(x.shape))
        visible = 1.0 - mask
        mean = (x * visible).sum(dim=(2, 3), keepdim=True) / visible.sum(dim=(2, 3), keepdim=True).clamp(min=1)
        return x * visible + mean * mask


@pytest.fixture()
def inpainter():
    return GeneratorInpainter(MeanFill(), (128, 192), torch.device("cpu"), CropPolicy(feather_px=3))


@pytest.fixture(scope="module")
def davis(shared_data):
    photo = shared_data / "photos/cars/davis_car-roundabout_00049.jpg"
    mask = dilate(read_mask(shared_data / "photos/cars/davis_car-roundabout_00049.mask.png"), 5)
    return photo, mask


def test_pixels_outside_the_mask_are_bit_identical(davis, inpainter):
    path, mask = davis
    photo = load_photo(path)
    result = np.asarray(remove_from_photo(photo, mask, inpainter))
    assert result.shape == photo.rgb.shape
    assert np.array_equal(result[~mask], photo.rgb[~mask])
    assert np.abs(result[mask].astype(int) - photo.rgb[mask]).mean() > 5, "the car's pixels were replaced"


def test_the_crop_keeps_the_working_aspect_and_is_never_squashed(davis, inpainter):
    path, mask = davis
    box = hole_boxes(mask)[0]
    left, top, right, bottom = context_crop(box, mask.shape, (128, 192), CropPolicy(context=2.0))
    assert 0 <= left < box[0] and 0 <= top < box[1] and box[2] < right <= 854 and box[3] < bottom <= 480
    crop_h, crop_w = bottom - top, right - left
    assert crop_w / crop_h == pytest.approx(1.5, rel=0.02) or bottom - top == 480
    inpainter(read_rgb(path), mask)
    assert inpainter.generator.seen_shapes == [(1, 3, 128, 192)]


def test_a_small_hole_is_filled_at_the_training_scale_not_zoomed_in():
    box = (400, 200, 430, 220)  # a 30x20 hole in an 854x480 frame
    left, top, right, bottom = context_crop(box, (480, 854), (128, 192), CropPolicy())
    assert (bottom - top, right - left) == (128, 192)
    left, top, right, bottom = context_crop(box, (480, 854), (128, 192), CropPolicy(min_crop_fraction=0.0))
    assert (bottom - top, right - left) == (40, 60)


def test_two_separate_cars_get_two_crops(shared_data, inpainter):
    rgb = read_rgb(shared_data / "photos/cars/rembg_car-3.jpg")
    mask = read_mask(shared_data / "photos/cars/rembg_car-3.mask.png")
    assert len(hole_boxes(mask)) == 2
    result = inpainter(rgb, mask)
    assert np.array_equal(result[~mask], rgb[~mask])
    assert len(inpainter.generator.seen_shapes) == 2


def test_empty_and_full_masks(shared_data, inpainter):
    photo = load_photo(shared_data / "photos/cars/rembg_car-1.jpg")
    empty = np.zeros(photo.rgb.shape[:2], bool)
    assert np.array_equal(np.asarray(remove_from_photo(photo, empty, inpainter)), photo.rgb)
    full = np.ones(photo.rgb.shape[:2], bool)
    assert np.asarray(remove_from_photo(photo, full, inpainter)).shape == photo.rgb.shape


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P"])
def test_grey_rgba_16_bit_and_palette_photos_keep_their_mode_outside_the_hole(tmp_path, shared_data, mode, inpainter):
    rgb = read_rgb(shared_data / "photos/cars/cityscapes_frankfurt_000000_000294.png")
    mask = read_mask(shared_data / "photos/cars/cityscapes_frankfurt_000000_000294.mask.png")
    source = Image.fromarray(rgb)
    if mode == "I;16":
        source = Image.fromarray(np.asarray(source.convert("L")).astype(np.uint16) * 257)
    elif mode == "RGBA":
        source = source.convert("RGBA")
        source.putalpha(Image.fromarray(np.full(mask.shape, 200, np.uint8)))
    else:
        source = source.convert(mode)
    path = tmp_path / f"input_{mode.replace(';', '')}.png"
    source.save(path)
    photo = load_photo(path)
    result = remove_from_photo(photo, mask, inpainter)
    out = tmp_path / "out.png"
    save_photo(result, out)
    reread = Image.open(out)
    expected_mode = "RGB" if mode == "P" else reread.mode
    assert reread.mode == expected_mode and reread.size == source.size
    before = np.asarray(source.convert("RGB") if mode == "P" else source)
    after = np.asarray(reread)
    assert np.array_equal(after[~mask], before[~mask])


def test_odd_sized_photo_and_a_mask_of_the_wrong_size(tmp_path, inpainter):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
    mask = np.zeros((37, 53), bool)
    mask[10:20, 30:45] = True
    path = tmp_path / "odd.png"
    Image.fromarray(rgb).save(path)
    result = np.asarray(remove_from_photo(load_photo(path), mask, inpainter))
    assert result.shape == rgb.shape and np.array_equal(result[~mask], rgb[~mask])
    with pytest.raises(InputError, match="mask is 53x36, the photo is 53x37"):
        remove_from_photo(load_photo(path), mask[:36], inpainter)


def test_save_refuses_a_missing_directory_and_leaves_nothing(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        save_photo(Image.new("RGB", (4, 4)), tmp_path / "missing" / "out.png")
    assert list(tmp_path.iterdir()) == []
