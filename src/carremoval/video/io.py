"""Streaming video in and out with PyAV: RGB frames, size/fps/frame count and timestamps kept, audio copied,
atomic output."""
from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import math
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from av.video.reformatter import ColorRange
from PIL import Image

from carremoval.io import InputError, atomic_file


@dataclass(frozen=True)
class OutputFormat:
    """How a container is written: its video codec, its encoder's tick and the audio codec it re-encodes to."""

    codec: str
    tick: str = "input"       # input: the input's time base (timestamps kept exactly) | fps: one tick per frame
                              # (AVI; a gap is kept as repeated frames) | 1/100: GIF's centiseconds
    audio: str | None = "aac"  # codec for audio the container cannot copy; None: the container holds no audio


# Output containers by extension: H.264 (lossy, CRF) for the usual players, FFV1 in .mkv for bit-exact output,
# MJPEG in .avi, VP9 in .webm, a palette per frame in .gif.
OUTPUT_FORMATS = {
    ".mp4": OutputFormat("libx264"),
    ".mov": OutputFormat("libx264"),
    ".m4v": OutputFormat("libx264"),
    ".mkv": OutputFormat("ffv1"),
    ".avi": OutputFormat("mjpeg", tick="fps", audio="libmp3lame"),
    ".webm": OutputFormat("libvpx-vp9", audio="libopus"),
    ".gif": OutputFormat("gif", tick="1/100", audio=None),
}
LOSSLESS_EXTENSIONS = (".mkv",)
VIDEO_EXTENSIONS = tuple(OUTPUT_FORMATS)
READ_ONLY_EXTENSIONS = (".mpg", ".mpeg", ".wmv", ".flv")  # read, but written as .mp4 by default
# A decoded count (or span) this far below the header's frame count (or duration) means the file is cut short.
TRUNCATION_TOLERANCE = 0.02
# A container with one tick per frame (AVI) writes a variable frame rate on the input's base rate up to this many
# ticks per average frame; the ticks between frames are stored as empty (repeat) frames.
MAX_TICKS_PER_FRAME = 8
# A GIF frame whose 256 most frequent colours cover this share of its pixels gets them as its palette, exact (a
# GIF's own frames with a fill added); below it (a natural video), a median-cut palette.
PALETTE_COVERAGE = 0.75
# Opus encodes at these sample rates only.
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


@dataclass(frozen=True)
class VideoInfo:
    """What the header says about a video's first video stream."""

    path: str
    width: int
    height: int
    fps: Fraction
    frames: int  # frame count in the header; 0 when the container does not say
    codec: str
    has_audio: bool
    time_base: Fraction = Fraction(1, 1000)  # the unit of the video stream's timestamps
    duration: Fraction | None = None  # seconds of video the header declares, when it says
    base_rate: Fraction | None = None  # the rate on whose ticks every frame falls (r_frame_rate), when known


def default_video_output(path: str | os.PathLike) -> Path:
    """INPUT_nocar with the input's extension when we write that container, else INPUT_nocar.mp4."""
    source = Path(path)
    suffix = source.suffix if source.suffix.lower() in OUTPUT_FORMATS else ".mp4"
    return source.with_name(f"{source.stem}_nocar{suffix}")


def is_video_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS + READ_ONLY_EXTENSIONS


def _open_input(path: str | os.PathLike) -> av.container.InputContainer:
    if not Path(path).is_file():
        raise InputError(f"{path}: file not found")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise InputError(f"{path}: not a readable video ({err})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: no video stream")
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's header: size, frame rate, declared frame count, codec, audio."""
    with contextlib.closing(_open_input(path)) as container:
        return _info(path, container)


def _info(path: str | os.PathLike, container: av.container.InputContainer) -> VideoInfo:
    stream = container.streams.video[0]
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not fps or stream.width <= 0 or stream.height <= 0:
        raise InputError(f"{path}: the video stream has no frame rate or size")
    return VideoInfo(
        path=str(path), width=stream.width, height=stream.height, fps=Fraction(fps),
        frames=int(stream.frames or 0), codec=stream.codec_context.name,
        has_audio=bool(container.streams.audio), time_base=Fraction(stream.time_base or Fraction(1, 1000)),
        duration=_declared_duration(container, stream),
        base_rate=Fraction(stream.base_rate) if stream.base_rate else None,
    )


def _declared_duration(container: av.container.InputContainer, stream) -> Fraction | None:
    """The video stream's duration in seconds from the header: the stream's own, Matroska's DURATION tag, or
    the container's when the video is its only stream."""
    if stream.duration and stream.time_base:
        return Fraction(stream.duration) * stream.time_base
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
        except ValueError:
            return None
    if container.duration and len(container.streams) == 1:
        return Fraction(container.duration, av.time_base)
    return None


