"""The snapshot's URL -> file mapping rule and the download handler that serves it (README examples, 404s,
content types, DOWNLOAD_MAXSIZE, a missing snapshot)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.exceptions import DownloadCancelledError
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from carremoval.io import InputError
from crawlers.snapshot import SnapshotDownloadHandler, snapshot_file, snapshot_video, youtube_video_id

README_EXAMPLES = [
    ("https://oir.mobi/priroda/", "oir.mobi/priroda/index.html"),
    ("https://oir.mobi/priroda/page/2/", "oir.mobi/priroda/page/2/index.html"),
    ("https://oir.mobi/1187-gornye-pejzazhi.html", "oir.mobi/1187-gornye-pejzazhi.html"),
    ("https://www.motorpage.ru/Audi", "www.motorpage.ru/Audi/index.html"),
    ("http://cdn.motorpage.ru/Photos/800/0D9B1F5395.jpg", "cdn.motorpage.ru/Photos/800/0D9B1F5395.jpg"),
    ("https://www.youtube.com/watch?v=stAtRoad001", "www.youtube.com/watch/stAtRoad001.info.json"),
]


@pytest.mark.parametrize(("url", "relative"), README_EXAMPLES)
def test_mapping_rule_matches_the_readme_examples(sites: Path, url: str, relative: str) -> None:
    assert snapshot_file(url, sites) == (sites / relative).resolve()


@pytest.mark.parametrize(
    "url",
    [
        "https://oir.mobi/index.php?do=search",                # the README's 404 example
        "https://oir.mobi/goroda/",                             # a menu link absent from the snapshot
        "https://WWW.MOTORPAGE.RU/tests/",
        "https://oir.mobi/../www.motorpage.ru/robots.txt",      # traversal out of the host folder
        "https://oir.mobi/%2e%2e/%2e%2e/README.md",
        "http://_annotations/cdn.motorpage.ru/Photos/800/0D9B1F5395.mask.png",   # not a host
        "ftp://oir.mobi/robots.txt",
        "https://www.youtube.com/watch?v=noSuchVideo",
    ],
)
def test_urls_without_a_file_are_404(sites: Path, url: str) -> None:
    assert snapshot_file(url, sites) is None


def test_query_and_host_case_are_ignored_and_http_equals_https(sites: Path) -> None:
    expected = (sites / "oir.mobi/priroda/index.html").resolve()
    assert snapshot_file("http://OIR.mobi/priroda/?page=3#top", sites) == expected


def test_youtube_watch_url_names_the_video_by_its_info_file(sites: Path) -> None:
    assert youtube_video_id("https://www.youtube.com/watch?v=rAllySnow02&t=5") == "rAllySnow02"
    assert youtube_video_id("https://www.youtube.com/channel/x") is None
    assert snapshot_video("https://www.youtube.com/watch?v=stAtRoad001", sites).name == "stAtRoad001.avi"
    with pytest.raises(InputError, match="noSuchVideo"):
        snapshot_video("https://www.youtube.com/watch?v=noSuchVideo", sites)


def download(handler: SnapshotDownloadHandler, url: str, **meta: object):
    return asyncio.run(handler.download_request(Request(url, meta=meta)))


def make_handler(root: Path, **settings: object) -> SnapshotDownloadHandler:
    return SnapshotDownloadHandler(get_crawler(settings_dict={"SNAPSHOT_DIR": str(root), **settings}))


def test_handler_serves_files_with_content_type_by_extension_and_404s(sites: Path, tmp_path: Path) -> None:
    handler = make_handler(sites, SNAPSHOT_ACCESS_LOG=str(tmp_path / "access.log"))
    page = download(handler, "https://oir.mobi/priroda/")
    assert isinstance(page, HtmlResponse) and page.status == 200
    assert page.headers["Content-Type"] == b"text/html; charset=utf-8"
    assert page.body == (sites / "oir.mobi/priroda/index.html").read_bytes()
    trap = download(handler, "https://oir.mobi/uploads/posts/2023-06/1685703900_3-oir_mobi-p-zagorodnye-dorogi-3.jpg")
    assert trap.status == 200 and trap.headers["Content-Type"] == b"image/jpeg"   # HTML served as a .jpg
    info = download(handler, "https://www.youtube.com/watch?v=stAtRoad001")
    assert info.headers["Content-Type"] == b"application/json"
    missing = download(handler, "http://cdn.motorpage.ru/Photos/800/5585FDAE0B.jpg")
    assert missing.status == 404
    asyncio.run(handler.close())
    log = [line.split("\t") for line in (tmp_path / "access.log").read_text().splitlines()]
    assert [(status, url) for _, status, url in log][-1] == ("404", "http://cdn.motorpage.ru/Photos/800/5585FDAE0B.jpg")


def test_handler_enforces_download_maxsize_like_the_http_handler(sites: Path) -> None:
    handler = make_handler(sites, DOWNLOAD_MAXSIZE=100_000)
    url = "https://oir.mobi/uploads/posts/2023-01/1675095600_1-oir_mobi-p-doroga-v-gory-1.jpg"   # 620806 bytes
    with pytest.raises(DownloadCancelledError, match="larger than download max size"):
        download(handler, url)
    assert download(handler, url, download_maxsize=0).status == 200   # the per-request meta key, as in Scrapy


def test_missing_snapshot_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="snapshot directory not found.*null to crawl the live sites"):
        make_handler(tmp_path / "no-such-sites")
