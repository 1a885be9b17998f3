"""Remove a car from a video file: decode -> temporal remover -> encode, with a progress bar and stats."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import itertools
import os
import time
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from carremoval.io import InputError
from carremoval.video.io import VideoReader, VideoWriter, check_output_path
from carremoval.video.mask_sources import MaskSource, with_masks
from carremoval.video.temporal import Inpainter, RemovalStats, TemporalConfig, remove_frames

MIN_SIDE = 12  # OpenCV's DIS optical flow needs frames at least this wide or high
MALLOC_ARENAS = 2  # glibc malloc arenas for the process (its default: 8 per core)
M_ARENA_MAX = -8   # mallopt's parameter number, from glibc's malloc.h


def remove_video(input_path: str | os.PathLike, output_path: str | os.PathLike, masks: MaskSource,
                 inpaint: Inpainter, config: TemporalConfig, progress: bool = True,
                 on_hole: Callable[[int, np.ndarray], None] | None = None) -> dict[str, Any]:
    """Write `input_path` without the masked car to `output_path` (.mp4/.mov/.m4v: H.264 at `config.crf`;
    .mkv: FFV1, lossless; .avi, .webm, .gif: see VideoWriter). Size, frame count, each frame's timestamp (a
    variable frame rate too) and audio are kept. Returns stats. `on_hole(index, hole)` is told each frame's hole
    as replaced (the car, and its shadow with config.shadow auto).

    Raises carremoval.io.InputError naming the file for an unreadable, corrupt or truncated video, frames too
    small for the flow, masks that do not match the frames in size or count or that cover every pixel of every
    frame (nothing to fill from), or an output path in a missing folder; the output name then holds nothing new
    (the video is written to a temp file and renamed at the end).
    """
    check_output_path(output_path, config.lossless)
    cap_malloc_arenas()
    reader = VideoReader(input_path)
    info = reader.info
    if max(info.width, info.height) < MIN_SIDE:
        raise InputError(f"{input_path}: {info.width}x{info.height} is too small: the optical flow needs frames at "
                         f"least {MIN_SIDE} pixels wide or high")
    stats = RemovalStats()
    background_seen = False

    def watch_hole(index: int, hole: np.ndarray) -> None:
        nonlocal background_seen
        background_seen = background_seen or not hole.all()
        if on_hole is not None:
            on_hole(index, hole)

    start = time.perf_counter()
    with VideoWriter(output_path, info.width, info.height, info.fps, time_base=info.time_base,
                     base_rate=info.base_rate, crf=config.crf, lossless=config.lossless,
                     audio_from=input_path if info.has_audio else None) as writer:
        frames, mask_stream = _split(with_masks(reader, masks))
        removed = remove_frames(frames, mask_stream, inpaint, config, stats, watch_hole)
        for output in tqdm(removed, total=info.frames or None, unit="frame",
                           desc=f"removing {os.path.basename(str(input_path))}", disable=not progress):
            writer.write(output, reader.times.popleft())  # the frames come out in order, each after its input
        masks.check_count(reader.decoded)
        if not background_seen:
            raise InputError(f"{input_path}: the mask covers every pixel of all {reader.decoded} frames: there is no "
                             "background left to fill them from")
        writer.audio_offset = reader.start_time
    seconds = time.perf_counter() - start
    result = stats.to_dict()
    result.update(input=str(input_path), output=str(output_path), width=info.width, height=info.height,
                  fps_in=float(info.fps), fps_out=float(writer.fps), frames_in=reader.decoded,
                  frames_out=writer.frames, audio=info.has_audio, seconds=seconds,
                  processing_fps=writer.frames / seconds if seconds > 0 else float("inf"))
    return result


def _split(pairs):
    """Two iterators over the first and second items of `pairs`, consumed in step."""
    first, second = itertools.tee(pairs)
    return (pair[0] for pair in first), (pair[1] for pair in second)


@functools.cache
def cap_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas at MALLOC_ARENAS unless the user set MALLOC_ARENA_MAX. The remover's short-lived
    worker threads and the codec's threads each take an arena, and memory freed in one is not reused by another:
    without the cap the peak grew with the video's length (566 -> about 700 MB from 100 to 1000 frames at 432x240),
    with it the peak is flat. True when the cap is set (glibc only)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(M_ARENA_MAX, MALLOC_ARENAS) == 1
