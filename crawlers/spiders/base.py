"""What both image spiders share: typed page and image requests, the failure path, the image budget."""
from __future__ import annotations

import functools
import inspect
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


def html_page(page_type: str) -> Callable[[Callable[..., Iterator[Any]]], Callable[..., Iterator[Any]]]:
    """Decorates the parse method of one page type: a response that is not text (say, an image where a page
    was expected) ends as PageRecord(reason="not_html") instead of reaching the parser."""

    def decorate(parse: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        @functools.wraps(parse)
        def parse_html(self: ImageSpider, response: Response) -> Iterator[Any]:
            if not isinstance(response, TextResponse):
                yield PageRecord(url=response.url, page_type=page_type, reason="not_html")
                return
            yield from parse(self, response)

        return parse_html

    return decorate


def page_record(response: Response, page_type: str, found: bool, **links: int) -> PageRecord:
    """What a page linked; `no_content` when none of what this page type should have was found."""
    return PageRecord(url=response.url, page_type=page_type, reason=None if found else "no_content", links=links)


class ImageSpider(Spider):
    """A spider that walks pages down to images. Every page it asks for ends as a PageRecord, every image
    link as an ImageLink, every image request as an ImageDownload (checked by the pipeline) or an
    ImageRecord with the reason it failed. `max_items` (0 = no limit) caps the image URLs requested."""

    def __init__(self, *args: Any, max_items: int | str = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_items = int(max_items)
        self.images_requested: set[str] = set()

    @classmethod
    def option_names(cls) -> set[str]:
        """The keyword options of this spider (its params.yaml `crawl.<source>` keys)."""
        names: set[str] = set()
        for klass in cls.__mro__[: cls.__mro__.index(ImageSpider) + 1]:
            names |= {name for name, parameter in inspect.signature(klass.__init__).parameters.items()
                      if parameter.kind is inspect.Parameter.KEYWORD_ONLY}
        return names

    def page_request(
        self, url: str, callback: Callable, page_type: str, meta: dict[str, Any] | None = None
    ) -> Request:
        return Request(
            url,
            callback=callback,
            errback=self.request_failed,
            meta={"kind": "page", "page_type": page_type, **(meta or {})},
        )

    def follow_next(
        self,
        response: Response,
        href: str | None,
        callback: Callable,
        page_type: str,
        limit: int,
        meta: dict[str, Any] | None = None,
    ) -> Iterator[Request]:
        """The next page of a paginated listing, unless there is none or `limit` pages are done (0 = no limit)."""
        number = response.meta.get("page_number", 1)
        if href is not None and (not limit or number < limit):
            meta = {**(meta or {}), "page_number": number + 1}
            yield self.page_request(response.urljoin(href), callback, page_type, meta)

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
