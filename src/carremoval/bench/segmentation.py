"""Segmentation throughput. ESPNetv2 (the default of `--masks auto`, pretrained weights from ../shared/models):
images/s of masks at the photo size, for 854x480 and 432x240 frames. DeepLabV3: images/s of the whole
DeepLabSegmenter pipeline (uint8 photos in, cleaned masks at the photo size out) against the bare model forward on
the same, already preprocessed, batch.

Random-init weights: no pretrained weights can be downloaded here, and the speed of a forward pass does not depend
on the weight values (denormals aside: both timings run with them flushed). Real photos: DAVIS frames from
../shared/data/photos/cars, one batch of `segment.batch_size`.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import cv2
import numpy as np
import torch

from carremoval.bench import Check, Row, Section
from carremoval.device import configure_cpu_threads
from carremoval.io import read_rgb
from carremoval.params import load_params, repo_root
from carremoval.segmentation import (
    DEEPLAB_MODELS,
    ESPNET_MODELS,
    DeepLabSegmenter,
    SegmenterConfig,
    build_model,
    flush_denormals,
    removal_segmenter,
)

PHOTOS = repo_root().parent / "shared" / "data" / "photos" / "cars"
ESPNET_WEIGHTS = repo_root().parent / "shared" / "models" / "espnetv2"
MAX_OVERHEAD = 0.15


def real_photos(count: int) -> list[np.ndarray]:
    """`count` same-size real car photos (854x480 DAVIS frames), so they form one batch."""
    paths = sorted(PHOTOS.glob("davis_*.jpg"))[:count]
    return [read_rgb(path) for path in paths]


def interleaved_medians(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall times of two functions timed in turns (so machine load hits both alike), after a warm-up."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


class ReplayLogits(torch.nn.Module):
    """Returns the real model's output for the batch at once: the pipeline around the model, timed alone."""

    def __init__(self, output: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.output = output

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.output


def measure(model_name: str, inference_size: int, photos: list[np.ndarray], repeats: int) -> dict[str, float]:
    """Seconds per batch: the whole pipeline, the bare forward, and the pipeline's own steps (model replayed)."""
    torch.manual_seed(0)
    config = SegmenterConfig(model=model_name, weights=None, inference_size=inference_size, batch_size=len(photos))
    segmenter = DeepLabSegmenter(build_model(model_name), config, "random init (bench)")
    batch = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous().to(segmenter.device)
    inputs = segmenter.preprocess(batch)

    @torch.inference_mode()
    def bare() -> dict[str, torch.Tensor]:
        with flush_denormals():
            return segmenter.model(inputs)

    pipeline_s, bare_s = interleaved_medians(lambda: segmenter.masks(photos), bare, repeats)
    replay = DeepLabSegmenter(ReplayLogits(bare()), config, "replayed logits (bench)")
    steps_s, _ = interleaved_medians(lambda: replay.masks(photos), lambda: None, repeats)
    return {"pipeline": pipeline_s, "bare": bare_s, "steps": steps_s}


def espnet_rows(photos: list[np.ndarray], repeats: int) -> list[Row]:
    """Images/s of each ESPNetv2 model's masks, for the photos as they are and at 432x240."""
    small = [cv2.resize(photo, (432, 240), interpolation=cv2.INTER_AREA) for photo in photos]
    rows = []
    for model in ESPNET_MODELS:
        segmenter = removal_segmenter(model, str(ESPNET_WEIGHTS))
        for images in (photos, small):
            seconds, _ = interleaved_medians(lambda images=images: segmenter.masks(images), lambda: None, repeats)
            height, width = images[0].shape[:2]
            rows.append(Row(f"segment: {model} {width}x{height}", len(images) / seconds, "images/s",
                            f"{len(images)} DAVIS frames, pretrained, median of {repeats}"))
    return rows


def run(quick: bool) -> Section:
    params = load_params(repo_root() / "params.yaml")["segment"]
    configure_cpu_threads()
    size = 320 if quick else int(params.get("inference_size", 520))
    repeats = 1 if quick else 3
    photos = real_photos(int(params.get("batch_size", 4)))
    height, width = photos[0].shape[:2]
    note = f"{len(photos)} photos {width}x{height}, shorter side {size}, random init, median of {repeats}"
    section = Section(name="segmentation")
    section.rows += espnet_rows(photos[:2] if quick else photos, repeats)
    for model_name in DEEPLAB_MODELS:
        seconds = measure(model_name, size, photos, repeats)
        pipeline, bare = len(photos) / seconds["pipeline"], len(photos) / seconds["bare"]
        overhead = seconds["pipeline"] / seconds["bare"] - 1.0
        section.rows += [
            Row(f"segment: {model_name} pipeline", pipeline, "images/s", note),
            Row(f"segment: {model_name} bare forward", bare, "images/s", "same batch, preprocessed already"),
            Row(f"segment: {model_name} overhead", 100 * overhead, "%", "pipeline time / forward time - 1"),
            Row(f"segment: {model_name} own steps", 100 * seconds["steps"] / seconds["bare"], "%",
                "resize, normalise, softmax, resize back, clean-up (model output replayed) / forward time"),
        ]
        if model_name == "deeplabv3_resnet101":
            section.checks.append(Check(
                f"segmentation pipeline overhead <= {MAX_OVERHEAD:.0%} ({model_name})",
                overhead <= MAX_OVERHEAD,
                f"{pipeline:.3f} images/s end to end vs {bare:.3f} images/s bare forward ({overhead:+.1%})",
            ))
    return section
