"""Downloader middlewares: robots.txt Crawl-delay, and resuming an interrupted crawl from its state."""
from __future__ import annotations

import logging
from pathlib import Path

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.robotstxt import RobotParser

from crawlers.state import CrawlState

logger = logging.getLogger(__name__)


class AlreadyProcessed(IgnoreRequest):
    """The request's outcome is already in the crawl log (a resumed crawl); nothing to do."""


class CrawlDelayMiddleware:
    """Honours robots.txt `Crawl-delay`, which Scrapy's RobotsTxtMiddleware parses but never applies.

    When a host's robots.txt is parsed, its Crawl-delay for our user agent becomes the floor of that host's
    download-slot delay. The floor is re-applied before every request and after every response, because
    AutoThrottle lowers a slot's delay towards DOWNLOAD_DELAY on each response. Order it after
    RobotsTxtMiddleware (100) so that robots.txt is parsed before the request passes here.
    """

    def __init__(self, crawler: Crawler):
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        self.crawler = crawler
        self.user_agent = crawler.settings.get("ROBOTSTXT_USER_AGENT") or crawler.settings.get("USER_AGENT")
        self.delays: dict[str, float] = {}
        crawler.signals.connect(self.robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(self.response_downloaded, signal=signals.response_downloaded)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlDelayMiddleware:
        return cls(crawler)

    def robots_parsed(self, robotparser: RobotParser, request: Request) -> None:
        delay = robotparser.crawl_delay(self.user_agent)
        if delay:
            key = self.crawler.engine.downloader.get_slot_key(request)
            self.delays[key] = float(delay)
            self.crawler.stats.set_value(f"crawl_delay/{key}", float(delay))
            logger.info("%s: robots.txt Crawl-delay %.2f s", key, delay)
            self._apply(key)

    def process_request(self, request: Request) -> None:
        self._apply(self.crawler.engine.downloader.get_slot_key(request))

    def response_downloaded(self, response: Response, request: Request) -> None:
        self._apply(self.crawler.engine.downloader.get_slot_key(request))

    def _apply(self, key: str) -> None:
        delay = self.delays.get(key)
        slot = self.crawler.engine.downloader.slots.get(key)
        if delay and slot is not None and slot.delay < delay:
            slot.delay = delay


class ResumeMiddleware:
    """Resumes an interrupted crawl from the state in CRAWL_STATE_DIR (crawlers.state).

    Pages fetched before are answered from the state instead of the site, so the spider re-parses them and
    finds its way again; images whose outcome is already logged are not requested again (AlreadyProcessed).
    Each newly fetched page is saved to the state. Order it after RobotsTxtMiddleware.
    """

    def __init__(self, crawler: Crawler):
        state_dir = crawler.settings.get("CRAWL_STATE_DIR")
        if not state_dir:
            raise NotConfigured("CRAWL_STATE_DIR is not set")
        self.stats = crawler.stats
        self.state = CrawlState(Path(state_dir))
        self.done_images = {record["url"] for record in self.state.records() if record["type"] == "image"}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResumeMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> Response | None:
        kind = request.meta.get("kind")
        if kind == "image" and request.url in self.done_images:
            self.stats.inc_value("resume/images_already_done")
            raise AlreadyProcessed(f"already processed: {request.url}")
        if kind == "page":
            text = self.state.load_page(request.url)
            if text is not None:
                self.stats.inc_value("resume/pages_from_state")
                return HtmlResponse(
                    url=request.url, body=text.encode("utf-8"), encoding="utf-8", request=request, flags=["resumed"]
                )
        return None

    def process_response(self, request: Request, response: Response) -> Response:
        if (
            request.meta.get("kind") == "page"
            and response.status == 200
            and isinstance(response, TextResponse)
            and "resumed" not in response.flags
        ):
            self.state.save_page(request.url, response.text)
        return response
