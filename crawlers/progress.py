"""A tqdm progress bar for a crawl: responses, pages parsed, unique images kept, skips."""
from __future__ import annotations

import sys
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from tqdm import tqdm

from crawlers.items import ImageRecord, PageRecord


class CrawlProgress:
    """Extension (setting CRAWL_PROGRESS) that draws one bar per crawl on stderr."""

    def __init__(self, crawler: Crawler):
        if not crawler.settings.getbool("CRAWL_PROGRESS"):
            raise NotConfigured
        self.bar: tqdm | None = None
        self.pages = 0
        self.images: set[str] = set()
        self.skipped = 0
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.response_received, signal=signals.response_received)
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        return cls(crawler)

    def spider_opened(self, spider: Any) -> None:
        self.bar = tqdm(desc=f"crawl {spider.name}", unit=" responses", file=sys.stderr, mininterval=1.0)

    def response_received(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def item_scraped(self, item: Any) -> None:
        if isinstance(item, PageRecord):
            self.pages += item.reason is None
            self.skipped += item.reason is not None
        elif isinstance(item, ImageRecord):
            if item.reason is None:
                self.images.add(item.sha256)
            else:
                self.skipped += 1
        if self.bar is not None:
            self.bar.set_postfix(pages=self.pages, images=len(self.images), skipped=self.skipped, refresh=False)

    def spider_closed(self) -> None:
        if self.bar is not None:
            self.bar.close()
