"""Run one source's crawl from params.yaml and assemble its output: what stages/crawl.py calls."""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from carremoval.io import InputError
from carremoval.params import resolve_path
from crawlers.output import crawl_metrics, write_output
from crawlers.snapshot import require_snapshot_dir
from crawlers.spiders import SPIDERS
from crawlers.state import CrawlState

SNAPSHOT_HANDLER = "crawlers.snapshot.SnapshotDownloadHandler"


class CrawlInterrupted(Exception):
    """The crawl stopped before it finished (e.g. Ctrl-C); its state is kept for the next run to resume."""


@dataclass
class CrawlResult:
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    stats: dict[str, Any]
    resumed: bool


def source_params(params: dict[str, Any], source: str) -> dict[str, Any]:
    if source not in SPIDERS:
        raise InputError(f"params.yaml: unknown crawl source {source!r}; known: {', '.join(sorted(SPIDERS))}")
    crawl = params.get("crawl") or {}
    for section in ("http", "images", source):
        if not isinstance(crawl.get(section), dict):
            raise InputError(f"params.yaml: section crawl.{section} is missing")
    unknown = set(crawl[source]) - SPIDERS[source].option_names()
    if unknown:
        known = ", ".join(sorted(SPIDERS[source].option_names()))
        raise InputError(f"params.yaml crawl.{source}: unknown keys {', '.join(sorted(unknown))} (known: {known})")
    return crawl


def snapshot_dir(params: dict[str, Any], root: Path) -> Path | None:
    """The snapshot folder from params (`snapshot`, relative to the repo root), None for live crawling."""
    path = resolve_path(params.get("snapshot"), root)
    return None if path is None else require_snapshot_dir(path.resolve())


def crawl_settings(source: str, params: dict[str, Any], root: Path, access_log: Path | None = None) -> Settings:
    """The project settings (crawlers.settings) with params.yaml's `crawl` values and this run's paths."""
    crawl = source_params(params, source)
    http, images = crawl["http"], crawl["images"]
    settings = Settings()
    settings.setmodule("crawlers.settings", priority="project")
    settings.update({
        "USER_AGENT": http["user_agent"],
        "DOWNLOAD_DELAY": float(http["download_delay"]),
        "AUTOTHROTTLE_ENABLED": bool(http["autothrottle"]),
        "AUTOTHROTTLE_START_DELAY": float(http["autothrottle_start_delay"]),
        "AUTOTHROTTLE_MAX_DELAY": float(http["autothrottle_max_delay"]),
        "CONCURRENT_REQUESTS_PER_DOMAIN": int(http["concurrent_requests_per_domain"]),
        "DOWNLOAD_MAXSIZE": int(http["max_response_bytes"]),
        "DOWNLOAD_TIMEOUT": float(http["timeout"]),
        "RETRY_TIMES": int(http["retries"]),
        "IMAGE_MIN_SIDE": int(images["min_side"]),
        "IMAGE_MAX_PIXELS": int(images["max_pixels"]),
        "CRAWL_STATE_DIR": str(state_dir(params, root, source)),
        "LOG_LEVEL": crawl.get("log_level", "WARNING"),
    }, priority="cmdline")
    snapshot = snapshot_dir(params, root)
    if snapshot is not None:
        settings.set("SNAPSHOT_DIR", str(snapshot), priority="cmdline")
        settings.set("DOWNLOAD_HANDLERS", {"http": SNAPSHOT_HANDLER, "https": SNAPSHOT_HANDLER}, priority="cmdline")
        settings.set("SNAPSHOT_ACCESS_LOG", str(access_log) if access_log else None, priority="cmdline")
    return settings


def state_dir(params: dict[str, Any], root: Path, source: str) -> Path:
    return resolve_path(params["crawl"].get("state_dir", ".crawl_state"), root) / source


def fingerprint(source: str, params: dict[str, Any], root: Path) -> dict[str, Any]:
    """What a crawl's result depends on; a state made with anything else is not resumed."""
    crawl = source_params(params, source)
    snapshot = snapshot_dir(params, root)
    return copy.deepcopy({
        "source": source,
        "snapshot": None if snapshot is None else str(snapshot),
        "http": crawl["http"],
        "images": crawl["images"],
        "spider": crawl[source],
    })


def run_spider(source: str, params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Run the spider to the end in this process; its Scrapy stats."""
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(SPIDERS[source])
    process.crawl(crawler, **params["crawl"][source])
    process.start()
    stats = dict(crawler.stats.get_stats())
    if stats.get("finish_reason") != "finished":
        raise CrawlInterrupted(f"crawl {source} stopped ({stats.get('finish_reason')}); run again to resume")
    return stats


def crawl_source(
    source: str, params: dict[str, Any], root: Path, out_dir: Path, access_log: Path | None = None
) -> CrawlResult:
    """Crawl `source` (resuming an interrupted crawl of the same parameters), write `out_dir` atomically,
    then drop the crawl state. Returns the manifest rows, the metrics and Scrapy's stats."""
    settings = crawl_settings(source, params, root, access_log)
    state = CrawlState(state_dir(params, root, source))
    resumed = state.prepare(fingerprint(source, params, root))
    if resumed:
        logging.getLogger(__name__).warning("crawl %s: resuming from %s", source, state.root)
    stats = run_spider(source, params, settings)
    records = state.records()
    metrics = crawl_metrics(records, source)
    if not metrics["pages_fetched"]:
        failures = {reason: count for reason, count in metrics["skipped"].items() if count}
        raise InputError(f"no page of {source} could be fetched ({failures}); is the site reachable?")
    rows = write_output(records, source, state, out_dir)
    state.clear()
    return CrawlResult(rows=rows, metrics=metrics, stats=stats, resumed=resumed)
