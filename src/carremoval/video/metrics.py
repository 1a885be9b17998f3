"""Temporal quality of a video: flow warping error E_warp (occlusion-checked DIS flow) and flicker in the hole.

E_warp (Lai et al., 2018): for each pair of neighbouring frames, frame t+1 is warped back onto frame t with the
flow t -> t+1 and compared with frame t (mean squared error of RGB in [0, 1]) over the pixels that pass the
forward-backward occlusion check; averaged over pairs. The flow comes from `flow_frames` (for ground-truth
evaluation: the original video, as in the paper) or from the video itself.
"""
from __future__ import annotations

import functools

from typing import Sequence

import cv2
import numpy as np

from carremoval.video.flow import PRESETS, in_frame

FB_ALPHA, FB_BETA = 0.01, 0.5


def dis_flow(frame_from: np.ndarray, frame_to: np.ndarray) -> np.ndarray:
    """Full-resolution DIS flow (medium preset) between two RGB frames."""
    dis = cv2.DISOpticalFlow_create(PRESETS["medium"])
    return dis.calc(cv2.cvtColor(frame_from, cv2.COLOR_RGB2GRAY), cv2.cvtColor(frame_to, cv2.COLOR_RGB2GRAY), None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at x + flow(x) (bilinear, 0 outside): brings the frame the flow points to onto this one."""
    grid_x, grid_y = _grid(flow.shape[0], flow.shape[1])
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@functools.lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (read-only, shared between calls on frames of one size)."""
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


def non_occluded(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels whose forward flow is undone by the backward flow where it lands, and that stay in the frame."""
    back = warp(backward, forward)
    loop = ((forward + back) ** 2).sum(-1)
    size = (forward ** 2).sum(-1) + (back ** 2).sum(-1)
    height, width = forward.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    target_x, target_y = grid_x + forward[..., 0], grid_y + forward[..., 1]
    return in_frame(target_x, target_y, forward.shape) & (loop < FB_ALPHA * size + FB_BETA)


def pair_flows(flow_frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(flow t -> t+1, valid pixels of t) for each neighbouring pair; compute once and reuse across videos."""
    flows = []
    for current, following in zip(flow_frames, flow_frames[1:]):
        forward, backward = dis_flow(current, following), dis_flow(following, current)
        flows.append((forward, non_occluded(forward, backward)))
    return flows


def warp_error(frames: Sequence[np.ndarray], flows: list[tuple[np.ndarray, np.ndarray]],
               regions: Sequence[np.ndarray] | None = None) -> float:
    """E_warp of `frames` given `pair_flows`, optionally only over `regions[t]` (e.g. the hole of frame t)."""
    errors = []
    for t, (forward, valid) in enumerate(flows):
        use = valid if regions is None else valid & regions[t]
        if not use.any():
            continue
        warped = warp(frames[t + 1].astype(np.float32) / 255.0, forward)
        diff = ((frames[t].astype(np.float32) / 255.0 - warped) ** 2).sum(-1) / 3.0
        errors.append(float(diff[use].mean()))
    return float(np.mean(errors)) if errors else float("nan")


def flicker(frames: Sequence[np.ndarray], flows: list[tuple[np.ndarray, np.ndarray]],
            regions: Sequence[np.ndarray]) -> float:
    """Mean absolute brightness change (0-255) of the hole between flow-aligned neighbouring frames."""
    changes = []
    for t, (forward, valid) in enumerate(flows):
        use = valid & regions[t]
        if not use.any():
            continue
        luma_now = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY).astype(np.float32)
        luma_next = warp(cv2.cvtColor(frames[t + 1], cv2.COLOR_RGB2GRAY).astype(np.float32), forward)
        changes.append(float(np.abs(luma_now - luma_next)[use].mean()))
    return float(np.mean(changes)) if changes else float("nan")
