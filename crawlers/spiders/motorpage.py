"""www.motorpage.ru car catalogue: brand index -> brand pages -> current model pages -> photo galleries
(with their pagination) -> full-size photos on cdn.motorpage.ru, each labelled with brand, model, generation.

Photos are the `a.photo` links (800 px), never the `img` thumbnails inside them (200 px) nor the brand logos.
Brand pages also link magazine articles (`/magazine/...`), whose photos are collected too when
`follow_magazine` is set and robots.txt allows it (on motorpage.ru it does not: the requests end as
robots_forbidden). Labels come from the URL paths, so they do not depend on the order pages arrive in.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

from scrapy import Request
from scrapy.http import Response

from crawlers.items import ImageLink, PageRecord
from crawlers.spiders.base import ImageSpider, as_list, html_page, page_record

logger = logging.getLogger(__name__)

MODEL_PATH = re.compile(r"^/(?P<brand>[^/]+)/(?P<model>[^/]+)/last/$")
GALLERY_PATH = re.compile(r"^/(?P<brand>[^/]+)/(?P<model>[^/]+)/(?P<generation>[^/]+)/photos/(?:(?P<page>\d+)/)?$")
MAGAZINE_PREFIX = "/magazine/"
DEFAULT_BRANDS = ("Audi", "BMW", "Kia", "MercedesBenz", "Opel", "Volkswagen", "Volvo")


def path_of(url: str) -> str:
    return unquote(urlsplit(url).path)


def labels(match: re.Match | None) -> dict[str, str | None]:
    """brand, model, generation from a model or gallery path match."""
    found = match.groupdict() if match else {}
    return {key: found.get(key) for key in ("brand", "model", "generation")}


class MotorpageSpider(ImageSpider):
    name = "motorpage"

    def __init__(
        self,
        *args: Any,
        index_url: str = "https://www.motorpage.ru/select-auto/by-mark.html",
        brands: list[str] | str = DEFAULT_BRANDS,
        max_models_per_brand: int | str = 0,
        max_gallery_pages: int | str = 20,
        follow_magazine: bool | str = True,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.index_url = index_url
        self.brands = as_list(brands)
        self.max_models_per_brand = int(max_models_per_brand)
        self.max_gallery_pages = int(max_gallery_pages)
        self.follow_magazine = str(follow_magazine).lower() in ("1", "true", "yes")
        host = urlsplit(index_url).hostname or ""
        self.allowed_domains = [host.removeprefix("www.")]

    async def start(self) -> Any:
        yield self.page_request(self.index_url, self.parse_index, "index")

    @html_page("index")
    def parse_index(self, response: Response) -> Iterator[PageRecord | Request]:
        """The brand index: one `ul.marks li a` per brand; the brands in params are followed."""
        urls = [response.urljoin(href) for href in response.css("ul.marks li a::attr(href)").getall()]
        found = {path_of(url).strip("/"): url for url in urls}
        yield page_record(response, "index", bool(found), brand=len(found))
        for brand in self.brands:
            if brand in found:
                yield self.page_request(found[brand], self.parse_brand, "brand")
            else:
                logger.warning("brand %r is not on the brand index %s", brand, response.url)

    @html_page("brand")
    def parse_brand(self, response: Response) -> Iterator[PageRecord | Request]:
        """A brand page: its current models (`/<Brand>/<Model>/last/`) and the magazine pages it links."""
        models = [response.urljoin(href) for href in response.css("ul.models a::attr(href)").getall()]
        models = [url for url in models if MODEL_PATH.match(path_of(url))]
        if self.max_models_per_brand:
            models = models[: self.max_models_per_brand]
        links = {response.urljoin(href) for href in response.css("a::attr(href)").getall()}
        magazine = sorted(url for url in links if path_of(url).startswith(MAGAZINE_PREFIX))
        yield page_record(response, "brand", bool(models), model=len(models), magazine=len(magazine))
        for url in models:
            yield self.page_request(url, self.parse_model, "model")
        if self.follow_magazine:
            brand = path_of(response.url).strip("/")
            for url in magazine:
                yield self.page_request(url, self.parse_article, "article", {"brand": brand})

    @html_page("model")
    def parse_model(self, response: Response) -> Iterator[PageRecord | ImageLink | Request]:
        """A model page: the main photo (`img[itemprop=image]`) and the gallery link (`a.gallery-link`)."""
        main_photo = response.css("img[itemprop=image]::attr(src)").get()
        gallery_href = response.css("a.gallery-link::attr(href)").get()
        yield page_record(
            response, "model", bool(main_photo or gallery_href),
            main_photo=int(main_photo is not None), gallery=int(gallery_href is not None),
        )
        gallery_url = response.urljoin(gallery_href) if gallery_href else None
        if gallery_url:
            fields = labels(GALLERY_PATH.match(path_of(gallery_url)))
        else:
            fields = labels(MODEL_PATH.match(path_of(response.url)))
        if main_photo:
            yield from self.follow_image(response, main_photo, fields)
        if gallery_url:
            yield self.page_request(gallery_url, self.parse_gallery, "gallery")

    @html_page("gallery")
    def parse_gallery(self, response: Response) -> Iterator[PageRecord | ImageLink | Request]:
        """A gallery page: the full-size `a.photo` links, then `a.next` up to max_gallery_pages."""
        photos = response.css("div.photos a.photo::attr(href)").getall()
        next_href = response.css("ul.pager a.next::attr(href)").get()
        yield page_record(response, "gallery", bool(photos), photo=len(photos), next=int(next_href is not None))
        fields = labels(GALLERY_PATH.match(path_of(response.url)))
        for href in photos:
            yield from self.follow_image(response, href, fields)
        yield from self.follow_next(response, next_href, self.parse_gallery, "gallery", self.max_gallery_pages)

    @html_page("article")
    def parse_article(self, response: Response) -> Iterator[PageRecord | ImageLink]:
        """A magazine article: its photos, labelled with the brand whose page linked it."""
        hrefs = response.css("a.photo::attr(href)").getall() + response.css("img[itemprop=image]::attr(src)").getall()
        photos = list(dict.fromkeys(response.urljoin(href) for href in hrefs))
        yield page_record(response, "article", bool(photos), photo=len(photos))
        fields = {"brand": response.meta["brand"], "model": None, "generation": None}
        for url in photos:
            yield from self.follow_image(response, url, fields)
