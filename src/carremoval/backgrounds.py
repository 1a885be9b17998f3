"""The backgrounds stage's logic: merge crawled photos, video frames and dataset images; de-duplicate (sha256,
perceptual hash); crop to the training aspect and cap the size; reject photos with a car when a pretrained
segmenter is there (else mark them unchecked); write PNGs and a manifest."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import imagehash
import numpy as np
from PIL import Image
from tqdm import tqdm

from carremoval.cutouts import PhotoSkipped, chunks, load_photo
from carremoval.io import InputError, atomic_dir, read_jsonl, write_json, write_jsonl, write_png
from carremoval.segmentation import Segmenter, optional_segmenter
from carremoval.weights import weights_mode

log = logging.getLogger(__name__)

RAW_SOURCES = ("oir_mobi", "youtube", "datasets")   # folders under data/raw holding a manifest.jsonl


@dataclass(frozen=True)
class BackgroundSettings:
    aspect: tuple[int, int] = (3, 2)        # width:height of the centre crop (the original trained at 384x256)
    max_width: int = 768                    # larger crops are downscaled to this width (never upscaled)
    min_width: int = 300                    # smaller crops are dropped (too_small)
    phash_max_distance: int = 4             # Hamming distance (of 64 bits) at or below which images are near-duplicates
    car_check: bool = True                  # reject photos with a car when a pretrained segmenter is available
    max_car_fraction: float = 0.002         # car pixels / image pixels above which a background is rejected
    max_pixels: int = 40_000_000            # larger files are skipped undecoded (too_large)
    batch: int = 8                          # images per car-check batch

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "BackgroundSettings":
        values = dict(params)
        if "aspect" in values:
            values["aspect"] = tuple(values["aspect"])
        try:
            return cls(**values)
        except TypeError as err:
            raise ValueError(f"backgrounds: {err}") from None

    @property
    def min_height(self) -> int:
        return round(self.min_width * self.aspect[1] / self.aspect[0])


@dataclass(frozen=True)
class Candidate:
    """One raw image: where it is, where it came from, and its leakage group."""

    file: Path
    origin: str        # path relative to the repository root
    source: str
    group: str
    sha256: str
    pixels: int


def candidate(row: dict, raw_dir: Path, root: Path) -> Candidate:
    source = row.get("source") or raw_dir.name
    if source == "youtube":
        group = f"youtube:{row['video_id']}"
    else:
        group = f"{source}:{row['sha256']}"
    file = raw_dir / row["path"]
    origin = file.relative_to(root).as_posix() if file.is_relative_to(root) else file.as_posix()
    pixels = int(row.get("width") or 0) * int(row.get("height") or 0)
    return Candidate(file, origin, source, group, row["sha256"], pixels)


def read_candidates(raw_dirs: Sequence[Path], root: Path) -> list[Candidate]:
    """Every raw image of every source, largest first (so the largest copy of a near-duplicate is kept)."""
    found = []
    for raw_dir in raw_dirs:
        for number, row in enumerate(read_jsonl(raw_dir / "manifest.jsonl"), start=1):
            missing = [key for key in ("path", "sha256") if key not in row]
            if missing or (row.get("source") == "youtube" and "video_id" not in row):
                raise InputError(f"{raw_dir / 'manifest.jsonl'}:{number}: missing {missing or ['video_id']}")
            found.append(candidate(row, raw_dir, root))
    return sorted(found, key=lambda c: (-c.pixels, c.source, c.sha256, c.origin))


def crop_to_aspect(rgb: np.ndarray, aspect: tuple[int, int]) -> np.ndarray:
    """The largest centred crop with width:height = aspect."""
    height, width = rgb.shape[:2]
    target_w, target_h = aspect
    crop_w = min(width, (height * target_w) // target_h)
    crop_h = min(height, (crop_w * target_h) // target_w)
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    return rgb[y0 : y0 + crop_h, x0 : x0 + crop_w]


def fit_width(rgb: np.ndarray, max_width: int) -> np.ndarray:
    """Downscale (Lanczos) so the width is at most max_width, keeping the aspect."""
    height, width = rgb.shape[:2]
    if width <= max_width:
        return rgb
    size = (max_width, max(1, round(height * max_width / width)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def perceptual_hash(rgb: np.ndarray) -> int:
    return int(str(imagehash.phash(Image.fromarray(rgb))), 16)


class NearDuplicates:
    """Perceptual hashes seen so far; a new hash within the distance of one of them is a near-duplicate."""

    def __init__(self, max_distance: int) -> None:
        self.max_distance = max_distance
        self.hashes = np.zeros(0, np.uint64)

    def seen(self, value: int) -> bool:
        distances = np.bitwise_count(self.hashes ^ np.uint64(value))
        if len(distances) and int(distances.min()) <= self.max_distance:
            return True
        self.hashes = np.append(self.hashes, np.uint64(value))
        return False


@dataclass
class Prepared:
    candidate: Candidate
    rgb: np.ndarray
    phash: int


@dataclass
class BackgroundReport:
    candidates: int = 0
    kept: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def skip(self, item: Candidate, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        log.info("skipped %s (%s%s)", item.origin, reason, f": {detail}" if detail else "")

    def metrics(self, segmenter: Segmenter | None) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "kept": sum(self.kept.values()),
            "kept_by_source": dict(sorted(self.kept.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_total": sum(self.skipped.values()),
            "car_check": segmenter.config.model if segmenter is not None else "unchecked",
            "rejected_with_cars": self.skipped.get("contains_car", 0),
            "pretrained_weights": segmenter is not None,
        }


class BackgroundCurator:
    """Runs the curation over the candidates and writes images/<id>.png for every kept background."""

    def __init__(self, settings: BackgroundSettings, segmenter: Segmenter | None, images_dir: Path) -> None:
        self.settings = settings
        self.segmenter = segmenter
        self.images_dir = images_dir
        self.report = BackgroundReport()
        self.hashes = NearDuplicates(settings.phash_max_distance)
        self.rows: list[dict[str, Any]] = []

    def run(self, candidates: list[Candidate]) -> list[dict[str, Any]]:
        self.report.candidates = len(candidates)
        unique = self._unique_bytes(candidates)
        for batch in tqdm(list(chunks(unique, self.settings.batch)), desc="backgrounds", unit="batch", leave=False):
            prepared = [item for item in map(self._prepare, batch) if item is not None]
            for item, has_car in zip(prepared, self._car_flags(prepared)):
                if has_car:
                    self.report.skip(item.candidate, "contains_car")
                else:
                    self._write(item)
        return sorted(self.rows, key=lambda row: row["id"])

    def _unique_bytes(self, candidates: list[Candidate]) -> list[Candidate]:
        seen: set[str] = set()
        unique = []
        for item in candidates:
            if item.sha256 in seen:
                self.report.skip(item, "duplicate_sha256")
            else:
                seen.add(item.sha256)
                unique.append(item)
        return unique

    def _prepare(self, item: Candidate) -> Prepared | None:
        """Decode, crop, size-check, downscale and hash one image; None (counted) when it is skipped."""
        settings = self.settings
        try:
            rgb = load_photo(item.file, min_side=1, max_pixels=settings.max_pixels).rgb
        except PhotoSkipped as skipped:
            self.report.skip(item, skipped.reason, skipped.detail)
            return None
        rgb = crop_to_aspect(rgb, settings.aspect)
        if rgb.shape[1] < settings.min_width or rgb.shape[0] < settings.min_height:
            self.report.skip(item, "too_small", f"{rgb.shape[1]}x{rgb.shape[0]} after the crop")
            return None
        rgb = np.ascontiguousarray(fit_width(rgb, settings.max_width))
        phash = perceptual_hash(rgb)
        if self.hashes.seen(phash):
            self.report.skip(item, "near_duplicate")
            return None
        return Prepared(item, rgb, phash)

    def _car_flags(self, prepared: list[Prepared]) -> Iterator[bool]:
        """Per image, whether its car pixel fraction is over the limit (all False without a segmenter)."""
        if self.segmenter is None or not prepared:
            return iter([False] * len(prepared))
        probabilities = self.segmenter.probabilities([item.rgb for item in prepared])
        threshold = self.segmenter.config.threshold
        return (float((p > threshold).mean()) > self.settings.max_car_fraction for p in probabilities)

    def _write(self, item: Prepared) -> None:
        background_id = item.candidate.sha256[:16]
        write_png(self.images_dir / f"{background_id}.png", item.rgb)
        self.report.kept[item.candidate.source] += 1
        self.rows.append({
            "id": background_id,
            "path": f"images/{background_id}.png",
            "width": int(item.rgb.shape[1]),
            "height": int(item.rgb.shape[0]),
            "source": item.candidate.source,
            "group": item.candidate.group,
            "origin": item.candidate.origin,
            "phash": f"{item.phash:016x}",
            "car_check": "clean" if self.segmenter is not None else "unchecked",
        })


def curate_backgrounds(
    raw_dirs: Sequence[Path], out_dir: Path, root: Path, settings: BackgroundSettings, segmenter: Segmenter | None
) -> dict[str, Any]:
    """raw manifests -> out_dir/{images/, manifest.jsonl}, written atomically; returns the metrics."""
    candidates = read_candidates(raw_dirs, root)
    with atomic_dir(out_dir) as tmp:
        (tmp / "images").mkdir()
        curator = BackgroundCurator(settings, segmenter, tmp / "images")
        write_jsonl(tmp / "manifest.jsonl", curator.run(candidates))
    return curator.report.metrics(segmenter)


def run_backgrounds(params: dict[str, Any], raw_root: Path, out_dir: Path, metrics_path: Path, root: Path) -> dict:
    """The backgrounds stage: the car check per the segment weight policy, curation, metrics."""
    settings = BackgroundSettings.from_params(params["backgrounds"])
    segment = params.get("segment", {})
    wanted = settings.car_check and weights_mode(segment.get("weights")) != "none"
    segmenter = optional_segmenter(segment) if wanted else None
    if segmenter is None:
        log.warning("backgrounds are NOT checked for cars (no pretrained segmenter): car_check = unchecked")
    raw_dirs = [raw_root / name for name in RAW_SOURCES]
    metrics = curate_backgrounds(raw_dirs, out_dir, root, settings, segmenter)
    write_json(metrics_path, metrics)
    return metrics
