"""The segment stage on real snapshot photos: annotation fallback (acceptance), the DeepLab path end to end with a
stand-in model, bad input skipped with reasons, determinism, and the stage script loading a weights file."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from carremoval import segmentation
from carremoval.cutouts import CutoutSettings, QualityFilters, annotation_path, run_segment, segment_photos
from carremoval.io import read_json, read_jsonl, read_mask, write_jsonl
from carremoval.masks import iou
from carremoval.params import load_params
from carremoval.segmentation import build_model
from test_segmentation import stand_in_segmenter
from weights_support import no_network

CONTRACT_KEYS = {
    "id", "path", "width", "height", "source_url", "source_sha256", "group", "brand", "model", "generation",
    "method", "score", "mask_area", "bbox",
}


def raw_row(url: str, sha256: str, path: str, width: int, height: int) -> dict:
    """A data/raw/motorpage manifest row in the contract's format."""
    return {
        "url": url, "page_url": "https://www.motorpage.ru/Kia/Rio/IV/photos/", "sha256": sha256, "width": width,
        "height": height, "path": path, "source": "motorpage", "brand": "Kia", "model": "Rio", "generation": "IV",
    }


def snapshot_motorpage(raw: Path, sites: Path, expected_crawl: dict, count: int | None = None) -> list[dict]:
    """data/raw/motorpage as the crawl writes it, made from the snapshot's 30 valid car photos (or the first few)."""
    rows = []
    for photo in expected_crawl["www.motorpage.ru"]["valid_car_photos"][:count]:
        path = f"images/{photo['sha256']}.jpg"
        (raw / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sites / photo["url"].split("://", 1)[1], raw / path)
        rows.append(raw_row(photo["url"], photo["sha256"], path, photo["width"], photo["height"]))
    write_jsonl(raw / "manifest.jsonl", sorted(rows, key=lambda row: row["sha256"]))
    return rows


def full_frame(cutout: np.ndarray, bbox: list[int], shape: tuple[int, int]) -> np.ndarray:
    """A cut-out's alpha > 127, put back into the photo's frame."""
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = bbox
    mask[y0:y1, x0:x1] = cutout[..., 3] > 127
    return mask


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory, sites, expected_crawl, repo):
    """The stage with the repository's own params (ESPNetv2 from ../shared/models, offline) on the snapshot, twice."""
    root = tmp_path_factory.mktemp("segment")
    snapshot_motorpage(root / "raw", sites, expected_crawl)
    params = load_params(repo / "params.yaml")["segment"]
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    no_network(monkeypatch)
    outputs = []
    for run in ("a", "b"):
        metrics = run_segment(params, root / "raw", root / run, root / f"{run}.json", repo)
        outputs.append((root / run, metrics))
    monkeypatch.undo()
    return outputs


@pytest.mark.slow
def test_every_annotated_photo_becomes_a_matching_cutout(snapshot_run, sites, expected_crawl):
    """Offline, with the repository's params: hand-checked masks win, ESPNetv2 (from ../shared/models) cuts out
    the other photos, and the quality filters drop what it cuts badly."""
    out, metrics = snapshot_run[0]
    rows = read_jsonl(out / "manifest.jsonl")
    photos = {p["url"]: p for p in expected_crawl["www.motorpage.ru"]["valid_car_photos"]}
    annotated = {url for url, photo in photos.items() if photo["mask"]}
    assert len(annotated) == 14 and annotated <= {row["source_url"] for row in rows}
    for row in rows:
        assert set(row) == CONTRACT_KEYS and row["method"] == ("annotation" if row["source_url"] in annotated else "model")
        photo = photos[row["source_url"]]
        with Image.open(out / row["path"]) as image:
            assert image.mode == "RGBA" and image.size == (row["width"], row["height"])
            cutout = np.asarray(image)
        if row["method"] == "annotation":
            truth = read_mask(annotation_path(sites / "_annotations", row["source_url"]))
            assert iou(full_frame(cutout, row["bbox"], (photo["height"], photo["width"])), truth) >= 0.98
            assert row["mask_area"] == pytest.approx(truth.mean(), abs=1e-4) and row["score"] == 1.0
        else:
            assert row["score"] >= 0.8 and 0.01 <= row["mask_area"] <= 0.9
        assert row["group"] == f"motorpage:{photo['sha256']}" and row["id"] == photo["sha256"][:16]
    assert rows == sorted(rows, key=lambda row: row["id"])
    assert metrics["photos"] == 30 and metrics["cutouts"] > 14
    assert metrics["methods"]["annotation"] == 14 and metrics["methods"]["model"] == metrics["cutouts"] - 14
    assert "no_mask_source" not in metrics["skipped"] and metrics["skipped_total"] == 30 - metrics["cutouts"]
    assert metrics["pretrained_weights"] is True and metrics["policy"] == ["annotation", "model", "alpha"]


