"""What the spiders yield. Every record is written to the crawl log; the output is assembled from that log.

- PageRecord: a page the spider asked for, with what it found there (or why it could not be used).
- ImageLink: a page links an image; carries the source fields (category, brand, model ...).
- ImageDownload: an image body as downloaded; the image pipeline turns it into an ImageRecord.
- ImageRecord: the verdict on one image URL (kept, with sha256 and size, or the skip reason).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class LoggedRecord:
    """A record that goes to the crawl log as one JSON object."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PageRecord(LoggedRecord):
    url: str
    page_type: str                                   # listing, post, index, brand, model, gallery, article
    reason: str | None = None                        # None = fetched and parsed
    links: dict[str, int] = field(default_factory=dict)  # what the page links, e.g. {"post": 4, "next": 1}
    type: str = "page"


@dataclass
class ImageLink(LoggedRecord):
    url: str
    page_url: str
    fields: dict[str, Any] = field(default_factory=dict)
    type: str = "link"


@dataclass
class ImageDownload:
    url: str
    body: bytes


@dataclass
class ImageRecord(LoggedRecord):
    url: str
    reason: str | None = None                        # None = kept
    sha256: str | None = None
    ext: str | None = None
    width: int = 0
    height: int = 0
    type: str = "image"
