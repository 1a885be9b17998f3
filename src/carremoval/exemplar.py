"""Exemplar-based texture synthesis guided by a structure image (a guided PatchMatch).

A learned fill knows *what* goes where (the road's colour and its edges) but at a photo's own resolution it is
smooth. This module copies real texture into the hole from the photo's known pixels: a nearest-neighour field
(NNF) is found by PatchMatch (Barnes et al., 2009) on patch descriptors that join two bands, the current
estimate's full band (coherence with the hole's surroundings and with itself) and the structure's low-pass band
(the guide, as in image analogies' texture-by-numbers). The NNF is computed at a scale where the hole has a
bounded number of pixels, so the time does not grow with the photo's megapixels; the pixels themselves are
copied at full resolution along the scaled field, so the texture keeps the photo's own sharpness. Finally the
copy's low frequencies are replaced by the structure's, so the colours follow the guide.

Patches are compared through a PCA basis fitted on the photo's own patches (a few components describe a 7x7
RGB patch well), computed for every pixel at once with one small filter per component.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from carremoval.masks import hole_boxes


@dataclass(frozen=True)
class ExemplarSettings:
    """The synthesis' knobs; the defaults were chosen on the validation photos (README, "Photo fill")."""

    patch: int = 7                  # patch side at the matching scale (odd)
    components: int = 12            # PCA components per band
    guide_weight: float = 1.0       # weight of the structure band against the estimate's full band
    guide_sigma: float = 2.0        # low-pass sigma (matching-scale px) of the structure band
    structure_weight: float = 1.0   # the fill's low frequencies: this share from the structure, the rest from
                                    # the copy (an ensemble of the learned and the exemplar layout)
    structure_sigma: float = 4.0    # low-pass sigma (matching-scale px) splitting low from high frequencies
    rounds: int = 3                 # match, copy, describe the copy again
    iterations: int = 3             # PatchMatch sweeps (propagation + random search) per round
    max_hole_pixels: int = 30000    # the NNF is computed at a scale where the hole has at most this many pixels
    context: float = 3.0            # the crop around the hole: its bounding box grown this many times
    texture_gain: float = 1.0       # share of the copied high frequencies kept (0 = the structure alone)
    seed: int = 0

    @classmethod
    def from_params(cls, section: dict | None) -> "ExemplarSettings":
        """The `exemplar` section of params.yaml (missing keys keep their defaults)."""
        try:
            return cls(**(section or {}))
        except TypeError as err:
            raise ValueError(f"params.yaml: exemplar: {err}") from None

    def __post_init__(self) -> None:
        if self.patch < 3 or self.patch % 2 == 0:
            raise ValueError(f"exemplar synthesis: patch must be odd and at least 3, got {self.patch}")
        if min(self.components, self.rounds, self.iterations, self.max_hole_pixels) < 1:
            raise ValueError("exemplar synthesis: components, rounds, iterations and max_hole_pixels must be >= 1")
        if self.context < 1 or min(self.guide_sigma, self.structure_sigma) <= 0:
            raise ValueError("exemplar synthesis: context must be >= 1, guide_sigma and structure_sigma > 0")
        if self.guide_weight < 0 or self.texture_gain < 0 or not 0 <= self.structure_weight <= 1:
            raise ValueError("exemplar synthesis: guide_weight, texture_gain >= 0, structure_weight in [0, 1]")


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
    small = _Scaled(image, hole, structure, forbidden, scale, settings)
    if small.sources.shape[0] == 0:
        return structure.copy()
    matches = small.match(settings)
    copied = _copy_full_resolution(image, hole, forbidden, structure, matches, small)
    return _follow_structure(copied, structure, hole, settings.structure_sigma / scale, settings)


