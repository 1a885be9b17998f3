"""Flow-guided propagation: fill each frame's hole with background seen in other frames of the window.

Every hole pixel follows the (completed) flow to the previous frame, and from there along the pointers already
found for that frame, until it lands on a pixel that frame knows: a chain of flows, resolved one frame at a time
(O(frames) warps), that ends in a single bilinear read of the source frame, so the copy stays sharp however long
the chain. The same runs backwards in time; each pixel takes the nearer source, a real observation before a
hallucinated one. Each step must pass the forward-backward flow check (looser inside holes, where both flows
are interpolations and the check can only catch gross disagreement).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carremoval.video.flow import FlowSettings, consistent, in_frame, sample_flow

# A source pixel the inpainter made up counts as this many frames further away than a real one.
HALLUCINATION_PENALTY = 10_000


@dataclass
class Targets:
    """The pixels of one frame that want a value from other frames: its hole and a thin ring around it."""

    ys: np.ndarray
    xs: np.ndarray
    in_hole: np.ndarray  # bool per target: inside the hole (else on the ring)

    def __len__(self) -> int:
        return len(self.ys)


@dataclass
class Pointers:
    """Per target: the frame it copies from (-1: none) and where in that frame (full-resolution px)."""

    frame: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def empty(cls, count: int) -> Pointers:
        return cls(np.full(count, -1, np.int32), np.zeros(count, np.float32), np.zeros(count, np.float32))


@dataclass
class Window:
    """What propagation sees of a chunk of frames.

    colours[t]: HxWx3 uint8; known[t]: pixels usable as a source; real[t]: known from an actual observation
    (not made up by the inpainter); targets[t]: None for frames with nothing to fill; forward[t]: flow t -> t+1,
    backward[t]: flow t -> t-1 (working scale, completed in the holes; None where there is no neighbour);
    fixed[t]: the frame was written by the window before. Colours, known and real are stacked into one array
    each (TxHxW...), so that pointers into any frames are read in one gather; `colours[t]` is a view of frame t.
    """

    colours: np.ndarray
    known: np.ndarray
    real: np.ndarray
    targets: list[Targets | None]
    forward: list[np.ndarray | None]
    backward: list[np.ndarray | None]
    fixed: np.ndarray  # bool per frame: already written (its output is final)

    def __post_init__(self) -> None:
        self.colours, self.known, self.real = (np.asarray(self.colours), np.asarray(self.known, bool),
                                               np.asarray(self.real, bool))

    @property
    def shape(self) -> tuple[int, int]:
        return self.colours.shape[1:3]


def make_targets(hole: np.ndarray, ring: np.ndarray) -> Targets:
    ys, xs = np.nonzero(hole | ring)
    return Targets(ys.astype(np.int32), xs.astype(np.int32), hole[ys, xs])


def propagate(window: Window, step: int, settings: FlowSettings) -> list[Pointers | None]:
    """Pointers for every frame's targets from the frames before it (step=+1) or after it (step=-1)."""
    count = len(window.colours)
    order = range(count) if step > 0 else range(count - 1, -1, -1)
    pointers: list[Pointers | None] = [None] * count
    for t in order:
        targets = window.targets[t]
        if targets is None:
            continue
        neighbour = t - step
        result = Pointers.empty(len(targets))
        pointers[t] = result
        if not 0 <= neighbour < count:
            continue
        to_neighbour = window.backward[t] if step > 0 else window.forward[t]
        from_neighbour = window.forward[neighbour] if step > 0 else window.backward[neighbour]
        motion = sample_flow(to_neighbour, targets.xs, targets.ys, settings.scale)
        qx, qy = targets.xs + motion[:, 0], targets.ys + motion[:, 1]
        inside = in_frame(qx, qy, window.shape)
        back = sample_flow(from_neighbour, qx, qy, settings.scale)
        tolerance = np.where(targets.in_hole, settings.hole_tolerance, 1.0)
        ok = inside & consistent(motion, back, settings, tolerance)
        ix, iy = nearest_pixels(qx, qy, window.shape)
        known_there = ok & window.known[neighbour][iy, ix]
        result.frame[known_there] = neighbour
        result.x[known_there], result.y[known_there] = qx[known_there], qy[known_there]
        _follow_chain(result, ok & ~known_there, pointers[neighbour], window.targets[neighbour], (qx, qy, ix, iy),
                      window.shape)
        _drop_unknown_landings(result, window.known)
    return pointers


def _drop_unknown_landings(pointers: Pointers, known: list[np.ndarray]) -> None:
    """Forget pointers whose nearest source pixel is not known: a chain adds up sub-pixel shifts, and after many
    frames it can drift into the source frame's hole."""
    pointers.frame[(pointers.frame >= 0) & ~_mask_at(known, pointers)] = -1


