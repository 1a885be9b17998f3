"""The crawl stage on the site snapshot with the real params: the README's counts, every trap's outcome,
robots.txt and Crawl-delay obeyed, deterministic outputs. One crawl per session (tests/crawl_support.py)."""
from __future__ import annotations

import json
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from protego import Protego

from carremoval.io import sha256_bytes, sha256_file
from crawl_support import CrawlRun, finish, make_root, session_crawl, start_crawl
from crawlers.snapshot import snapshot_file

pytestmark = pytest.mark.slow

# README section 2: photos per model gallery (brand, model, generation as in the gallery URL).
PHOTOS_PER_GALLERY = {
    ("Audi", "A4", "B9"): 3, ("Audi", "Q5", "FY"): 3, ("BMW", "1er", "F20"): 3, ("BMW", "X5", "G05"): 2,
    ("Kia", "Rio", "IV"): 8, ("MercedesBenz", "E-klasse", "W213"): 3, ("Opel", "Astra", "K"): 2,
    ("Volkswagen", "Golf", "VIII"): 2, ("Volkswagen", "Transporter", "T6"): 2, ("Volvo", "XC90", "II"): 2,
}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CrawlRun]:
    runs = session_crawl(tmp_path_factory.getbasetemp())
    for run in runs.values():
        assert run.returncode == 0, run.stderr[-3000:]
    return runs


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in counts.items() if value}


def test_oir_mobi_metrics_match_the_readme(crawled: dict[str, CrawlRun], expected_crawl: dict) -> None:
    counts = expected_crawl["counts"]["oir.mobi"]
    metrics = crawled["oir_mobi"].metrics
    assert metrics["pages_fetched"] == {"listing": counts["listing_pages"], "post": counts["unique_post_pages"]}
    assert metrics["links_found"]["post"] == counts["listing_entries"]
    assert metrics["links_found"]["image"] == metrics["image_urls"] == counts["image_urls_in_posts"]
    assert metrics["images_decodable"] == counts["decodable_images"]
    assert metrics["images_kept"] == counts["unique_valid_backgrounds"] == 36
    assert nonzero(metrics["skipped"]) == {
        "http_404": counts["http_404"], "not_an_image": counts["not_an_image"],
        "below_min_size": counts["below_min_size"], "duplicate": 1,
    }


def test_motorpage_metrics_match_the_readme(crawled: dict[str, CrawlRun], expected_crawl: dict) -> None:
    counts = expected_crawl["counts"]["www.motorpage.ru"]
    metrics = crawled["motorpage"].metrics
    assert metrics["pages_fetched"] == {
        "index": 1, "brand": counts["brand_pages"], "model": counts["model_pages"], "gallery": counts["gallery_pages"],
    }
    assert metrics["image_urls"] == metrics["links_found"]["photo"] == counts["photo_links"]
    assert metrics["images_kept"] == counts["unique_valid_car_photos"] == 30
    assert nonzero(metrics["skipped"]) == {
        "http_404": counts["http_404"], "robots_forbidden": counts["robots_disallowed_urls_linked_from_brand_pages"],
    }


@pytest.mark.parametrize(("source", "site", "key"), [
    ("oir_mobi", "oir.mobi", "valid_backgrounds"), ("motorpage", "www.motorpage.ru", "valid_car_photos"),
])
def test_kept_images_are_exactly_the_expected_ones(crawled, expected_crawl, source, site, key) -> None:
    run = crawled[source]
    expected = {image["sha256"]: image for image in expected_crawl[site][key]}
    rows = run.rows
    assert {row["sha256"] for row in rows} == set(expected) and len(rows) == len(expected)
    for row in rows:
        assert (row["width"], row["height"]) == (expected[row["sha256"]]["width"], expected[row["sha256"]]["height"])
        assert row["path"] == f"images/{row['sha256']}.jpg" and row["source"] == source
        assert sha256_file(run.out_dir / row["path"]) == row["sha256"]
    assert sorted(p.name for p in (run.out_dir / "images").iterdir()) == sorted(Path(r["path"]).name for r in rows)


@pytest.mark.parametrize("source", ["oir_mobi", "motorpage"])
def test_manifest_is_sorted_with_sorted_keys(crawled: dict[str, CrawlRun], source: str) -> None:
    lines = (crawled[source].out_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["url"] for row in rows] == sorted(row["url"] for row in rows)
    assert all(list(row) == sorted(row) for row in rows)


def test_every_car_photo_has_its_gallery_labels(crawled: dict[str, CrawlRun], sites: Path) -> None:
    rows = crawled["motorpage"].rows
    per_gallery = Counter((row["brand"], row["model"], row["generation"]) for row in rows)
    assert per_gallery == PHOTOS_PER_GALLERY
    for row in rows:
        brand, model, generation = row["brand"], row["model"], row["generation"]
        gallery_pages = sites.glob(f"www.motorpage.ru/{brand}/{model}/{generation}/photos/**/index.html")
        assert any(row["url"] in page.read_text(encoding="utf-8") for page in gallery_pages), row


def test_backgrounds_carry_their_post_and_categories(crawled, expected_crawl: dict, sites: Path) -> None:
    oir = expected_crawl["oir.mobi"]
    for row in crawled["oir_mobi"].rows:
        assert row["page_url"] == row["post_url"] and row["post_url"] in oir["post_pages"]
        post_html = snapshot_file(row["post_url"], sites).read_text(encoding="utf-8")
        assert f'data-src="{row["url"].removeprefix("https://oir.mobi")}"' in post_html
        assert row["category"] in {"priroda", "dorogi"} and row["category"] == row["categories"][0]
        if row["post_url"] == oir["traps"]["cross_listed_post"]:
            assert row["categories"] == ["dorogi", "priroda"]


