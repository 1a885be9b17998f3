"""Shared test fixtures: the repository root and the team's ../shared folder (real data, site snapshot)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared() -> Path:
    assert SHARED.is_dir(), f"{SHARED} is missing: tests read real data from ../shared beside the repository"
    return SHARED


@pytest.fixture(scope="session")
def shared_data(shared: Path) -> Path:
    return shared / "data"


@pytest.fixture(scope="session")
def sites(shared: Path) -> Path:
    return shared / "sites"


@pytest.fixture(scope="session")
def expected_crawl(sites: Path) -> dict:
    return json.loads((sites / "expected_crawl.json").read_text(encoding="utf-8"))
