"""Bad input is skipped and counted with its reason, never a crash: small generated bodies through the image
check, the image and log pipelines, and malformed pages through the spiders' parsers."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scrapy import Request
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler

from crawlers.items import ImageDownload, ImageLink, ImageRecord, PageRecord
from crawlers.pipelines import CrawlLogPipeline, ImagePipeline
from crawlers.spiders.motorpage import MotorpageSpider
from crawlers.spiders.oir_mobi import OirMobiSpider
from crawlers.state import CrawlState
from crawlers.validation import ImageLimits, check_image, sniff_format

LIMITS = ImageLimits(min_side=100, max_pixels=4_000_000, max_bytes=2_000_000)


def encode(width: int, height: int, fmt: str = "JPEG", seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def test_valid_jpeg_and_png_are_kept_with_their_size() -> None:
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png")):
        check = check_image(encode(320, 200, fmt), LIMITS)
        assert check.ok and (check.width, check.height, check.ext) == (320, 200, ext)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>", "not_an_image"),   # HTML served as .jpg
        (b"GIF89a" + b"\x00" * 3, "undecodable"),
        (encode(400, 300)[:2000], "undecodable"),                      # truncated JPEG
        (encode(400, 300, "PNG")[:-40], "undecodable"),                # PNG without its last chunks
        (encode(40, 30), "below_min_size"),                            # the snapshot's tiny icon trap
        (encode(1500, 1500, "PNG", seed=1), "too_large"),              # more bytes than max_bytes
    ],
)
def test_bad_bodies_get_their_reason(body: bytes, reason: str) -> None:
    assert check_image(body, LIMITS).reason == reason


def test_decompression_bomb_is_refused_before_decoding() -> None:
    flat = np.zeros((3000, 3000), dtype=np.uint8)          # 9 Mpx that compress to a few kB
    buffer = io.BytesIO()
    Image.fromarray(flat).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 100_000
    assert check_image(buffer.getvalue(), LIMITS).reason == "too_many_pixels"


def test_format_is_sniffed_from_magic_bytes_not_the_name() -> None:
    assert sniff_format(encode(10, 10, "PNG")) == "PNG"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_format(b"<html>") is None


@pytest.fixture
def crawler(tmp_path: Path):
    return get_crawler(settings_dict={
        "CRAWL_STATE_DIR": str(tmp_path / "state"), "IMAGE_MIN_SIDE": 100, "IMAGE_MAX_PIXELS": 4_000_000,
        "DOWNLOAD_MAXSIZE": 2_000_000,
    })


def test_image_pipeline_files_kept_images_by_content_and_logs_every_record(crawler, tmp_path: Path) -> None:
    images, log = ImagePipeline(crawler), CrawlLogPipeline(crawler)
    log.open_spider()
    good = encode(320, 200)
    items = [
        ImageDownload("https://a.example/1.jpg", good),
        ImageDownload("https://a.example/2.jpg", good),                     # same bytes, second URL
        ImageDownload("https://a.example/3.jpg", b"<html>not found</html>"),
        ImageDownload("https://a.example/4.jpg", b""),
        PageRecord("https://a.example/post.html", "post", links={"image": 4}),
        ImageLink("https://a.example/1.jpg", "https://a.example/post.html", {"category": "x"}),
    ]
    results = [log.process_item(images.process_item(item)) for item in items]
    log.close_spider()
    assert [r.reason for r in results[:4] if isinstance(r, ImageRecord)] == [None, None, "not_an_image", "empty"]
    state = CrawlState(tmp_path / "state")
    stored = sorted(p.name for p in state.images_dir.iterdir())
    assert stored == [f"{results[0].sha256}.jpg"]
    assert state.image_path(results[0].sha256, "jpg").read_bytes() == good
    records = state.records()
    assert [r["type"] for r in records] == ["image", "image", "image", "image", "page", "link"]
    assert all("body" not in r for r in records)
    assert crawler.stats.get_value("images/kept") == 2 and crawler.stats.get_value("images/empty") == 1


def page(url: str, body: bytes, **meta: object) -> Response:
    request = Request(url, meta=meta)
    if body.lstrip().startswith(b"<"):
        return HtmlResponse(url=url, body=body, encoding="utf-8", request=request)
    return Response(url=url, body=body, request=request)


MALFORMED = [
    b"<html><body><div class='img-in-full'><img data-src=",       # cut off mid-tag
    b"<<<>>><div class=short-story><h2 class=short-title><a>no href</a></h2>",
    b"   ",
    b"\x00\xff\xfe binary",
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_pages_are_recorded_with_a_reason_not_a_crash(body: bytes) -> None:
    oir = OirMobiSpider()
    motorpage = MotorpageSpider()
    parsers = [
        (oir.parse_listing, "https://oir.mobi/priroda/", {"category": "priroda"}),
        (oir.parse_post, "https://oir.mobi/1152-les-i-derevja.html", {"category": "priroda"}),
        (motorpage.parse_index, "https://www.motorpage.ru/select-auto/by-mark.html", {}),
        (motorpage.parse_brand, "https://www.motorpage.ru/Audi", {}),
        (motorpage.parse_model, "https://www.motorpage.ru/Kia/Rio/last/", {}),
        (motorpage.parse_gallery, "https://www.motorpage.ru/Kia/Rio/IV/photos/", {}),
    ]
    for parse, url, meta in parsers:
        output = list(parse(page(url, body, **meta)))
        assert len(output) == 1 and isinstance(output[0], PageRecord), (parse.__name__, output)
        assert output[0].reason in {"no_content", "not_html"}
    assert json.dumps(output[0].to_json())
