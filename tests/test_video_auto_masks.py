"""Automatic video car masks: keyframe segmentation carried along the flow, cars=all|largest|moving, on synthetic
clips with a known truth (a panning textured background, red "cars") and on real DAVIS frames with ESPNetv2."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from carremoval.masks import dilate
from carremoval.segmentation_eval import read_davis, recall_precision
from carremoval.video.auto_masks import AutoMaskSettings, auto_mask_source

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS = SHARED / "models" / "espnetv2"
CITY = MODELS / "espnetv2_s_2.0_city_1024x512.pth"
DAVIS = SHARED / "data" / "videos" / "davis"

HEIGHT, WIDTH = 240, 432  # the remover's working size


def car_paint(height: int, width: int, seed: int) -> np.ndarray:
    """A red car's pixels with details of its own (darker and lighter panels, red 205..255, green 0..60), so the
    flow can follow it."""
    rng = np.random.default_rng(seed)
    shade = np.zeros((height, width), np.float32)
    for _ in range(12):
        top, left = rng.integers(0, height), rng.integers(0, width)
        shade[top:top + rng.integers(4, 14), left:left + rng.integers(6, 20)] = rng.uniform(0, 1)
    return np.stack([205 + 50 * shade, 60 * shade, np.full_like(shade, 10)], -1).astype(np.uint8)


def red_probability(rgb: np.ndarray) -> np.ndarray:
    """A perfect 'segmenter' for the synthetic clips: P(car) = 1 on the red car pixels."""
    return ((rgb[..., 0] >= 200) & (rgb[..., 1] <= 60) & (rgb[..., 2] <= 20)).astype(np.float32)


def texture(seed: int = 0) -> np.ndarray:
    """A wide smooth random texture (green-blue, never red) that the camera pans over."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (HEIGHT, WIDTH * 3)).astype(np.float32), (0, 0), 2.0)
    noise = cv2.normalize(noise, None, 30, 180, cv2.NORM_MINMAX)
    return np.stack([noise * 0.3, noise, 255 - noise], -1).astype(np.uint8)


