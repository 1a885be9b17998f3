"""Streaming video in and out with PyAV: RGB frames, size/fps/frame count kept, audio copied, atomic output."""
from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from carremoval.io import InputError, atomic_file

# Output containers by extension: H.264 (lossy, CRF) for the usual players, FFV1 in .mkv for bit-exact output.
LOSSY_EXTENSIONS = (".mp4", ".mov", ".m4v")
LOSSLESS_EXTENSIONS = (".mkv",)
VIDEO_EXTENSIONS = LOSSY_EXTENSIONS + LOSSLESS_EXTENSIONS
# A decoded count this far below the header's frame count means the file is cut short.
TRUNCATION_TOLERANCE = 0.02


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


def is_video_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS + (".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")


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
        has_audio=bool(container.streams.audio),
    )


class VideoReader:
    """Decode a video's frames one by one as HxWx3 uint8 RGB (grey, RGBA, 10-bit... are converted)."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self.info = probe(path)
        self.start_time = 0.0  # seconds; the first frame's timestamp, to keep the audio in sync
        self.decoded = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        with contextlib.closing(_open_input(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    if self.decoded == 0 and frame.time is not None:
                        self.start_time = float(frame.time)
                    self.decoded += 1
                    yield frame.to_ndarray(format="rgb24")
            except av.error.FFmpegError as err:
                raise InputError(f"{self.path}: corrupt video, decoding failed after {self.decoded} frames ({err})") from None
        self._check_complete()

    def _check_complete(self) -> None:
        declared = self.info.frames
        if self.decoded == 0:
            raise InputError(f"{self.path}: no frame could be decoded")
        if declared and self.decoded < declared * (1 - TRUNCATION_TOLERANCE) - 1:
            raise InputError(f"{self.path}: truncated or corrupt: decoded {self.decoded} of {declared} frames")


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """All frames of a video as HxWx3 uint8 RGB, streamed; InputError names the file on any failure."""
    return iter(VideoReader(path))


def check_output_path(path: str | os.PathLike, lossless: bool = False) -> Path:
    """The output path, or InputError when its folder is missing or its extension is not a video we write."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"{path}: the output folder {target.parent} does not exist")
    if target.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(f"{path}: unsupported output type {target.suffix!r}; use one of {', '.join(VIDEO_EXTENSIONS)}")
    if lossless and target.suffix.lower() not in LOSSLESS_EXTENSIONS:
        raise InputError(f"{path}: lossless output is FFV1 in Matroska; name the output .mkv")
    return target


def _add_video_stream(container: av.container.OutputContainer, suffix: str, width: int, height: int,
                      fps: Fraction, crf: int, preset: str) -> av.video.stream.VideoStream:
    if suffix in LOSSLESS_EXTENSIONS:
        stream = container.add_stream("ffv1", rate=fps)
        stream.pix_fmt = "bgr0"
    else:
        stream = container.add_stream("libx264", rate=fps)
        # 4:2:0 needs even sides; odd sizes keep full chroma instead of being cropped or padded.
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        stream.options = {"crf": str(crf), "preset": preset}
    stream.width, stream.height = width, height
    stream.thread_type = "AUTO"
    return stream


class VideoWriter:
    """Encode RGB frames to a video; the file appears under its name only when the writer closes cleanly.

    .mp4/.mov/.m4v: H.264 at `crf`; .mkv: FFV1, lossless (bit-exact RGB; `lossless=True` insists on it). With
    `audio_from`, that file's first audio stream is copied (or re-encoded to AAC when the container cannot hold
    it) beside the video, shifted by `audio_offset` seconds (the input's first video timestamp).
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: Fraction, *,
                 audio_from: str | os.PathLike | None = None, audio_offset: float = 0.0,
                 crf: int = 18, preset: str = "veryfast", lossless: bool = False):
        self.path = check_output_path(path, lossless)
        self.size = (width, height)
        self.fps = Fraction(fps)
        self.audio_from = audio_from
        self.audio_offset = audio_offset
        self.crf, self.preset = crf, preset
        self.frames = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> VideoWriter:
        suffix = self.path.suffix.lower()
        self._final_tmp = self._stack.enter_context(atomic_file(self.path))
        self._video_tmp = self._stack.enter_context(_scratch_file(self.path)) if self.audio_from else self._final_tmp
        self._container = av.open(str(self._video_tmp), "w")
        self._stack.callback(self._container.close)
        self._stream = _add_video_stream(self._container, suffix, *self.size, self.fps, self.crf, self.preset)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Encode one HxWx3 uint8 RGB frame of the writer's size."""
        if frame.shape != (self.size[1], self.size[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"{self.path}: frame {self.frames} is {frame.shape} {frame.dtype}, "
                             f"expected ({self.size[1]}, {self.size[0]}, 3) uint8")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames
        video_frame.time_base = 1 / self.fps
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
                _mux_with_audio(self._video_tmp, self.audio_from, self._final_tmp, self.audio_offset)


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


def _mux_with_audio(video_path: Path, audio_path: str | os.PathLike, out_path: Path, offset: float) -> None:
    """Write video_path's video and audio_path's first audio stream, interleaved by time, to out_path."""
    try:
        _remux(video_path, audio_path, out_path, offset, copy_audio=True)
    except (av.error.FFmpegError, ValueError):  # the container cannot hold this audio codec
        _remux(video_path, audio_path, out_path, offset, copy_audio=False)


def _remux(video_path: Path, audio_path: str | os.PathLike, out_path: Path, offset: float, copy_audio: bool) -> None:
    with av.open(str(video_path)) as video_in, av.open(str(audio_path)) as audio_in, \
            av.open(str(out_path), "w") as out:
        video_src, audio_src = video_in.streams.video[0], audio_in.streams.audio[0]
        video_out = out.add_stream_from_template(video_src)
        shift = round(offset / audio_src.time_base) if offset else 0
        if copy_audio:
            audio_out = out.add_stream_from_template(audio_src)
            audio = _packets(audio_in, audio_src, shift)
        else:
            audio_out = out.add_stream("aac", rate=audio_src.rate)
            audio = _transcoded(audio_in, audio_src, audio_out, offset)
        streams = {0: video_out, 1: audio_out}
        for _, order, packet in heapq.merge(_packets(video_in, video_src), audio, key=lambda item: item[:2]):
            packet.stream = streams[order]
            out.mux(packet)


def _transcoded(container, source, target, offset: float) -> Iterator[tuple[float, int, av.Packet]]:
    """Decode the source audio and encode it for `target`, skipping what comes before `offset` seconds."""
    tick, samples = Fraction(1, target.rate), 0
    frames = (frame for frame in container.decode(source) if frame.time is None or frame.time >= offset)
    for frame in itertools.chain(frames, [None]):
        if frame is not None:
            frame.pts, frame.time_base = samples, tick
            samples += frame.samples
        for packet in target.encode(frame):
            yield float(packet.dts * (packet.time_base or tick)), 1, packet
