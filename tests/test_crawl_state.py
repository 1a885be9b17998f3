"""Crawl state (resume), output assembly (order-independent, atomic) and the settings built from params."""
from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
import yaml

from carremoval.io import InputError, read_jsonl, sha256_bytes
from crawlers.output import crawl_metrics, manifest_rows, write_output
from crawlers.runner import crawl_settings, fingerprint
from crawlers.state import CrawlState

REPO = Path(__file__).resolve().parents[1]


def records_with_traps() -> list[dict]:
    """A small crawl log: two posts, a byte-duplicate under two URLs, a 404, a tiny image, an over-limit link."""
    page = lambda url, **links: {"type": "page", "url": url, "page_type": "post", "reason": None, "links": links}
    link = lambda url, page_url, category: {"type": "link", "url": url, "page_url": page_url,
                                            "fields": {"category": category}}
    image = lambda url, reason=None, sha=None: {"type": "image", "url": url, "reason": reason, "sha256": sha,
                                                "ext": "jpg" if sha else None, "width": 640, "height": 480}
    return [
        page("https://s/b.html", image=3),
        page("https://s/a.html", image=2),
        {"type": "page", "url": "https://s/admin", "page_type": "post", "reason": "robots_forbidden", "links": {}},
        link("https://s/img/2.jpg", "https://s/b.html", "roads"),
        link("https://s/img/2.jpg", "https://s/a.html", "nature"),   # also linked from a.html: a.html wins
        link("https://s/img/9.jpg", "https://s/b.html", "roads"),
        link("https://s/img/1.jpg", "https://s/a.html", "nature"),
        link("https://s/img/4.jpg", "https://s/b.html", "roads"),
        link("https://s/img/5.jpg", "https://s/b.html", "roads"),
        image("https://s/img/9.jpg", sha="aa"),
        image("https://s/img/2.jpg", sha="aa"),                         # same bytes as 9.jpg: 2.jpg is kept
        image("https://s/img/1.jpg", sha="bb"),
        image("https://s/img/4.jpg", reason="http_404"),
        image("https://s/img/4.jpg", reason="http_404"),                # logged twice by a resumed crawl
        image("https://s/img/5.jpg", reason="below_min_size"),
    ] + [link("https://s/img/7.jpg", "https://s/b.html", "roads")]      # linked, never requested (max_items)


def test_assembly_keeps_one_url_per_content_and_counts_every_skip() -> None:
    rows, duplicates = manifest_rows(records_with_traps(), "test")
    assert [row["url"] for row in rows] == ["https://s/img/1.jpg", "https://s/img/2.jpg"]
    assert duplicates == ["https://s/img/9.jpg"]
    assert rows[1]["page_url"] == "https://s/a.html" and rows[1]["category"] == "nature"
    assert rows[1]["path"] == "images/aa.jpg" and rows[1]["source"] == "test"
    metrics = crawl_metrics(records_with_traps(), "test")
    assert metrics["pages_fetched"] == {"post": 2}
    assert metrics["image_urls"] == 6 and metrics["images_fetched"] == 4
    assert metrics["images_decodable"] == 4 and metrics["images_kept"] == 2
    skipped = {reason: count for reason, count in metrics["skipped"].items() if count}
    assert skipped == {"robots_forbidden": 1, "http_404": 1, "below_min_size": 1, "duplicate": 1, "over_limit": 1}


def test_assembly_does_not_depend_on_the_order_records_arrived_in() -> None:
    records = records_with_traps()
    expected = (manifest_rows(records, "test"), crawl_metrics(records, "test"))
    for seed in range(5):
        shuffled = copy.deepcopy(records)
        random.Random(seed).shuffle(shuffled)
        assert (manifest_rows(shuffled, "test"), crawl_metrics(shuffled, "test")) == expected


def test_state_drops_a_torn_last_line_and_temp_files_and_resumes(tmp_path: Path) -> None:
    state = CrawlState(tmp_path / "state")
    assert state.prepare({"a": 1}) is False
    with state.open_log() as log:
        log.write('{"type": "page", "url": "u1"}\n{"type": "ima')          # killed mid-write
    (state.images_dir / ".abc.jpg.x1y2.tmp.jpg").write_bytes(b"half")   # killed mid atomic write
    assert state.prepare({"a": 1}) is True
    assert state.records() == [{"type": "page", "url": "u1"}]
    assert list(state.images_dir.iterdir()) == []
    with state.open_log() as log:
        log.write('{"type": "page", "url": "u2"}\n')
    assert [r["url"] for r in state.records()] == ["u1", "u2"]
    assert state.prepare({"a": 2}) is False                              # other parameters: start afresh
    assert state.records() == []


