"""Temporal metrics (E_warp, flicker) and the numerical pieces under the remover (interpolation, flow completion,
seam correction)."""
from __future__ import annotations

import numpy as np
import pytest

from carremoval.io import read_rgb
from carremoval.blending import ring_around, seam_correct, smooth_fill
from carremoval.video.flow import FlowEstimator, FlowSettings, complete_flow, complete_pair
from carremoval.video.metrics import flicker, pair_flows, warp_error


@pytest.fixture(scope="module")
def panning(shared_data):
    """A camera pan over a real photo: 8 crops moving 3 px right and 1 px down per frame."""
    photo = read_rgb(shared_data / "photos/backgrounds/dpst_in20.png")
    return [np.ascontiguousarray(photo[10 + t: 130 + t, 20 + 3 * t: 180 + 3 * t]) for t in range(8)]


def test_e_warp_follows_motion_and_catches_flicker(panning):
    flows = pair_flows(panning)
    steady = warp_error(panning, flows)
    rng = np.random.default_rng(0)
    flickering = [np.clip(f.astype(int) + rng.integers(-20, 21), 0, 255).astype(np.uint8) for f in panning]
    assert steady < 0.002  # the pan itself is explained by the flow
    assert warp_error(flickering, flows) > 3 * steady
    region = [np.zeros(f.shape[:2], bool) for f in panning]
    for mask in region:
        mask[40:80, 60:120] = True
    assert flicker(flickering, flows, region) > 3 * flicker(panning, flows, region)
    assert np.isnan(warp_error(panning, flows, [np.zeros_like(m) for m in region]))


def test_smooth_fill_interpolates_a_ramp():
    ys, xs = np.mgrid[0:64, 0:80].astype(np.float32)
    ramp = np.dstack([xs, ys * 2])
    known = np.ones((64, 80), bool)
    known[20:44, 25:55] = False
    filled = smooth_fill(np.where(known[..., None], ramp, 1000), known)
    assert np.array_equal(filled[known], ramp[known])
    assert np.abs(filled[~known] - ramp[~known]).mean() < 2.0
    assert not smooth_fill(ramp, np.zeros_like(known)).any()


