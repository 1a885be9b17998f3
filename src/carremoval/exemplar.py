"""Exemplar-based texture synthesis guided by a structure image (a guided, coarse-to-fine PatchMatch).

A learned fill knows *what* goes where (the road's colour and its edges) but at a photo's own resolution it is
smooth. This module copies real texture into the hole from the photo's known pixels. A nearest-neighbour field
(NNF; PatchMatch, Barnes et al. 2009) is found coarse to fine on patch descriptors that join two bands: the
current estimate's full band (coherence with the hole's surroundings and with itself) and the structure's
low-pass band (the guide, as in image analogies' texture-by-numbers); the guide weighs most at the coarsest level
and less at each finer one, so the learned layout places the structure and the texture's own coherence the
details. Each pyramid level alternates matching and voting (each hole pixel the mean of what the patches over it
copy; Wexler et al. 2007). The NNF is computed at a scale where the hole has a bounded number of pixels, so the
time does not grow with the photo's megapixels; the pixels themselves are copied at full resolution along the
scaled field, so the texture keeps the photo's own sharpness. Finally the copy's low frequencies are replaced by
a mix of the structure's and the voted layout's, and the fill is shifted by a smooth offset so that it meets the
known pixels at the hole's border without an outline (the structure is shifted the same way before it guides, so
that a guide lighter or darker than the photo does not ask for lighter or darker sources).

Patches are compared through a PCA basis fitted on the photo's own patches (a few components describe a 7x7
RGB patch well), computed for every pixel at once with one small filter per component.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from carremoval.blending import normalised_blur, ring_around, seam_correct
from carremoval.masks import hole_boxes


VOTE_RADIUS = 2   # the patches that vote for a pixel: its 5x5 neighbours' (7x7 is 2x slower, no better on val)

# A video's keyframe fill (what no frame shows, carried along the flow into the window's other frames): the
# generator's layout at every level, half its low frequencies and a weaker coherence bias gave the best hole PSNR
# on the val clips, which is what the video target asks for; no border match, since the video remover matches
# what it carries to each frame itself (`exemplar.video` in params.yaml; docs/photo-fill.md).
VIDEO_KEYFRAMES = {"guide_falloff": 1.0, "structure_weight": 0.5, "match_border": False, "coherence": 0.3}


@dataclass(frozen=True)
class ExemplarSettings:
    """The synthesis' knobs; the defaults were chosen on photo_hd val (docs/photo-fill.md)."""

    patch: int = 7                  # patch side at the matching scale (odd)
    components: int = 12            # PCA components per band
    guide_weight: float = 3.0       # weight of the structure band against the estimate's full band (coarsest level)
    guide_falloff: float = 0.5      # the guide's weight is multiplied by this at each finer level: the learned
                                    # layout places the coarse structure, the texture's own coherence the details
    guide_sigma: float = 2.0        # low-pass sigma (matching-scale px) of the structure band
    structure_weight: float = 0.0   # the fill's low frequencies: this share from the structure, the rest from
                                    # the copy (an ensemble of the learned and the exemplar layout)
    structure_sigma: float = 4.0    # low-pass sigma (matching-scale px) splitting low from high frequencies
    levels: int = 4                 # coarse-to-fine pyramid levels (fewer when the hole gets too small)
    rounds: int = 2                 # per level: match, vote, describe the estimate again
    iterations: int = 2             # PatchMatch sweeps (propagation + random search) per round
    locality: float = 0.5           # a source this far from its target (in crop diagonals) costs this share of the
                                    # descriptors' spread: nearby texture is the likelier background
    coherence: float = 0.5          # a neighbour's offset wins unless another source is this much closer: whole
                                    # regions come from one place, so the copy is texture, not pixel noise
    max_hole_pixels: int = 20000    # the NNF is computed at a scale where the hole has at most this many pixels
    context: float = 3.0            # the crop around the hole: its bounding box grown this many times
    texture_gain: float = 1.0       # share of the copied high frequencies kept (0 = the structure alone)
    match_border: bool = True       # shift the structure's and the fill's local mean to meet the known pixels' at
                                    # the hole's border
    seed: int = 0

    @classmethod
    def from_params(cls, section: dict | None, video: bool = False) -> "ExemplarSettings":
        """The `exemplar` section of params.yaml (missing keys keep their defaults); with `video`, with its
        `video` overrides for a video's keyframe fill."""
        section = dict(section or {})
        video_overrides = section.pop("video", None)
        try:
            settings = cls(**section)
            return settings.for_video(video_overrides) if video else settings
        except TypeError as err:
            raise ValueError(f"params.yaml: exemplar: {err}") from None

    def for_video(self, overrides: dict | None = None) -> "ExemplarSettings":
        """These settings as a video's keyframe fill uses them: `overrides`, by default VIDEO_KEYFRAMES."""
        return replace(self, **(VIDEO_KEYFRAMES if overrides is None else overrides))

    def __post_init__(self) -> None:
        if self.patch < 3 or self.patch % 2 == 0:
            raise ValueError(f"exemplar synthesis: patch must be odd and at least 3, got {self.patch}")
        if not 0 <= self.coherence < 1:
            raise ValueError(f"exemplar synthesis: coherence must be in [0, 1), got {self.coherence}")
        if min(self.components, self.levels, self.rounds, self.iterations, self.max_hole_pixels) < 1:
            raise ValueError("exemplar synthesis: components, levels, rounds, iterations and max_hole_pixels must be "
                             ">= 1")
        if self.context < 1 or min(self.guide_sigma, self.structure_sigma) <= 0:
            raise ValueError("exemplar synthesis: context must be >= 1, guide_sigma and structure_sigma > 0")
        if (self.guide_weight < 0 or self.texture_gain < 0 or not 0 <= self.structure_weight <= 1
                or not 0 <= self.guide_falloff <= 1):
            raise ValueError("exemplar synthesis: guide_weight, texture_gain >= 0, structure_weight and guide_falloff "
                             "in [0, 1]")


