"""The backgrounds stage on raw folders made from real snapshot photos, video frames and dataset images."""
from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from carremoval.backgrounds import (
    BackgroundSettings,
    NearDuplicates,
    crop_to_aspect,
    curate_backgrounds,
    fit_width,
    run_backgrounds,
)
from carremoval.io import InputError, read_json, read_jsonl, sha256_file, write_jsonl
from test_segmentation import stand_in_segmenter
from weights_support import no_network

CONTRACT_KEYS = {"id", "path", "width", "height", "source", "group", "origin", "phash", "car_check"}
VIDEOS = {"stAtRoad001": "avi", "rAllySnow02": "mp4"}
FRAMES_PER_VIDEO = 6


def raw_oir_mobi(raw: Path, sites: Path, expected_crawl: dict) -> int:
    """data/raw/oir_mobi as the crawl writes it, from the snapshot's valid backgrounds (36 unique by sha256)."""
    rows = {}
    for image in expected_crawl["oir.mobi"]["valid_backgrounds"]:
        path = f"images/{image['sha256']}.jpg"
        (raw / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sites / image["url"].split("://", 1)[1], raw / path)
        rows[image["sha256"]] = {
            "url": image["url"], "page_url": image["post"], "sha256": image["sha256"], "width": image["width"],
            "height": image["height"], "path": path, "source": "oir_mobi", "category": "priroda",
        }
    write_jsonl(raw / "manifest.jsonl", sorted(rows.values(), key=lambda row: row["url"]))
    return len(rows)


def raw_youtube(raw: Path, sites: Path) -> None:
    """data/raw/youtube: the first frames of two snapshot videos, one every 0.2 s (a static camera repeats)."""
    (raw / "frames").mkdir(parents=True)
    rows = []
    for video_id, ext in VIDEOS.items():
        with av.open(str(sites / "www.youtube.com" / "watch" / f"{video_id}.{ext}")) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % 5 == 0:
                    milliseconds = round(float(frame.time) * 1000)
                    path = f"frames/{video_id}_{milliseconds:08d}.jpg"
                    frame.to_image().save(raw / path, quality=90)
                    rows.append({
                        "video_id": video_id, "time": milliseconds / 1000, "phash": "0", "path": path,
                        "sha256": sha256_file(raw / path), "width": frame.width, "height": frame.height,
                        "source": "youtube",
                    })
                if len(rows) == FRAMES_PER_VIDEO * (list(VIDEOS).index(video_id) + 1):
                    break
    write_jsonl(raw / "manifest.jsonl", rows)


def raw_datasets(raw: Path, shared_data: Path) -> None:
    """data/raw/datasets: two dataset images (one also reached the snapshot re-encoded), a tiny one, a broken one."""
    folder = raw / "dpst"
    folder.mkdir(parents=True)
    rows = []
    for name in ("dpst_tar32.png", "dpst_in46.png"):
        shutil.copyfile(shared_data / "photos" / "backgrounds" / name, folder / name)
    Image.open(folder / "dpst_in46.png").resize((120, 80)).save(folder / "tiny.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    for name, (width, height) in {"dpst_tar32.png": (700, 467), "dpst_in46.png": (700, 393), "tiny.png": (120, 80),
                                  "broken.png": (0, 0)}.items():
        rows.append({
            "name": "dpst", "path": f"dpst/{name}", "sha256": sha256_file(folder / name), "width": width,
            "height": height, "source": "dataset:dpst",
        })
    write_jsonl(raw / "manifest.jsonl", rows)


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory, sites, expected_crawl, shared_data) -> Path:
    root = tmp_path_factory.mktemp("repo")
    raw = root / "data" / "raw"
    assert raw_oir_mobi(raw / "oir_mobi", sites, expected_crawl) == 36
    raw_youtube(raw / "youtube", sites)
    raw_datasets(raw / "datasets", shared_data)
    return root


@pytest.fixture(scope="module")
def curated(raw_root, repo):
    """The stage with the repository's params but no car check (test_the_repository_params_check_for_cars has
    it), run twice."""
    from carremoval.params import load_params

    params = load_params(repo / "params.yaml")
    params["backgrounds"]["car_check"] = False
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("TORCH_HOME", str(raw_root / "torch"))
    no_network(monkeypatch)
    runs = []
    for name in ("a", "b"):
        out = raw_root / "data" / "interim" / name
        metrics = run_backgrounds(params, raw_root / "data" / "raw", out, raw_root / f"{name}.json", raw_root)
        runs.append((out, metrics))
    monkeypatch.undo()
    return runs