def camera_flows(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flow of a zoom-like camera motion, x' = 1.02 x + 3, y' = 1.01 y - 1 (non-constant)."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    forward = np.dstack([0.02 * xs + 3, 0.01 * ys - 1])
    backward = np.dstack([(xs - 3) / 1.02 - xs, (ys + 1) / 1.01 - ys])
    return forward, backward


def test_flow_completion_replaces_the_car_motion_by_the_camera_motion():
    camera, camera_back = camera_flows((90, 120))
    hole_a, hole_b = np.zeros((90, 120), bool), np.zeros((90, 120), bool)
    hole_a[30:60, 40:80] = True
    hole_b[30:60, 34:74] = True
    forward, backward = camera.copy(), camera_back.copy()
    forward[hole_a], backward[hole_b] = (-8, 0), (8, 0)  # the car moves the other way
    new_forward, new_backward = complete_pair(forward, backward, hole_a, hole_b)
    assert np.abs(new_forward[hole_a] - camera[hole_a]).max() < 0.1
    assert np.abs(new_backward[hole_b] - camera_back[hole_b]).max() < 0.1
    assert np.array_equal(new_forward[~hole_a], forward[~hole_a])
    assert np.array_equal(new_backward[~hole_b], backward[~hole_b])


def test_flow_completion_ignores_another_car_passing_the_hole():
    camera, camera_back = camera_flows((90, 120))
    hole = np.zeros((90, 120), bool)
    hole[40:70, 30:90] = True
    forward, backward = camera.copy(), camera_back.copy()
    forward[20:40, 50:110], backward[20:40, 25:85] = (-25, 0), (25, 0)  # a second car along the hole's top edge
    new_forward, new_backward = complete_pair(forward, backward, hole, hole)
    assert np.abs(new_forward[hole] - camera[hole]).max() < 0.5
    assert np.abs(new_backward[hole] - camera_back[hole]).max() < 0.5


def test_flow_completion_ignores_a_large_object_filling_the_ring():
    """A bus-sized object right above a hole on the road fills most of the ring around it (and is tracked by the
    camera: it does not move); the road along the hole's other edges, and the frame as a whole, move with the
    camera. The frame's motion explains the hole's edges better, so it wins."""
    shape = (240, 360)
    camera, camera_back = camera_flows(shape)
    hole = np.zeros(shape, bool)
    hole[190:230, 120:240] = True
    forward, backward = camera.copy(), camera_back.copy()
    forward[100:190, 60:300], backward[100:190, 60:300] = 0, 0
    forward[hole], backward[hole] = (-8, 0), (8, 0)
    new_forward, new_backward = complete_pair(forward, backward, hole, hole)
    assert np.abs(new_forward[hole] - camera[hole]).max() < 0.1
    assert np.abs(new_backward[hole] - camera_back[hole]).max() < 0.1


def test_flow_completion_keeps_the_surface_around_the_hole_when_the_frame_moves_otherwise():
    """The road around the hole moves unlike most of the frame (parallax): the ring's motion wins."""
    shape = (240, 360)
    camera, camera_back = camera_flows(shape)
    hole = np.zeros(shape, bool)
    hole[170:210, 120:240] = True
    forward, backward = camera.copy(), camera_back.copy()
    forward[140:], backward[140:] = (5, 2), (-5, -2)
    forward[hole], backward[hole] = (-8, 0), (8, 0)
    new_forward, new_backward = complete_pair(forward, backward, hole, hole)
    assert np.abs(new_forward[hole] - (5, 2)).max() < 0.1
    assert np.abs(new_backward[hole] - (-5, -2)).max() < 0.1


def test_completed_forward_and_backward_flows_undo_each_other():
    """DIS noise around the holes must not make the two directions disagree inside them: one surface motion is
    fitted for both, so a step into the next frame's hole and back returns to the start."""
    camera, camera_back = camera_flows((90, 120))
    rng = np.random.default_rng(0)
    forward = camera + rng.normal(0, 1.5, camera.shape).astype(np.float32)
    backward = camera_back + rng.normal(0, 1.5, camera.shape).astype(np.float32)
    hole_a, hole_b = np.zeros((90, 120), bool), np.zeros((90, 120), bool)
    hole_a[30:60, 40:80] = True
    hole_b[28:62, 44:84] = True
    new_forward, new_backward = complete_pair(forward, backward, hole_a, hole_b)
    ys, xs = np.nonzero(hole_a)
    tx, ty = xs + new_forward[ys, xs, 0], ys + new_forward[ys, xs, 1]
    landed = hole_b[np.rint(ty).astype(int), np.rint(tx).astype(int)]
    back = new_backward[np.rint(ty[landed]).astype(int), np.rint(tx[landed]).astype(int)]
    loop = new_forward[ys[landed], xs[landed]] + back
    assert landed.mean() > 0.8
    assert np.abs(loop).max() < 0.05  # separate fits per direction: about 1 px


def test_flow_completion_without_a_surface_motion_interpolates_smoothly():
    camera, _ = camera_flows((90, 120))
    hole = np.zeros((90, 120), bool)
    hole[30:60, 40:80] = True
    forward = np.where(hole[..., None], np.float32(50), camera)
    filled = complete_flow(forward, hole, None)
    assert np.abs(filled[hole] - camera[hole]).max() < 1.5
    assert np.array_equal(filled[~hole], forward[~hole])


def test_flow_frames_hide_what_is_in_the_hole(panning):
    """DIS reads the frame with the hole smoothly filled from around it: whatever the hole holds (a car, black,
    the truth) gives the same flow input, and the rest of the frame is untouched."""
    estimator = FlowEstimator(FlowSettings())
    frame = panning[0]
    hole = np.zeros(frame.shape[:2], bool)
    hole[40:80, 60:120] = True
    blacked = np.where(hole[..., None], np.uint8(0), frame)
    grey = estimator.grey(frame, hole)
    assert np.array_equal(grey, estimator.grey(blacked, hole))
    assert np.array_equal(grey[~hole], estimator.grey(frame)[~hole])
    assert grey[hole].min() > 0


def test_ring_around_is_the_band_within_a_distance_outside_the_hole():
    hole = np.zeros((40, 50), bool)
    hole[0:12, 15:30] = True  # touching the frame's top edge
    ring = ring_around(hole, 4)
    ys, xs = np.mgrid[0:40, 0:50]
    distance = np.hypot(np.clip(xs, 15, 29) - xs, np.clip(ys, 0, 11) - ys)
    assert not (ring & hole).any()
    assert ring[(distance > 0) & (distance <= 3.5)].all()
    assert not ring[distance > 4.5].any()
    assert not ring_around(np.zeros_like(hole), 4).any()


def test_seam_correction_removes_a_colour_offset():
    rng = np.random.default_rng(1)
    frame = rng.integers(60, 200, (50, 70, 3)).astype(np.uint8)
    hole = np.zeros((50, 70), bool)
    hole[15:35, 20:50] = True
    ring = np.zeros_like(hole)
    ring[12:38, 17:53] = True
    ring &= ~hole
    fill = frame.astype(np.float32) - 25  # the source frame was darker
    corrected = seam_correct(frame, fill, hole, ring)
    assert np.abs(corrected[hole] - frame[hole]).mean() < 1.0
    assert np.array_equal(corrected[~hole], fill[~hole])
