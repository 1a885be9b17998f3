"""DVC stage datasets: the public background archives in params.yaml `datasets.archives` (each {name, url,
sha256}), downloaded, verified, extracted and indexed into data/raw/datasets/{<name>/, manifest.jsonl}."""
from __future__ import annotations

from carremoval.datasets import build_datasets, parse_archives
from carremoval.params import load_params, repo_root, resolve_path
from carremoval.stage import run_stage


def main() -> int:
    root = repo_root()
    params = load_params()["datasets"]
    out_dir = root / "data" / "raw" / "datasets"
    counts = build_datasets(parse_archives(params.get("archives")), out_dir, resolve_path(params["download_dir"], root))
    images = sum(entry["images"] for entry in counts.values())
    print(f"datasets: {images} images from {len(counts)} archives -> {out_dir.relative_to(root)}")
    for name, entry in counts.items():
        print(f"  {name}: {entry['images']} images, {entry['unreadable']} unreadable files skipped")
    return 0


if __name__ == "__main__":
    run_stage("datasets", main)
