"""The evaluate stage's measurements on real data: photo pairs, a ground-truth clip, a real DAVIS removal."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from carremoval.evaluation import evaluate_photos, ground_truth_clip, load_clip, real_removal, target_checks
from carremoval.inpainters import navier_stokes, telea
from carremoval.io import read_rgb, write_png
from carremoval.video import TemporalConfig, probe
from carremoval.video.evaluation import borrowed_masks

BACKGROUNDS = ["dpst_in32.png", "dpst_tar52.png", "libcom_source_1.jpg"]


def blank_out(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A crude 'method': paints the hole grey (far worse than Telea on any real photo)."""
    result = image.copy()
    result[mask] = 128
    return result


@pytest.fixture(scope="module")
def pair_split(tmp_path_factory, shared_data):
    """Three real backgrounds as (input = target with a car-sized grey hole, target, mask) pairs on disk."""
    split = tmp_path_factory.mktemp("pairs") / "test"
    for number, name in enumerate(BACKGROUNDS):
        target = read_rgb(shared_data / "photos/backgrounds" / name)[:240, :360]
        mask = np.zeros(target.shape[:2], bool)
        mask[150:210, 100 + 20 * number:220 + 20 * number] = True
        write_png(split / "input" / f"{number:03d}.png", blank_out(target, mask))
        write_png(split / "target" / f"{number:03d}.png", target)
        write_png(split / "mask" / f"{number:03d}.png", mask.astype(np.uint8) * 255)
    return split


def test_photo_scores_rank_the_methods_and_strips_are_written(pair_split, tmp_path):
    methods = {"generator": blank_out, "telea": telea(), "ns": navier_stokes()}
    scores = evaluate_photos(pair_split, methods, tmp_path / "strips", report_count=2)
    assert scores["telea"]["pairs"] == 3
    assert scores["telea"]["hole_psnr"] > scores["generator"]["hole_psnr"] + 3
    assert scores["telea"]["hole_l1"] < scores["generator"]["hole_l1"]
    assert sorted(p.name for p in (tmp_path / "strips").iterdir()) == ["000.png", "001.png"]
    strip = read_rgb(tmp_path / "strips/000.png")
    assert strip.shape == (240, 5 * 360 + 4 * 4, 3)
    checks = target_checks(scores, {}, [])
    assert checks["photo_target_met"] is False and checks["photo_hole_psnr_margin_db"] < -3


@pytest.mark.slow
def test_ground_truth_clip_on_the_static_road(shared_data):
    clip = {"frames": shared_data / "videos/static/video.avi",
            "holes_from": shared_data / "videos/davis/drift-straight/masks"}
    result = ground_truth_clip(clip, (216, 120), 20, {"telea": telea()}, telea(), TemporalConfig(dilate_px=0))
    assert set(result) == {"temporal", "telea", "original"}
    assert result["temporal"]["hole_psnr"] > result["telea"]["hole_psnr"] + 3
    checks = target_checks({"generator": {"hole_psnr": 30}, "telea": {"hole_psnr": 27}}, {"static": result},
                           ["telea"])
    assert checks["photo_target_met"] and checks["video_target_met"]


def test_clips_can_start_later_in_a_folder_or_a_video(shared_data):
    """Validation clips are later frames of the same sequences: `start` skips frames of a folder or a video."""
    folder = shared_data / "videos/davis/bus/frames"
    later = load_clip(folder, (216, 120), 3, start=40)
    expected = cv2.resize(read_rgb(folder / "00040.jpg"), (216, 120), interpolation=cv2.INTER_AREA)
    assert len(later) == 3 and np.array_equal(later[0], expected)
    video = shared_data / "videos/static/video.avi"
    assert np.array_equal(load_clip(video, (216, 120), 2, start=5)[0], load_clip(video, (216, 120), 6)[5])
    masks = shared_data / "videos/davis/bus/masks"
    assert np.array_equal(borrowed_masks(masks, 2, (216, 120), start=40)[1], borrowed_masks(masks, 42, (216, 120))[41])


@pytest.mark.slow
def test_real_removal_writes_a_side_by_side_video(shared_data, tmp_path):
    report = tmp_path / "car-shadow.mp4"
    result = real_removal(shared_data / "videos/davis/car-shadow", telea(), TemporalConfig(), limit=10,
                          report=report)
    assert result["frames"] == 10 and 0 < result["propagated_fraction"] <= 1
    assert np.isfinite(result["e_warp_ratio"]) and np.isfinite(result["flicker_hole"])
    info = probe(report)
    assert (info.width, info.height) == (2 * 854 + 4, 480)
