"""Public background datasets (DeepLoc, DeepLocCross, Freiburg Street Crossing, FRIDA ...): download an archive,
verify its sha256, extract it safely and index its images.

Archives come from params.yaml `datasets.archives`, each {name, url, sha256}; https://, http:// and file://
URLs work. A verified archive is kept in the download folder under its sha256, so a re-run does not download
it again. Extraction refuses members that would land outside the target (absolute paths, `..`, links),
device files and the like; the whole output is written atomically, so a bad archive leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import re
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from carremoval.io import InputError, atomic_dir, open_image, sha256_file, write_jsonl

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    name: str
    url: str
    sha256: str


def parse_archives(entries: list[dict[str, Any]] | None) -> list[Archive]:
    """The archive list from params, checked: a clear error names the bad entry."""
    archives = []
    for number, entry in enumerate(entries or [], start=1):
        where = f"params.yaml datasets.archives[{number}]"
        if not isinstance(entry, dict) or not {"name", "url", "sha256"} <= set(entry):
            raise InputError(f"{where}: needs name, url and sha256")
        name, url, digest = str(entry["name"]), str(entry["url"]), str(entry["sha256"]).lower()
        if not NAME.match(name):
            raise InputError(f"{where}: name {name!r} must be a plain folder name")
        if not SHA256.match(digest):
            raise InputError(f"{where}: sha256 {entry['sha256']!r} is not 64 hex digits")
        archives.append(Archive(name, url, digest))
    names = [archive.name for archive in archives]
    if len(set(names)) != len(names):
        raise InputError("params.yaml datasets.archives: two archives have the same name")
    return archives


def archive_suffix(url: str) -> str:
    path = PurePosixPath(urllib.parse.urlsplit(url).path)
    return "".join(path.suffixes[-2:]) if path.suffixes[-2:-1] == [".tar"] else path.suffix


def fetch_archive(archive: Archive, download_dir: Path) -> Path:
    """The verified archive in download_dir (downloaded unless already there). On a sha256 mismatch or a
    failed download: InputError, and no file is left behind."""
    download_dir.mkdir(parents=True, exist_ok=True)
    target = download_dir / f"{archive.sha256}{archive_suffix(archive.url)}"
    if target.exists() and sha256_file(target) == archive.sha256:
        return target
    partial = target.with_name(f".{target.name}.part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(archive.url, timeout=60) as response, open(partial, "wb") as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {archive.name}", leave=False) as bar:
                while block := response.read(CHUNK):
                    handle.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if digest.hexdigest() != archive.sha256:
            raise InputError(
                f"{archive.url}: sha256 mismatch for dataset {archive.name!r}: "
                f"expected {archive.sha256}, got {digest.hexdigest()}"
            )
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise InputError(f"{archive.url}: download of dataset {archive.name!r} failed ({err})") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def _check_member_path(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        raise InputError(f"{archive}: member {name!r} would be extracted outside the dataset folder")


def extract_zip(path: Path, dest: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            _check_member_path(member.filename, path)
            mode = member.external_attr >> 16
            if (mode & 0o170000) == 0o120000:
                raise InputError(f"{path}: member {member.filename!r} is a symbolic link; links are refused")
        archive.extractall(dest)


def extract_tar(path: Path, dest: Path) -> None:
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            _check_member_path(member.name, path)
            if member.issym() or member.islnk():
                raise InputError(f"{path}: member {member.name!r} is a link; links are refused")
            if not (member.isfile() or member.isdir()):
                raise InputError(f"{path}: member {member.name!r} is not a regular file or folder")
        archive.extractall(dest, filter="data")


def extract_archive(path: Path, dest: Path) -> None:
    """Extract a zip or tar (gz/bz2/xz) archive into dest, refusing anything that could escape it."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(path):
            extract_zip(path, dest)
        elif tarfile.is_tarfile(path):
            extract_tar(path, dest)
        else:
            raise InputError(f"{path}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise InputError(f"{path}: damaged archive ({err})") from None


def index_images(dataset_dir: Path, name: str, base: Path) -> tuple[list[dict[str, Any]], int]:
    """(manifest rows of the decodable images under dataset_dir, number of unreadable image files)."""
    rows, unreadable = [], 0
    files = sorted(p for p in dataset_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for file in tqdm(files, desc=f"index {name}", unit=" images", leave=False):
        try:
            with open_image(file) as image:
                width, height = image.size
        except InputError:
            unreadable += 1
            continue
        rows.append({
            "name": name,
            "path": file.relative_to(base).as_posix(),
            "sha256": sha256_file(file),
            "width": width,
            "height": height,
            "source": f"dataset:{name}",
        })
    return rows, unreadable


def build_datasets(archives: list[Archive], out_dir: Path, download_dir: Path) -> dict[str, Any]:
    """Fetch, verify, extract and index every archive into out_dir/<name>/ + out_dir/manifest.jsonl
    (atomically); counts per dataset."""
    counts: dict[str, Any] = {}
    with atomic_dir(out_dir) as tmp:
        rows: list[dict[str, Any]] = []
        for archive in archives:
            extract_archive(fetch_archive(archive, download_dir), tmp / archive.name)
            dataset_rows, unreadable = index_images(tmp / archive.name, archive.name, tmp)
            rows += dataset_rows
            counts[archive.name] = {"images": len(dataset_rows), "unreadable": unreadable}
        rows.sort(key=lambda row: row["path"])
        write_jsonl(tmp / "manifest.jsonl", rows)
    return counts
