"""youtube_frames: interval + scene-change sampling and pHash de-duplication on a generated clip, the stage on
the snapshot's three videos (complete decode, contract manifest, deterministic), and bad input."""
from __future__ import annotations

import itertools
import subprocess
import sys
from collections import Counter
from pathlib import Path

import av
import imagehash
import numpy as np
import pytest
import yaml

from carremoval.io import InputError, read_json, read_jsonl, sha256_file
from crawl_support import REPO, make_root, stage_env
from crawlers.snapshot import snapshot_video
from crawlers.youtube import Sampling, collect_frames, sample_frames, watch_video_id, ytdlp_options

SAMPLING = Sampling(every_seconds=1.0, scene_threshold=0.12, phash_max_distance=8)


def write_clip(path: Path, cut_frame: int = 15, frames: int = 40, fps: int = 10) -> Path:
    """A lossless clip: a static left-to-right gradient, cut at `cut_frame` to a static checkerboard."""
    ramp = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))
    scene_a = np.dstack([ramp, ramp, ramp])
    board = ((np.indices((64, 96)) // 16).sum(axis=0) % 2 * 255).astype(np.uint8)
    scene_b = np.dstack([board, 255 - board, board])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv444p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(scene_a if index < cut_frame else scene_b, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_interval_samples_scene_cuts_and_near_duplicate_drop(tmp_path: Path) -> None:
    counts: Counter[str] = Counter()
    frames = list(sample_frames(write_clip(tmp_path / "clip.mkv"), SAMPLING, counts))
    assert [(round(f.time, 3), f.reason) for f in frames] == [(0.0, "interval"), (1.6, "scene")]
    assert counts == {"frames_decoded": 40, "candidates_interval": 4, "candidates_scene": 1, "near_duplicates": 3}
    assert frames[0].phash - frames[1].phash > SAMPLING.phash_max_distance


def test_without_dedup_every_candidate_is_kept(tmp_path: Path) -> None:
    counts: Counter[str] = Counter()
    loose = Sampling(every_seconds=1.0, scene_threshold=0.12, phash_max_distance=-1)
    frames = list(sample_frames(write_clip(tmp_path / "clip.mkv"), loose, counts))
    assert [f.index for f in frames] == [0, 10, 16, 20, 30]


def test_bad_videos_and_urls_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with pytest.raises(InputError, match="broken.mp4: not a readable video"):
        list(sample_frames(broken, SAMPLING, Counter()))
    with pytest.raises(InputError, match="is not a https://www.youtube.com/watch"):
        watch_video_id("https://vimeo.com/123")
    url = "https://www.youtube.com/watch?v=stAtRoad001"
    with pytest.raises(InputError, match="listed twice"):
        collect_frames([url, url], SAMPLING, tmp_path / "out", snapshot=Path("/nowhere"), download_dir=tmp_path,
                       max_height=480)


def test_live_download_is_capped_in_height_and_kept_outside_the_outputs(tmp_path: Path) -> None:
    options = ytdlp_options(tmp_path / "downloads", 480)
    assert options["format"] == "bv*[height<=480]/b[height<=480]"
    assert options["outtmpl"] == str(tmp_path / "downloads" / "%(id)s.%(ext)s") and options["noplaylist"]


@pytest.mark.slow
def test_stage_on_the_snapshot_videos(tmp_path: Path, sites: Path, expected_crawl: dict) -> None:
    root = make_root(tmp_path / "repo")
    result = subprocess.run([sys.executable, str(REPO / "stages" / "youtube_frames.py")], cwd=root, env=stage_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("youtube_frames: ")
    out = root / "data" / "raw" / "youtube"
    rows = read_jsonl(out / "manifest.jsonl")
    metrics = read_json(root / "metrics" / "youtube_frames.json")
    videos = {video["watch_url"].rsplit("=", 1)[1]: video for video in expected_crawl["www.youtube.com"]["videos"]}
    assert metrics["videos"] == 3 and metrics["frames_kept"] == len(rows)
    for video_id, video in videos.items():
        assert metrics["per_video"][video_id]["frames_decoded"] == video["frame_count"]   # decoded to the end
        assert sha256_file(snapshot_video(video["watch_url"], sites)) == video["sha256"]
    assert [(r["video_id"], r["time"]) for r in rows] == sorted((r["video_id"], r["time"]) for r in rows)
    for row in rows:
        assert set(row) >= {"video_id", "time", "phash", "path", "sha256", "width", "height", "source"}
        assert row["source"] == "youtube"
        assert row["path"] == f"frames/{row['video_id']}_{round(row['time'] * 1000):08d}.jpg"
        assert sha256_file(out / row["path"]) == row["sha256"]
        video = videos[row["video_id"]]
        assert (row["width"], row["height"]) == (video["width"], video["height"])
    for _, group in itertools.groupby(rows, key=lambda row: row["video_id"]):
        hashes = [imagehash.hex_to_hash(row["phash"]) for row in group]
        assert all(a - b > SAMPLING.phash_max_distance for a, b in itertools.combinations(hashes, 2))
    assert metrics["per_video"]["stAtRoad001"]["near_duplicates"] > 0     # the fixed camera repeats itself

    again = tmp_path / "again"
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["youtube"]
    second, _ = collect_frames(params["videos"], Sampling.from_params(params), again, snapshot=sites,
                               download_dir=tmp_path, max_height=480)
    assert second == rows
    assert all((again / row["path"]).read_bytes() == (out / row["path"]).read_bytes() for row in rows)
