"""Item pipelines: check and file downloaded images, then append every record to the crawl log."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, TextIO

from scrapy.crawler import Crawler

from crawlers.items import ImageDownload, ImageRecord, LoggedRecord
from crawlers.state import CrawlState
from crawlers.validation import ImageLimits, check_image

logger = logging.getLogger(__name__)


def image_limits(settings: Any) -> ImageLimits:
    return ImageLimits(
        min_side=settings.getint("IMAGE_MIN_SIDE"),
        max_pixels=settings.getint("IMAGE_MAX_PIXELS"),
        max_bytes=settings.getint("DOWNLOAD_MAXSIZE"),
    )


class ImagePipeline:
    """Turns each ImageDownload into an ImageRecord: checked by crawlers.validation, and when kept, filed in
    the state's content-addressed store under its sha256 (the same bytes under two URLs are stored once;
    which URL represents them is settled when the output is assembled)."""

    def __init__(self, crawler: Crawler):
        self.stats = crawler.stats
        self.limits = image_limits(crawler.settings)
        self.state = CrawlState(Path(crawler.settings["CRAWL_STATE_DIR"]))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ImagePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, ImageDownload):
            return item
        check = check_image(item.body, self.limits)
        self.stats.inc_value(f"images/{check.reason or 'kept'}")
        if check.ok:
            self.state.store_image(check.sha256, check.ext, item.body)
        else:
            logger.info("skipped image %s: %s", item.url, check.reason)
        return ImageRecord(
            url=item.url,
            reason=check.reason,
            sha256=check.sha256,
            ext=check.ext or None,
            width=check.width,
            height=check.height,
        )


class CrawlLogPipeline:
    """Appends every record to the state's log.jsonl and flushes it, so a killed crawl loses nothing it
    finished. Runs after ImagePipeline, so an image is in the store before its record is in the log."""

    def __init__(self, crawler: Crawler):
        self.state = CrawlState(Path(crawler.settings["CRAWL_STATE_DIR"]))
        self.log: TextIO | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlLogPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self.log = self.state.open_log()

    def close_spider(self) -> None:
        if self.log is not None:
            self.log.close()

    def process_item(self, item: Any) -> Any:
        if isinstance(item, LoggedRecord) and self.log is not None:
            self.log.write(json.dumps(item.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
            self.log.flush()
        return item
