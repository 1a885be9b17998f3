"""Assemble a finished crawl's log into data/raw/<source>/ (images + manifest.jsonl) and its metrics.

Everything here is a function of the set of logged records, not of the order they arrived in, so an
interrupted-and-resumed crawl and a clean one give the same bytes:
- the same bytes under several URLs are kept once, under the smallest URL (the others count as duplicate);
- a URL linked from several pages takes its page_url and source fields from the smallest page URL.
"""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from carremoval.io import InputError, atomic_dir, sha256_file, write_jsonl
from crawlers.state import CrawlState, remove_temp_files

# Reasons a request ends before a response is in hand (the page or image was never fetched).
FETCH_FAILURES = {"robots_forbidden", "too_large", "download_error", "offsite", "ignored"}
# Always present in the metrics (zero when nothing was skipped for them), in this order.
SKIP_REASONS = (
    "robots_forbidden", "http_404", "too_large", "download_error", "offsite", "not_html", "no_content",
    "empty", "not_an_image", "undecodable", "too_many_pixels", "below_min_size", "duplicate", "over_limit",
)
DECODED = {None, "below_min_size"}   # image verdicts reached only after a full decode


def is_fetch_failure(reason: str | None) -> bool:
    return reason is not None and (reason in FETCH_FAILURES or reason.startswith("http_"))


def first_by_url(records: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The first record of a kind per URL (a resumed crawl may log a page or a failure twice)."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["type"] == kind:
            found.setdefault(record["url"], record)
    return found


def chosen_links(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per image URL, the link from the smallest page URL."""
    links: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["type"] == "link":
            current = links.get(record["url"])
            if current is None or record["page_url"] < current["page_url"]:
                links[record["url"]] = record
    return links


def manifest_rows(records: list[dict[str, Any]], source: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(manifest rows sorted by URL, URLs dropped as byte-duplicates of a kept one)."""
    links = chosen_links(records)
    kept = [image for image in first_by_url(records, "image").values() if image["reason"] is None]
    by_hash: dict[str, dict[str, Any]] = {}
    for image in sorted(kept, key=lambda image: image["url"]):
        by_hash.setdefault(image["sha256"], image)
    duplicates = sorted(image["url"] for image in kept if by_hash[image["sha256"]] is not image)
    rows = []
    for image in sorted(by_hash.values(), key=lambda image: image["url"]):
        link = links.get(image["url"], {"page_url": None, "fields": {}})
        rows.append({
            **link["fields"],
            "url": image["url"],
            "page_url": link["page_url"],
            "sha256": image["sha256"],
            "width": image["width"],
            "height": image["height"],
            "path": f"images/{image['sha256']}.{image['ext']}",
            "source": source,
        })
    return rows, duplicates


def crawl_metrics(records: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """Counts of pages fetched, links found, images kept and everything skipped, by reason."""
    pages = first_by_url(records, "page")
    images = first_by_url(records, "image")
    linked = {record["url"] for record in records if record["type"] == "link"}
    rows, duplicates = manifest_rows(records, source)
    skipped: Counter[str] = Counter({reason: 0 for reason in SKIP_REASONS})
    skipped.update(page["reason"] for page in pages.values() if page["reason"])
    skipped.update(image["reason"] for image in images.values() if image["reason"])
    skipped["duplicate"] = len(duplicates)
    skipped["over_limit"] = len(linked - set(images))
    links: Counter[str] = Counter()
    for page in pages.values():
        links.update(page["links"])
    return {
        "source": source,
        "pages_fetched": dict(sorted(Counter(
            page["page_type"] for page in pages.values() if not is_fetch_failure(page["reason"])
        ).items())),
        "links_found": dict(sorted(links.items())),
        "image_urls": len(linked),
        "images_fetched": sum(not is_fetch_failure(image["reason"]) for image in images.values()),
        "images_decodable": sum(image["reason"] in DECODED for image in images.values()),
        "images_kept": len(rows),
        "skipped": dict(skipped),
    }


def write_output(records: list[dict[str, Any]], source: str, state: CrawlState, out_dir: Path) -> list[dict[str, Any]]:
    """Write images/<sha256>.<ext> and manifest.jsonl into `out_dir` in one atomic step; the rows."""
    rows, _ = manifest_rows(records, source)
    if out_dir.parent.exists():
        remove_temp_files(out_dir.parent, out_dir.name)
    with atomic_dir(out_dir) as tmp:
        (tmp / "images").mkdir()
        for row in rows:
            stored = state.image_path(row["sha256"], row["path"].rsplit(".", 1)[1])
            if not stored.exists() or sha256_file(stored) != row["sha256"]:
                raise InputError(
                    f"{stored}: missing or damaged in the crawl state; delete {state.root} and crawl again"
                )
            shutil.copyfile(stored, tmp / row["path"])
        write_jsonl(tmp / "manifest.jsonl", rows)
    return rows
