"""The crawled data goes to a DVC remote and comes back: in a temporary repository (never in the working
checkout) with the repo's own crawl stage definitions, `dvc commit` the session crawl's outputs, push them to
a temporary local remote, delete the data and the cache, `dvc pull`, and compare byte for byte."""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crawl_support import REPO, SOURCES, session_crawl

pytestmark = pytest.mark.slow


def run(command: list[str], cwd: Path) -> str:
    env = {**{k: v for k, v in os.environ.items() if k != "DVC_ROOT"}, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


def dvc(*args: str, cwd: Path) -> str:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def crawl_stage_repo(path: Path, session_root: Path) -> Path:
    """git + dvc repository holding the repo's `crawl` stage, its dependencies, params and crawled outputs."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["crawl"]
    path.mkdir()
    run(["git", "init", "-q"], path)
    dvc("init", "-q", cwd=path)
    (path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"crawl": stage}}, sort_keys=False), encoding="utf-8")
    shutil.copy(session_root / "params.yaml", path / "params.yaml")
    for source in SOURCES:
        for dep in stage["do"]["deps"]:
            relative = dep.replace("${item}", source)
            (path / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / relative, path / relative)
        shutil.copytree(session_root / "data" / "raw" / source, path / "data" / "raw" / source)
        (path / "metrics" / "crawl").mkdir(parents=True, exist_ok=True)
        shutil.copy(session_root / "metrics" / "crawl" / f"{source}.json", path / "metrics" / "crawl")
    return path


def same_tree(left: Path, right: Path) -> bool:
    files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(right) for p in right.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(left, right, [str(f) for f in files], shallow=False)
    return not mismatch and not errors and len(match) == len(files)


def test_crawled_data_round_trips_through_a_local_remote(tmp_path: Path, tmp_path_factory) -> None:
    session = session_crawl(tmp_path_factory.getbasetemp())
    assert all(run_.returncode == 0 for run_ in session.values())
    session_root = session["oir_mobi"].root
    repo = crawl_stage_repo(tmp_path / "repo", session_root)

    dvc("commit", "-f", "crawl@oir_mobi", "crawl@motorpage", cwd=repo)
    assert "up to date" in dvc("status", cwd=repo)            # a `dvc repro` now would run nothing
    remote = tmp_path / "remote"
    dvc("remote", "add", "-d", "scratch", str(remote), cwd=repo)
    dvc("push", cwd=repo)
    assert any(remote.rglob("*"))

    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull", cwd=repo)
    for source in SOURCES:
        assert same_tree(repo / "data" / "raw" / source, session_root / "data" / "raw" / source)