def nearest_pixels(xs: np.ndarray, ys: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The (column, row) indices of the pixel nearest to each point, clipped to a frame of `shape`."""
    height, width = shape[:2]
    return (np.clip(np.rint(xs), 0, width - 1).astype(np.int64),
            np.clip(np.rint(ys), 0, height - 1).astype(np.int64))


def _mask_at(masks: np.ndarray, pointers: Pointers) -> np.ndarray:
    """Each pointer's value in its source frame's mask (TxHxW), at the nearest pixel (False where it has no
    source)."""
    values = np.zeros(len(pointers.frame), bool)
    has = pointers.frame >= 0
    ix, iy = nearest_pixels(pointers.x[has], pointers.y[has], masks.shape[1:])
    values[has] = masks[pointers.frame[has], iy, ix]
    return values


def _follow_chain(result: Pointers, want: np.ndarray, previous: Pointers | None, previous_targets: Targets | None,
                  landing: tuple[np.ndarray, ...], shape: tuple[int, int]) -> None:
    """Where a target lands on a pixel the neighbour could not see, take over the neighbour's own pointer
    (shifted by the sub-pixel part of the landing point)."""
    if previous is None or previous_targets is None or not want.any():
        return
    qx, qy, ix, iy = landing
    index = np.full(shape, -1, np.int32)
    index[previous_targets.ys, previous_targets.xs] = np.arange(len(previous_targets), dtype=np.int32)
    found = np.where(want, index[iy, ix], -1)
    chained = found >= 0
    chained[chained] = previous.frame[found[chained]] >= 0
    source = found[chained]
    result.frame[chained] = previous.frame[source]
    result.x[chained] = previous.x[source] + (qx[chained] - ix[chained])
    result.y[chained] = previous.y[source] + (qy[chained] - iy[chained])


def fill_targets(window: Window, t: int, past: Pointers | None, future: Pointers | None, agree: float = 24.0,
                 carry: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colours for frame t's targets from the two directions: (Nx3 float32 colours, found, real).

    Each direction offers a source; a real observation beats a made-up one, then the nearer frame wins. When
    both are real and agree (colours within `agree`), they are blended with weights 1/distance, so a pixel's
    colour changes smoothly as the nearer source changes from frame to frame. Hole pixels the frame itself
    knows (made up on this keyframe) keep their own colour. `carry` (0-1) is the weight kept by what the past
    direction copies from frames already written (window.fixed), so a new window fades in rather than jumps.
    """
    targets = window.targets[t]
    count = len(targets)
    colours = np.zeros((count, 3), np.float32)
    found = np.zeros(count, bool)
    real = np.zeros(count, bool)
    best_cost = np.full(count, np.inf)
    offers = []
    for candidate in (past, future):
        if candidate is None:
            continue
        has = candidate.frame >= 0
        offer_colours = np.zeros((count, 3), np.float32)
        offer_colours[has] = sample_colours(window, _subset(candidate, has))
        offer_real = _mask_at(window.real, candidate)  # an observation, not made up by the inpainter
        distance = np.abs(candidate.frame - t).astype(np.float32)
        offers.append((has, offer_colours, offer_real, distance))
        cost = distance + np.where(offer_real, 0, HALLUCINATION_PENALTY)
        better = has & (cost < best_cost)
        colours[better], real[better], best_cost[better] = offer_colours[better], offer_real[better], cost[better]
        found |= has
    if len(offers) == 2:
        (_, past_colours, past_real, past_distance), (_, future_colours, future_real, future_distance) = offers
        difference = np.abs(past_colours - future_colours)
        blend = past_real & future_real & (np.maximum(np.maximum(difference[:, 0], difference[:, 1]),
                                                      difference[:, 2]) < agree)
        past_weight = (future_distance / (past_distance + future_distance))[blend, None]
        colours[blend] = past_weight * past_colours[blend] + (1 - past_weight) * future_colours[blend]
    if carry > 0 and past is not None:
        has, past_colours = offers[0][0], offers[0][1]
        written = has & window.fixed[np.maximum(past.frame, 0)]
        colours[written] = carry * past_colours[written] + (1 - carry) * colours[written]
    own = targets.in_hole & window.known[t][targets.ys, targets.xs]
    colours[own] = window.colours[t][targets.ys[own], targets.xs[own]]
    found[own] = True
    real[own] = window.real[t][targets.ys[own], targets.xs[own]]
    return colours, found, real


def _subset(pointers: Pointers, where: np.ndarray) -> Pointers:
    return Pointers(pointers.frame[where], pointers.x[where], pointers.y[where])


def sample_colours(window: Window, pointers: Pointers) -> np.ndarray:
    """Read each pointer's colour (Nx3 float32; every pointer has a source frame): bilinear over the known ones of
    its four neighbours, so a hole's content never leaks in (pointers land on known pixels, see
    `_drop_unknown_landings`); the nearest pixel when none of the four is known."""
    xs, ys = pointers.x, pointers.y
    height, width = window.shape
    colours, known = window.colours.reshape(-1, 3), window.known.reshape(-1)
    first = pointers.frame.astype(np.int64) * (height * width)   # flat index of each source frame's (0, 0)
    left, top = np.floor(xs), np.floor(ys)
    fx, fy = (xs - left)[:, None], (ys - top)[:, None]          # float32, like the points
    x0, y0 = left.astype(np.int64), top.astype(np.int64)
    columns = np.clip(x0, 0, width - 1), np.clip(x0 + 1, 0, width - 1)
    rows = first + np.clip(y0, 0, height - 1) * width, first + np.clip(y0 + 1, 0, height - 1) * width
    total = np.zeros((len(xs), 3), np.float32)
    weight = np.zeros((len(xs), 1), np.float32)
    for row, column, share in ((rows[0], columns[0], (1 - fx) * (1 - fy)), (rows[0], columns[1], fx * (1 - fy)),
                               (rows[1], columns[0], (1 - fx) * fy), (rows[1], columns[1], fx * fy)):
        at = row + column
        share = share * known[at][:, None]
        total += share * colours[at]
        weight += share
    nx, ny = nearest_pixels(xs, ys, window.shape)
    nearest = colours[first + ny * width + nx]
    return np.where(weight > 1e-3, total / np.maximum(weight, 1e-3), nearest).astype(np.float32)
