"""The spiders' parsing, on the snapshot's HTML served under the real live URLs (no network, no crawl)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

from crawlers.items import ImageLink, PageRecord
from crawlers.snapshot import snapshot_file
from crawlers.spiders.motorpage import MotorpageSpider
from crawlers.spiders.oir_mobi import OirMobiSpider


def live_page(sites: Path, url: str, **meta: Any) -> HtmlResponse:
    """The snapshot's file for `url`, as the response to a request for that live URL."""
    path = snapshot_file(url, sites)
    assert path is not None, url
    return HtmlResponse(url=url, body=path.read_bytes(), request=Request(url, meta=meta))


def split(output: list) -> tuple[list[PageRecord], list[ImageLink], list[Request]]:
    pages = [item for item in output if isinstance(item, PageRecord)]
    links = [item for item in output if isinstance(item, ImageLink)]
    requests = [item for item in output if isinstance(item, Request)]
    assert len(pages) + len(links) + len(requests) == len(output)
    return pages, links, requests


def parse(method: Callable, sites: Path, url: str, **meta: Any) -> tuple[list, list, list]:
    return split(list(method(live_page(sites, url, **meta))))


def test_oir_listing_yields_posts_and_the_next_page(sites: Path, expected_crawl: dict) -> None:
    spider = OirMobiSpider()
    pages, links, requests = parse(spider.parse_listing, sites, "https://oir.mobi/priroda/",
                                   category="priroda")
    assert pages[0].links == {"post": 4, "next": 1} and pages[0].reason is None
    assert not links
    posts = [r.url for r in requests if r.meta["page_type"] == "post"]
    listings = [r.url for r in requests if r.meta["page_type"] == "listing"]
    assert set(posts) <= set(expected_crawl["oir.mobi"]["post_pages"]) and len(posts) == 4
    assert listings == ["https://oir.mobi/priroda/page/2/"]
    assert requests[-1].meta["page_number"] == 2 and requests[-1].meta["category"] == "priroda"
    _, _, last = parse(spider.parse_listing, sites, "https://oir.mobi/priroda/page/2/",
                       category="priroda", page_number=2)
    assert all(r.meta["page_type"] == "post" for r in last) and len(last) == 2


def test_oir_listing_page_limit_stops_pagination(sites: Path) -> None:
    spider = OirMobiSpider(max_listing_pages=1)
    _, _, requests = parse(spider.parse_listing, sites, "https://oir.mobi/priroda/", category="priroda")
    assert [r.meta["page_type"] for r in requests] == ["post"] * 4


def test_oir_post_collects_only_full_images_from_data_src(sites: Path, expected_crawl: dict) -> None:
    spider = OirMobiSpider()
    oir = expected_crawl["oir.mobi"]
    found: list[str] = []
    for post in oir["post_pages"]:
        pages, links, requests = parse(spider.parse_post, sites, post, category="priroda")
        assert pages[0].links == {"image": len(links)} and pages[0].reason is None
        assert [r.url for r in requests] == [link.url for link in links]
        assert all(link.page_url == post and link.fields["post_url"] == post for link in links)
        found += [link.url for link in links]
    assert sorted(found) == sorted(oir["image_urls_in_posts"]) and len(found) == 40
    traps = oir["traps"]
    never = {traps["ad_image"], traps["lazy_placeholder"], *traps["thumbnails"]}
    assert not never & set(found)


def test_oir_post_takes_its_categories_from_the_post_page(sites: Path) -> None:
    post = "https://oir.mobi/1128-doroga-v-gory.html"
    _, links, _ = parse(OirMobiSpider().parse_post, sites, post, category="priroda")
    assert {link.fields["category"] for link in links} == {"dorogi"}
    assert links[0].fields["categories"] == ["dorogi", "priroda"]
    assert links[0].fields["post_title"] == "Дорога в горы (4 фото)"


def test_motorpage_index_follows_the_brands_in_params(sites: Path, expected_crawl: dict) -> None:
    index = "https://www.motorpage.ru/select-auto/by-mark.html"
    pages, _, requests = parse(MotorpageSpider().parse_index, sites, index)
    assert pages[0].links == {"brand": 7}
    assert sorted(r.url for r in requests) == sorted(expected_crawl["www.motorpage.ru"]["brand_pages"])
    _, _, only_kia = parse(MotorpageSpider(brands="Kia").parse_index, sites, index)
    assert [r.url for r in only_kia] == ["https://www.motorpage.ru/Kia"]


