"""The streaming temporal remover: chunks of frames with overlap, flow propagation, one keyframe fill, seams.

Frames are buffered in windows of `chunk_frames`. A window starts with `overlap_frames` frames that were already
written (their output is final: they are sources, fully known, so what was made up before is carried on and
chunk boundaries do not jump) and ends with `overlap_frames` look-ahead frames that are only sources (they are
written by the next window). Memory holds one window, whatever the video's length.
"""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np

from carremoval.inpainters import Inpainter
from carremoval.io import InputError
from carremoval.masks import crop_slices, dilate, prepare_mask, small_parts, thin_parts
from carremoval.shadow import (
    ShadowSettings, attached_change, darker_than_own_ground, effects_region, shadow_mask, shadow_search_region,
    shadow_where_darker,
)
from carremoval.blending import nearest_values, remap_points, ring_around, seam_correct, smooth_fill
from carremoval.video.flow import FlowEstimator, FlowSettings, global_motion, in_frame, sample_flow
from carremoval.video.propagation import Pointers, Window, fill_targets, make_targets, propagate
from carremoval.video.static import BackgroundModel, camera_motion


SHADOW_MODES = ("auto", "off")
THREADS = 4   # a window's independent pieces of work (flows, fills, shadows) run in this many threads at most
SPECK_SHARE = 0.0005   # what is left in a frame in pieces smaller than this share of it is interpolated, not inpainted
                       # (hundreds of specks along the flow's seams: one inpainter call each made a 972x540 clip
                       # run at 0.3 frames/s)
CRACK_PX = 5           # ... and so are the cracks narrower than this that the propagation leaves across a large hole
                       # (car-roundabout: 11,000 px of thin arcs beside a 12,000 px blob made the inpainter's crop the
                       # whole frame, and the blob a blocky smear)


