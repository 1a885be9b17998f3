"""YouTube driving videos -> background frames: sampled every N seconds and at scene cuts, near-duplicates
dropped by perceptual hash. Live, yt-dlp downloads each video at a capped height; with a snapshot, the
video file the snapshot's mapping rule names is used. Decoding is PyAV's (no ffmpeg binary needed).
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import av
import imagehash
import numpy as np
from PIL import Image
from tqdm import tqdm

from carremoval.io import InputError, sha256_bytes
from crawlers.snapshot import snapshot_video, youtube_video_id

THUMB_SIZE = (64, 36)   # width, height of the grey thumbnail that scene changes are measured on


@dataclass(frozen=True)
class Sampling:
    every_seconds: float        # one frame every N seconds ...
    scene_threshold: float      # ... plus frames whose thumbnail changed more than this (0..1) since the last frame
    phash_max_distance: int     # frames within this Hamming distance of a kept frame are near-duplicates
    jpeg_quality: int = 95

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Sampling:
        return cls(
            every_seconds=float(params["every_seconds"]),
            scene_threshold=float(params["scene_threshold"]),
            phash_max_distance=int(params["phash_max_distance"]),
            jpeg_quality=int(params["jpeg_quality"]),
        )


@dataclass
class Frame:
    time: float
    index: int
    reason: str                 # interval | scene
    rgb: np.ndarray
    phash: imagehash.ImageHash


def watch_video_id(url: str) -> str:
    video_id = youtube_video_id(url)
    if video_id is None:
        raise InputError(f"params.yaml youtube.videos: {url!r} is not a https://www.youtube.com/watch?v=<ID> URL")
    return video_id


def ytdlp_options(download_dir: Path, max_height: int) -> dict[str, Any]:
    """yt-dlp options: one file (video-only or progressive, no ffmpeg merge) no taller than max_height."""
    return {
        "format": f"bv*[height<={max_height}]/b[height<={max_height}]",
        "outtmpl": str(download_dir / "%(id)s.%(ext)s"),
        "noplaylist": True,
        "quiet": True,
        "retries": 3,
        "continuedl": True,
    }


def download_video(url: str, download_dir: Path, max_height: int) -> Path:
    """Download (or reuse) one video with yt-dlp; its local path. Partial downloads resume (.part files)."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import DownloadError

    download_dir.mkdir(parents=True, exist_ok=True)
    try:
        with YoutubeDL(ytdlp_options(download_dir, max_height)) as ydl:
            info = ydl.extract_info(url, download=True)
            return Path(ydl.prepare_filename(info))
    except DownloadError as err:
        raise InputError(f"{url}: download failed ({err})") from None


def video_path(url: str, snapshot: Path | None, download_dir: Path, max_height: int) -> Path:
    return snapshot_video(url, snapshot) if snapshot is not None else download_video(url, download_dir, max_height)


def frame_time(frame: av.VideoFrame, index: int, fps: float) -> float:
    return float(frame.time) if frame.time is not None else index / fps


def candidate_frames(
    path: Path, sampling: Sampling, counts: Counter[str]
) -> Iterator[tuple[float, int, str, av.VideoFrame]]:
    """(time, index, reason, frame) of every frame due by the interval, and of the first steady frame after
    a scene change (a cut or a whip pan: the thumbnail changed by more than scene_threshold; the frames in
    the middle of the change are motion-blurred, so the frame taken is the first one that changes less)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        next_time: float | None = None
        previous: np.ndarray | None = None
        after_change = False
        for index, frame in enumerate(container.decode(stream)):
            counts["frames_decoded"] += 1
            time = frame_time(frame, index, fps)
            thumb = frame.to_ndarray(format="gray", width=THUMB_SIZE[0], height=THUMB_SIZE[1]).astype(np.float32)
            change = 0.0 if previous is None else float(np.abs(thumb - previous).mean()) / 255.0
            previous = thumb
            if change > sampling.scene_threshold:
                after_change = True
                continue
            if next_time is None or time >= next_time - 1e-6:
                next_time = (time if next_time is None else next_time) + sampling.every_seconds
                while next_time <= time + 1e-6:
                    next_time += sampling.every_seconds
                after_change = False
                yield time, index, "interval", frame
            elif after_change:
                after_change = False
                yield time, index, "scene", frame


def sample_frames(path: Path, sampling: Sampling, counts: Counter[str]) -> Iterator[Frame]:
    """The kept frames of one video, in time order, one at a time (memory stays bounded for long videos);
    `counts` collects candidates by reason and the near-duplicates dropped."""
    kept: list[imagehash.ImageHash] = []
    try:
        for time, index, reason, frame in candidate_frames(path, sampling, counts):
            counts[f"candidates_{reason}"] += 1
            rgb = frame.to_ndarray(format="rgb24")
            phash = imagehash.phash(Image.fromarray(rgb))
            if any(phash - other <= sampling.phash_max_distance for other in kept):
                counts["near_duplicates"] += 1
                continue
            kept.append(phash)
            yield Frame(time=time, index=index, reason=reason, rgb=rgb, phash=phash)
    except (av.error.FFmpegError, OSError, IndexError) as err:
        raise InputError(f"{path}: not a readable video ({err})") from None


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_frame(frame: Frame, video_id: str, url: str, out_dir: Path, quality: int) -> dict[str, Any]:
    """Write frames/<video_id>_<ms>.jpg under out_dir; its manifest row."""
    milliseconds = round(frame.time * 1000)
    relative = f"frames/{video_id}_{milliseconds:08d}.jpg"
    data = encode_jpeg(frame.rgb, quality)
    (out_dir / relative).write_bytes(data)
    return {
        "video_id": video_id,
        "url": url,
        "time": milliseconds / 1000,
        "frame_index": frame.index,
        "reason": frame.reason,
        "phash": str(frame.phash),
        "path": relative,
        "sha256": sha256_bytes(data),
        "width": int(frame.rgb.shape[1]),
        "height": int(frame.rgb.shape[0]),
        "source": "youtube",
    }


def extract_frames(
    url: str, path: Path, sampling: Sampling, out_dir: Path
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Sample one video into out_dir/frames/; (manifest rows, counts)."""
    video_id = watch_video_id(url)
    counts: Counter[str] = Counter()
    (out_dir / "frames").mkdir(parents=True, exist_ok=True)
    frames = tqdm(sample_frames(path, sampling, counts), desc=f"frames {video_id}", unit=" kept", leave=False)
    rows = [write_frame(frame, video_id, url, out_dir, sampling.jpeg_quality) for frame in frames]
    counts["frames_kept"] = len(rows)
    return rows, counts


def collect_frames(
    urls: list[str], sampling: Sampling, out_dir: Path, snapshot: Path | None, download_dir: Path, max_height: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """Frames of every video into out_dir; (manifest rows sorted by video and time, counts per video)."""
    video_ids = [watch_video_id(url) for url in urls]
    if len(set(video_ids)) != len(video_ids):
        raise InputError("params.yaml youtube.videos: a video is listed twice")
    rows: list[dict[str, Any]] = []
    per_video: dict[str, dict[str, int]] = {}
    for url, video_id in zip(urls, video_ids):
        video_rows, counts = extract_frames(url, video_path(url, snapshot, download_dir, max_height), sampling, out_dir)
        rows += video_rows
        per_video[video_id] = dict(sorted(counts.items()))
    rows.sort(key=lambda row: (row["video_id"], row["time"]))
    return rows, per_video