class _Scaled:
    """The crop at the matching scale: its hole, the sources a patch may come from, and the descriptors."""

    def __init__(self, image: np.ndarray, hole: np.ndarray, structure: np.ndarray, forbidden: np.ndarray,
                 scale: float, settings: ExemplarSettings):
        height, width = hole.shape
        self.size = (max(1, round(width * scale)), max(1, round(height * scale)))
        self.image = _resize(image.astype(np.float32), self.size)
        self.structure = _resize(structure.astype(np.float32), self.size)
        self.hole = _resize(hole.astype(np.float32), self.size) > 0
        blocked = _resize(forbidden.astype(np.float32), self.size) > 0
        self.radius = settings.patch // 2
        self.sources = _source_pixels(blocked, self.radius)
        self.targets = np.argwhere(self.hole)
        self.rng = np.random.default_rng(settings.seed)
        guide = _low_pass(self.image, settings.guide_sigma)
        self.full_basis = _patch_basis(self.image, blocked, settings.patch, settings.components, self.rng)
        self.guide_basis = _patch_basis(guide, blocked, settings.patch, settings.components, self.rng)
        weight = np.float32(np.sqrt(settings.guide_weight))
        self.source_descriptors = np.concatenate(
            [_describe(self.image, self.full_basis), weight * _describe(guide, self.guide_basis)], axis=2)
        self.target_guide = weight * _describe(_low_pass(self.structure, settings.guide_sigma), self.guide_basis)

    def match(self, settings: ExemplarSettings) -> np.ndarray:
        """The NNF: for each hole pixel (row of `targets`) the (y, x) of its source at this scale."""
        estimate = np.where(self.hole[..., None], self.structure, self.image)
        matches = self.sources[self.rng.integers(0, self.sources.shape[0], self.targets.shape[0])]
        for _ in range(settings.rounds):
            target = np.concatenate([_describe(estimate, self.full_basis), self.target_guide], axis=2)
            wanted = target[self.targets[:, 0], self.targets[:, 1]]
            matches = _patch_match(wanted, self.source_descriptors, self.targets, matches, self.valid_source_map(),
                                   settings.iterations, self.rng)
            estimate = self.image.copy()
            estimate[self.targets[:, 0], self.targets[:, 1]] = self.image[matches[:, 0], matches[:, 1]]
        return matches

    def valid_source_map(self) -> np.ndarray:
        valid = np.zeros(self.hole.shape, bool)
        valid[self.sources[:, 0], self.sources[:, 1]] = True
        return valid


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


def _patch_basis(image: np.ndarray, blocked: np.ndarray, patch: int, components: int,
                 rng: np.random.Generator, samples: int = 8000) -> np.ndarray:
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
    patches = padded[rows, cols].reshape(len(centres), -1)
    patches = patches - patches.mean(axis=0)
    _, _, vectors = np.linalg.svd(patches, full_matrices=False)
    count = min(components, vectors.shape[0])
    return vectors[:count].reshape(count, patch, patch, image.shape[2]).astype(np.float32)


