"""Mask sources: a folder of PNGs, one PNG for all frames, a function; size and count checks; dilation, shadow."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from carremoval.io import InputError
from carremoval.masks import prepare_mask, shadow_extend
from carremoval.video.mask_sources import mask_from_file, mask_source, masks_from_dir, masks_from_function

DAVIS = "videos/davis/car-shadow"


def frame_like(height=480, width=854):
    return np.zeros((height, width, 3), np.uint8)


def test_folder_of_real_masks_in_name_order(shared_data):
    source = masks_from_dir(shared_data / DAVIS / "masks")
    assert source.expected_frames == 40
    first = source(0, frame_like())
    expected = np.asarray(Image.open(shared_data / DAVIS / "masks/00000.png")) > 127
    assert first.dtype == bool and np.array_equal(first, expected)
    assert not np.array_equal(source(39, frame_like()), first)
    source.check_count(40)


def test_count_mismatch_is_an_error_naming_the_folder(shared_data):
    source = masks_from_dir(shared_data / DAVIS / "masks")
    with pytest.raises(InputError, match="car-shadow/masks: 40 masks, but the video has more frames"):
        source(40, frame_like())
    with pytest.raises(InputError, match="40 masks for a video of 39 frames"):
        source.check_count(39)


def test_size_mismatch_names_the_mask_file(shared_data, tmp_path):
    with pytest.raises(InputError, match=r"00000.png: mask is 854x480, the frame is 432x240"):
        masks_from_dir(shared_data / DAVIS / "masks")(0, frame_like(240, 432))
    single = mask_from_file(shared_data / DAVIS / "masks/00005.png")
    with pytest.raises(InputError, match=r"00005.png: mask is 854x480, the frame is 855x480"):
        single(3, frame_like(480, 855))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png: not a readable image"):
        mask_from_file(broken)


def test_one_file_for_every_frame_and_dispatch(shared_data):
    path = shared_data / DAVIS / "masks/00005.png"
    single = mask_source(path)
    assert single.expected_frames is None
    assert np.array_equal(single(0, frame_like()), single(1000, frame_like()))
    assert mask_source(shared_data / DAVIS / "masks").expected_frames == 40


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no PNG masks"):
        masks_from_dir(tmp_path)
    with pytest.raises(InputError, match="mask folder not found"):
        masks_from_dir(tmp_path / "nope")


def test_function_masks_are_checked_too():
    source = masks_from_function(lambda index, frame: np.ones(frame.shape[:2], bool), "segmenter")
    assert source(7, frame_like(10, 12)).all()
    wrong = masks_from_function(lambda index, frame: np.ones((3, 3), bool), "segmenter")
    with pytest.raises(InputError, match="segmenter: the mask for frame 2 is 3x3, the frame is 12x10"):
        wrong(2, frame_like(10, 12))


def test_dilation_and_shadow_margin_geometry():
    mask = np.zeros((60, 60), bool)
    mask[20:30, 20:30] = True
    grown = prepare_mask(mask, dilate_px=3)
    assert grown[17, 25] and grown[32, 25] and not grown[16, 25] and not grown[33, 25]
    assert not grown[17, 17]  # a disc, not a square
    shadow = shadow_extend(mask, 8)
    assert shadow[37, 25] and not shadow[38, 25]   # 8 px below the car
    assert not shadow[12, 25]                       # nothing above it
    assert shadow[37, 33] and not shadow[37, 34]    # 4 px to each side
    assert np.array_equal(prepare_mask(mask), mask)