@pytest.mark.slow
def test_a_second_run_is_byte_identical(snapshot_run):
    (first, metrics_a), (second, metrics_b) = snapshot_run
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in files)
    assert metrics_a == metrics_b
    assert read_json(first.parent / "a.json") == metrics_a


def painted_background(source: Path, region: tuple[slice, slice] | None, red: int = 255) -> np.ndarray:
    """A real background photo (downscaled) with a red 'car' rectangle the stand-in model recognises."""
    with Image.open(source) as image:
        photo = np.asarray(image.convert("RGB").resize((240, 160), Image.Resampling.BILINEAR)).copy()
    photo[..., 0] = np.minimum(photo[..., 0], np.maximum(photo[..., 1], photo[..., 2]))  # no red in the scene
    if region is not None:
        photo[region] = (red, 0, 0)
    return photo


DEEPLAB_CASES = {
    "good": ((slice(50, 130), slice(40, 200)), 255, None),
    "border": ((slice(60, 160), slice(0, 120)), 255, "touches_border"),
    "unsure": ((slice(40, 120), slice(60, 180)), 135, "low_score"),
    "tiny": ((slice(70, 78), slice(100, 130)), 255, "area_too_small"),
    "thin": ((slice(70, 90), slice(40, 200)), 255, "car_too_small"),
    "empty": (None, 255, "empty_mask"),
}


def test_the_deeplab_path_end_to_end_with_a_stand_in_model(tmp_path, shared_data):
    backgrounds = sorted((shared_data / "photos" / "backgrounds").glob("dpst_in*.png"))
    rows, regions = [], {}
    for (name, (region, red, _)), source in zip(DEEPLAB_CASES.items(), backgrounds):
        Image.fromarray(painted_background(source, region, red)).save(tmp_path / f"{name}.png")
        rows.append(raw_row(f"http://cdn.motorpage.ru/Photos/800/{name}.jpg", name * 8, f"{name}.png", 240, 160))
        regions[name * 8] = region
    write_jsonl(tmp_path / "manifest.jsonl", rows)
    metrics = segment_photos(tmp_path, tmp_path / "out", CutoutSettings(), stand_in_segmenter(), chunk=4)
    assert metrics["methods"] == {"model": 1, "annotation": 0, "alpha": 0}
    assert metrics["skipped"] == {reason: 1 for _, _, reason in DEEPLAB_CASES.values() if reason}
    (row,) = read_jsonl(tmp_path / "out" / "manifest.jsonl")
    assert row["method"] == "model" and row["score"] == pytest.approx(0.95, abs=0.02)
    truth = np.zeros((160, 240), bool)
    truth[regions[row["source_sha256"]]] = True
    cutout = np.asarray(Image.open(tmp_path / "out" / row["path"]))
    assert iou(full_frame(cutout, row["bbox"], truth.shape), truth) >= 0.95


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (no pixel data): a decompression-bomb stand-in."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def bad_inputs(folder: Path, shared_data: Path) -> dict[str, str]:
    """One file per kind of bad input (file name -> the expected skip reason), plus one good RGBA photo."""
    photo = Image.open(shared_data / "photos" / "cars" / "rembg_car-1.jpg")
    (folder / "unreadable.jpg").write_bytes(b"<html>not found</html>")
    (folder / "truncated.jpg").write_bytes((shared_data / "photos" / "cars" / "rembg_car-1.jpg").read_bytes()[:3000])
    photo.convert("L").save(folder / "grey.png")
    photo.convert("L").convert("RGB").save(folder / "grey_rgb.png")
    photo.convert("CMYK").save(folder / "cmyk.jpg")
    photo.resize((1, 1)).save(folder / "one_pixel.png")
    png_header_only(folder / "huge.png", 8000, 6000)
    png_header_only(folder / "bomb.png", 30000, 30000)
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.open(shared_data / "photos" / "cars" / "rembg_car-1.mask.png"))
    rgba.save(folder / "with_alpha.png")
    return {
        "unreadable.jpg": "unreadable", "truncated.jpg": "unreadable", "grey.png": "greyscale",
        "grey_rgb.png": "greyscale", "cmyk.jpg": "colour_mode", "one_pixel.png": "too_small",
        "huge.png": "too_large", "bomb.png": "too_large", "with_alpha.png": "",
    }


