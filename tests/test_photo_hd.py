"""The full-resolution photo benchmark: its cases (real backgrounds at their size, DAVIS frames with borrowed holes)
and its scoring beside the baselines and the blur-plus-noise control."""
from __future__ import annotations

import numpy as np
import pytest

from carremoval.evaluation import evaluate_hd
from carremoval.inpainters import navier_stokes, patchmatch, telea
from carremoval.io import read_mask, read_rgb
from carremoval.masks import dilate
from carremoval.photo_hd import background_cases, davis_frame_cases, frame_indices
from carremoval.synthesis.options import RenderOptions
from carremoval.synthesis.sources import Source


@pytest.fixture(scope="module")
def davis_cases(shared_data):
    davis = shared_data / "videos/davis"
    clip = {"name": "car-shadow", "frames": davis / "car-shadow/frames", "own_masks": davis / "car-shadow/masks",
            "holes_from": davis / "drift-straight/masks"}
    return clip, davis_frame_cases(clip, limit=40, samples=3)


def test_davis_frames_keep_their_size_and_the_hole_avoids_the_frame_s_own_car(davis_cases):
    clip, cases = davis_cases
    assert [case.pair_id for case in cases] == ["car-shadow_00000", "car-shadow_00020", "car-shadow_00039"]
    for case in cases:
        index = int(case.pair_id.split("_")[-1])
        frame = read_rgb(clip["frames"] / f"{index:05d}.jpg")
        own = read_mask(clip["own_masks"] / f"{index:05d}.png")
        assert case.target.shape == (480, 854, 3) and np.array_equal(case.target, frame)
        assert case.mask.sum() > 1000 and not (case.mask & dilate(own, 10)).any()
        assert (case.input[case.mask] == 0).all() and np.array_equal(case.input[~case.mask], frame[~case.mask])


def test_frames_are_spread_over_the_clip():
    assert frame_indices(40, 35, 4) == [40, 51, 63, 74]
    assert frame_indices(0, 2, 4) == [0, 1]


def test_backgrounds_keep_their_own_size_with_cars_pasted_at_that_size(shared_data):
    backgrounds = [Source("road", "road", shared_data / "photos/backgrounds/dpst_in32.png")]
    cutouts = [Source(name, name, shared_data / "cutouts" / f"{name}.png")
               for name in ("rembg_car-1", "davis_car-shadow_00013")]
    cases = background_cases(backgrounds, cutouts, per_background=3, seed=7, options=RenderOptions(), split="test")
    truth = read_rgb(backgrounds[0].path)
    assert len(cases) == 3
    for case in cases:
        assert np.array_equal(case.target, truth)
        assert np.array_equal(case.input[~case.mask], truth[~case.mask])
        assert 0.01 < case.mask.mean() < 0.6
        assert not np.array_equal(case.input[case.mask], truth[case.mask])
    again = background_cases(backgrounds, cutouts, per_background=3, seed=7, options=RenderOptions(), split="test")
    assert all(np.array_equal(a.input, b.input) for a, b in zip(cases, again))


@pytest.mark.slow
def test_hd_scores_put_the_baselines_beside_the_control_and_write_crops(davis_cases, tmp_path):
    _, cases = davis_cases
    methods = {"patchmatch": patchmatch(), "telea": telea(), "ns": navier_stokes()}
    scores = evaluate_hd(cases[:2], methods, tmp_path)
    assert scores["cases"] == 2
    assert set(scores) == {"cases", "patchmatch", "telea", "ns", "control"}
    for name in methods:
        assert scores[name]["median_seconds"] > 0
    assert scores["control"]["hole_swd"] < scores["telea"]["hole_swd"]
    assert scores["patchmatch"]["hole_swd"] < scores["telea"]["hole_swd"]
    crops = sorted(path.name for path in tmp_path.iterdir())
    assert crops == ["car-shadow_00000.png", "car-shadow_00020.png"]
    crop = read_rgb(tmp_path / crops[0])
    assert crop.shape[1] > 4 * crop.shape[0] * 0.5   # input | patchmatch | telea | truth side by side
