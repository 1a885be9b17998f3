"""datasets: local archives over file:// URLs: verified, safely extracted, indexed; mismatches and hostile
archives are clear errors that leave nothing behind; an empty list gives an empty manifest."""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carremoval.datasets import Archive, build_datasets, parse_archives
from carremoval.io import InputError, read_jsonl, sha256_bytes, sha256_file
from crawl_support import REPO, make_root, stage_env


def image_bytes(width: int, height: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


def archive_of(name: str, path: Path) -> Archive:
    return Archive(name, path.as_uri(), sha256_file(path))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_archives_are_verified_extracted_and_indexed(tmp_path: Path) -> None:
    png, jpeg = image_bytes(64, 48, "PNG"), image_bytes(32, 40, "JPEG")
    zipped = make_zip(tmp_path / "deeploc.zip", {"seq1/a.png": png, "seq1/readme.txt": b"hi", "seq2/b.jpg": jpeg})
    tarred = make_tar(tmp_path / "frida.tar.gz", {"frida/c.png": png, "frida/broken.jpg": b"\xff\xd8\xff trunc"})
    out, downloads = tmp_path / "data" / "raw" / "datasets", tmp_path / "downloads"
    archives = [archive_of("deeploc", zipped), archive_of("frida", tarred)]
    counts = build_datasets(archives, out, downloads)
    assert counts == {"deeploc": {"images": 2, "unreadable": 0}, "frida": {"images": 1, "unreadable": 1}}
    rows = read_jsonl(out / "manifest.jsonl")
    assert [row["path"] for row in rows] == ["deeploc/seq1/a.png", "deeploc/seq2/b.jpg", "frida/frida/c.png"]
    assert rows[0] == {"name": "deeploc", "path": "deeploc/seq1/a.png", "sha256": sha256_bytes(png),
                       "width": 64, "height": 48, "source": "dataset:deeploc"}
    assert all(sha256_file(out / row["path"]) == row["sha256"] for row in rows)
    zipped.unlink()
    tarred.unlink()
    assert build_datasets(archives, out, downloads) == counts          # the verified downloads are reused
    assert read_jsonl(out / "manifest.jsonl") == rows


def test_sha256_mismatch_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    zipped = make_zip(tmp_path / "set.zip", {"a.png": image_bytes(8, 8, "PNG")})
    out, downloads = tmp_path / "out", tmp_path / "downloads"
    with pytest.raises(InputError, match=r"set.zip: sha256 mismatch for dataset 'set': expected 0{64}, got"):
        build_datasets([Archive("set", zipped.as_uri(), "0" * 64)], out, downloads)
    assert not out.exists() and leftovers(downloads) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads", "set.zip"]


@pytest.mark.parametrize("kind", ["zip-traversal", "zip-absolute", "tar-traversal", "tar-symlink"])
def test_hostile_archives_are_refused_and_leave_nothing(tmp_path: Path, kind: str) -> None:
    data = image_bytes(8, 8, "PNG")
    archive = {
        "zip-traversal": lambda: make_zip(tmp_path / "x.zip", {"ok.png": data, "../../evil.png": data}),
        "zip-absolute": lambda: make_zip(tmp_path / "x.zip", {"/etc/evil.png": data}),
        "tar-traversal": lambda: make_tar(tmp_path / "x.tar.gz", {"ok.png": data, "a/../../evil.png": data}),
        "tar-symlink": lambda: make_tar(tmp_path / "x.tar.gz", {"ok.png": data}, {"link": "/etc/passwd"}),
    }[kind]()
    out = tmp_path / "data" / "raw" / "datasets"
    with pytest.raises(InputError, match=r"(outside the dataset folder|links are refused)"):
        build_datasets([archive_of("x", archive)], out, tmp_path / "downloads")
    assert not out.exists() and leftovers(out.parent) == []
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "data" / "evil.png").exists()


def test_archive_entries_are_checked(tmp_path: Path) -> None:
    assert parse_archives([]) == [] and parse_archives(None) == []
    with pytest.raises(InputError, match=r"archives\[1\]: needs name, url and sha256"):
        parse_archives([{"name": "x"}])
    with pytest.raises(InputError, match="must be a plain folder name"):
        parse_archives([{"name": "../x", "url": "file:///x.zip", "sha256": "a" * 64}])
    with pytest.raises(InputError, match="not 64 hex digits"):
        parse_archives([{"name": "x", "url": "file:///x.zip", "sha256": "abc"}])
    with pytest.raises(InputError, match="download of dataset 'x' failed"):
        build_datasets([Archive("x", (tmp_path / "none.zip").as_uri(), "a" * 64)], tmp_path / "o", tmp_path / "d")


def test_stage_with_the_default_empty_list_writes_an_empty_manifest(tmp_path: Path) -> None:
    root = make_root(tmp_path / "repo")
    result = subprocess.run([sys.executable, str(REPO / "stages" / "datasets.py")], cwd=root, env=stage_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (root / "data" / "raw" / "datasets" / "manifest.jsonl").read_bytes() == b""
    assert "0 images from 0 archives" in result.stdout
