"""The segment stage's logic: per car photo, a car mask by policy (model / annotation / alpha), quality filters
with reasons, and an RGBA cut-out (feathered alpha, cropped to the car) with its manifest row."""
from __future__ import annotations

import logging
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from carremoval.io import InputError, atomic_dir, read_jsonl, read_mask, write_json, write_jsonl, write_png
from carremoval.masks import bounding_box, crop_box, feathered_alpha, touches_border
from carremoval.params import resolve_path
from carremoval.segmentation import Segmenter, SegmenterConfig, optional_segmenter
from carremoval.weights import weights_mode

log = logging.getLogger(__name__)

METHODS = ("model", "annotation", "alpha")
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "P", "PA"}


class PhotoSkipped(Exception):
    """A photo that cannot be used; `reason` is the short key counted in the metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Photo:
    rgb: np.ndarray                 # HxWx3 uint8
    alpha: np.ndarray | None        # HxW uint8 when the file has a (not fully opaque) alpha channel


def load_photo(path: Path, min_side: int, max_pixels: int) -> Photo:
    """Decode a colour photo; PhotoSkipped for unreadable, too small, too large, greyscale or odd colour modes."""
    try:
        image = Image.open(path)
        width, height = image.size
        if width * height > max_pixels:
            raise PhotoSkipped("too_large", f"{path}: {width}x{height} is over the {max_pixels}-pixel cap")
        if min(width, height) < min_side:
            raise PhotoSkipped("too_small", f"{path}: {width}x{height}, the shorter side is under {min_side} px")
        image.load()
    except Image.DecompressionBombError as err:
        raise PhotoSkipped("too_large", f"{path}: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise PhotoSkipped("unreadable", f"{path}: not a readable image ({err})") from None
    return photo_arrays(image, path)


def photo_arrays(image: Image.Image, path: Path) -> Photo:
    """RGB (and alpha) arrays of a decoded image whose mode is a colour one."""
    if image.mode in GREY_MODES:
        raise PhotoSkipped("greyscale", f"{path}: greyscale image (mode {image.mode})")
    if image.mode not in COLOUR_MODES:
        raise PhotoSkipped("colour_mode", f"{path}: unsupported colour mode {image.mode} (e.g. CMYK)")
    has_alpha = image.mode in ("RGBA", "RGBa", "PA") or "transparency" in image.info
    rgba = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    rgb = np.ascontiguousarray(rgba[..., :3])
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        raise PhotoSkipped("greyscale", f"{path}: an RGB file with grey content")
    alpha = rgba[..., 3] if has_alpha and (rgba[..., 3] < 255).any() else None
    return Photo(rgb, alpha)


@dataclass(frozen=True)
class QualityFilters:
    """A cut-out is kept only within these bounds; each rejection is counted by its reason."""

    min_area_fraction: float = 0.01     # car pixels / photo pixels
    max_area_fraction: float = 0.9
    min_car_side: int = 32              # shorter side of the car's bounding box, px
    reject_border: bool = True          # a car touching the photo edge is cut off: reject it
    min_score: float = 0.6              # mean car probability inside the mask (model masks only)

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> "QualityFilters":
        try:
            return cls(**(params or {}))
        except TypeError as err:
            raise ValueError(f"segment.filters: {err}") from None

    def rejection(self, mask: np.ndarray, method: str, score: float) -> str | None:
        """The first reason this mask fails, or None when it passes."""
        box = bounding_box(mask)
        if box is None:
            return "empty_mask"
        area = float(mask.mean())
        if area < self.min_area_fraction:
            return "area_too_small"
        if area > self.max_area_fraction:
            return "area_too_large"
        if min(box[2] - box[0], box[3] - box[1]) < self.min_car_side:
            return "car_too_small"
        if self.reject_border and touches_border(mask):
            return "touches_border"
        if method == "model" and score < self.min_score:
            return "low_score"
        return None


@dataclass(frozen=True)
class CutoutSettings:
    """params['segment'] keys that steer the stage (the model's own keys are read by SegmenterConfig)."""

    methods: tuple[str, ...] = METHODS  # preference order; the first available for a photo makes its mask
    annotations: Path | None = None     # root of <url without scheme, .jpg -> .mask.png> masks
    feather_px: float = 3.0             # width of the alpha ramp across the edge
    crop_margin: int = 4                # px around the feathered car
    min_photo_side: int = 64
    max_photo_pixels: int = 40_000_000
    filters: QualityFilters = field(default_factory=QualityFilters)

    def __post_init__(self) -> None:
        unknown = [name for name in self.methods if name not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"segment.methods: unknown {unknown}; choose from {list(METHODS)}")

    @classmethod
    def from_params(cls, params: dict[str, Any], annotations: Path | None) -> "CutoutSettings":
        names = {"feather_px", "crop_margin", "min_photo_side", "max_photo_pixels"}
        values = {key: params[key] for key in names if key in params}
        return cls(
            methods=tuple(params.get("methods", METHODS)),
            annotations=annotations,
            filters=QualityFilters.from_params(params.get("filters")),
            **values,
        )


def annotation_path(root: Path, url: str) -> Path:
    """`<root>/<host>/<path>` for a photo URL, with its extension replaced by `.mask.png` (scheme, query dropped)."""
    parts = urllib.parse.urlparse(url)
    relative = Path(parts.netloc.lower()) / urllib.parse.unquote(parts.path).lstrip("/")
    return root / relative.with_suffix(".mask.png")


@dataclass(frozen=True)
class CarMask:
    mask: np.ndarray
    method: str
    score: float


class MaskSources:
    """Picks, per photo, the first mask source in the policy's order that it has."""

    def __init__(self, settings: CutoutSettings, segmenter: Segmenter | None) -> None:
        self.settings = settings
        self.segmenter = segmenter
        available = {"model": segmenter is not None, "annotation": settings.annotations is not None, "alpha": True}
        self.order = [method for method in settings.methods if available[method]]
        if settings.annotations is not None and not settings.annotations.is_dir():
            log.warning("the annotations folder %s does not exist: no annotation masks", settings.annotations)

    def describe(self) -> str:
        tried = " -> ".join(self.order) or "nothing"
        weights = (
            f"segmenter: {self.segmenter.describe()}"
            if self.segmenter
            else "NO pretrained segmentation weights: no model masks"
        )
        return f"mask policy: {tried} -> skip (no_mask_source); {weights}; annotations: {self.settings.annotations}"

    def first_method(self, url: str, photo: Photo) -> str | None:
        for method in self.order:
            if method == "model":
                return method
            if method == "annotation" and self._annotation_file(url) is not None:
                return method
            if method == "alpha" and photo.alpha is not None:
                return method
        return None

    def given_mask(self, method: str, url: str, photo: Photo) -> CarMask:
        """The annotation's or the alpha channel's mask, used as given (score 1.0: a trusted, not a model, mask)."""
        if method == "alpha":
            return CarMask(photo.alpha > 127, "alpha", 1.0)
        path = self._annotation_file(url)
        try:
            return CarMask(read_mask(path, photo.rgb.shape[:2]), "annotation", 1.0)
        except InputError as err:
            raise PhotoSkipped("bad_annotation", str(err)) from None

    def model_masks(self, photos: Sequence[Photo]) -> list[CarMask]:
        """Cleaned model masks, scored by the mean car probability inside the mask."""
        probabilities = self.segmenter.probabilities([photo.rgb for photo in photos])
        results = []
        for probability in probabilities:
            mask = self.segmenter.mask_from_probability(probability)
            score = float(probability[mask].mean()) if mask.any() else 0.0
            results.append(CarMask(mask, "model", round(score, 6)))
        return results

    def _annotation_file(self, url: str) -> Path | None:
        if self.settings.annotations is None or not url:
            return None
        path = annotation_path(self.settings.annotations, url)
        return path if path.is_file() else None


def cutout_rgba(rgb: np.ndarray, mask: np.ndarray, feather_px: float, margin: int) -> tuple[np.ndarray, list[int]]:
    """The RGBA cut-out (feathered alpha, RGB zeroed where alpha is 0) and its crop box [x0, y0, x1, y1]."""
    alpha = feathered_alpha(mask, feather_px)
    x0, y0, x1, y1 = crop_box(alpha > 0, margin)
    rgba = np.dstack([rgb, alpha])[y0:y1, x0:x1].copy()
    rgba[rgba[..., 3] == 0, :3] = 0
    return rgba, [x0, y0, x1, y1]


@dataclass
class SegmentReport:
    """What the stage did: cut-outs per method, skipped photos per reason."""

    photos: int = 0
    methods: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def skip(self, row: dict, error: PhotoSkipped) -> None:
        self.skipped[error.reason] += 1
        level = logging.DEBUG if error.reason == "no_mask_source" else logging.INFO
        log.log(level, "skipped %s (%s)", row.get("url") or row.get("path"), error)

    def metrics(self, segmenter: Segmenter | None) -> dict[str, Any]:
        return {
            "photos": self.photos,
            "cutouts": sum(self.methods.values()),
            "methods": {name: self.methods.get(name, 0) for name in METHODS},
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_total": sum(self.skipped.values()),
            "pretrained_weights": segmenter is not None,
            "model": segmenter.config.model if segmenter is not None else None,
        }


class CutoutWriter:
    """Runs the policy over a raw manifest and writes images/<id>.png for every accepted cut-out."""

    def __init__(self, settings: CutoutSettings, segmenter: Segmenter | None, images_dir: Path) -> None:
        self.settings = settings
        self.sources = MaskSources(settings, segmenter)
        self.images_dir = images_dir
        self.report = SegmentReport()
        self.rows: list[dict[str, Any]] = []

    def run(self, raw_rows: list[dict], raw_dir: Path, chunk: int) -> list[dict[str, Any]]:
        """Process every photo (the model in batches of `chunk`); returns the manifest rows sorted by id."""
        log.info(self.sources.describe())
        for batch in tqdm(list(chunks(raw_rows, chunk)), desc="segment", unit="batch", leave=False):
            self._process_batch(batch, raw_dir)
        return sorted(self.rows, key=lambda row: row["id"])

    def _process_batch(self, rows: list[dict], raw_dir: Path) -> None:
        pending: list[tuple[dict, Photo]] = []
        for row in rows:
            self.report.photos += 1
            try:
                photo = load_photo(raw_dir / row["path"], self.settings.min_photo_side, self.settings.max_photo_pixels)
                method = self.sources.first_method(row.get("url", ""), photo)
                if method is None:
                    raise PhotoSkipped("no_mask_source", f"{row.get('url')}: no model, annotation or alpha channel")
                if method == "model":
                    pending.append((row, photo))
                else:
                    self._accept(row, photo, self.sources.given_mask(method, row.get("url", ""), photo))
            except PhotoSkipped as skipped:
                self.report.skip(row, skipped)
        if pending:
            masks = self.sources.model_masks([photo for _, photo in pending])
            for (row, photo), car in zip(pending, masks):
                try:
                    self._accept(row, photo, car)
                except PhotoSkipped as skipped:
                    self.report.skip(row, skipped)

    def _accept(self, row: dict, photo: Photo, car: CarMask) -> None:
        reason = self.settings.filters.rejection(car.mask, car.method, car.score)
        if reason is not None:
            raise PhotoSkipped(reason, f"{row.get('url')}: {car.method} mask rejected (score {car.score:.3f})")
        rgba, box = cutout_rgba(photo.rgb, car.mask, self.settings.feather_px, self.settings.crop_margin)
        cutout_id = row["sha256"][:16]
        write_png(self.images_dir / f"{cutout_id}.png", rgba)
        self.report.methods[car.method] += 1
        self.rows.append(manifest_row(row, cutout_id, rgba, car, box))


def manifest_row(raw: dict, cutout_id: str, rgba: np.ndarray, car: CarMask, box: list[int]) -> dict[str, Any]:
    """A cut-out manifest row per the data contract (bbox = the crop box in the photo, x1/y1 exclusive)."""
    return {
        "id": cutout_id,
        "path": f"images/{cutout_id}.png",
        "width": int(rgba.shape[1]),
        "height": int(rgba.shape[0]),
        "source_url": raw.get("url"),
        "source_sha256": raw["sha256"],
        "group": f"{raw.get('source', 'motorpage')}:{raw['sha256']}",
        "brand": raw.get("brand"),
        "model": raw.get("model"),
        "generation": raw.get("generation"),
        "method": car.method,
        "score": car.score,
        "mask_area": round(float(car.mask.mean()), 6),
        "bbox": box,
    }


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def unique_by_sha256(rows: list[dict], report: SegmentReport) -> list[dict]:
    """Raw rows sorted by sha256, later copies of the same bytes counted as 'duplicate'."""
    seen: set[str] = set()
    unique = []
    for row in sorted(rows, key=lambda r: (r["sha256"], r.get("url", ""))):
        if row["sha256"] in seen:
            report.photos += 1
            report.skip(row, PhotoSkipped("duplicate", f"same bytes as an earlier photo ({row['sha256'][:16]})"))
            continue
        seen.add(row["sha256"])
        unique.append(row)
    return unique


def segment_photos(
    raw_dir: Path, out_dir: Path, settings: CutoutSettings, segmenter: Segmenter | None, chunk: int = 8
) -> dict[str, Any]:
    """raw_dir/manifest.jsonl -> out_dir/{images/, manifest.jsonl}, written atomically; returns the metrics."""
    raw_rows = read_jsonl(raw_dir / "manifest.jsonl")
    with atomic_dir(out_dir) as tmp:
        writer = CutoutWriter(settings, segmenter, tmp / "images")
        (tmp / "images").mkdir()
        rows = writer.run(unique_by_sha256(raw_rows, writer.report), raw_dir, chunk)
        write_jsonl(tmp / "manifest.jsonl", rows)
    return {**writer.report.metrics(segmenter), "policy": writer.sources.order}


def check_segment_keys(params: dict[str, Any]) -> None:
    """A typo in params['segment'] is an error, not a silently ignored setting."""
    known = {f.name for f in fields(SegmenterConfig)} | {f.name for f in fields(CutoutSettings)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"segment: unknown key(s) {unknown}; known: {sorted(known)}")


def run_segment(params: dict[str, Any], raw_dir: Path, out_dir: Path, metrics_path: Path, root: Path) -> dict:
    """The segment stage: the segmenter per the weight policy (or the logged fallback), cut-outs, metrics."""
    check_segment_keys(params)
    use_model = "model" in params.get("methods", METHODS) and weights_mode(params.get("weights")) != "none"
    segmenter = optional_segmenter(params) if use_model else None
    annotations = resolve_path(params.get("annotations"), root)
    settings = CutoutSettings.from_params(params, annotations.resolve() if annotations else None)
    chunk = 2 * int(params.get("batch_size", 4))
    metrics = {**segment_photos(raw_dir, out_dir, settings, segmenter, chunk), "weights": params.get("weights")}
    write_json(metrics_path, metrics)
    return metrics