def synthesize_texture(image: np.ndarray, hole: np.ndarray, structure: np.ndarray,
                       exclude: np.ndarray | None = None,
                       settings: ExemplarSettings = ExemplarSettings()) -> np.ndarray:
    """Fill `hole` of `image` (HxWx3 uint8) with texture copied from its known pixels, guided by `structure`
    (the image with a smooth fill in the hole). Pixels in `exclude` (other cars) are never copied. Pixels outside
    the hole are returned unchanged; without anything to copy from, the structure is returned in the hole."""
    result = image.copy()
    forbidden = hole if exclude is None else hole | exclude
    for box in hole_boxes(hole):
        top, bottom, left, right = _context_box(box, image.shape[:2], settings.context)
        crop = np.s_[top:bottom, left:right]
        x0, y0, x1, y1 = box
        part = np.zeros_like(hole)
        part[y0:y1, x0:x1] = hole[y0:y1, x0:x1]
        filled = _synthesize_crop(result[crop], part[crop], structure[crop], forbidden[crop], settings)
        result[crop][part[crop]] = filled[part[crop]]
    return result


def _context_box(box: tuple[int, int, int, int], shape: tuple[int, int], context: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the hole's bounding box grown `context` times, clipped to the image."""
    x0, y0, x1, y1 = box
    grow_y, grow_x = (y1 - y0) * (context - 1) / 2, (x1 - x0) * (context - 1) / 2
    return (max(0, int(y0 - grow_y)), min(shape[0], int(np.ceil(y1 + grow_y))),
            max(0, int(x0 - grow_x)), min(shape[1], int(np.ceil(x1 + grow_x))))


def _synthesize_crop(image: np.ndarray, hole: np.ndarray, structure: np.ndarray, forbidden: np.ndarray,
                     settings: ExemplarSettings) -> np.ndarray:
    scale = min(1.0, float(np.sqrt(settings.max_hole_pixels / max(int(hole.sum()), 1))))
    if settings.match_border:   # the guide too: a lighter or darker guide would ask for lighter or darker sources
        matched = _match_border(image, structure.astype(np.float32), hole, settings.structure_sigma / scale)
        structure = np.clip(np.rint(matched), 0, 255).astype(np.uint8)
    size = (max(1, round(hole.shape[1] * scale)), max(1, round(hole.shape[0] * scale)))
    levels = _pyramid(_Level(_resize(image.astype(np.float32), size), _resize(hole.astype(np.float32), size) > 0,
                             _resize(forbidden.astype(np.float32), size) > 0,
                             _resize(structure.astype(np.float32), size), settings), settings)
    if levels[0].sources.shape[0] == 0:
        return structure.copy()
    rng = np.random.default_rng(settings.seed)
    bases = levels[0].bases(rng)
    matches, estimate, coarser = None, None, None
    for depth, level in enumerate(reversed(levels)):   # coarsest first
        level.guide_weight = settings.guide_weight * settings.guide_falloff ** depth
        matches = level.initial_matches(coarser, matches, rng)
        coarser = level
        estimate = level.vote(matches) if estimate is not None else level.start()
        for _ in range(settings.rounds):
            matches = level.match(estimate, matches, bases, coarsest=level is levels[-1], rng=rng)
            estimate = level.vote(matches)
    finest = levels[0]
    copied = _copy_full_resolution(image, hole, forbidden, structure, matches, finest)
    layout = cv2.resize(estimate, (hole.shape[1], hole.shape[0]), interpolation=cv2.INTER_LINEAR)
    filled = _follow_structure(copied, structure, layout, hole, settings.structure_sigma / scale, settings)
    if settings.match_border:
        filled = _match_border(image, filled, hole, settings.structure_sigma / scale)
    return np.clip(np.rint(np.where(hole[..., None], filled, structure)), 0, 255).astype(np.uint8)


class _Level:
    """One pyramid level of the crop: the image, the hole, the sources a patch may come from, the structure."""

    def __init__(self, image: np.ndarray, hole: np.ndarray, blocked: np.ndarray, structure: np.ndarray,
                 settings: ExemplarSettings):
        self.image, self.hole, self.blocked = image, hole, blocked
        self.structure = structure
        self.size = (hole.shape[1], hole.shape[0])
        self.radius = settings.patch // 2
        self.sources = _source_pixels(blocked, self.radius)
        self.valid = np.zeros(hole.shape, bool)
        self.valid[self.sources[:, 0], self.sources[:, 1]] = True
        self.targets = np.argwhere(hole)
        self.index = np.full(hole.shape, -1, np.int64)
        self.index[self.targets[:, 0], self.targets[:, 1]] = np.arange(len(self.targets))
        self.settings = settings
        self.guide_weight = settings.guide_weight
        self._descriptors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._neighbours: dict[tuple[int, int], np.ndarray] = {}

    def smaller(self) -> "_Level":
        size = (max(1, self.size[0] // 2), max(1, self.size[1] // 2))
        return _Level(_resize(self.image, size), _resize(self.hole.astype(np.float32), size) > 0,
                      _resize(self.blocked.astype(np.float32), size) > 0, _resize(self.structure, size),
                      self.settings)

    def start(self) -> np.ndarray:
        """The first estimate, at the coarsest level: the structure in the hole."""
        return np.where(self.hole[..., None], self.structure, self.image)

    def initial_matches(self, coarser: "_Level | None", coarser_matches: np.ndarray | None,
                        rng: np.random.Generator) -> np.ndarray:
        """Random sources at the coarsest level; else the coarser level's field doubled (random where invalid)."""
        matches = self.sources[rng.integers(0, len(self.sources), len(self.targets))]
        if coarser is None or coarser_matches is None:
            return matches
        parent = self.targets // 2
        parent_index = coarser.index[np.minimum(parent[:, 0], coarser.index.shape[0] - 1),
                                     np.minimum(parent[:, 1], coarser.index.shape[1] - 1)]
        has = parent_index >= 0
        doubled = coarser_matches[parent_index[has]] * 2 + (self.targets[has] - parent[has] * 2)
        inside = _inside(doubled, self.hole.shape)
        inside[inside] = self.valid[doubled[inside, 0], doubled[inside, 1]]
        chosen = matches[has]
        chosen[inside] = doubled[inside]
        matches[has] = chosen
        return matches

    def bases(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """PCA bases of this level's known patches, full band and low-pass (the guide's), shared by every level."""
        settings = self.settings
        guide = _low_pass(self.image, settings.guide_sigma)
        return (_patch_basis(self.image, self.blocked, settings.patch, settings.components, rng),
                _patch_basis(guide, self.blocked, settings.patch, settings.components, rng))

    def match(self, estimate: np.ndarray, matches: np.ndarray, bases: tuple[np.ndarray, np.ndarray],
              coarsest: bool, rng: np.random.Generator) -> np.ndarray:
        """The nearest-neighbour field for the current estimate (PatchMatch from `matches`)."""
        sources, target_guide, target_positions = self.descriptors(bases)
        wanted = np.concatenate([_describe(estimate, bases[0]), target_guide], axis=2)
        wanted = np.concatenate([wanted[self.targets[:, 0], self.targets[:, 1]], target_positions], axis=1)
        longest = max(self.hole.shape)
        steps = [1 << k for k in range(int(np.log2(max(longest, 2))), -1, -1)] if coarsest else [4, 2, 1]
        search = longest if coarsest else min(longest, 4 * self.settings.patch)
        return _patch_match(wanted, sources, self, matches, steps, search, rng)

    def descriptors(self, bases: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(every source pixel's descriptor, the structure's guide descriptors, the targets' position
        descriptors), made once per level."""
        if self._descriptors is None:
            guide_sigma, weight = self.settings.guide_sigma, np.float32(np.sqrt(self.guide_weight))
            guide = weight * _describe(_low_pass(self.image, guide_sigma), bases[1])
            sources = np.concatenate([_describe(self.image, bases[0]), guide], axis=2)
            target_guide = weight * _describe(_low_pass(self.structure, guide_sigma), bases[1])
            spread = float(sources.reshape(-1, sources.shape[2]).var(axis=0).sum())
            position_scale = np.float32(np.sqrt(self.settings.locality * spread) / np.hypot(*self.hole.shape))
            sources = np.concatenate([sources, position_scale * _positions(self.hole.shape)], axis=2)
            self._descriptors = (sources, target_guide, position_scale * self.targets.astype(np.float32))
        return self._descriptors

    def neighbours(self, dy: int, dx: int) -> np.ndarray:
        """For each target, the target index of the pixel (dy, dx) away, or -1 (outside the hole or the crop)."""
        if (dy, dx) not in self._neighbours:
            moved = self.targets + (dy, dx)
            inside = _inside(moved, self.index.shape)
            found = np.full(len(self.targets), -1, np.int64)
            found[inside] = self.index[moved[inside, 0], moved[inside, 1]]
            self._neighbours[(dy, dx)] = found
        return self._neighbours[(dy, dx)]

    def vote(self, matches: np.ndarray) -> np.ndarray:
        """Each hole pixel: the mean of what the patches over it copy there (Wexler et al. 2007)."""
        total = np.zeros((len(self.targets), self.image.shape[2]), np.float32)
        count = np.zeros(len(self.targets), np.float32)
        reach = min(self.radius, VOTE_RADIUS)
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                owner = self.neighbours(-dy, -dx)
                has = owner >= 0
                source = matches[owner[has]] + (dy, dx)
                inside = _inside(source, self.hole.shape)
                rows = np.flatnonzero(has)[inside]
                total[rows] += self.image[source[inside, 0], source[inside, 1]]
                count[rows] += 1
        estimate = self.image.copy()
        estimate[self.targets[:, 0], self.targets[:, 1]] = total / np.maximum(count, 1)[:, None]
        return estimate


def _pyramid(finest: _Level, settings: ExemplarSettings, min_hole_pixels: int = 400) -> list[_Level]:
    """Levels finest first, halving while the hole keeps `min_hole_pixels` and room for the patches."""
    levels = [finest]
    while len(levels) < settings.levels:
        smaller = levels[-1].smaller()
        if (smaller.hole.sum() < min_hole_pixels or min(smaller.size) < 4 * settings.patch
                or smaller.sources.shape[0] < 4 * settings.patch ** 2):
            break
        levels.append(smaller)
    return levels


def _inside(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Which (row, column) points lie inside an array of `shape`."""
    return (points[:, 0] >= 0) & (points[:, 0] < shape[0]) & (points[:, 1] >= 0) & (points[:, 1] < shape[1])


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (array.shape[1], array.shape[0]) == size:
        return array.copy()
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA)


def _low_pass(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _source_pixels(blocked: np.ndarray, radius: int) -> np.ndarray:
    """(y, x) of every pixel whose whole patch is inside the crop and free of blocked pixels; where none is,
    those whose centre alone is free."""
    free = ~blocked
    whole = cv2.erode(free.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8), borderValue=0) > 0
    return np.argwhere(whole if whole.any() else free)


def _positions(shape: tuple[int, int]) -> np.ndarray:
    """HxWx2 float32: each pixel's (row, column)."""
    rows, cols = np.indices(shape, dtype=np.float32)
    return np.stack([rows, cols], axis=2)


def _patch_basis(image: np.ndarray, blocked: np.ndarray, patch: int, components: int,
                 rng: np.random.Generator, samples: int = 4000) -> np.ndarray:
    """The leading principal directions of the known area's patches, as (components, patch, patch, 3) filters."""
    radius = patch // 2
    padded = cv2.copyMakeBorder(image, radius, radius, radius, radius, cv2.BORDER_REFLECT)
    centres = np.argwhere(~blocked)
    if centres.shape[0] == 0:
        centres = np.argwhere(np.ones(blocked.shape, bool))
    centres = centres[rng.choice(centres.shape[0], min(samples, centres.shape[0]), replace=False)]
    offsets = np.arange(patch)
    rows = centres[:, 0, None, None] + offsets[None, :, None]
    cols = centres[:, 1, None, None] + offsets[None, None, :]
    patches = padded[rows, cols].reshape(len(centres), -1).astype(np.float64)
    patches -= patches.mean(axis=0)
    _, vectors = np.linalg.eigh(patches.T @ patches)   # the scatter matrix's eigenvectors, ascending
    count = min(components, vectors.shape[1], len(centres))
    leading = vectors[:, ::-1][:, :count].T
    leading *= np.sign(leading[np.arange(count), np.abs(leading).argmax(axis=1)])[:, None]   # a fixed sign
    return leading.reshape(count, patch, patch, image.shape[2]).astype(np.float32)


def _describe(image: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Every pixel's patch projected on the basis: HxWxK float32 (one correlation filter per component)."""
    channels = [np.zeros(image.shape[:2], np.float32) for _ in range(basis.shape[0])]
    for index, component in enumerate(basis):
        for channel in range(image.shape[2]):
            channels[index] += cv2.filter2D(image[..., channel], cv2.CV_32F, component[..., channel],
                                            borderType=cv2.BORDER_REFLECT)
    return np.stack(channels, axis=2)


def _patch_match(wanted: np.ndarray, descriptors: np.ndarray, level: _Level, matches: np.ndarray,
                 steps: list[int], search: int, rng: np.random.Generator) -> np.ndarray:
    """PatchMatch with parallel jump-flood propagation (`steps`) and random search (from radius `search` down);
    returns the improved `matches`. A propagated offset's distance counts (1 - coherence) times: ties go to
    coherent regions."""
    settings = level.settings
    best = _distance(wanted, descriptors, matches)
    everyone = np.ones(len(matches), bool)
    for _ in range(settings.iterations):
        for step in steps:
            for dy, dx in ((step, 0), (-step, 0), (0, step), (0, -step)):
                neighbour = level.neighbours(dy, dx)
                has = neighbour >= 0
                candidate = matches.copy()
                candidate[has] = matches[neighbour[has]] - (dy, dx)
                matches, best = _keep_better(wanted, descriptors, level.valid, matches, best, candidate, has,
                                             1.0 - settings.coherence)
        anywhere = level.sources[rng.integers(0, len(level.sources), len(matches))]
        matches, best = _keep_better(wanted, descriptors, level.valid, matches, best, anywhere, everyone)
        radius = search
        while radius >= 1:
            candidate = matches + rng.integers(-radius, radius + 1, matches.shape)
            matches, best = _keep_better(wanted, descriptors, level.valid, matches, best, candidate, everyone)
            radius //= 2
    return matches


def _distance(wanted: np.ndarray, descriptors: np.ndarray, matches: np.ndarray) -> np.ndarray:
    difference = wanted - descriptors[matches[:, 0], matches[:, 1]]
    return np.einsum("ij,ij->i", difference, difference)


def _keep_better(wanted: np.ndarray, descriptors: np.ndarray, valid: np.ndarray, matches: np.ndarray,
                 best: np.ndarray, candidate: np.ndarray, considered: np.ndarray, discount: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    ok = considered & _inside(candidate, valid.shape)
    ok[ok] = valid[candidate[ok, 0], candidate[ok, 1]]
    distance = np.full(len(matches), np.inf, np.float32)
    distance[ok] = discount * _distance(wanted[ok], descriptors, candidate[ok])
    better = distance < best
    matches = np.where(better[:, None], candidate, matches)
    return matches, np.where(better, distance, best)


def _copy_full_resolution(image: np.ndarray, hole: np.ndarray, forbidden: np.ndarray, structure: np.ndarray,
                          matches: np.ndarray, small: _Level) -> np.ndarray:
    """Copy each full-resolution hole pixel along the NNF scaled up: the copies made along the offsets of the four
    nearest matching-scale cells, blended bilinearly (where neighbouring cells copy from one place this is that
    place's pixel, sharp; where they copy from different places the seam is a cross-fade one cell wide, not a
    block edge). Offsets whose source falls on a forbidden pixel or off the crop do not vote; with none left,
    the structure stays."""
    height, width = hole.shape
    small_w, small_h = small.size
    field = np.zeros((small_h, small_w, 2), np.float32)
    field[small.targets[:, 0], small.targets[:, 1]] = matches - small.targets
    rows, cols = np.nonzero(hole)
    here = np.stack([rows, cols], axis=1)
    ratio = np.array([height / small_h, width / small_w], np.float32)
    at = (here + 0.5) / ratio - 0.5                     # each hole pixel at the matching scale (continuous)
    corner = np.floor(at).astype(np.int64)
    share = at - corner
    total = np.zeros((len(rows), 3), np.float32)
    weight = np.zeros(len(rows), np.float32)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        cell_y = np.clip(corner[:, 0] + dy, 0, small_h - 1)
        cell_x = np.clip(corner[:, 1] + dx, 0, small_w - 1)
        cell_weight = (share[:, 0] if dy else 1 - share[:, 0]) * (share[:, 1] if dx else 1 - share[:, 1])
        source = np.rint(here + field[cell_y, cell_x] * ratio).astype(np.int64)
        ok = (small.index[cell_y, cell_x] >= 0) & _inside(source, hole.shape)
        ok[ok] = ~forbidden[source[ok, 0], source[ok, 1]]
        votes = np.where(ok, cell_weight, 0).astype(np.float32)
        clipped = np.clip(source, 0, [height - 1, width - 1])
        total += votes[:, None] * image[clipped[:, 0], clipped[:, 1]]
        weight += votes
    result = structure.astype(np.float32)
    voted = weight > 1e-6
    result[rows[voted], cols[voted]] = total[voted] / weight[voted, None]
    return result


def _follow_structure(copied: np.ndarray, structure: np.ndarray, layout: np.ndarray, hole: np.ndarray,
                      sigma: float, settings: ExemplarSettings) -> np.ndarray:
    """In the hole: low frequencies from the structure and the synthesis' own voted layout (by
    `structure_weight`), plus `texture_gain` times the full-resolution copy's high frequencies."""
    copied = copied.astype(np.float32)
    copied_low = _low_pass(copied, sigma)
    weight = settings.structure_weight
    low = _low_pass(weight * structure.astype(np.float32) + (1 - weight) * layout, sigma)
    return low + settings.texture_gain * (copied - copied_low)


def _match_border(image: np.ndarray, fill: np.ndarray, hole: np.ndarray, sigma: float) -> np.ndarray:
    """The fill shifted so that its local mean meets the known pixels' at the hole's border (the offset measured
    on a ring just outside the hole, interpolated smoothly across it): no outline of the hole is left."""
    outside_mean = normalised_blur(image.astype(np.float32), (~hole).astype(np.float32), sigma)
    inside_mean = normalised_blur(fill.astype(np.float32), hole.astype(np.float32), sigma)
    ring = ring_around(hole, 2)
    measured = np.where(ring[..., None], inside_mean, fill).astype(np.float32)
    return seam_correct(outside_mean, measured, hole, ring)