def test_backgrounds_are_merged_deduplicated_and_cropped(curated, raw_root):
    out, metrics = curated[0]
    rows = read_jsonl(out / "manifest.jsonl")
    assert rows == sorted(rows, key=lambda row: row["id"]) and len(rows) == metrics["kept"]
    for row in rows:
        assert set(row) == CONTRACT_KEYS and row["car_check"] == "unchecked"
        with Image.open(out / row["path"]) as image:
            assert image.mode == "RGB" and image.size == (row["width"], row["height"])
        assert row["width"] <= 768 and abs(row["width"] / row["height"] - 1.5) < 0.01
        assert (raw_root / row["origin"]).is_file()
    frames = [row for row in rows if row["source"] == "youtube"]
    assert {row["group"] for row in frames} <= {f"youtube:{video}" for video in VIDEOS}
    others = [row for row in rows if row["source"] != "youtube"]
    assert all(row["group"].split(":")[-1].startswith(row["id"]) for row in others)
    skipped, kept = metrics["skipped"], metrics["kept_by_source"]
    assert skipped["too_small"] == 1 and skipped["unreadable"] == 1
    assert skipped["greyscale"] == 1, "the black-and-white snowy alley (dpst_in56) is no background for colour cars"
    # the static camera's empty road repeats: most of its frames are near-duplicates of the first one
    assert 1 <= sum(row["group"] == "youtube:stAtRoad001" for row in frames) <= 2
    # dpst_tar32 and dpst_in46 are also in the snapshot as JPEG re-encodings: one copy of each is kept
    assert kept.get("dataset:dpst", 0) + kept["oir_mobi"] == 35
    assert skipped["near_duplicate"] == 2 + (2 * FRAMES_PER_VIDEO - len(frames))
    assert metrics["candidates"] == 36 + 2 * FRAMES_PER_VIDEO + 4
    assert metrics["candidates"] == metrics["kept"] + metrics["skipped_total"]
    assert metrics["car_check"] == "unchecked" and metrics["pretrained_weights"] is False


@pytest.mark.slow
def test_the_repository_params_check_for_cars_offline(raw_root, repo, tmp_path, monkeypatch):
    """ESPNetv2 from ../shared/models, no network: the road frames with cars are rejected and counted."""
    from carremoval.params import load_params

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    no_network(monkeypatch)
    out = tmp_path / "backgrounds"
    metrics = run_backgrounds(load_params(repo / "params.yaml"), raw_root / "data" / "raw", out,
                              tmp_path / "metrics.json", raw_root)
    assert metrics["car_check"] == "espnetv2" and metrics["pretrained_weights"] is True
    assert metrics["rejected_with_cars"] == metrics["skipped"]["contains_car"] >= 1
    assert metrics["kept"] >= 10
    assert {row["car_check"] for row in read_jsonl(out / "manifest.jsonl")} == {"clean"}


def test_a_second_run_is_byte_identical(curated):
    (first, metrics_a), (second, metrics_b) = curated
    names = sorted(path.name for path in (first / "images").iterdir())
    assert names == sorted(path.name for path in (second / "images").iterdir())
    assert all((first / "images" / n).read_bytes() == (second / "images" / n).read_bytes() for n in names)
    assert (first / "manifest.jsonl").read_bytes() == (second / "manifest.jsonl").read_bytes()
    assert metrics_a == metrics_b == read_json(first.parent.parent.parent / "a.json")


def test_a_segmenter_rejects_backgrounds_with_a_car(tmp_path, shared_data):
    raw = tmp_path / "raw" / "oir_mobi"
    (raw / "images").mkdir(parents=True)
    rows = []
    for name, car in (("dpst_in32.png", True), ("dpst_in46.png", False)):
        rgb = np.asarray(Image.open(shared_data / "photos" / "backgrounds" / name).convert("RGB")).copy()
        rgb[..., 0] = np.minimum(rgb[..., 0], rgb[..., 1])  # nothing red in the scene ...
        if car:
            rgb[200:260, 300:400] = (255, 0, 0)             # ... but this 'car' for the stand-in model
        Image.fromarray(rgb).save(raw / "images" / name)
        rows.append({"path": f"images/{name}", "sha256": sha256_file(raw / "images" / name), "source": "oir_mobi"})
    write_jsonl(raw / "manifest.jsonl", rows)
    settings = BackgroundSettings(max_width=384, min_width=200)
    metrics = curate_backgrounds([raw], tmp_path / "out", tmp_path, settings, stand_in_segmenter())
    assert metrics["skipped"] == {"contains_car": 1} and metrics["car_check"] == "deeplabv3_mobilenet_v3_large"
    assert metrics["rejected_with_cars"] == 1
    (row,) = read_jsonl(tmp_path / "out" / "manifest.jsonl")
    assert row["car_check"] == "clean" and row["origin"] == "raw/oir_mobi/images/dpst_in46.png"


def test_a_missing_raw_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="manifest.jsonl: file not found"):
        curate_backgrounds([tmp_path / "youtube"], tmp_path / "out", tmp_path, BackgroundSettings(), None)


def test_crop_and_fit_keep_the_training_aspect():
    image = np.zeros((720, 1280, 3), np.uint8)
    cropped = crop_to_aspect(image, (3, 2))
    assert cropped.shape[:2] == (720, 1080)
    assert crop_to_aspect(np.zeros((900, 600, 3), np.uint8), (3, 2)).shape[:2] == (400, 600)
    assert fit_width(cropped, 768).shape[:2] == (512, 768)
    assert fit_width(cropped[:200, :300], 768).shape[:2] == (200, 300)


def test_near_duplicates_by_hamming_distance():
    hashes = NearDuplicates(max_distance=4)
    assert not hashes.seen(0b1111_0000)
    assert hashes.seen(0b1111_0111)          # 3 bits away
    assert not hashes.seen(0b0000_1111)      # 8 bits away
    with pytest.raises(ValueError, match="backgrounds:"):
        BackgroundSettings.from_params({"max_widht": 5})