class VideoReader:
    """Decode a video's frames one by one as HxWx3 uint8 RGB (grey, RGBA, 10-bit... are converted).

    `times` queues each decoded frame's presentation time in seconds after the first frame's (from its pts), so
    that a variable frame rate can be written back as it was; a writer takes them with popleft, in order.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self.info = probe(path)
        self.start_time = 0.0  # seconds; the first frame's timestamp, to keep the audio in sync
        self.decoded = 0
        self.times: collections.deque[Fraction] = collections.deque()
        self._end = Fraction(0)  # where the last decoded frame ends, seconds after the first frame
        self._first: Fraction | None = None  # the first frame's timestamp, seconds
        self._last: Fraction | None = None  # the last decoded frame's time

    def __iter__(self) -> Iterator[np.ndarray]:
        with contextlib.closing(_open_input(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    self._record_time(frame)
                    self.decoded += 1
                    yield frame.to_ndarray(format="rgb24")
            except av.error.FFmpegError as err:
                raise InputError(f"{self.path}: corrupt video, decoding failed after {self.decoded} frames ({err})") from None
        self._check_complete()

    def _record_time(self, frame: av.VideoFrame) -> None:
        """Append the frame's time (the previous one's plus a frame at the average rate when it has no pts)."""
        step = 1 / self.info.fps
        expected = self._last + step if self._last is not None else Fraction(0)
        if frame.pts is None:
            time = expected
        else:
            absolute = Fraction(frame.pts) * self.info.time_base
            if self._first is None:
                self._first = absolute - expected
                self.start_time = float(self._first)
            time = absolute - self._first
        self.times.append(time)
        self._last = time
        duration = Fraction(frame.duration) * self.info.time_base if frame.duration else step
        self._end = max(self._end, time + duration)

    def _check_complete(self) -> None:
        declared = self.info.frames
        if self.decoded == 0:
            raise InputError(f"{self.path}: no frame could be decoded")
        if declared and self.decoded < declared * (1 - TRUNCATION_TOLERANCE) - 1:
            raise InputError(f"{self.path}: truncated or corrupt: decoded {self.decoded} of {declared} frames")
        if _gif_cut_short(self.path):
            raise InputError(f"{self.path}: truncated or corrupt: the GIF does not end with its trailer byte "
                             f"({self.decoded} frames decoded)")
        duration = self.info.duration
        if not declared and duration and self._end < duration * (1 - TRUNCATION_TOLERANCE) - 1 / self.info.fps:
            raise InputError(f"{self.path}: truncated or corrupt: decoded {float(self._end):.2f} s of the "
                             f"{float(duration):.2f} s the header declares ({self.decoded} frames)")


def _gif_cut_short(path: str | os.PathLike) -> bool:
    """A GIF file (GIF87a/GIF89a, which declares no frame count) that does not end with its trailer byte, ';'."""
    with open(path, "rb") as handle:
        if handle.read(4) != b"GIF8":
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b";"


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """All frames of a video as HxWx3 uint8 RGB, streamed; InputError names the file on any failure."""
    return iter(VideoReader(path))


def check_output_path(path: str | os.PathLike, lossless: bool = False) -> Path:
    """The output path, or InputError when its folder is missing, it is a folder, or its extension is not a video
    we write."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"{path}: the output folder {target.parent} does not exist")
    if target.is_dir():
        raise InputError(f"{path}: the output is a folder; name a file")
    if target.suffix.lower() not in OUTPUT_FORMATS:
        raise InputError(f"{path}: unsupported output type {target.suffix!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    if lossless and target.suffix.lower() not in LOSSLESS_EXTENSIONS:
        raise InputError(f"{path}: lossless output is FFV1 in Matroska; name the output .mkv")
    return target


def _encoder_tick(output: OutputFormat, fps: Fraction, time_base: Fraction | None,
                  base_rate: Fraction | None) -> Fraction:
    """The encoder's time base: the input's, one frame at `fps` (or at `base_rate`, finer, for a variable rate
    when it is at most MAX_TICKS_PER_FRAME times `fps`), or the container's own."""
    if output.tick == "fps":
        fine = base_rate is not None and fps < base_rate <= MAX_TICKS_PER_FRAME * fps
        return 1 / base_rate if fine else 1 / fps
    if output.tick == "input":
        return time_base or 1 / fps
    return Fraction(output.tick)


def _add_video_stream(container: av.container.OutputContainer, output: OutputFormat, width: int, height: int,
                      fps: Fraction, tick: Fraction, crf: int, preset: str) -> av.video.stream.VideoStream:
    stream = container.add_stream(output.codec, rate=fps)
    # 4:2:0 needs even sides; odd sizes keep full chroma instead of being cropped or padded.
    chroma = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    if output.codec == "ffv1":
        stream.pix_fmt = "bgr0"
    elif output.codec == "libx264":
        stream.pix_fmt = chroma
        stream.options = {"crf": str(crf), "preset": preset}
    elif output.codec == "libvpx-vp9":
        stream.pix_fmt = chroma
        stream.options = {"crf": str(min(63, crf + 13)), "b": "0", "deadline": "realtime", "cpu-used": "8"}
    elif output.codec == "mjpeg":
        stream.pix_fmt = "yuv444p"  # full chroma: JPEG's 4:2:0 blurs colour edges that H.264 at this size keeps
        stream.codec_context.color_range = ColorRange.JPEG  # MJPEG is full range; write() converts to it
        stream.options = {"qmin": "1", "qmax": "3"}
    else:
        stream.pix_fmt = "pal8"
    stream.width, stream.height = width, height
    stream.codec_context.time_base = tick
    stream.time_base = tick
    stream.thread_type = "AUTO"
    return stream


def _palette_frame(frame: np.ndarray) -> av.VideoFrame:
    """An RGB frame as 8-bit palette colours for GIF: its 256 most frequent colours, exact, with the rest mapped
    to the nearest of them, when those cover PALETTE_COVERAGE of the pixels; else a median-cut palette."""
    colours, inverse, counts = np.unique(frame.reshape(-1, 3), axis=0, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    kept, rest = order[:256], order[256:]
    if counts[kept].sum() >= PALETTE_COVERAGE * len(inverse):
        palette_colours = colours[kept]
        lookup = np.empty(len(colours), np.uint8)
        lookup[kept] = np.arange(len(kept))
        for start in range(0, len(rest), 4096):  # nearest palette colour, a block of colours at a time
            block = rest[start:start + 4096]
            distances = ((colours[block, None, :].astype(np.int32) - palette_colours[None]) ** 2).sum(-1)
            lookup[block] = distances.argmin(1)
        image = lookup[inverse.reshape(-1)].reshape(frame.shape[:2])
    else:
        quantized = Image.fromarray(frame).quantize(256)
        image = np.asarray(quantized)
        palette_colours = np.asarray(quantized.getpalette(), np.uint8).reshape(-1, 3)
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0] = 255  # ARGB, opaque
    palette[: len(palette_colours), 1:] = palette_colours
    return av.VideoFrame.from_ndarray((np.ascontiguousarray(image), palette), format="pal8")


class VideoWriter:
    """Encode RGB frames to a video; the file appears under its name only when the writer closes cleanly.

    .mp4/.mov/.m4v: H.264 at `crf`; .mkv: FFV1, lossless (bit-exact RGB; `lossless=True` insists on it); .avi:
    MJPEG; .webm: VP9; .gif: a palette per frame. Each frame is stamped with the time given to `write` (seconds
    after the first frame) in `time_base` units (the input's), except where the container has its own: GIF
    centiseconds, AVI one tick per frame (at `base_rate`, the input's r_frame_rate, when that is finer than
    `fps`). With `audio_from`, that file's first audio stream is copied (or re-encoded when the container cannot
    hold it) beside the video, shifted by `audio_offset` seconds (the input's first video timestamp); a GIF gets
    no audio.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: Fraction, *,
                 time_base: Fraction | None = None, base_rate: Fraction | None = None,
                 audio_from: str | os.PathLike | None = None, audio_offset: float = 0.0, crf: int = 18,
                 preset: str = "veryfast", lossless: bool = False):
        self.path = check_output_path(path, lossless)
        self.format = OUTPUT_FORMATS[self.path.suffix.lower()]
        self.size = (width, height)
        self.fps = Fraction(fps)
        self.tick = _encoder_tick(self.format, self.fps, Fraction(time_base) if time_base else None,
                                  Fraction(base_rate) if base_rate else None)
        self.audio_from = audio_from if self.format.audio else None
        self.audio_offset = audio_offset
        self.crf, self.preset = crf, preset
        self.frames = 0
        self._last_pts = -1
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> VideoWriter:
        self._final_tmp = self._stack.enter_context(atomic_file(self.path))
        self._video_tmp = self._stack.enter_context(_scratch_file(self.path)) if self.audio_from else self._final_tmp
        self._container = av.open(str(self._video_tmp), "w")
        self._stack.callback(self._container.close)
        self._stream = _add_video_stream(self._container, self.format, *self.size, self.fps, self.tick, self.crf,
                                         self.preset)
        return self

    def write(self, frame: np.ndarray, time: Fraction | None = None) -> None:
        """Encode one HxWx3 uint8 RGB frame of the writer's size, shown `time` seconds after the first frame
        (default: the next frame at `fps`); a time that rounds onto the previous frame's tick moves one tick on."""
        if frame.shape != (self.size[1], self.size[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"{self.path}: frame {self.frames} is {frame.shape} {frame.dtype}, "
                             f"expected ({self.size[1]}, {self.size[0]}, 3) uint8")
        if self.format.codec == "gif":
            video_frame = _palette_frame(frame)
        else:
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if self.format.codec == "mjpeg":
            video_frame = video_frame.reformat(format=self._stream.pix_fmt, dst_color_range=ColorRange.JPEG)
        when = Fraction(self.frames) / self.fps if time is None else Fraction(time)
        self._last_pts = max(math.floor(when / self.tick + Fraction(1, 2)), self._last_pts + 1)
        video_frame.pts = self._last_pts
        video_frame.time_base = self.tick
        self._container.mux(self._stream.encode(video_frame))
        self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._stack.__exit__(exc_type, exc, tb)  # closes and removes the temp files; the error propagates
            return
        with self._stack:  # on success the temp file is renamed to the output name as the stack closes
            self._container.mux(self._stream.encode(None))
            self._container.close()
            if self.frames == 0:
                raise ValueError(f"{self.path}: no frames were written")
            if self.audio_from:
                _mux_with_audio(self._video_tmp, self.audio_from, self._final_tmp, self.audio_offset,
                                self.format.audio)


@contextlib.contextmanager
def _scratch_file(target: Path) -> Iterator[Path]:
    """A temp file beside `target` that is always removed (for the video-only pass before the audio mux)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".video{target.suffix}", dir=target.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _packets(container: av.container.InputContainer, stream, shift: int = 0) -> Iterator[tuple[float, int, av.Packet]]:
    """(time in seconds, stream order, packet) for each timed packet, timestamps shifted by `shift` ticks."""
    order = 0 if stream.type == "video" else 1
    for packet in container.demux(stream):
        if packet.dts is None:
            continue
        if shift:
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts -= shift
            if (packet.pts if packet.pts is not None else packet.dts) + (packet.duration or 0) < 0:
                continue
        yield float(packet.dts * packet.time_base), order, packet


def _mux_with_audio(video_path: Path, audio_path: str | os.PathLike, out_path: Path, offset: float,
                    audio_codec: str) -> None:
    """Write video_path's video and audio_path's first audio stream, interleaved by time, to out_path (the audio
    re-encoded to `audio_codec` when the container cannot hold it as it is)."""
    try:
        _remux(video_path, audio_path, out_path, offset, None)
    except (av.error.FFmpegError, ValueError):  # the container cannot hold this audio codec
        _remux(video_path, audio_path, out_path, offset, audio_codec)


def _remux(video_path: Path, audio_path: str | os.PathLike, out_path: Path, offset: float,
           audio_codec: str | None) -> None:
    """Mux the video and the audio, copied (`audio_codec` None) or re-encoded to `audio_codec`."""
    with av.open(str(video_path)) as video_in, av.open(str(audio_path)) as audio_in, \
            av.open(str(out_path), "w") as out:
        video_src, audio_src = video_in.streams.video[0], audio_in.streams.audio[0]
        video_out = out.add_stream_from_template(video_src)
        shift = round(offset / audio_src.time_base) if offset else 0
        if audio_codec is None:
            audio_out = out.add_stream_from_template(audio_src)
            audio = _packets(audio_in, audio_src, shift)
        else:
            audio_out = out.add_stream(audio_codec, rate=_encoder_rate(audio_codec, audio_src.rate))
            audio = _transcoded(audio_in, audio_src, audio_out, offset)
        streams = {0: video_out, 1: audio_out}
        for _, order, packet in heapq.merge(_packets(video_in, video_src), audio, key=lambda item: item[:2]):
            packet.stream = streams[order]
            out.mux(packet)


def _encoder_rate(codec: str, rate: int) -> int:
    """The sample rate to encode at: the source's, or for Opus the nearest it supports at or above it."""
    if codec != "libopus" or rate in OPUS_RATES:
        return rate
    return min((r for r in OPUS_RATES if r >= rate), default=OPUS_RATES[0])


def _transcoded(container, source, target, offset: float) -> Iterator[tuple[float, int, av.Packet]]:
    """Decode the source audio and encode it for `target`, skipping what comes before `offset` seconds."""
    tick, samples = Fraction(1, source.rate), 0
    frames = (frame for frame in container.decode(source) if frame.time is None or frame.time >= offset)
    for frame in itertools.chain(frames, [None]):
        if frame is not None:
            frame.pts, frame.time_base = samples, tick
            samples += frame.samples
        for packet in target.encode(frame):
            yield float(packet.dts * (packet.time_base or Fraction(1, target.rate))), 1, packet
