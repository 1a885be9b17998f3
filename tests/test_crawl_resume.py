"""Kill a crawl mid-way (SIGKILL) and run it again: it completes, with the same bytes as a clean crawl, no
duplicates, no half-written files, and without asking the site again for what it already had.

Overridden params, and why: only brand Kia (one brand page, one model, a two-page gallery, 8 photos) keeps
the test at ~15 s; `download_delay: 0.2` speeds up cdn.motorpage.ru (no robots.txt there) while
www.motorpage.ru must stay at its robots.txt Crawl-delay of 1 s, which this test checks as well.
"""
from __future__ import annotations

import json
import signal
import time
from itertools import pairwise
from pathlib import Path

import pytest

from crawl_support import CrawlRun, finish, make_root, session_crawl, start_crawl
from crawlers.state import CrawlState

pytestmark = pytest.mark.slow


def logged_images(state: CrawlState) -> set[str]:
    return {record["url"] for record in state.records() if record["type"] == "image"}


def host_gaps(run: CrawlRun, host: str) -> list[float]:
    times = [t for t, _, url in run.access if url.split("/")[2] == host]
    return [later - earlier for earlier, later in pairwise(times)]


def kill_after_images(process, state: CrawlState, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(logged_images(state)) < count:
        assert process.poll() is None, "the crawl finished before it could be killed"
        assert time.monotonic() < deadline, "the crawl did not get going"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_killed_crawl_resumes_to_the_clean_result(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    clean = session_crawl(tmp_path_factory.getbasetemp())["motorpage"]
    assert clean.returncode == 0, clean.stderr[-3000:]
    root = make_root(tmp_path / "repo", {"crawl.motorpage.brands": ["Kia"], "crawl.http.download_delay": 0.2})
    state = CrawlState(root / ".crawl_state" / "motorpage")

    process = start_crawl(root, "motorpage", tag=".first")
    kill_after_images(process, state, count=3)
    first = finish(process, root, "motorpage", tag=".first")
    assert first.returncode == -signal.SIGKILL
    assert not (root / "data" / "raw" / "motorpage").exists()
    images_before = logged_images(state)
    pages_before = {url for url in first.requested if state.load_page(url) is not None}
    assert 3 <= len(images_before) < 8 and pages_before

    second = finish(start_crawl(root, "motorpage", tag=".second"), root, "motorpage", tag=".second")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stderr

    expected_lines = [line for line in (clean.out_dir / "manifest.jsonl").read_text().splitlines()
                      if json.loads(line)["brand"] == "Kia"]
    assert (second.out_dir / "manifest.jsonl").read_text().splitlines() == expected_lines
    rows = second.rows
    assert len(rows) == 8 and len({row["sha256"] for row in rows}) == 8
    for row in rows:
        assert (second.out_dir / row["path"]).read_bytes() == (clean.out_dir / row["path"]).read_bytes()
    assert sorted(p.name for p in (second.out_dir / "images").iterdir()) == sorted(Path(r["path"]).name for r in rows)

    assert not images_before & set(second.requested), "an image fetched before the kill was fetched again"
    assert not pages_before & set(second.requested), "a page fetched before the kill was fetched again"
    assert second.stats["resume/images_already_done"] == len(images_before)
    metrics = second.metrics
    assert metrics["pages_fetched"] == {"brand": 1, "gallery": 2, "index": 1, "model": 1}
    assert metrics["images_kept"] == 8 and {k: v for k, v in metrics["skipped"].items() if v} == {"robots_forbidden": 1}

    assert not state.root.exists()
    leftovers = [p for p in root.rglob("*") if ".tmp" in p.name or p.name.endswith((".old", ".part"))]
    assert leftovers == []

    for run in (first, second):
        assert min(host_gaps(run, "www.motorpage.ru"), default=1.0) >= 0.95   # robots.txt Crawl-delay: 1
    cdn_gaps = host_gaps(first, "cdn.motorpage.ru") + host_gaps(second, "cdn.motorpage.ru")
    assert min(cdn_gaps) >= 0.15 and min(cdn_gaps) < 0.9                   # DOWNLOAD_DELAY 0.2 there
