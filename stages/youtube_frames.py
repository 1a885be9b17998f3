"""DVC stage youtube_frames: frames of the videos in params.yaml `youtube.videos` (from the snapshot, or
downloaded with yt-dlp when `snapshot` is null) into data/raw/youtube/{frames/, manifest.jsonl} and
metrics/youtube_frames.json."""
from __future__ import annotations

from carremoval.io import atomic_dir, write_json, write_jsonl
from carremoval.params import load_params, repo_root, resolve_path
from carremoval.stage import run_stage
from crawlers.runner import snapshot_dir
from crawlers.youtube import Sampling, collect_frames


def main() -> int:
    root = repo_root()
    params = load_params()
    youtube = params["youtube"]
    out_dir = root / "data" / "raw" / "youtube"
    with atomic_dir(out_dir) as tmp:
        rows, per_video = collect_frames(
            list(youtube["videos"]),
            Sampling.from_params(youtube),
            tmp,
            snapshot=snapshot_dir(params, root),
            download_dir=resolve_path(youtube["download_dir"], root),
            max_height=int(youtube["max_height"]),
        )
        write_jsonl(tmp / "manifest.jsonl", rows)
    metrics = {"videos": len(per_video), "frames_kept": len(rows), "per_video": per_video}
    write_json(root / "metrics" / "youtube_frames.json", metrics)
    print(f"youtube_frames: {len(rows)} frames from {len(per_video)} videos -> {out_dir.relative_to(root)}")
    return 0


if __name__ == "__main__":
    run_stage("youtube_frames", main)
