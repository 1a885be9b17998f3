"""The offline site snapshot: its URL -> file mapping rule and a Scrapy download handler that serves it.

The rule is the one in the snapshot's README (`../shared/sites/README.md`):
http and https alike, `sites/<host>/<percent-decoded path>`, a path that is empty or ends in "/" gets
"index.html", a path naming a directory gets "/index.html", query and fragment are ignored except for
`https://www.youtube.com/watch?v=<ID>` (-> `watch/<ID>.info.json`), and a missing file is an HTTP 404.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from scrapy import Request
from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError
from scrapy.http import Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.asyncio import run_in_thread

from carremoval.io import InputError, read_json

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".json": "application/json",
    ".mp4": "video/mp4",
    ".avi": "video/x-msvideo",
    ".txt": "text/plain",
}
YOUTUBE_HOST = "www.youtube.com"
VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NOT_FOUND_BODY = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"


def require_snapshot_dir(path: Path) -> Path:
    """The snapshot directory, or a clear error saying which path is missing and how to crawl live."""
    if not path.is_dir():
        raise InputError(
            f"{path}: site snapshot directory not found (params.yaml `snapshot`); "
            "point it at the snapshot, or set it to null to crawl the live sites"
        )
    return path


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def youtube_video_id(url: str) -> str | None:
    """The video id of a `https://www.youtube.com/watch?v=<ID>` URL, else None."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() != YOUTUBE_HOST or parts.path != "/watch":
        return None
    video_id = parse_qs(parts.query).get("v", [""])[0]
    return video_id if VIDEO_ID.match(video_id) else None


def snapshot_file(url: str, root: Path) -> Path | None:
    """The snapshot file that answers `url`, or None when the site would answer 404."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or host.startswith(("_", ".")):
        return None
    host_dir = (root / host).resolve()
    video_id = youtube_video_id(url)
    if video_id is not None:
        candidate = host_dir / "watch" / f"{video_id}.info.json"
    else:
        path = unquote(parts.path)
        relative = path.lstrip("/")
        if not relative or path.endswith("/"):
            relative += "index.html"
        candidate = host_dir / relative
        if candidate.is_dir():
            candidate = candidate / "index.html"
    resolved = candidate.resolve()
    if not resolved.is_relative_to(host_dir) or not resolved.is_file():
        return None
    return resolved


def snapshot_video(url: str, root: Path) -> Path:
    """The video file of a YouTube watch URL in the snapshot (its extension comes from `<ID>.info.json`)."""
    info_path = snapshot_file(url, root)
    if youtube_video_id(url) is None or info_path is None:
        raise InputError(f"{url}: no video for this URL in the snapshot {root}")
    info = read_json(info_path)
    video = info_path.with_name(f"{info['id']}.{info['ext']}")
    if not video.is_file():
        raise InputError(f"{video}: video file named by {info_path} is missing")
    return video


class SnapshotDownloadHandler(BaseDownloadHandler):
    """Answers http and https requests from the snapshot folder (setting SNAPSHOT_DIR).

    It sits where Scrapy's HTTP handler sits, so robots.txt, delays, AutoThrottle, retries and pipelines
    all run as they do live. It enforces DOWNLOAD_MAXSIZE like the HTTP handler (DownloadCancelledError),
    and sets `download_latency` for AutoThrottle as they do. When SNAPSHOT_ACCESS_LOG names a file, it appends
    "<unix time>\\t<status>\\t<url>" for every request it answers (the time the request reached it, which is
    what the download delays space out; status 0: cancelled for its size): the snapshot's own record of what the
    crawler asked for.
    """

    lazy = False

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.root = require_snapshot_dir(Path(crawler.settings["SNAPSHOT_DIR"]))
        self.maxsize = crawler.settings.getint("DOWNLOAD_MAXSIZE")
        access_log = crawler.settings.get("SNAPSHOT_ACCESS_LOG")
        self.access_log = open(access_log, "a", encoding="utf-8") if access_log else None

    async def download_request(self, request: Request) -> Response:
        start, arrived = time.monotonic(), time.time()
        response = await self._answer(request, arrived)
        request.meta["download_latency"] = time.monotonic() - start   # as the HTTP handlers do; AutoThrottle reads it
        return response

    async def _answer(self, request: Request, arrived: float) -> Response:
        path = snapshot_file(request.url, self.root)
        if path is None:
            self._log_access(request, 404, arrived)
            headers = {"Content-Type": CONTENT_TYPES[".html"]}
            return responsetypes.from_args(headers=headers)(
                url=request.url, status=404, headers=headers, body=NOT_FOUND_BODY, request=request
            )
        size = path.stat().st_size
        maxsize = request.meta.get("download_maxsize", self.maxsize)
        if maxsize and size > maxsize:
            self._log_access(request, 0, arrived)
            message = (
                f"Expected to receive {size} bytes which is larger than download max size ({maxsize}) "
                f"in request {request}."
            )
            logger.warning(message)
            raise DownloadCancelledError(message)
        body = await run_in_thread(path.read_bytes)
        self._log_access(request, 200, arrived)
        headers = {"Content-Type": content_type(path), "Content-Length": str(len(body))}
        respcls = responsetypes.from_args(headers=headers, url=request.url, body=body)
        return respcls(url=request.url, status=200, headers=headers, body=body, request=request)

    def _log_access(self, request: Request, status: int, arrived: float) -> None:
        if self.access_log is not None:
            self.access_log.write(f"{arrived:.3f}\t{status}\t{request.url}\n")
            self.access_log.flush()

    async def close(self) -> None:
        if self.access_log is not None:
            self.access_log.close()
