"""What both image spiders share: typed page and image requests, the failure path, the image budget."""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

from scrapy import Request, Spider
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawlers.items import ImageDownload, ImageLink, ImageRecord, PageRecord
from crawlers.middlewares import AlreadyProcessed

logger = logging.getLogger(__name__)

ROBOTS_FORBIDDEN_MESSAGE = "Forbidden by robots.txt"   # what RobotsTxtMiddleware raises IgnoreRequest with


def as_list(value: Any) -> list[str]:
    """A list from a list or a comma-separated string (`scrapy crawl -a brands=Audi,BMW`)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part) for part in value]


def failure_reason(failure: Failure) -> str:
    """Why a request gave no usable response, as a skip reason for the metrics."""
    if failure.check(HttpError):
        return f"http_{failure.value.response.status}"
    if failure.check(IgnoreRequest):
        message = str(failure.value)
        if message == ROBOTS_FORBIDDEN_MESSAGE:
            return "robots_forbidden"
        return "offsite" if message.startswith("Filtered offsite") else "ignored"
    if failure.check(DownloadCancelledError):
        return "too_large"
    return "download_error"


def page_problem(response: Response) -> str | None:
    """`not_html` when a page request got something that is not text (say, an image)."""
    return None if isinstance(response, TextResponse) else "not_html"


class ImageSpider(Spider):
    """A spider that walks pages down to images. Every page it asks for ends as a PageRecord, every image
    link as an ImageLink, every image request as an ImageDownload (checked by the pipeline) or an
    ImageRecord with the reason it failed. `max_items` (0 = no limit) caps the image URLs requested."""

    def __init__(self, *args: Any, max_items: int | str = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_items = int(max_items)
        self.images_requested: set[str] = set()

    def page_request(
        self, url: str, callback: Callable, page_type: str, meta: dict[str, Any] | None = None
    ) -> Request:
        return Request(
            url,
            callback=callback,
            errback=self.request_failed,
            meta={"kind": "page", "page_type": page_type, **(meta or {})},
        )

    def follow_image(self, response: Response, href: str, fields: dict[str, Any]) -> Iterator[ImageLink | Request]:
        request = Request(
            response.urljoin(href), callback=self.parse_image, errback=self.request_failed, meta={"kind": "image"}
        )
        yield ImageLink(url=request.url, page_url=response.url, fields=fields)
        if request.url in self.images_requested:
            return
        if self.max_items and len(self.images_requested) >= self.max_items:
            return
        self.images_requested.add(request.url)
        yield request

    def parse_image(self, response: Response) -> Iterator[ImageDownload]:
        yield ImageDownload(url=response.meta.get("redirect_urls", [response.url])[0], body=response.body)

    def request_failed(self, failure: Failure) -> Iterator[PageRecord | ImageRecord]:
        if failure.check(AlreadyProcessed):
            return
        request = failure.request
        url = request.meta.get("redirect_urls", [request.url])[0]
        reason = failure_reason(failure)
        logger.warning("skipped %s %s: %s", request.meta.get("kind"), url, reason)
        self.crawler.stats.inc_value(f"skipped/{reason}")
        if request.meta.get("kind") == "image":
            yield ImageRecord(url=url, reason=reason)
        else:
            yield PageRecord(url=url, page_type=request.meta.get("page_type", "page"), reason=reason)
