"""The crawl sources: one spider per site (the `crawl` stage's foreach items are their names)."""
from __future__ import annotations

from crawlers.spiders.base import ImageSpider
from crawlers.spiders.motorpage import MotorpageSpider
from crawlers.spiders.oir_mobi import OirMobiSpider

SPIDERS: dict[str, type[ImageSpider]] = {spider.name: spider for spider in (OirMobiSpider, MotorpageSpider)}
