"""Pair rendering speed: pairs/s of PairRenderer at the training size, single process, on the real shared data.

The lead compares the first row with the training section's images/s: rendering must not be the bottleneck.
"""
from __future__ import annotations

import dataclasses
import time

import cv2

from carremoval.bench import Row, Section
from carremoval.params import load_params, repo_root
from carremoval.synthesis import PairRenderer
from carremoval.synthesis.export import SynthesisSettings
from carremoval.synthesis.sources import Source
from carremoval.synthesis.weather import WeatherOptions

SHARED_DATA = repo_root().parent / "shared" / "data"


def shared_sources() -> tuple[list[Source], list[Source]]:
    """The real clean backgrounds and RGBA cut-outs of ../shared/data, one group per file."""
    backgrounds = sorted((SHARED_DATA / "photos" / "backgrounds").iterdir())
    cutouts = sorted((SHARED_DATA / "cutouts").glob("*.png"))
    return (
        [Source(path.stem, f"background:{path.stem}", path) for path in backgrounds],
        [Source(path.stem, f"cutout:{path.stem}", path) for path in cutouts],
    )


def pairs_per_second(renderer: PairRenderer, pairs: int, repeats: int) -> tuple[float, list[float]]:
    """Median pairs/s over `repeats` runs of `pairs` fresh pairs each (images already cached by a warm-up)."""
    renderer.preload()
    renderer.render(epoch=10_000, index=0)
    rates = []
    for run in range(repeats):
        start = time.perf_counter()
        for index in range(pairs):
            renderer.render(epoch=run, index=index)
        rates.append(pairs / (time.perf_counter() - start))
    rates.sort()
    return rates[len(rates) // 2], rates


def run(quick: bool) -> Section:
    settings = SynthesisSettings.from_params(load_params().get("synthesize"))
    backgrounds, cutouts = shared_sources()
    pairs, repeats = (40, 3) if quick else (200, 5)
    all_weather = WeatherOptions(rain=1.0, sun_flare=1.0, shadow=1.0, fog=1.0, rgb_shift=1.0)
    no_weather = WeatherOptions(rain=0.0, sun_flare=0.0, shadow=0.0, fog=0.0, rgb_shift=0.0)
    size, label = settings.size, f"synthesis: render {settings.size[0]}x{settings.size[1]}"
    cases = [
        (f"{label} (params)", size, settings.render),
        (f"{label}, no weather", size, dataclasses.replace(settings.render, weather=no_weather)),
        (f"{label}, every effect", size, dataclasses.replace(settings.render, weather=all_weather)),
        ("synthesis: render 256x384 (params, GPU size)", (256, 384), settings.render),
    ]
    section = Section(name="synthesis")
    for what, case_size, options in cases:
        renderer = PairRenderer(backgrounds, cutouts, size=case_size, options=options, seed=0)
        median, rates = pairs_per_second(renderer, pairs, repeats)
        spread = f"min {min(rates):.0f}, max {max(rates):.0f}"
        section.rows.append(Row(what, median, "pairs/s", f"median of {repeats} x {pairs} pairs, 1 process ({spread})"))
    section.rows.append(Row("synthesis: OpenCV threads", cv2.getNumThreads(), "threads", "cv2.getNumThreads()"))
    return section
