"""Is a downloaded body really an image we want? Magic bytes, a Pillow verify and full decode, size limits."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from carremoval.io import sha256_bytes

# Pillow format name -> file extension of the stored image.
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True)
class ImageLimits:
    min_side: int          # the shorter side must be at least this many pixels
    max_pixels: int        # decompression-bomb guard: width * height above this is refused before decoding
    max_bytes: int = 0     # 0 = no limit (the downloader already caps responses at DOWNLOAD_MAXSIZE)


@dataclass(frozen=True)
class ImageCheck:
    """The verdict on one body: `reason` is None when the image is kept."""

    reason: str | None
    sha256: str
    format: str | None = None
    width: int = 0
    height: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def ext(self) -> str:
        return EXTENSIONS[self.format] if self.format else ""


def sniff_format(body: bytes) -> str | None:
    """The image format announced by the first bytes (magic number), or None."""
    if body.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if body.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "WEBP"
    return None


def _decode(body: bytes, expected_format: str, max_pixels: int) -> tuple[str | None, int, int]:
    """(reason or None, width, height) after a header check, Pillow verify() and a full decode."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(body)) as image:
                width, height = image.size
                if image.format != expected_format:
                    return "not_an_image", width, height
                if width * height > max_pixels:
                    return "too_many_pixels", width, height
                image.verify()
            with Image.open(io.BytesIO(body)) as image:
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return "too_many_pixels", 0, 0
        except DECODE_ERRORS:
            return "undecodable", 0, 0
    return None, width, height


def check_image(body: bytes, limits: ImageLimits) -> ImageCheck:
    """Classify a body as a kept image or a skip reason: empty, too_large, not_an_image, too_many_pixels,
    undecodable (truncated or corrupt), below_min_size."""
    digest = sha256_bytes(body)
    if not body:
        return ImageCheck("empty", digest)
    if limits.max_bytes and len(body) > limits.max_bytes:
        return ImageCheck("too_large", digest)
    image_format = sniff_format(body)
    if image_format is None:
        return ImageCheck("not_an_image", digest)
    reason, width, height = _decode(body, image_format, limits.max_pixels)
    if reason is None and min(width, height) < limits.min_side:
        reason = "below_min_size"
    return ImageCheck(reason, digest, image_format, width, height)
