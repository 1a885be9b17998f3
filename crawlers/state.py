"""Resumable crawl state, kept outside DVC's outs (DVC deletes a stage's outs before it runs it).

`.crawl_state/<source>/` holds:
- fingerprint.json: the parameters this state belongs to (other parameters start a fresh crawl);
- log.jsonl: every PageRecord / ImageLink / ImageRecord, appended and flushed as it happens;
- images/<sha256>.<ext>: the kept images, content-addressed, each written atomically;
- pages/<sha256 of the URL>.html: fetched pages (decoded text, UTF-8), so a resumed crawl re-parses them
  without asking the site again.
A SIGKILL can tear at most the log's last line (dropped on the next start) and leave temp files from
atomic writes (removed on the next start); nothing half-written is ever read as complete.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, TextIO

from carremoval.io import dumps_json, sha256_bytes, write_bytes_atomic

logger = logging.getLogger(__name__)

LOG_NAME = "log.jsonl"
FINGERPRINT_NAME = "fingerprint.json"


def remove_temp_files(folder: Path, name: str = "*") -> int:
    """Delete leftovers of interrupted atomic writes of `name` in `folder`: `.<name>.<random>.tmp*` from
    carremoval.io.atomic_file/atomic_dir and `.<name>.<random>.old` from atomic_dir."""
    removed = 0
    for pattern in (f".{name}.*.tmp*", f".{name}.*.old"):
        for leftover in folder.glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
    return removed


class CrawlState:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.log_path = self.root / LOG_NAME
        self.images_dir = self.root / "images"
        self.pages_dir = self.root / "pages"

    def prepare(self, fingerprint: dict[str, Any]) -> bool:
        """Make the state ready for a crawl with these parameters; True when an interrupted crawl resumes."""
        fingerprint_path = self.root / FINGERPRINT_NAME
        expected = dumps_json(fingerprint)
        if fingerprint_path.exists() and fingerprint_path.read_text(encoding="utf-8") != expected:
            logger.warning("%s: crawl state of other parameters discarded", self.root)
            self.clear()
        resumed = self.log_path.exists()
        for folder in (self.root, self.images_dir, self.pages_dir):
            folder.mkdir(parents=True, exist_ok=True)
            remove_temp_files(folder)
        write_bytes_atomic(fingerprint_path, expected.encode("utf-8"))
        self._drop_torn_tail()
        return resumed

    def _drop_torn_tail(self) -> None:
        """Cut the log back to its last complete line (a kill can interrupt the last write)."""
        if not self.log_path.exists():
            return
        data = self.log_path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            self.log_path.write_bytes(complete)

    def records(self) -> list[dict[str, Any]]:
        """Every logged record, in order (a torn last line is ignored)."""
        if not self.log_path.exists():
            return []
        records = []
        with open(self.log_path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    logger.warning("%s: ignoring a torn line", self.log_path)
        return records

    def open_log(self) -> TextIO:
        self.root.mkdir(parents=True, exist_ok=True)
        return open(self.log_path, "a", encoding="utf-8")

    def image_path(self, sha256: str, ext: str) -> Path:
        return self.images_dir / f"{sha256}.{ext}"

    def store_image(self, sha256: str, ext: str, body: bytes) -> Path:
        """File a kept image by its content hash (once; the same bytes under another URL reuse it)."""
        path = self.image_path(sha256, ext)
        if not path.exists():
            write_bytes_atomic(path, body)
        return path

    def page_path(self, url: str) -> Path:
        return self.pages_dir / f"{sha256_bytes(url.encode('utf-8'))}.html"

    def save_page(self, url: str, text: str) -> None:
        write_bytes_atomic(self.page_path(url), text.encode("utf-8"))

    def load_page(self, url: str) -> str | None:
        path = self.page_path(url)
        return path.read_text(encoding="utf-8") if path.exists() else None

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