def _describe(image: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Every pixel's patch projected on the basis: HxWxK float32 (one correlation filter per component)."""
    channels = [np.zeros(image.shape[:2], np.float32) for _ in range(basis.shape[0])]
    for index, component in enumerate(basis):
        for channel in range(image.shape[2]):
            channels[index] += cv2.filter2D(image[..., channel], cv2.CV_32F, component[..., channel],
                                            borderType=cv2.BORDER_REFLECT)
    return np.stack(channels, axis=2)


def _patch_match(wanted: np.ndarray, descriptors: np.ndarray, targets: np.ndarray, matches: np.ndarray,
                 valid: np.ndarray, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """PatchMatch with parallel jump-flood propagation and random search; returns the improved `matches`."""
    height, width = valid.shape
    index = np.full((height, width), -1, np.int64)
    index[targets[:, 0], targets[:, 1]] = np.arange(targets.shape[0])
    best = _distance(wanted, descriptors, matches)
    longest = max(height, width)
    steps = [1 << k for k in range(int(np.log2(max(longest, 2))), -1, -1)]
    for _ in range(iterations):
        for step in steps:
            for dy, dx in ((step, 0), (-step, 0), (0, step), (0, -step)):
                neighbour = _neighbour_index(index, targets, dy, dx)
                has = neighbour >= 0
                candidate = matches.copy()
                candidate[has] = matches[neighbour[has]] - (dy, dx)
                matches, best = _keep_better(wanted, descriptors, valid, matches, best, candidate, has)
        radius = longest
        while radius >= 1:
            candidate = matches + rng.integers(-radius, radius + 1, matches.shape)
            matches, best = _keep_better(wanted, descriptors, valid, matches, best, candidate,
                                         np.ones(len(matches), bool))
            radius //= 2
    return matches


def _neighbour_index(index: np.ndarray, targets: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """For each target, the target index of the pixel (dy, dx) away, or -1 (outside the hole or the crop)."""
    rows, cols = targets[:, 0] + dy, targets[:, 1] + dx
    inside = (rows >= 0) & (rows < index.shape[0]) & (cols >= 0) & (cols < index.shape[1])
    found = np.full(len(targets), -1, np.int64)
    found[inside] = index[rows[inside], cols[inside]]
    return found


def _distance(wanted: np.ndarray, descriptors: np.ndarray, matches: np.ndarray) -> np.ndarray:
    difference = wanted - descriptors[matches[:, 0], matches[:, 1]]
    return np.einsum("ij,ij->i", difference, difference)


def _keep_better(wanted: np.ndarray, descriptors: np.ndarray, valid: np.ndarray, matches: np.ndarray,
                 best: np.ndarray, candidate: np.ndarray, considered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = valid.shape
    ok = considered & (candidate[:, 0] >= 0) & (candidate[:, 0] < height) & (candidate[:, 1] >= 0) \
        & (candidate[:, 1] < width)
    ok[ok] = valid[candidate[ok, 0], candidate[ok, 1]]
    distance = np.full(len(matches), np.inf, np.float32)
    distance[ok] = _distance(wanted[ok], descriptors, candidate[ok])
    better = distance < best
    matches = np.where(better[:, None], candidate, matches)
    return matches, np.where(better, distance, best)


def _copy_full_resolution(image: np.ndarray, hole: np.ndarray, forbidden: np.ndarray, structure: np.ndarray,
                          matches: np.ndarray, small: _Scaled) -> np.ndarray:
    """Copy each full-resolution hole pixel from its source along the NNF scaled up; where the scaled source
    falls on a forbidden pixel or off the crop, the structure stays."""
    height, width = hole.shape
    small_w, small_h = small.size
    field = np.zeros((small_h, small_w, 2), np.float32)
    field[small.targets[:, 0], small.targets[:, 1]] = matches - small.targets
    rows, cols = np.nonzero(hole)
    small_rows = np.minimum(rows * small_h // height, small_h - 1)
    small_cols = np.minimum(cols * small_w // width, small_w - 1)
    offset = field[small_rows, small_cols]
    source_rows = np.rint(rows + offset[:, 0] * height / small_h).astype(np.int64)
    source_cols = np.rint(cols + offset[:, 1] * width / small_w).astype(np.int64)
    ok = (source_rows >= 0) & (source_rows < height) & (source_cols >= 0) & (source_cols < width)
    ok[ok] = ~forbidden[source_rows[ok], source_cols[ok]]
    result = structure.copy()
    result[rows[ok], cols[ok]] = image[source_rows[ok], source_cols[ok]]
    return result


def _follow_structure(copied: np.ndarray, structure: np.ndarray, hole: np.ndarray, sigma: float,
                      settings: ExemplarSettings) -> np.ndarray:
    """In the hole: low frequencies from the structure (and the copy, by `structure_weight`), plus
    `texture_gain` times the copy's high frequencies."""
    copied = copied.astype(np.float32)
    copied_low = _low_pass(copied, sigma)
    weight = settings.structure_weight
    low = weight * _low_pass(structure.astype(np.float32), sigma) + (1 - weight) * copied_low
    result = low + settings.texture_gain * (copied - copied_low)
    return np.clip(np.rint(np.where(hole[..., None], result, structure)), 0, 255).astype(np.uint8)
