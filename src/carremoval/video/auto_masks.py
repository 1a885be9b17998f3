"""Automatic car masks for a video: segment every k-th frame, carry the car probability along DIS optical flow to
the frames between, and choose which cars go (all, the largest one tracked over time, or the moving ones).

    source = auto_mask_source(segmenter.probabilities, AutoMaskSettings(cars="moving"))
    mask = source(index, frame)      # frames in order, 0, 1, 2, ...

Any segmenter works: `probability(rgb)` returns the HxW float P(car). The source streams (no look-ahead): on a
keyframe the new segmentation is blended with the probability carried from the frame before, and the mask is
thresholded with hysteresis against the previous (warped) mask, so its edge does not flicker. The flow is computed
from the current frame back to the previous one, on grey frames at most `flow_width` px wide; one flow per
frame serves the carrying, the tracking of the chosen car and the motion test of `moving`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from carremoval.masks import instance_labels
from carremoval.video.flow import PRESETS
from carremoval.video.mask_sources import MaskSource
from carremoval.video.metrics import warp

CAR_CHOICES = ("all", "largest", "moving")
MIN_BACKGROUND_PX = 50   # fewer background flow samples than this: the camera's motion is taken as the median
HOMOGRAPHY_RANSAC_PX = 1.0  # RANSAC inlier distance of the background fit (working px)

Probability = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class AutoMaskSettings:
    """How automatic video masks are made; sizes in px of the frame unless said otherwise."""

    every: int = 5                  # segment every k-th frame; the frames between get the carried probability
    cars: str = "moving"            # all | largest (one car, tracked) | moving (cars moving against the background;
                                    # the default for video: parked cars stay)
    keyframe_weight: float = 1.0    # on a keyframe: new segmentation x weight + carried probability x (1 - weight)
                                    # (DAVIS: 0.7 kept stale car pixels, precision 0.95 -> 0.85 on car-shadow, and
                                    # did not raise stability)
    high: float = 0.4               # hysteresis: above `high` is car; above `low` stays car where it was car
    low: float = 0.25               # (DAVIS, PASCAL 256: 0.5/0.4 -> 0.4/0.25 raised recall on every clip, e.g.
                                    # drift-straight 0.68 -> 0.76, precision >= 0.79)
    flow_width: int = 432           # the flow is computed on grey frames at most this wide (the remover's size;
                                    # DAVIS at 854 px: 216 lost the car's edge, 427 did not)
    flow_preset: str = "fast"       # DIS preset
    instance_gap_px: int = 8        # parts closer than this belong to one car (split by a pole or leaves)
    min_area: float = 0.001         # instances smaller than this share of the frame are dropped
    motion_threshold: float = 0.004  # moving: median motion against the background, as a share of the frame width
                                     # per frame (1.7 px at 432 wide)
    motion_memory: float = 0.8      # moving: weight of the carried motion evidence against the new frame's
    follow_tolerance: float = 0.015  # largest: new pixels join the followed car when their flow is this close to
                                     # its motion (share of the frame width per frame)
    keep_share: float = 0.5         # largest: a car found at less than this share of its carried area is taken
                                    # as hidden or missed, and the carried car stands in for it ...
    lost_frames: int = 10           # ... for at most this many frames; then the largest car is chosen anew

    def __post_init__(self) -> None:
        if self.cars not in CAR_CHOICES:
            raise ValueError(f"auto masks: cars must be one of {', '.join(CAR_CHOICES)}, got {self.cars!r}")
        if self.every < 1:
            raise ValueError(f"auto masks: every must be at least 1, got {self.every}")
        if not 0 <= self.low <= self.high <= 1:
            raise ValueError(f"auto masks: expected 0 <= low <= high <= 1, got low {self.low}, high {self.high}")
        if not 0 < self.keyframe_weight <= 1 or not 0 <= self.motion_memory < 1:
            raise ValueError("auto masks: keyframe_weight must be in (0, 1] and motion_memory in [0, 1)")
        if self.flow_preset not in PRESETS:
            raise ValueError(f"auto masks: flow preset {self.flow_preset!r}: expected one of {', '.join(PRESETS)}")
        if self.flow_width < 8:
            raise ValueError(f"auto masks: flow_width must be at least 8, got {self.flow_width}")
        if min(self.instance_gap_px, self.min_area, self.motion_threshold) < 0:
            raise ValueError("auto masks: sizes and thresholds must not be negative")


class AutoMasker:
    """The per-frame state of automatic masks: carried probability, previous mask, chosen car, motion evidence."""

    def __init__(self, probability: Probability, settings: AutoMaskSettings):
        self.probability = probability
        self.settings = settings
        self._dis = cv2.DISOpticalFlow_create(PRESETS[settings.flow_preset])
        self.segmenter_calls = 0
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame is a keyframe with nothing carried."""
        self._index = -1
        self._since_key = 0
        self._grey: np.ndarray | None = None
        self._prob: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._chosen: np.ndarray | None = None
        self._motion: np.ndarray | None = None
        self._lost = 0
        self._upcoming: np.ndarray | None = None

    def see_upcoming(self, frame: np.ndarray | None) -> None:
        """The frame after the next one asked for (None at the end): on a first frame, `moving` measures motion
        against it, since there is no frame before."""
        self._upcoming = frame

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        """The bool car mask of `frame`; a frame that does not follow the previous one starts afresh."""
        if index != self._index + 1 or (self._prob is not None and self._prob.shape != frame.shape[:2]):
            self.reset()
        self._index = index
        grey = working_grey(frame, self.settings.flow_width)
        flow = None if self._grey is None else self._dis.calc(grey, self._grey, None)  # current -> previous
        self._grey = grey
        full_flow = None if flow is None else upscale_flow(flow, frame.shape)
        prob = self._probability(frame, full_flow)
        carried = None if self._mask is None else warp(self._mask.astype(np.float32), full_flow) > 0.5
        mask = hysteresis(prob, carried, self.settings.low, self.settings.high)
        self._prob, self._mask = prob, mask
        labels, count = car_instances(mask, self.settings.instance_gap_px, self.settings.min_area)
        if self.settings.cars == "largest":
            return self._track_largest(labels, count, full_flow, carried)
        if self.settings.cars == "moving":
            if flow is None and self._upcoming is not None:  # a first frame: its motion against the next one
                flow = self._dis.calc(grey, working_grey(self._upcoming, self.settings.flow_width), None)
            return self._moving(labels, count, flow, full_flow, grey.shape)
        return labels > 0

    def _probability(self, frame: np.ndarray, full_flow: np.ndarray | None) -> np.ndarray:
        carried = None if full_flow is None or self._prob is None else warp(self._prob, full_flow)
        if carried is not None and self._since_key < self.settings.every - 1:
            self._since_key += 1
            return carried
        self._since_key = 0
        self.segmenter_calls += 1
        new = np.clip(np.asarray(self.probability(frame), dtype=np.float32), 0.0, 1.0)
        if new.shape != frame.shape[:2]:
            raise ValueError(f"the car probability is {new.shape}, the frame {frame.shape[:2]}")
        if carried is None:
            return new
        weight = self.settings.keyframe_weight
        return weight * new + (1.0 - weight) * carried

    def _track_largest(self, labels: np.ndarray, count: int, full_flow: np.ndarray | None,
                       carried: np.ndarray | None) -> np.ndarray:
        """One car followed over time: the car pixels under the chosen car of the frame before (carried along the
        flow), and the new car pixels of its instances that move with it (an affine fit of its flow) and were not
        another car before, so a car it touches is not swallowed. The largest instance when there is no car to
        follow (the first frame, or the car lost for `lost_frames`)."""
        before = None
        if self._chosen is not None and full_flow is not None:
            before = warp(self._chosen.astype(np.float32), full_flow) > 0.5
        if before is None or not before.any() or self._lost > self.settings.lost_frames:
            self._lost = 0
            self._chosen = largest_instance(labels, count)
            return self._chosen
        touched = np.bincount(labels[before], minlength=count + 1)[1:]
        areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        whole = pick_labels(labels, np.flatnonzero((touched >= 0.5 * areas) | (touched >= 0.1 * before.sum())) + 1,
                            count)
        others = np.zeros_like(before) if carried is None else carried & ~before  # the other cars, carried
        new = whole & ~before
        if new.any():  # new car pixels join only where they move with the followed car (not a car it touches)
            tolerance = self.settings.follow_tolerance * labels.shape[1]
            new &= moves_with(full_flow, before, new, tolerance)
        chosen = keep_touching((whole & before) | (new & ~others), before)
        if chosen.sum() >= self.settings.keep_share * before.sum():
            self._lost, self._chosen = 0, chosen
            return chosen
        # hidden (behind a tree) or missed by the segmenter: the car carried along the flow, for a while
        self._lost, self._chosen = self._lost + 1, before | chosen
        return self._chosen

    def _moving(self, labels: np.ndarray, count: int, flow: np.ndarray | None, full_flow: np.ndarray | None,
                small_shape: tuple[int, ...]) -> np.ndarray:
        """Instances whose median motion against the background's (a homography fit) exceeds the threshold,
        without their parts moving far less (a parked car touching a moving one in the picture), and the moving
        parts of still instances (a car merged in the picture with the barrier or the parked cars it passes); the
        evidence is averaged over time along the flow, and a car once moving stays until it is half below the
        threshold."""
        if flow is None:  # a single frame: no car is known to move
            self._motion = None
            self._chosen = np.zeros(labels.shape, bool)
            return self._chosen
        scale = flow.shape[1] / labels.shape[1]
        small_labels = cv2.resize(labels.astype(np.int32), (flow.shape[1], flow.shape[0]),
                                  interpolation=cv2.INTER_NEAREST)
        residual = motion_residual(flow, small_labels > 0) / (scale * labels.shape[1])  # frame widths per frame
        memory = self.settings.motion_memory
        motion = residual if self._motion is None else memory * warp(self._motion, flow) + (1 - memory) * residual
        self._motion = motion
        before = None
        if self._chosen is not None and full_flow is not None:
            before = warp(self._chosen.astype(np.float32), full_flow) > 0.5
        chosen = np.zeros(labels.shape, bool)
        min_part = self.settings.min_area * motion.size
        for instance in range(1, count + 1):
            inside = small_labels == instance
            if not inside.any():
                continue
            score = float(np.median(motion[inside]))
            threshold = self.settings.motion_threshold
            if before is not None and before[labels == instance].mean() > 0.5:
                threshold *= 0.5
            # moving: its parts but a parked car it touches in the picture (moving far less); still: its parts
            # moving at twice the threshold (DIS smears a passing car's motion onto a parked one it touches), when
            # they are as large as a car may be
            part = (motion > (max(0.5 * threshold, 0.4 * score) if score > threshold else 2 * threshold)) & inside
            part = cv2.morphologyEx(part.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            if score > threshold or part.sum() >= min_part:
                part = cv2.resize(part, (labels.shape[1], labels.shape[0]), interpolation=cv2.INTER_LINEAR) > 0
                chosen |= part & (labels == instance)
        self._chosen = chosen
        return chosen


def auto_mask_source(probability: Probability, settings: AutoMaskSettings | None = None,
                     describe: str = "automatic car masks") -> MaskSource:
    """A MaskSource of automatic car masks (frames in order; see the module docstring)."""
    masker = AutoMasker(probability, settings or AutoMaskSettings())
    source = MaskSource(describe, masker, see_upcoming=masker.see_upcoming)
    source.masker = masker  # type: ignore[attr-defined]  # for counters (segmenter calls) in benchmarks
    return source


def largest_instance(labels: np.ndarray, count: int) -> np.ndarray:
    """The largest labelled instance (all False without any)."""
    if count == 0:
        return np.zeros(labels.shape, bool)
    return labels == int(np.argmax(np.bincount(labels.ravel(), minlength=count + 1)[1:])) + 1


def moves_with(flow: np.ndarray, car: np.ndarray, where: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels of `where` whose flow is within `tolerance` of the car's motion (an affine fit of the flow on
    `car`, RANSAC, so a turning or nearing car fits; its median flow when the fit fails)."""
    ys, xs = np.nonzero(car)
    pick = np.linspace(0, len(ys) - 1, min(500, len(ys))).astype(np.int64)
    source = np.stack([xs[pick], ys[pick]], 1).astype(np.float32)
    target = source + flow[ys[pick], xs[pick]]
    affine = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=tolerance)[0] \
        if len(pick) >= 6 else None
    wy, wx = np.nonzero(where)
    if affine is None:
        expected = np.median(flow[ys[pick], xs[pick]], axis=0)
    else:
        points = np.stack([wx, wy], 1).astype(np.float32)
        expected = points @ affine[:, :2].T.astype(np.float32) + affine[:, 2].astype(np.float32) - points
    result = np.zeros(where.shape, bool)
    result[wy, wx] = np.linalg.norm(flow[wy, wx] - expected, axis=-1) < tolerance
    return result


def keep_touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The connected parts of `mask` that overlap `seed`."""
    count, parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask.astype(bool)
    hit = np.bincount(parts[seed & mask], minlength=count) > 0
    return pick_labels(parts, np.flatnonzero(hit), count - 1)


def working_grey(frame: np.ndarray, width: int) -> np.ndarray:
    """The frame in grey, resized to `width` px wide when it is wider."""
    height, frame_width = frame.shape[:2]
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if width >= frame_width:
        return grey
    size = (width, max(round(height * width / frame_width), 8))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def upscale_flow(flow: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Working-scale flow resized to the frame `shape`, in frame px."""
    height, width = shape[:2]
    if flow.shape[:2] == (height, width):
        return flow
    factor = np.array([width / flow.shape[1], height / flow.shape[0]], np.float32)
    return cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * factor


def pick_labels(labels: np.ndarray, chosen: np.ndarray, count: int) -> np.ndarray:
    """Where `labels` is one of the label numbers `chosen` (1..count)."""
    table = np.zeros(count + 1, bool)
    table[chosen] = True
    table[0] = False
    return table[labels]


def hysteresis(prob: np.ndarray, before: np.ndarray | None, low: float, high: float) -> np.ndarray:
    """Car where the probability is above `high`, or above `low` where the previous mask (warped) was car."""
    mask = prob > high
    if before is not None:
        mask |= before & (prob > low)
    return mask


def car_instances(mask: np.ndarray, gap: int, min_area: float) -> tuple[np.ndarray, int]:
    """Instance labels 1..n of the mask (parts closer than `gap` joined), without instances under `min_area`
    of the frame; renumbered so that 1..n are all present."""
    labels, count = instance_labels(mask, gap)
    if count == 0:
        return labels, 0
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    areas[0] = 0
    kept = np.flatnonzero(areas >= max(min_area * mask.size, 1))
    lookup = np.zeros(count + 1, np.int32)
    lookup[kept] = np.arange(1, len(kept) + 1)
    return lookup[labels], len(kept)


def motion_residual(flow: np.ndarray, cars: np.ndarray) -> np.ndarray:
    """Per pixel, how far the flow is from the background's motion (a RANSAC homography fit of the flow outside
    the dilated cars; the median background flow when too little background is seen), in working px."""
    background = ~cv2.dilate(cars.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ys, xs = np.nonzero(background)
    expected = np.zeros_like(flow)
    if len(ys) >= MIN_BACKGROUND_PX:
        pick = np.linspace(0, len(ys) - 1, min(1500, len(ys))).astype(np.int64)
        source = np.stack([xs[pick], ys[pick]], 1).astype(np.float32)
        target = source + flow[ys[pick], xs[pick]]
        homography, _ = cv2.findHomography(source, target, cv2.RANSAC, HOMOGRAPHY_RANSAC_PX, maxIters=500)
        if homography is not None and abs(np.linalg.det(homography)) > 1e-6:
            height, width = flow.shape[:2]
            grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), -1)
            moved = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(grid.shape)
            expected = moved - grid
        else:
            expected[:] = np.median(flow[ys[pick], xs[pick]], axis=0)
    elif len(ys):
        expected[:] = np.median(flow[ys, xs], axis=0)
    return np.linalg.norm(flow - expected, axis=-1).astype(np.float32)