def clip(frames: int, cars: list[tuple[int, int, int, int, float, float]], pan: float = 3.0
         ) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Frames of a camera panning right by `pan` px a frame over a texture, with red boxes (x, y, w, h, vx, vy)
    given in world coordinates (vx, vy world px a frame: 0 = parked); and each car's true mask per frame."""
    world = texture()
    shots, truths = [], []
    for t in range(frames):
        offset = pan * t
        shift = np.float32([[1, 0, -offset], [0, 1, 0]])
        frame = cv2.warpAffine(world, shift, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
        masks = []
        for number, (x, y, w, h, vx, vy) in enumerate(cars):
            left, top = round(x + vx * t - offset), round(y + vy * t)
            paint = np.zeros((HEIGHT + 2 * h, WIDTH + 2 * w, 3), np.uint8)
            inside = np.zeros(paint.shape[:2], bool)
            paint[top + h:top + 2 * h, left + w:left + 2 * w] = car_paint(h, w, number + 1)
            inside[top + h:top + 2 * h, left + w:left + 2 * w] = True
            mask = inside[h:h + HEIGHT, w:w + WIDTH]
            frame[mask] = paint[h:h + HEIGHT, w:w + WIDTH][mask]
            masks.append(mask)
        shots.append(frame)
        truths.append(masks)
    return shots, truths


def run(source, frames: list[np.ndarray]) -> list[np.ndarray]:
    return [source(index, frame) for index, frame in enumerate(frames)]


def test_no_car_gives_empty_masks_in_every_mode():
    frames, _ = clip(8, [])
    for cars in ("all", "largest", "moving"):
        source = auto_mask_source(lambda rgb: np.zeros(rgb.shape[:2], np.float32), AutoMaskSettings(cars=cars))
        for mask in run(source, frames):
            assert mask.shape == (HEIGHT, WIDTH) and mask.dtype == bool and not mask.any()


def test_keyframes_only_call_the_segmenter_and_carried_masks_follow_the_cars():
    frames, truths = clip(12, [(120, 80, 80, 50, 0.0, 0.0), (300, 120, 60, 40, 6.0, 1.0)])
    source = auto_mask_source(red_probability, AutoMaskSettings(cars="all", every=5))
    masks = run(source, frames)
    assert source.masker.segmenter_calls == 3  # frames 0, 5, 10
    for t in (3, 4, 8, 9):  # carried frames, furthest from their keyframe
        truth = truths[t][0] | truths[t][1]
        recall, precision = recall_precision(masks[t], truth)
        assert recall > 0.97 and precision > 0.9, (t, recall, precision)


def test_moving_keeps_parked_cars_under_a_panning_camera():
    parked, driving = (60, 100, 90, 56, 0.0, 0.0), (240, 40, 80, 48, 8.0, 0.0)
    frames, truths = clip(16, [parked, driving], pan=4.0)
    masks = run(auto_mask_source(red_probability, AutoMaskSettings(cars="moving")), frames)
    assert not masks[0].any()  # nothing is known to move before the second frame
    for t in range(1, 16):
        on_parked = masks[t][truths[t][0]].mean()
        recall, precision = recall_precision(masks[t], truths[t][1])
        assert on_parked < 0.05 and recall > 0.97 and precision > 0.8, (t, on_parked, recall, precision)


def test_moving_finds_a_car_the_camera_follows():
    """The camera pans with the car: in the picture it stands still, the background moves."""
    frames, truths = clip(12, [(80, 80, 80, 50, 4.0, 0.0), (240, 140, 60, 40, 0.0, 0.0)], pan=4.0)
    masks = run(auto_mask_source(red_probability, AutoMaskSettings(cars="moving")), frames)
    for t in range(1, 12):
        assert masks[t][truths[t][0]].mean() > 0.9 and masks[t][truths[t][1]].mean() < 0.05, t


def test_largest_keeps_the_same_car_when_another_grows_larger():
    """Car A is the larger at first; car B drives in and ends larger, but the tracked car stays A."""
    frames, truths = clip(14, [(40, 60, 80, 60, 4.0, 0.0), (410, 20, 180, 100, -4.0, 0.0)], pan=0.0)
    # B is cut by the frame's right edge at first (small), fully in view later (larger than A)
    assert truths[0][1].sum() < truths[0][0].sum() < truths[-1][1].sum()
    masks = run(auto_mask_source(red_probability, AutoMaskSettings(cars="largest", every=3)), frames)
    for t, mask in enumerate(masks):
        assert mask[truths[t][0]].mean() > 0.9 and not mask[truths[t][1] & ~dilate(truths[t][0], 2)].any(), t


def test_settings_are_checked():
    with pytest.raises(ValueError, match="cars"):
        AutoMaskSettings(cars="parked")
    with pytest.raises(ValueError, match="every"):
        AutoMaskSettings(every=0)
    with pytest.raises(ValueError, match="low"):
        AutoMaskSettings(low=0.6, high=0.5)


@pytest.fixture(scope="module")
def city_probability():
    if not CITY.is_file():
        pytest.skip(f"{CITY} is missing (ESPNetv2 weights live in ../shared/models)")
    from carremoval.segmentation import build_segmenter

    # Cityscapes at its training size: it sees car-shadow's parked cars (PASCAL VOC, the video default, does not)
    return build_segmenter({"model": "espnetv2_city", "weights": str(MODELS), "device": "cpu",
                            "classes": ["car", "truck", "bus"]}).probability


def davis_frames(sequence: str, limit: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if not (DAVIS / sequence).is_dir():
        pytest.skip(f"{DAVIS / sequence} is missing")
    return read_davis(DAVIS / sequence, limit)


def test_carried_masks_overlap_the_davis_car(city_probability):
    frames, truths = davis_frames("car-shadow", 10)
    settings = AutoMaskSettings(cars="largest", every=5)
    source = auto_mask_source(city_probability, settings)
    masks = run(source, frames)
    assert source.masker.segmenter_calls == 2
    for t in (1, 2, 3, 4, 6, 7, 8, 9):
        recall, precision = recall_precision(masks[t], truths[t])
        assert recall > 0.95 and precision > 0.8, (t, recall, precision)


def test_moving_leaves_the_parked_cars_of_car_shadow(city_probability):
    """car-shadow: the Panda drives past parked cars; `all` takes the parked cars too, `moving` only the Panda."""
    frames, truths = davis_frames("car-shadow", 10)
    every = run(auto_mask_source(city_probability, AutoMaskSettings(cars="all", every=5)), frames)
    moving = run(auto_mask_source(city_probability, AutoMaskSettings(cars="moving", every=5)), frames)
    for t in range(3, 10):
        near = dilate(truths[t], 15)
        assert every[t][~near].sum() > 2000  # the parked cars are found as cars
        assert moving[t][~near].sum() < 0.1 * every[t][~near].sum(), t  # DIS smears the Panda onto the car behind
        assert moving[t][truths[t]].mean() > 0.9, t


def test_moving_finds_a_car_merged_with_the_barrier_it_passes(city_probability):
    """drift-straight: the drifting car touches the tyre barrier and the banners behind it in the picture, and the
    segmenter takes those too: one large instance that mostly stands still. Its moving part is the car."""
    frames, truths = davis_frames("drift-straight", 20)
    moving = run(auto_mask_source(city_probability, AutoMaskSettings(cars="moving", every=5)), frames)
    for t in range(8, 20):   # measured: recall 0.84-0.97, precision 0.52-1.0 (before: nothing in 10 of these)
        recall, precision = recall_precision(moving[t], truths[t])
        assert recall > 0.75 and precision > 0.45, (t, recall, precision)