def test_motorpage_brand_page_links_models_and_magazine_pages(sites: Path, expected_crawl: dict) -> None:
    pages, _, requests = parse(MotorpageSpider().parse_brand, sites, "https://www.motorpage.ru/Audi")
    assert pages[0].links == {"model": 2, "magazine": 2}
    models = [r.url for r in requests if r.meta["page_type"] == "model"]
    articles = [r.url for r in requests if r.meta["page_type"] == "article"]
    assert models == ["https://www.motorpage.ru/Audi/A4/last/", "https://www.motorpage.ru/Audi/Q5/last/"]
    traps = expected_crawl["www.motorpage.ru"]["traps"]
    assert articles == sorted([traps["robots_disallowed_nav_link"], traps["robots_disallowed_page"]])
    _, _, no_magazine = parse(MotorpageSpider(follow_magazine=False, max_models_per_brand=1).parse_brand,
                              sites, "https://www.motorpage.ru/Audi")
    assert [r.url for r in no_magazine] == models[:1]


def test_motorpage_model_page_gives_main_photo_and_gallery_with_labels(sites: Path) -> None:
    pages, links, requests = parse(MotorpageSpider().parse_model, sites, "https://www.motorpage.ru/Kia/Rio/last/")
    assert pages[0].links == {"main_photo": 1, "gallery": 1}
    assert [link.url for link in links] == ["http://cdn.motorpage.ru/Photos/800/829BEB5057.jpg"]
    assert links[0].fields == {"brand": "Kia", "model": "Rio", "generation": "IV"}
    assert [r.url for r in requests] == [links[0].url, "https://www.motorpage.ru/Kia/Rio/IV/photos/"]


def test_motorpage_galleries_give_full_size_photos_and_follow_pagination(sites: Path, expected_crawl: dict) -> None:
    spider = MotorpageSpider()
    photos: list[str] = []
    for gallery in expected_crawl["www.motorpage.ru"]["gallery_pages"]:
        pages, links, requests = parse(spider.parse_gallery, sites, gallery)
        assert pages[0].links["photo"] == len(links)
        assert all("/Photos/800/" in link.url for link in links)
        photos += [link.url for link in links]
        next_pages = [r.url for r in requests if r.meta.get("kind") == "page"]
        assert next_pages == (["https://www.motorpage.ru/Kia/Rio/IV/photos/2/"]
                              if gallery == "https://www.motorpage.ru/Kia/Rio/IV/photos/" else [])
    assert sorted(photos) == sorted(expected_crawl["www.motorpage.ru"]["photo_links"]) and len(photos) == 31
    _, links, _ = parse(spider.parse_gallery, sites, "https://www.motorpage.ru/Kia/Rio/IV/photos/2/", page_number=2)
    assert {tuple(link.fields.values()) for link in links} == {("Kia", "Rio", "IV")}
    _, _, limited = parse(MotorpageSpider(max_gallery_pages=1).parse_gallery, sites,
                          "https://www.motorpage.ru/Kia/Rio/IV/photos/")
    assert all(r.meta["kind"] == "image" for r in limited)


def test_motorpage_article_photos_would_be_collected_if_robots_allowed(sites: Path, expected_crawl: dict) -> None:
    traps = expected_crawl["www.motorpage.ru"]["traps"]
    _, links, _ = parse(MotorpageSpider().parse_article, sites, traps["robots_disallowed_page"], brand="Audi")
    assert [link.url for link in links] == [traps["robots_disallowed_page_photo"]["url"]]
    assert links[0].fields == {"brand": "Audi", "model": None, "generation": None}


@pytest.mark.parametrize("max_items", [0, 3])
def test_max_items_caps_image_requests_but_keeps_the_links(sites: Path, max_items: int) -> None:
    spider = MotorpageSpider(max_items=max_items)
    _, links, requests = parse(spider.parse_gallery, sites, "https://www.motorpage.ru/Kia/Rio/IV/photos/")
    images = [r for r in requests if r.meta["kind"] == "image"]
    assert len(links) == 6 and len(images) == (max_items or 6)
