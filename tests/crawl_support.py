"""Shared by the crawl tests: a throw-away repository root for the stage scripts, and ONE real-settings crawl
of the snapshot per test session (both sources in parallel subprocesses, ~1 minute: robots.txt says
Crawl-delay: 1), which test_crawl_stage, test_crawl_resume and test_dvc_remote all assert on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from carremoval.io import read_json, read_jsonl

REPO = Path(__file__).resolve().parents[1]
SITES = REPO.parent / "shared" / "sites"
SOURCES = ("oir_mobi", "motorpage")


def make_root(root: Path, overrides: dict[str, Any] | None = None) -> Path:
    """A repository root: the repo's params.yaml with the snapshot as an absolute path (and `overrides`,
    dotted keys), and a dvc.yaml so that carremoval.params.repo_root() stops here."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["snapshot"] = str(SITES)
    for dotted, value in (overrides or {}).items():
        *parents, key = dotted.split(".")
        node = params
        for parent in parents:
            node = node[parent]
        node[key] = value
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (root / "dvc.yaml").write_text("stages: {}\n", encoding="utf-8")
    return root


def stage_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "DVC_ROOT"}


def start_crawl(root: Path, source: str, tag: str = "") -> subprocess.Popen:
    """Start `stages/crawl.py <source>` in `root`, with Scrapy stats and the snapshot's access log kept."""
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    command = [
        sys.executable, str(REPO / "stages" / "crawl.py"), source,
        "--stats-out", str(reports / f"{source}{tag}.stats.json"),
        "--access-log", str(reports / f"{source}{tag}.access.log"),
    ]
    return subprocess.Popen(command, cwd=root, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@dataclass
class CrawlRun:
    root: Path
    source: str
    returncode: int
    stdout: str
    stderr: str
    stats: dict[str, Any] = field(default_factory=dict)
    access: list[tuple[float, int, str]] = field(default_factory=list)   # (time, status, url) per request

    @property
    def out_dir(self) -> Path:
        return self.root / "data" / "raw" / self.source

    @property
    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.out_dir / "manifest.jsonl")

    @property
    def metrics(self) -> dict[str, Any]:
        return read_json(self.root / "metrics" / "crawl" / f"{self.source}.json")

    @property
    def requested(self) -> list[str]:
        return [url for _, _, url in self.access]


def read_access_log(path: Path) -> list[tuple[float, int, str]]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        time, status, url = line.split("\t")
        entries.append((float(time), int(status), url))
    return entries


def finish(process: subprocess.Popen, root: Path, source: str, tag: str = "") -> CrawlRun:
    stdout, stderr = process.communicate(timeout=600)
    stats_path = root / "reports" / f"{source}{tag}.stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    access = read_access_log(root / "reports" / f"{source}{tag}.access.log")
    return CrawlRun(root, source, process.returncode, stdout, stderr, stats, access)


@cache
def session_crawl(base: Path) -> dict[str, CrawlRun]:
    """Crawl both sources of the snapshot once, with the real params, in parallel."""
    root = make_root(base / "crawl-session")
    processes = {source: start_crawl(root, source) for source in SOURCES}
    return {source: finish(process, root, source) for source, process in processes.items()}