@dataclass(frozen=True)
class TemporalConfig:
    """Parameters of video removal (params.yaml section `remove`, or defaults)."""

    chunk_frames: int = 48        # frames per window (memory is about this many frames)
    overlap_frames: int = 8       # frames shared with the window before (written) and after (look-ahead)
    dilate_px: int = 7            # grow each car mask by this many pixels
    shadow_margin: int = 0        # also take this many pixels below the car (its ground shadow)
    ring_px: int = 3              # width of the band outside the hole used to match colours at the seam
    flow_method: str = "dis"      # dis (OpenCV) | raft_small | raft_large (torchvision, needs pretrained weights)
    flow_weights: str | None = "DEFAULT"  # RAFT weights: DEFAULT (torchvision's, torch hub cache) | a .pth file
    device: str = "auto"          # where RAFT runs: auto | cpu | cuda
    flow_preset: str = "medium"   # DIS preset: ultrafast | fast | medium
    flow_max_width: int = 640     # flow is computed on frames scaled down to at most this width
    fb_alpha: float = 0.01        # forward-backward consistency: relative tolerance
    fb_beta: float = 0.5          # forward-backward consistency: absolute tolerance (flow px^2)
    flow_margin: int = 12         # flow is re-estimated this far (working-scale px) around each hole
    static_motion_px: float = 0.2  # a window whose median background motion is below this is a fixed camera
    max_keyframes: int = 4        # inpainter calls per window before the rest is filled frame by frame
    smooth_residual: float = 0.005  # what is left in a frame, up to this share of it, is interpolated, not inpainted
    temporal_smoothing: float = 0.7  # weight of the previous output, carried along the flow, in each hole (0 = off)
    crf: int = 18                 # H.264 quality of .mp4/.mov/.m4v output (lower is better, 0-51)
    lossless: bool = False        # FFV1, bit-exact (the output must be .mkv; .mkv is always lossless)
    shadow: str = "auto"          # auto: the hole also takes each car's ground shadow (pixels beside the car darker
                                  # than the background the other frames show there) | off: the car mask only

    def __post_init__(self) -> None:
        if self.shadow not in SHADOW_MODES:
            raise ValueError(f"shadow ({self.shadow!r}) must be one of {', '.join(SHADOW_MODES)}")
        if self.chunk_frames <= 2 * self.overlap_frames or self.overlap_frames < 1:
            raise ValueError(f"chunk_frames ({self.chunk_frames}) must exceed twice overlap_frames "
                             f"({self.overlap_frames}), and overlap_frames must be at least 1")
        if min(self.dilate_px, self.shadow_margin, self.max_keyframes, self.crf) < 0 or self.ring_px < 1:
            raise ValueError("dilate_px, shadow_margin, max_keyframes and crf must be >= 0 and ring_px >= 1")
        if not 0 <= self.temporal_smoothing < 1:
            raise ValueError(f"temporal_smoothing ({self.temporal_smoothing}) must be in [0, 1)")
        if self.flow_max_width < 16:
            raise ValueError(f"flow_max_width ({self.flow_max_width}) must be at least 16")
        self.flow_settings(self.flow_max_width)  # validates the other flow settings

    def flow_settings(self, width: int) -> FlowSettings:
        """Flow settings for frames `width` pixels wide."""
        scale = min(1.0, self.flow_max_width / width)
        return FlowSettings(method=self.flow_method, weights=self.flow_weights, device=self.device,
                            preset=self.flow_preset, scale=scale, fb_alpha=self.fb_alpha, fb_beta=self.fb_beta,
                            margin=self.flow_margin)

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> TemporalConfig:
        """Build from a params mapping; unknown keys are an error (a typo should not pass silently)."""
        params = dict(params or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise InputError(f"params: unknown video removal setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(names))}")
        try:
            return cls(**params)
        except (TypeError, ValueError) as err:
            raise InputError(f"params: bad video removal settings ({err})") from None


@dataclass
class RemovalStats:
    """What the remover did, summed over the frames written."""

    frames: int = 0
    hole_pixels: int = 0
    propagated_pixels: int = 0     # filled with background seen in another frame
    hallucinated_pixels: int = 0   # made up by the inpainter (once per keyframe, then carried)
    windows: int = 0
    static_windows: int = 0
    keyframes: int = 0
    frame_fills: int = 0           # inpainter calls on single frames for what could not be carried
    smooth_fills: int = 0          # single frames whose last few pixels were interpolated from around them
    shadow_pixels: int = 0         # hole pixels added for the cars' shadows (shadow auto)

    def to_dict(self) -> dict[str, float]:
        stats = dataclasses.asdict(self)
        holes = max(self.hole_pixels, 1)
        stats["propagated_fraction"] = self.propagated_pixels / holes
        stats["hallucinated_fraction"] = self.hallucinated_pixels / holes
        stats["static_camera"] = self.windows > 0 and 2 * self.static_windows > self.windows
        return stats


@dataclass
class _Frame:
    index: int
    image: np.ndarray
    hole: np.ndarray
    grey: np.ndarray
    small_hole: np.ndarray
    body: np.ndarray | None = None       # shadow auto: the car's hole; `hole` is then where a shadow may be too,
                                         # until the frame is written (`hole` is then what was replaced)
    output: np.ndarray | None = None     # set once written: the frame is then a fully known source
    made_up: np.ndarray | None = None    # pixels of the output the inpainter made up


@dataclass
class _Fill:
    """A window frame's fill: colours on the hole (float) and where they come from."""

    colours: np.ndarray
    filled: np.ndarray
    real: np.ndarray


class TemporalRemover:
    """Push frames and masks in; get finished frames out, in order, `overlap_frames` late.

    With shadow auto, each car's hole first spans where its shadow may fall; that whole region is filled from
    the other frames (where it is farther from the car), and only the pixels the fill shows to be shadow (darker
    than the background, its chromaticity kept, attached to the car) are replaced. `on_hole(index, hole)` is
    told, for each frame written, the hole actually replaced.
    """

    def __init__(self, inpaint: Inpainter, config: TemporalConfig, stats: RemovalStats | None = None,
                 on_hole: Callable[[int, np.ndarray], None] | None = None,
                 shadow_settings: ShadowSettings | None = None):
        self.inpaint = inpaint
        self.on_hole = on_hole
        self.shadow_settings = shadow_settings or ShadowSettings()
        self.config = config
        self.stats = stats if stats is not None else RemovalStats()
        self.flow: FlowSettings | None = None       # set from the first frame's width
        self.estimator: FlowEstimator | None = None
        self.background = BackgroundModel()
        self.buffer: list[_Frame] = []
        self.pushed = 0
        self.forward: dict[int, np.ndarray] = {}
        self.backward: dict[int, np.ndarray] = {}
        self.motion: dict[int, float] = {}           # each pair's background displacement, by its first frame

    def push(self, image: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        index, self.pushed = self.pushed, self.pushed + 1
        if self.estimator is None:
            self.flow = self.config.flow_settings(image.shape[1])
            self.estimator = FlowEstimator(self.flow)
        hole = body = prepare_mask(mask, self.config.dilate_px, self.config.shadow_margin)
        if self.config.shadow == "auto":
            hole = body | shadow_search_region(body, self.shadow_settings)
        self.buffer.append(_Frame(index, image, hole, self.estimator.grey(image, hole),
                                  self.estimator.small_hole(hole), body if self.config.shadow == "auto" else None))
        if len(self.buffer) < self.config.chunk_frames:
            return []
        return self._run_window(final=False)

    def finish(self) -> list[np.ndarray]:
        if not any(frame.output is None for frame in self.buffer):
            return []
        return self._run_window(final=True)

    def _run_window(self, final: bool) -> list[np.ndarray]:
        frames = self.buffer
        overlap = self.config.overlap_frames
        new = [t for t, frame in enumerate(frames) if frame.output is None]
        emit = new if final else new[:-overlap]
        fills, static = self._fill_window(frames, new)
        if self.config.shadow == "auto":
            for t, shadow in zip(emit, _in_threads(lambda t: self._shadow(frames[t], fills.get(t), static), emit)):
                frames[t].hole = frames[t].body | shadow
                self.stats.shadow_pixels += int(shadow.sum())
        outputs = []
        for t in emit:
            frame = frames[t]
            frame.output, frame.made_up = self._compose(frame, fills.get(t))
            if t > 0 and t in fills and not static:  # a fixed camera's fill is steady already
                self._smooth(frame, frames[t - 1].output)
            outputs.append(frame.output)
            if self.on_hole is not None:
                self.on_hole(frame.index, frame.hole)
        self.buffer = [] if final else frames[-2 * overlap:]
        kept = {frame.index for frame in self.buffer}
        self.forward = {i: flow for i, flow in self.forward.items() if i in kept and i + 1 in kept}
        self.backward = {i: flow for i, flow in self.backward.items() if i in kept and i - 1 in kept}
        self.motion = {i: motion for i, motion in self.motion.items() if i in self.forward}
        return outputs

    def _compose(self, frame: _Frame, fill: _Fill | None) -> tuple[np.ndarray, np.ndarray]:
        made_up = np.zeros(frame.hole.shape, bool)
        self.stats.frames += 1
        if fill is None or not frame.hole.any():
            return frame.image, made_up
        output = frame.image.copy()
        output[frame.hole] = np.clip(np.rint(fill.colours[frame.hole]), 0, 255).astype(np.uint8)
        made_up[frame.hole] = ~fill.real[frame.hole]
        holes = int(frame.hole.sum())
        self.stats.hole_pixels += holes
        self.stats.propagated_pixels += int(fill.real[frame.hole].sum())
        self.stats.hallucinated_pixels += holes - int(fill.real[frame.hole].sum())
        return output, made_up

    def _shadow(self, frame: _Frame, fill: _Fill | None, static: bool) -> np.ndarray:
        """The shadow within the frame's hole beside the car: the hole then shrinks from where a shadow may be to
        the car and this. The shadow is what is darker than the fill: it starts where the fill shows the ground as
        another frame saw it, and extends from there over the made-up fill (where no frame saw the ground); a
        shadow wholly in the made-up fill (against which any ground may look darker) is left to the photo rule,
        against the ground around the car. A moving camera's other frames may show other ground (asphalt, then
        concrete), so there a shadow must also be darker than the frame's own ground beside the car. A fixed
        camera also takes whatever else beside the car differs from its clean background and is attached to it
        (`_attached_change`)."""
        region = frame.hole & ~frame.body
        shadow = np.zeros(region.shape, bool)
        if fill is not None and region.any():
            if not static:
                region &= darker_than_own_ground(frame.image, frame.body, self.shadow_settings)
            background = np.clip(np.rint(fill.colours), 0, 255).astype(np.uint8)
            shadow = shadow_where_darker(frame.image, background, frame.body, region, self.shadow_settings,
                                         self.config.dilate_px, seen=region & fill.real)
            unseen = region & ~fill.real
            if unseen.any():
                shadow |= dilate(shadow_mask(frame.image, frame.body) & unseen, self.config.dilate_px) & region
        if fill is not None and static:
            shadow |= self._attached_change(frame, fill)
        return shadow

    def _attached_change(self, frame: _Frame, fill: _Fill) -> np.ndarray:
        """Fixed camera: the pixels beside the car (any side) that differ from the clean background and are
        attached to it, grown by the soft edge: the parts of the car its mask missed, and its shadow. The fill
        (the clean background for the whole frame) is extended over them."""
        seen = self.background.seen
        background = np.clip(np.rint(fill.colours), 0, 255).astype(np.uint8)
        change = attached_change(frame.image, background, frame.body, seen, self.shadow_settings)
        change = dilate(change, self.config.dilate_px) & seen & ~frame.body
        fill.filled |= change
        fill.real |= change & self.background.real
        return change

    def _smooth(self, frame: _Frame, previous: np.ndarray) -> None:
        """A recurrent temporal filter in the hole: blend in the previous output, carried along the (completed)
        flow, so the fill does not flicker as the frames it is copied from change."""
        weight = self.config.temporal_smoothing
        if weight == 0:
            return
        ys, xs = np.nonzero(frame.hole)
        motion = sample_flow(self.backward[frame.index], xs, ys, self.flow.scale)
        qx, qy = xs + motion[:, 0], ys + motion[:, 1]
        inside = in_frame(qx, qy, frame.hole.shape)
        carried = remap_points(previous, qx[inside], qy[inside], cv2.INTER_LINEAR)
        current = frame.output[ys[inside], xs[inside]].astype(np.float32)
        blended = weight * carried + (1 - weight) * current
        frame.output[ys[inside], xs[inside]] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)

    def _fill_window(self, frames: list[_Frame], new: list[int]) -> tuple[dict[int, _Fill], bool]:
        """The fills of the window's new frames, and whether the camera was fixed."""
        if not any(frames[t].hole.any() for t in new):
            return {}, False
        self.stats.windows += 1
        self._compute_flows(frames)
        pairs = range(len(frames) - 1)
        motion = camera_motion([self.motion[frames[t].index] for t in pairs])
        static = motion < self.config.static_motion_px
        window = self._window(frames, new, cars_only=static)
        if static:
            self.stats.static_windows += 1
            return self._fill_static(window, new, self._effects_region(frames, new)), True
        self.background.reset()
        return self._fill_moving(window, new, [frame.body for frame in frames]), False

    def _compute_flows(self, frames: list[_Frame]) -> None:
        pairs = [(before, after) for before, after in zip(frames, frames[1:]) if before.index not in self.forward]
        compute = lambda pair: self._flow_pair(*pair)
        flows = _in_threads(compute, pairs) if self.estimator.thread_safe else [compute(pair) for pair in pairs]
        for (before, after), (forward, backward, motion) in zip(pairs, flows):
            self.forward[before.index], self.backward[after.index] = forward, backward
            self.motion[before.index] = motion

    def _flow_pair(self, before: _Frame, after: _Frame) -> tuple[np.ndarray, np.ndarray, float]:
        """The completed forward and backward flows of two neighbouring frames, and the background's motion
        between them (once per pair, in the flows' thread)."""
        forward, backward = self.estimator.completed_pair(before.grey, after.grey, before.small_hole,
                                                          after.small_hole)
        return forward, backward, global_motion(forward, before.small_hole, self.flow.scale)

    def _window(self, frames: list[_Frame], new: list[int], cars_only: bool = False) -> Window:
        """The window's frames as sources and targets. A frame's whole hole (where a shadow may be, too) is no
        source, so no shadow is copied along the flow; with `cars_only` (a fixed camera's background median,
        which a passing shadow does not move) only the cars are left out."""
        ring_px = self.config.ring_px
        colours, known, real, targets = [], [], [], []
        for t, frame in enumerate(frames):
            if t in new:
                source = ~(frame.body if cars_only and frame.body is not None else frame.hole)
                colours.append(frame.image)   # Window stacks the frames into a new array
                known.append(source)
                real.append(source)
                targets.append(make_targets(frame.hole, ring_around(frame.hole, ring_px)) if frame.hole.any() else None)
            else:
                colours.append(frame.output)
                known.append(np.ones(frame.hole.shape, bool))
                real.append(~frame.made_up)
                targets.append(None)
        last = len(frames) - 1
        forward = [self.forward[frame.index] if t < last else None for t, frame in enumerate(frames)]
        backward = [self.backward[frame.index] if t > 0 else None for t, frame in enumerate(frames)]
        fixed = np.array([t not in new for t in range(len(frames))])
        return Window(colours, known, real, targets, forward, backward, fixed)

    def _fill_moving(self, window: Window, new: list[int], bodies: list[np.ndarray | None]) -> dict[int, _Fill]:
        """Propagate along the flow; make up what no frame shows on one keyframe at a time, then carry it."""
        holed = [t for t in new if window.targets[t] is not None]
        past, future = self._both_ways(window)
        sample = lambda t: self._sample(window, t, *fill_targets(window, t, past[t], future[t],
                                                                carry=self._carry_weight(t, new)))
        fills = dict(zip(holed, _in_threads(sample, holed)))
        missing = {t: self._hole(window, t) & ~fills[t].filled for t in holed}
        for t in holed:  # what is filled now is a source too, so made-up pixels can be carried through it
            fill = fills[t]
            if fill.filled.any():   # written within the fill's box only: whole-frame indexing cost 4% of the time
                rows, cols = crop_slices(fill.filled, margin=0)
                np.copyto(window.colours[t][rows, cols], np.clip(np.rint(fill.colours[rows, cols]), 0, 255),
                          casting="unsafe", where=fill.filled[rows, cols, None])
            window.known[t] = window.known[t] | fill.filled
            window.real[t] = window.real[t] | fill.real
        for _ in range(self.config.max_keyframes):
            keyframe = max(holed, key=lambda t: np.count_nonzero(missing[t]))
            if not missing[keyframe].any():
                break
            self._keep_own_ground(window, keyframe, fills[keyframe], missing[keyframe], bodies[keyframe])
            self._make_up(window, keyframe, fills[keyframe], missing[keyframe])
            self._carry(window, fills, missing, new, keyframe)
        for t in holed:
            fills[t] = self._fill_rest(window.colours[t], fills[t], missing[t])
        return fills

    def _both_ways(self, window: Window) -> list[list[Pointers | None]]:
        """Every target's pointers into the frames before it and into those after it (two threads)."""
        return _in_threads(lambda step: propagate(window, step, self.flow), [+1, -1])

    def _carry_weight(self, t: int, new: list[int]) -> float:
        """How much of what was carried from the written frames the first new frames keep (a linear fade)."""
        if new[0] == 0:
            return 0.0
        step = t - new[0] + 1
        return max(0.0, 1.0 - step / (self.config.overlap_frames + 1))

    def _carry(self, window: Window, fills: dict[int, _Fill], missing: dict[int, np.ndarray], new: list[int],
               keyframe: int) -> None:
        """Propagate again, only for the pixels still missing, now that a keyframe made some of them up. What is
        carried lands colour-matched to the frame (see `_match_to_frame`): the keyframe's ground may be lit or
        coloured differently."""
        no_ring = np.zeros(window.shape, bool)
        targets = [make_targets(missing[t], no_ring) if t in missing and missing[t].any() else None
                   for t in range(len(window.colours))]
        pending = dataclasses.replace(window, targets=targets)
        past, future = self._both_ways(pending)

        def carry_into(t: int) -> None:   # each frame's own fill and missing pixels: safe in parallel threads
            wanted = targets[t]
            colours, found, real = fill_targets(pending, t, past[t], future[t], carry=self._carry_weight(t, new))
            ys, xs = wanted.ys[found], wanted.xs[found]
            fill = fills[t]
            fill.colours[ys, xs] = colours[found]
            fill.filled[ys, xs] = True
            fill.real[ys, xs] = real[found]
            missing[t][ys, xs] = False
            made_up = found & ~real
            if t != keyframe and made_up.any():   # the keyframe's own made-up pixels are in place already
                self._match_to_frame(window.colours[t], fill, wanted.ys[made_up], wanted.xs[made_up], missing[t])

        _in_threads(carry_into, [t for t, wanted in enumerate(targets) if wanted is not None])

    def _match_to_frame(self, image: np.ndarray, fill: _Fill, ys: np.ndarray, xs: np.ndarray,
                        missing: np.ndarray) -> None:
        """Shift the carried made-up pixels (ys, xs) of `fill` by the colour offset between the frame (with its
        fill) just outside them and their own values at their border, interpolated smoothly across them."""
        carried = np.zeros(missing.shape, bool)
        carried[ys, xs] = True
        ring = ring_around(carried, self.config.ring_px) & ~missing
        if not ring.any():
            return
        rows, cols = crop_slices(carried | ring, margin=1)
        frame = np.where(fill.filled[rows, cols, None], fill.colours[rows, cols], image[rows, cols])
        extended = nearest_values(fill.colours[rows, cols], carried[rows, cols])
        corrected = seam_correct(frame, extended, carried[rows, cols], ring[rows, cols])
        fill.colours[ys, xs] = corrected[ys - rows.start, xs - cols.start]

    def _keep_own_ground(self, window: Window, t: int, fill: _Fill, missing: np.ndarray, body: np.ndarray | None
                         ) -> None:
        """On a keyframe, where no other frame saw the ground beside the car (its shadow search region), the
        frame's own pixels stand for it, except where the photo rule sees the car's shadow: the car and its shadow
        are then made up with the real ground around them as context, not inside a hole twice the car's size (a
        dashcam's cars: a pale, pebbled patch). They are carried like made-up pixels (`real` stays False)."""
        if body is None or not (missing & ~body).any():
            return
        image = window.colours[t]
        own = missing & ~body & ~dilate(shadow_mask(image, body), self.config.dilate_px)
        fill.colours[own] = image[own]
        fill.filled[own] = True
        missing[own] = False
        window.known[t] = window.known[t] | own

    def _make_up(self, window: Window, t: int, fill: _Fill, missing: np.ndarray) -> None:
        """Inpaint a keyframe's unseen pixels once (specks and cracks interpolated, see `_split_missing`); they
        become a source the other frames copy from."""
        self.stats.keyframes += 1
        smooth, inpaint = self._split_missing(missing)
        made = self._interpolate_into(window.colours[t], fill, smooth, missing)
        if inpaint.any():
            made = self._inpaint_into(window.colours[t], made, inpaint)
        window.colours[t][missing] = np.clip(np.rint(made.colours[missing]), 0, 255).astype(np.uint8)
        window.known[t] = window.known[t] | missing

    def _fill_rest(self, image: np.ndarray, fill: _Fill, missing: np.ndarray) -> _Fill:
        """Fill what neither the other frames nor a keyframe gave, in this frame alone: a few scattered pixels,
        the specks and the cracks by smooth interpolation from around them, a larger area by the inpainter."""
        if not missing.any():
            return fill
        if missing.sum() <= self.config.smooth_residual * missing.size:
            smooth, inpaint = missing, np.zeros_like(missing)
        else:
            smooth, inpaint = self._split_missing(missing)
        if smooth.any():
            self.stats.smooth_fills += 1
            fill = self._interpolate_into(image, fill, smooth, missing)
        if inpaint.any():
            self.stats.frame_fills += 1
            fill = self._inpaint_into(image, fill, inpaint)
        return fill

    @staticmethod
    def _split_missing(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(what is interpolated: pieces under SPECK_SHARE of the frame and cracks narrower than CRACK_PX, what
        the inpainter fills): cracks across a large hole would make the inpainter work on the hole's whole
        extent, and specks would cost a call each."""
        thick = missing & ~thin_parts(missing, CRACK_PX)   # the opening works per component: specks stay specks
        inpaint = thick & ~small_parts(thick, SPECK_SHARE * missing.size)   # nor the knots where cracks cross
        return missing & ~inpaint, inpaint

    @staticmethod
    def _interpolate_into(image: np.ndarray, fill: _Fill, region: np.ndarray, unknown: np.ndarray) -> _Fill:
        """Fill `region` by membrane interpolation from the pixels around it that are not `unknown` (the frame
        with its fill in place)."""
        if not region.any():
            return fill
        rows, cols = crop_slices(region, margin=4)
        local = np.where(fill.filled[rows, cols, None], fill.colours[rows, cols], image[rows, cols])
        smooth = smooth_fill(local.astype(np.float32), ~unknown[rows, cols])
        colours = fill.colours.copy()
        colours[rows, cols][region[rows, cols]] = smooth[region[rows, cols]]
        return _Fill(colours, fill.filled | region, fill.real & ~region)

    def _inpaint_into(self, image: np.ndarray, fill: _Fill, missing: np.ndarray) -> _Fill:
        """Fill `missing` with the inpainter, given the frame with everything else of the fill in place."""
        hole = fill.filled | missing
        composed = image.copy()
        composed[fill.filled] = np.clip(np.rint(fill.colours[fill.filled]), 0, 255).astype(np.uint8)
        painted = self.inpaint(composed, missing)
        colours = fill.colours.copy()
        colours[missing] = painted[missing]
        return _Fill(colours, hole, fill.real & ~missing)

    @staticmethod
    def _hole(window: Window, t: int) -> np.ndarray:
        targets = window.targets[t]
        hole = np.zeros(window.shape, bool)
        hole[targets.ys[targets.in_hole], targets.xs[targets.in_hole]] = True
        return hole

    def _sample(self, window: Window, t: int, target_colours: np.ndarray, found: np.ndarray, real: np.ndarray,
                ) -> _Fill:
        """Dense fill of frame t from its targets' colours, colour-matched to the frame at the seam."""
        targets = window.targets[t]
        colours = np.zeros(window.colours[t].shape, np.float32)
        filled = np.zeros(window.shape, bool)
        is_real = np.zeros(window.shape, bool)
        ys, xs = targets.ys[found], targets.xs[found]
        colours[ys, xs] = target_colours[found]
        filled[ys, xs] = True
        is_real[ys, xs] = real[found]
        hole = self._hole(window, t)
        colours = seam_correct(window.colours[t], colours, hole & filled, filled & ~hole)
        return _Fill(colours, filled & hole, is_real & hole)

    def _effects_region(self, frames: list[_Frame], new: list[int]) -> np.ndarray | None:
        """Shadow auto on a fixed camera: where the new frames' cars may change the picture beside their masks
        (the clean background is modelled there too)."""
        if self.config.shadow != "auto":
            return None
        region = np.zeros(frames[0].hole.shape, bool)
        for t in new:
            region |= effects_region(frames[t].body, self.shadow_settings)
        return region

    def _fill_static(self, window: Window, new: list[int], around: np.ndarray | None = None) -> dict[int, _Fill]:
        """Fixed camera: every hole gets the clean background (temporal median), which is also kept `around`
        (where the cars' effects may be); unseen pixels of the holes are made up once."""
        holed = [t for t in new if window.targets[t] is not None]
        region = np.zeros(window.shape, bool)
        for t in holed:
            region[window.targets[t].ys, window.targets[t].xs] = True
        self.background.update(window.colours, window.known, window.real, region if around is None else region | around)
        unseen = region & ~self.background.seen
        if unseen.any():
            keyframe = max(holed, key=lambda t: int((self._hole(window, t) & unseen).sum()))
            self.stats.keyframes += 1
            base = self._static_fill(window, keyframe)
            made = self._inpaint_into(window.colours[keyframe], base, unseen & self._hole(window, keyframe))
            self.background.add_made_up(np.clip(np.rint(made.colours), 0, 255).astype(np.uint8),
                                        unseen & self._hole(window, keyframe))
        fills = {t: self._static_fill(window, t) for t in holed}
        for t in holed:
            fills[t] = self._fill_rest(window.colours[t], fills[t], self._hole(window, t) & ~fills[t].filled)
        return fills

    def _static_fill(self, window: Window, t: int) -> _Fill:
        """The clean background in the hole, shifted by one colour offset for the light of the moment: the
        median difference between the frame and the background on a ring around the hole. (A smooth per-pixel
        offset, as a moving camera's fill gets, takes in whatever else crosses the ring: on a busy road other
        cars and their shadows pulled the fill by tens of grey levels.)"""
        hole = self._hole(window, t)
        seen = self.background.seen
        ring = ring_around(hole, self.config.ring_px) & seen
        colours = self.background.values.astype(np.float32)
        if ring.any():
            colours += np.median(window.colours[t][ring].astype(np.float32) - colours[ring], axis=0)
        return _Fill(colours, hole & seen, hole & seen & self.background.real)


def _in_threads(function: Callable[[Any], Any], items: list) -> list:
    """[function(item) for item in items], in up to THREADS threads: OpenCV and most numpy loops release the GIL,
    so two cores give about 1.2x on a window; the results are the same as in one thread."""
    workers = min(THREADS, os.cpu_count() or 1, len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


def remove_frames(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray], inpaint: Inpainter,
                  config: TemporalConfig, stats: RemovalStats | None = None,
                  on_hole: Callable[[int, np.ndarray], None] | None = None) -> Iterator[np.ndarray]:
    """Remove the masked object from a stream of frames, temporally; one output frame per input frame.

    frames: HxWx3 uint8 RGB; masks: HxW bool (True = remove), one per frame. Streaming with bounded memory
    (one window of `config.chunk_frames`). Pixels outside the dilated mask are returned bit-identical.
    """
    remover = TemporalRemover(inpaint, config, stats, on_hole)
    for index, (frame, mask) in enumerate(_paired(frames, masks)):
        _check_frame(index, frame, mask, remover.buffer[0].image.shape if remover.buffer else None)
        yield from remover.push(frame, mask)
    yield from remover.finish()


def _paired(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    mask_iter = iter(masks)
    count = 0
    for frame in frames:
        mask = next(mask_iter, None)
        if mask is None:
            raise InputError(f"masks: only {count} masks for more frames")
        count += 1
        yield frame, mask
    if next(mask_iter, None) is not None:
        raise InputError(f"masks: more masks than the {count} frames")


def _check_frame(index: int, frame: np.ndarray, mask: np.ndarray, first_shape: tuple[int, ...] | None) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame {index}: expected HxWx3 uint8 RGB, got {frame.shape} {frame.dtype}")
    if first_shape is not None and frame.shape != first_shape:
        raise InputError(f"frame {index}: size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's")
    if np.shape(mask) != frame.shape[:2]:
        size = "x".join(str(side) for side in np.shape(mask)[::-1])
        raise InputError(f"mask {index} is {size}, the frame is {frame.shape[1]}x{frame.shape[0]}")
