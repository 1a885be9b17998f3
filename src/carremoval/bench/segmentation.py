"""Segmentation throughput: images/s of the whole CarSegmenter pipeline (uint8 photos in, cleaned masks at the
photo size out) against the bare model forward on the same, already preprocessed, batch.

Random-init weights: no pretrained weights can be downloaded here, and the speed of a forward pass does not depend
on the weight values (denormals aside: both timings run with them flushed). Real photos: DAVIS frames from
../shared/data/photos/cars, one batch of `segment.batch_size`.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np
import torch

from carremoval.bench import Check, Row, Section
from carremoval.device import configure_cpu_threads
from carremoval.io import read_rgb
from carremoval.params import load_params, repo_root
from carremoval.segmentation import CarSegmenter, SegmenterConfig, build_model, flush_denormals

PHOTOS = repo_root().parent / "shared" / "data" / "photos" / "cars"
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
    segmenter = CarSegmenter(build_model(model_name), config, "random init (bench)")
    batch = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous().to(segmenter.device)
    inputs = segmenter.preprocess(batch)

    @torch.inference_mode()
    def bare() -> dict[str, torch.Tensor]:
        with flush_denormals():
            return segmenter.model(inputs)

    pipeline_s, bare_s = interleaved_medians(lambda: segmenter.masks(photos), bare, repeats)
    replay = CarSegmenter(ReplayLogits(bare()), config, "replayed logits (bench)")
    steps_s, _ = interleaved_medians(lambda: replay.masks(photos), lambda: None, repeats)
    return {"pipeline": pipeline_s, "bare": bare_s, "steps": steps_s}


def run(quick: bool) -> Section:
    params = load_params(repo_root() / "params.yaml")["segment"]
    configure_cpu_threads()
    size = 320 if quick else int(params.get("inference_size", 520))
    repeats = 1 if quick else 3
    photos = real_photos(int(params.get("batch_size", 4)))
    height, width = photos[0].shape[:2]
    note = f"{len(photos)} photos {width}x{height}, shorter side {size}, random init, median of {repeats}"
    section = Section(name="segmentation")
    default_model = params.get("model", "deeplabv3_resnet101")
    for model_name in dict.fromkeys([default_model, "deeplabv3_mobilenet_v3_large"]):
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
        if model_name == default_model:
            section.checks.append(Check(
                f"segmentation pipeline overhead <= {MAX_OVERHEAD:.0%} ({model_name})",
                overhead <= MAX_OVERHEAD,
                f"{pipeline:.3f} images/s end to end vs {bare:.3f} images/s bare forward ({overhead:+.1%})",
            ))
    return section
