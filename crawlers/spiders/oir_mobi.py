"""oir.mobi (DataLife Engine picture site): category listings -> post pages -> full-size background images.

Only `div.img-in-full img[data-src]` is collected: `src` there is the lazy-load placeholder, and listing
thumbnails, "related" thumbnails, the sidebar ad (`div.adv`) and template images are never requested.
"""
from __future__ import annotations

import re
from typing import Any, Iterator
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response

from crawlers.items import ImageLink, PageRecord
from crawlers.spiders.base import ImageSpider, as_list, html_page, page_record

POST_PATH = re.compile(r"^/\d+-[^/]+\.html$")


def category_slug(url: str) -> str:
    """`https://oir.mobi/dorogi/` -> `dorogi`."""
    return urlsplit(url).path.strip("/").split("/")[0]


class OirMobiSpider(ImageSpider):
    name = "oir_mobi"

    def __init__(
        self,
        *args: Any,
        base_url: str = "https://oir.mobi",
        categories: list[str] | str = ("priroda", "dorogi"),
        max_listing_pages: int | str = 50,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.base_url = base_url.rstrip("/")
        self.categories = as_list(categories)
        self.max_listing_pages = int(max_listing_pages)
        self.allowed_domains = [urlsplit(self.base_url).hostname]

    async def start(self) -> Any:
        for category in self.categories:
            url = f"{self.base_url}/{category}/"
            yield self.page_request(url, self.parse_listing, "listing", {"category": category})

    @html_page("listing")
    def parse_listing(self, response: Response) -> Iterator[PageRecord | Request]:
        """A category page: post links, then the next page (`a.next`, "Далее") up to max_listing_pages."""
        posts = response.css("div.short-story h2.short-title a::attr(href)").getall()
        next_href = response.css("div.navigation a.next::attr(href)").get()
        yield page_record(response, "listing", bool(posts), post=len(posts), next=int(next_href is not None))
        category = response.meta["category"]
        for href in posts:
            url = response.urljoin(href)
            if POST_PATH.match(urlsplit(url).path):
                yield self.page_request(url, self.parse_post, "post", {"category": category})
        yield from self.follow_next(
            response, next_href, self.parse_listing, "listing", self.max_listing_pages, {"category": category}
        )

    @html_page("post")
    def parse_post(self, response: Response) -> Iterator[PageRecord | ImageLink | Request]:
        """A post: its full-size images, with the post's own categories (a post can be in several)."""
        images = response.css("div.img-in-full img::attr(data-src)").getall()
        yield page_record(response, "post", bool(images), image=len(images))
        categories = [category_slug(href) for href in response.css("div.full-info span.cat a::attr(href)").getall()]
        categories = categories or [response.meta["category"]]
        fields = {
            "category": categories[0],
            "categories": categories,
            "post_url": response.url,
            "post_title": (response.css("h1.full-title::text").get() or "").strip(),
        }
        for href in images:
            yield from self.follow_image(response, href, fields)