def test_write_output_is_atomic_and_checks_the_stored_bytes(tmp_path: Path) -> None:
    state = CrawlState(tmp_path / "state")
    state.prepare({})
    body = b"\xff\xd8\xff fake jpeg bytes"
    digest = sha256_bytes(body)
    state.store_image(digest, "jpg", body)
    records = [
        {"type": "link", "url": "https://s/1.jpg", "page_url": "https://s/p", "fields": {}},
        {"type": "image", "url": "https://s/1.jpg", "reason": None, "sha256": digest, "ext": "jpg",
         "width": 1, "height": 1},
    ]
    out = tmp_path / "data" / "raw" / "test"
    (out.parent / ".test.leftover.tmp").mkdir(parents=True)             # from a killed earlier run
    rows = write_output(records, "test", state, out)
    assert read_jsonl(out / "manifest.jsonl") == rows
    assert (out / rows[0]["path"]).read_bytes() == body
    assert sorted(p.name for p in out.parent.iterdir()) == ["test"]
    state.image_path(digest, "jpg").write_bytes(b"damaged")
    with pytest.raises(InputError, match="damaged in the crawl state"):
        write_output(records, "test", state, out)
    assert (out / rows[0]["path"]).read_bytes() == body                 # the good output stays in place
    assert sorted(p.name for p in out.parent.iterdir()) == ["test"]


def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def test_settings_from_params_snapshot_and_live(sites: Path, tmp_path: Path) -> None:
    params = repo_params()
    params["snapshot"] = str(sites)
    settings = crawl_settings("motorpage", params, tmp_path)
    assert settings["USER_AGENT"] == params["crawl"]["http"]["user_agent"] and "carremoval" in settings["USER_AGENT"]
    assert settings.getbool("ROBOTSTXT_OBEY") and settings.getbool("AUTOTHROTTLE_ENABLED")
    assert settings.getfloat("DOWNLOAD_DELAY_JITTER") == 0.0
    assert settings.getint("DOWNLOAD_MAXSIZE") == params["crawl"]["http"]["max_response_bytes"]
    assert settings.getint("IMAGE_MIN_SIDE") == 100
    assert settings["DOWNLOAD_HANDLERS"]["https"] == "crawlers.snapshot.SnapshotDownloadHandler"
    assert settings["CRAWL_STATE_DIR"] == str(tmp_path / ".crawl_state" / "motorpage")
    middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
    assert middlewares["crawlers.middlewares.CrawlDelayMiddleware"] > 100    # after RobotsTxtMiddleware
    params["snapshot"] = None
    live = crawl_settings("motorpage", params, tmp_path)
    assert not live.getdict("DOWNLOAD_HANDLERS") and live["SNAPSHOT_DIR"] is None


def test_missing_snapshot_and_bad_params_are_clear_errors(tmp_path: Path) -> None:
    params = repo_params()
    params["snapshot"] = "no/such/sites"
    with pytest.raises(InputError, match="no/such/sites: site snapshot directory not found"):
        crawl_settings("oir_mobi", params, tmp_path)
    with pytest.raises(InputError, match="unknown crawl source 'flickr'"):
        crawl_settings("flickr", params, tmp_path)
    params["snapshot"] = None
    params["crawl"]["motorpage"]["max_item"] = 5
    with pytest.raises(InputError, match=r"crawl.motorpage: unknown keys max_item \(known: brands, follow_magazine"):
        crawl_settings("motorpage", params, tmp_path)


def test_fingerprint_follows_the_parameters_that_shape_the_result(sites: Path, tmp_path: Path) -> None:
    params = repo_params()
    params["snapshot"] = str(sites)
    base = fingerprint("oir_mobi", params, tmp_path)
    params["crawl"]["motorpage"]["brands"] = ["Kia"]
    assert fingerprint("oir_mobi", params, tmp_path) == base
    params["crawl"]["oir_mobi"]["categories"] = ["priroda"]
    assert fingerprint("oir_mobi", params, tmp_path) != base