def test_only_the_pages_and_images_of_a_correct_crawl_were_requested(crawled, expected_crawl) -> None:
    """Exact request sets: no ad, placeholder, thumbnail, logo, menu or robots-disallowed URL; nothing twice."""
    oir, motorpage = expected_crawl["oir.mobi"], expected_crawl["www.motorpage.ru"]
    expected = {
        "oir_mobi": {"https://oir.mobi/robots.txt", *oir["listing_pages"], *oir["post_pages"],
                     *oir["image_urls_in_posts"]},
        "motorpage": {"https://www.motorpage.ru/robots.txt", "http://cdn.motorpage.ru/robots.txt",
                      *motorpage["start_urls"], *motorpage["brand_pages"], *motorpage["model_pages"],
                      *motorpage["gallery_pages"], *motorpage["photo_links"]},
    }
    for source, urls in expected.items():
        requested = crawled[source].requested
        assert set(requested) == urls
        assert len(requested) == len(set(requested)), Counter(requested).most_common(3)


def test_traps_end_as_documented(crawled: dict[str, CrawlRun], expected_crawl: dict, sites: Path) -> None:
    traps = expected_crawl["oir.mobi"]["traps"]
    oir = crawled["oir_mobi"]
    kept = {row["sha256"]: row["url"] for row in oir.rows}
    statuses = {url: status for _, status, url in oir.access}
    assert statuses[traps["missing_404"]] == 404 and f"{traps['missing_404']}: http_404" in oir.stderr
    assert statuses[traps["not_an_image"]] == 200 and traps["not_an_image"] not in kept.values()
    assert traps["too_small"]["sha256"] not in kept
    duplicate = traps["duplicate"]
    assert kept[duplicate["sha256"]] == min(duplicate["url"], duplicate["same_bytes_as"])
    banner = sha256_bytes(snapshot_file(traps["ad_image"], sites).read_bytes())
    assert banner not in kept
    car_traps = expected_crawl["www.motorpage.ru"]["traps"]
    motorpage = crawled["motorpage"]
    assert car_traps["robots_disallowed_page_photo"]["sha256"] not in {row["sha256"] for row in motorpage.rows}
    assert {url: s for _, s, url in motorpage.access}[car_traps["broken_photo_link_404"]] == 404
    assert set(car_traps["paginated_gallery"]) <= set(motorpage.requested)


def test_robots_txt_is_obeyed_and_proven_by_the_stats(crawled: dict[str, CrawlRun], sites: Path) -> None:
    oir, motorpage = crawled["oir_mobi"], crawled["motorpage"]
    assert motorpage.stats["robotstxt/forbidden"] == 2 and "robotstxt/forbidden" not in oir.stats
    assert oir.stats["robotstxt/request_count"] == 1 and motorpage.stats["robotstxt/request_count"] == 2
    user_agent = "carremoval-dataset-crawler"
    for run in (oir, motorpage):
        for url in run.requested:
            robots = snapshot_file(url.split("/", 3)[0] + "//" + url.split("/")[2] + "/robots.txt", sites)
            if robots is not None:
                assert Protego.parse(robots.read_text()).can_fetch(url, user_agent), url


def test_crawl_delay_from_robots_txt_spaces_requests_per_host(crawled: dict[str, CrawlRun]) -> None:
    assert crawled["oir_mobi"].stats["crawl_delay/oir.mobi"] == 1.0
    assert crawled["motorpage"].stats["crawl_delay/www.motorpage.ru"] == 1.0
    for run in crawled.values():
        per_host: dict[str, list[float]] = {}
        for time, _, url in run.access:
            per_host.setdefault(url.split("/")[2], []).append(time)
        for host, times in per_host.items():
            gaps = [later - earlier for earlier, later in pairwise(times)]
            assert min(gaps) >= 0.95, (host, min(gaps))


def test_progress_summary_and_no_leftovers(crawled: dict[str, CrawlRun]) -> None:
    for source, run in crawled.items():
        assert f"crawl {source}:" in run.stderr and "responses" in run.stderr       # the tqdm bar
        assert run.stdout.startswith(f"crawl {source}: ") and "images kept" in run.stdout
        assert not (run.root / ".crawl_state" / source).exists()
        leftovers = [p for p in (run.root / "data").rglob("*") if ".tmp" in p.name or p.name.endswith(".old")]
        assert leftovers == []
        assert set(run.metrics) == {"source", "pages_fetched", "links_found", "image_urls", "images_fetched",
                                    "images_decodable", "images_kept", "skipped"}


def test_a_crawl_that_fetches_no_page_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    empty_site = tmp_path / "empty-snapshot"
    empty_site.mkdir()
    root = make_root(tmp_path / "repo", {"snapshot": str(empty_site), "crawl.oir_mobi.categories": ["priroda"]})
    run = finish(start_crawl(root, "oir_mobi"), root, "oir_mobi")
    assert run.returncode == 1
    assert "no page of oir_mobi could be fetched ({'http_404': 1})" in run.stderr
    assert not (root / "data").exists() and not (root / "metrics").exists()
