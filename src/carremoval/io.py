"""Files in and out: atomic writes, manifests, hashing, and image reading with clear errors."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

# Decompression-bomb guard for every image we open (a 16k x 12k photo is still fine).
MAX_IMAGE_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


class InputError(Exception):
    """Bad user or data input; the message names the file and the problem."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_sibling(target: Path, suffix: str = "") -> Path:
    """A unique hidden path beside `target`, on the same filesystem so a rename is atomic."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path; on success it replaces `path` in one rename, on error it is removed.

    The temp path keeps the target's extension so that writers which pick a format from it work.
    """
    target = Path(path)
    tmp = _temp_sibling(target, suffix=target.suffix)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp directory; on success it replaces directory `path`, on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def dumps_json(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(dumps_json(obj), encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write one JSON object per line (sorted keys), atomically."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise InputError(f"{path}:{number}: not valid JSON ({err})") from None
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    return rows


@contextlib.contextmanager
def image_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn Pillow's errors while opening or decoding `path` into InputError naming the file and the problem."""
    try:
        yield
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Image.DecompressionBombError as err:
        raise InputError(f"{path}: image too large ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: not a readable image ({err})") from None


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image with Pillow, or raise InputError naming the file and the problem."""
    with image_errors(path):
        image = Image.open(path)
        image.load()
    return image


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image as HxWx3 uint8 RGB (grey, palette, 16-bit, CMYK and alpha are converted)."""
    image = open_image(path)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = Image.fromarray((np.asarray(image, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8))
    return np.asarray(image.convert("RGB"))


MASK_GREY_MODES = ("1", "L", "LA", "La")
MASK_16_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")


def read_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A binary mask (HxW bool, True = car) from an image: a pixel is car where its grey level (for a coloured mask,
    its brightest channel) is at least half the full scale, 128 (32768 in 16 bits). A mask with some non-zero
    pixels but none that high is refused (it would silently mean "no car"); an all-zero mask is an empty one."""
    image = open_image(path)
    if image.mode in MASK_16_BIT_MODES:
        levels, threshold, full = np.asarray(image).astype(np.int64), 32768, 65535
    elif image.mode in MASK_GREY_MODES:
        levels, threshold, full = np.asarray(image.convert("L")), 128, 255
    else:
        levels, threshold, full = np.asarray(image.convert("RGB")).max(axis=2), 128, 255
    mask = levels >= threshold
    if shape is not None and mask.shape != tuple(shape):
        raise InputError(
            f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, the frame is {shape[1]}x{shape[0]}"
        )
    if levels.any() and not mask.any():
        what = "values" if image.mode in MASK_GREY_MODES + MASK_16_BIT_MODES else "brightest channel"
        raise InputError(f"{path}: no pixel at or above {threshold} ({what} {levels.min()}..{levels.max()}); "
                         f"did you mean a 0/{full} mask?")
    return mask


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array (HxW, HxWx3 or HxWx4) as PNG, atomically and deterministically."""
    with atomic_file(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG", compress_level=6)