def test_bad_input_is_skipped_with_a_reason(tmp_path, shared_data):
    expected = bad_inputs(tmp_path, shared_data)
    rows = [raw_row(f"http://x/{name}", f"{index:064x}", name, 0, 0) for index, name in enumerate(expected)]
    write_jsonl(tmp_path / "manifest.jsonl", rows)
    metrics = segment_photos(tmp_path, tmp_path / "out", CutoutSettings(), segmenter=None)
    reasons = [reason for reason in expected.values() if reason]
    assert metrics["skipped"] == {reason: reasons.count(reason) for reason in set(reasons)}
    (row,) = read_jsonl(tmp_path / "out" / "manifest.jsonl")
    assert row["method"] == "alpha" and row["source_url"] == "http://x/with_alpha.png"


def test_a_wrong_size_annotation_is_a_reason_not_a_crash(tmp_path, shared_data):
    shutil.copyfile(shared_data / "photos" / "cars" / "rembg_car-1.jpg", tmp_path / "car.jpg")
    url = "http://cdn.example/Photos/car.jpg"
    mask_path = annotation_path(tmp_path / "annotations", url)
    mask_path.parent.mkdir(parents=True)
    Image.new("L", (10, 10)).save(mask_path)
    write_jsonl(tmp_path / "manifest.jsonl", [raw_row(url, "c" * 64, "car.jpg", 480, 360)])
    settings = CutoutSettings(annotations=tmp_path / "annotations")
    assert segment_photos(tmp_path, tmp_path / "out", settings, None)["skipped"] == {"bad_annotation": 1}


def test_annotation_key_is_the_url_without_scheme_and_query():
    root = Path("/annotations")
    expected = root / "cdn.motorpage.ru/Photos/800/0D9B1F5395.mask.png"
    assert annotation_path(root, "http://cdn.motorpage.ru/Photos/800/0D9B1F5395.jpg?size=800") == expected
    assert annotation_path(root, "https://CDN.motorpage.ru/Photos/800/0D9B1F5395.jpg") == expected


def test_filters_reject_with_their_reason():
    filters = QualityFilters(min_car_side=20, reject_border=False)
    mask = np.zeros((100, 100), bool)
    mask[0:60, 0:60] = True
    assert filters.rejection(mask, "annotation", 1.0) is None
    assert QualityFilters().rejection(mask, "annotation", 1.0) == "touches_border"
    assert filters.rejection(mask, "model", 0.3) == "low_score"
    assert QualityFilters(max_area_fraction=0.3).rejection(mask, "alpha", 1.0) == "area_too_large"
    mask[:] = False
    mask[40:50, 10:90] = True
    assert filters.rejection(mask, "annotation", 1.0) == "car_too_small"
    with pytest.raises(ValueError, match="segment.filters"):
        QualityFilters.from_params({"min_area": 0.1})


def test_a_misspelt_segment_param_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown key\\(s\\) \\['inference_sise'\\]"):
        run_segment({"inference_sise": 256}, tmp_path, tmp_path / "out", tmp_path / "m.json", tmp_path)


@pytest.mark.slow
def test_the_stage_script_uses_a_given_weights_file(tmp_path, repo, sites, expected_crawl):
    torch.manual_seed(0)
    torch.save(build_model("deeplabv3_mobilenet_v3_large").state_dict(), tmp_path / "segmenter.pth")
    rows = snapshot_motorpage(tmp_path / "data" / "raw" / "motorpage", sites, expected_crawl, count=4)
    params = load_params(repo / "params.yaml")
    params["segment"].update(
        model="deeplabv3_mobilenet_v3_large", weights="segmenter.pth", inference_size=64, annotations=None
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(repo / "stages" / "segment.py")], cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'segmenter.pth'}" in result.stderr, "the log names the weights file it loaded"
    metrics = json.loads((tmp_path / "metrics" / "segment.json").read_text())
    assert metrics["pretrained_weights"] is True and metrics["policy"] == ["model", "alpha"]
    assert metrics["photos"] == len(rows) and "no_mask_source" not in metrics["skipped"]
    assert metrics["cutouts"] + metrics["skipped_total"] == len(rows)
    assert metrics["methods"]["model"] == metrics["cutouts"]
