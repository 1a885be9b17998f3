"""Photos in and out of `carremoval remove`: the photo as displayed (EXIF orientation applied), in its own mode
and bit depth, written back with its colour profile, EXIF and (for WebP) losslessness."""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from carremoval.io import InputError, atomic_file, image_errors

ORIENTATION = 0x0112
EXIF_PREFIX = b"Exif\x00\x00"
DEEP_COLOUR_MODES = ("RGB;16", "RGBA;16")   # 16 bits per channel, held as uint16 arrays (Pillow has no such mode)
PILLOW_MODES = ("1", "L", "LA", "RGB", "RGBA", "CMYK", "I;16")
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
WRITABLE_MODES = {  # output format -> the modes it stores as they are (others are converted, see _fit)
    "JPEG": ("L", "RGB", "CMYK"),
    "WEBP": ("RGB", "RGBA"),
    "PNG": ("1", "L", "LA", "RGB", "RGBA", "I;16"),
    "TIFF": ("1", "L", "LA", "RGB", "RGBA", "CMYK", "I;16"),
}
OTHER_FORMAT_MODES = ("1", "L", "RGB", "RGBA")   # BMP, GIF, PPM, TGA, ... (Pillow converts further if needed)
FALLBACK_MODES = {"1": ("L",), "LA": ("RGBA", "L")}   # tried in order before RGB when a format lacks the mode
EXIF_FORMATS = ("JPEG", "PNG", "WEBP")
PROFILE_SPACES = {b"GRAY": ("L", "LA", "I;16"), b"RGB ": ("RGB", "RGBA") + DEEP_COLOUR_MODES, b"CMYK": ("CMYK",)}


@dataclass(frozen=True)
class PhotoMeta:
    """What the input file carried beside its pixels, to be written to the output."""

    icc_profile: bytes | None = None
    exif: bytes | None = None        # with the orientation reset to 1: the pixels are stored as displayed
    lossless: bool = False           # a lossless WebP, written lossless again


@dataclass(frozen=True)
class PhotoPixels:
    """A photo's values in its own mode and depth, as displayed: modes 1, L, LA, RGB, RGBA, CMYK, I;16 (uint16
    grey) and RGB;16, RGBA;16 (uint16 colour, channels in RGB order)."""

    values: np.ndarray
    mode: str
    meta: PhotoMeta = PhotoMeta()

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        """np.asarray(photo): its values."""
        return np.asarray(self.values, dtype=dtype)

    def rgb(self) -> np.ndarray:
        """HxWx3 uint8 RGB, what the segmenter and the inpainter see (16 bits are rounded to 8)."""
        if self.mode in DEEP_COLOUR_MODES:
            return _to_8_bit(self.values[..., :3])
        if self.mode in ("RGB", "RGBA"):
            return np.ascontiguousarray(self.values[..., :3])
        if self.mode == "CMYK":
            return np.asarray(Image.fromarray(self.values, mode="CMYK").convert("RGB"))
        return np.repeat(_grey_as_8_bit(self.values, self.mode)[..., None], 3, axis=2)


@dataclass(frozen=True)
class LoadedPhoto:
    """A photo as 8-bit RGB for the inpainter, plus its own values to write back in its own format."""

    rgb: np.ndarray
    source: PhotoPixels

    def restore(self, rgb: np.ndarray, changed: np.ndarray) -> PhotoPixels:
        """The output photo: the input's mode, depth, size and alpha; only `changed` pixels take `rgb`'s colour."""
        values = self.source.values.copy()
        fill = _colour_in_mode(rgb, self.source.mode)
        if values.ndim == 2:
            values[changed] = fill[changed]
        else:
            fill = fill.reshape(fill.shape[:2] + (-1,))
            values[changed, :fill.shape[2]] = fill[changed]
        return replace(self.source, values=values)


def load_photo(path: str | Path) -> LoadedPhoto:
    """Read a photo as displayed, in its own mode and depth; an animated or multi-page image is refused."""
    path = Path(path)
    with image_errors(path):
        image = Image.open(path)
        frames = getattr(image, "n_frames", 1)
        if frames > 1 and image.format != "MPO":   # MPO: a camera JPEG whose extra frames are previews
            raise InputError(
                f"{path}: an animated or multi-page {image.format} of {frames} frames; `remove` takes a single "
                "photo: convert the animation to a video (e.g. .mp4) and pass that, or save the frame you want "
                "as a photo")
        deep = _raw_mode(image).startswith(("RGB;16", "RGBA;16", "LA;16"))
        image.load()
    values, mode = _read_deep_colour(path, image.size) if deep else _pillow_values(image, path)
    exif = image.getexif()
    orientation = exif.get(ORIENTATION, 1)
    values = _as_displayed(values, orientation if orientation in range(1, 9) else 1)
    source = PhotoPixels(values, mode, _meta(image, path, exif))
    return LoadedPhoto(rgb=source.rgb(), source=source)


def save_photo(photo: PhotoPixels | Image.Image, path: str | Path) -> None:
    """Save atomically in the format the extension names, in the photo's mode and depth where the format holds
    them (else the nearest it does), with its ICC profile, EXIF and WebP losslessness."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"{target}: the output directory {target.parent} does not exist")
    image_format = Image.registered_extensions().get(target.suffix.lower())
    if image_format is None:
        raise InputError(f"{target}: unknown image extension {target.suffix!r}")
    if isinstance(photo, Image.Image):
        photo = PhotoPixels(*_pillow_values(photo, target))
    with atomic_file(target) as tmp:
        if photo.mode in DEEP_COLOUR_MODES and image_format in SIXTEEN_BIT_FORMATS:
            tmp.write_bytes(_encode_deep_colour(photo, image_format))
        else:
            image = _fit(_pillow_image(photo), image_format)
            try:
                image.save(tmp, format=image_format, **_save_options(photo.meta, image.mode, image_format))
            except (OSError, ValueError, KeyError) as err:
                raise InputError(f"{target}: cannot write a {image.mode} photo as {image_format} ({err}); "
                                 "choose .png or .tif") from None


def _raw_mode(image: Image.Image) -> str:
    """How the file stores its pixels, before decoding (e.g. 'RGB;16B' for a 48-bit PNG Pillow decodes as RGB)."""
    if not image.tile:
        return ""
    args = image.tile[0].args   # PNG: the raw mode; TIFF: (raw mode, ...)
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return str(args)


def _read_deep_colour(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """16-bit colour (or grey + alpha) with OpenCV, which keeps the 16 bits Pillow drops: (RGB(A) uint16, mode)."""
    bgr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.uint16 or bgr.ndim != 3 or bgr.shape[1::-1] != size:
        raise InputError(f"{path}: 16-bit colour image that OpenCV cannot read back as 16-bit")
    if bgr.shape[2] == 3:
        return np.ascontiguousarray(bgr[..., ::-1]), "RGB;16"
    return np.ascontiguousarray(bgr[..., [2, 1, 0, 3]]), "RGBA;16"


def _pillow_values(image: Image.Image, path: Path) -> tuple[np.ndarray, str]:
    """The values of a decoded Pillow image in one of PILLOW_MODES: (array, mode)."""
    if image.mode in ("I", "I;16B", "I;16L"):
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise InputError(f"{path}: 32-bit integer image with values {values.min()}..{values.max()}, beyond "
                             "16 bits; convert it to 8 or 16 bits first")
        image = Image.fromarray(values.astype(np.uint16))
    elif image.mode == "F":
        raise InputError(f"{path}: floating-point image (mode F); convert it to 8 or 16 bits first")
    elif image.mode not in PILLOW_MODES:   # P, PA, La, RGBa, RGBX, YCbCr, ...
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    return np.asarray(image).copy(), image.mode


def _as_displayed(values: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels turned and flipped as a viewer shows them for this EXIF orientation (1..8)."""
    displayed = {
        1: values,
        2: values[:, ::-1],
        3: values[::-1, ::-1],
        4: values[::-1],
        5: values.swapaxes(0, 1),
        6: np.rot90(values, -1),
        7: values[::-1, ::-1].swapaxes(0, 1),
        8: np.rot90(values, 1),
    }[orientation]
    return np.ascontiguousarray(displayed)


def _meta(image: Image.Image, path: Path, exif: Image.Exif) -> PhotoMeta:
    """The ICC profile, the EXIF (orientation reset to 1) and WebP losslessness of the opened file."""
    exif_bytes = image.info.get("exif")   # JPEG, PNG and WebP; a TIFF's tags are its own file structure
    if exif_bytes and exif.get(ORIENTATION, 1) != 1:
        exif[ORIENTATION] = 1
        exif_bytes = exif.tobytes()
    lossless = image.format == "WEBP" and _webp_is_lossless(path)
    return PhotoMeta(icc_profile=image.info.get("icc_profile") or None, exif=exif_bytes or None, lossless=lossless)


def _webp_is_lossless(path: Path) -> bool:
    """Whether a WebP's image chunk is VP8L (lossless) rather than VP8 (lossy), read from its RIFF chunk list."""
    with open(path, "rb") as handle:
        handle.seek(12)   # 'RIFF', size, 'WEBP'
        while len(header := handle.read(8)) == 8:
            fourcc, size = header[:4], int.from_bytes(header[4:], "little")
            if fourcc in (b"VP8L", b"VP8 "):
                return fourcc == b"VP8L"
            handle.seek(size + size % 2, os.SEEK_CUR)
    return False


def _to_8_bit(values: np.ndarray) -> np.ndarray:
    return np.rint(values / 257.0).astype(np.uint8)


def _grey_as_8_bit(values: np.ndarray, mode: str) -> np.ndarray:
    """The grey channel of a 1, L, LA or I;16 array as uint8."""
    if mode == "1":
        return np.where(values, 255, 0).astype(np.uint8)
    if mode == "I;16":
        return _to_8_bit(values)
    return values[..., 0] if mode == "LA" else values


def _colour_in_mode(rgb: np.ndarray, mode: str) -> np.ndarray:
    """8-bit RGB as the colour (not alpha) channels of `mode`: 16-bit values are the 8-bit ones x 257."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    if mode == "1":
        return grey >= 128
    if mode in ("L", "LA"):
        return grey
    if mode == "I;16":
        return grey.astype(np.uint16) * 257
    if mode == "CMYK":
        return np.asarray(Image.fromarray(rgb).convert("CMYK"))
    if mode in DEEP_COLOUR_MODES:
        return rgb.astype(np.uint16) * 257
    return rgb


def _pillow_image(photo: PhotoPixels) -> Image.Image:
    """The photo as a Pillow image; 16-bit colour becomes 8-bit (formats that hold 16 bits take the array)."""
    if photo.mode in DEEP_COLOUR_MODES:
        return Image.fromarray(_to_8_bit(photo.values))
    if photo.mode == "CMYK":
        return Image.fromarray(photo.values, mode="CMYK")
    return Image.fromarray(photo.values)


def _fit(image: Image.Image, image_format: str) -> Image.Image:
    """The image in a mode the format stores: 16-bit grey scaled to 8 bits where it cannot hold 16, alpha dropped
    where it holds none, grey or CMYK as RGB where it holds neither."""
    if image.mode == "I;16" and image_format not in SIXTEEN_BIT_FORMATS:
        image = Image.fromarray(_to_8_bit(np.asarray(image)))
    modes = WRITABLE_MODES.get(image_format, OTHER_FORMAT_MODES)
    if image.mode in modes:
        return image
    for mode in FALLBACK_MODES.get(image.mode, ()):
        if mode in modes:
            return image.convert(mode)
    return image.convert("RGB")


def _profile_fits(profile: bytes, mode: str) -> bool:
    """Whether an ICC profile's colour space (header bytes 16..20) is the one of `mode`."""
    return mode in PROFILE_SPACES.get(profile[16:20], ())


def _save_options(meta: PhotoMeta, mode: str, image_format: str) -> dict:
    options: dict = {}
    if meta.icc_profile and _profile_fits(meta.icc_profile, mode):
        options["icc_profile"] = meta.icc_profile
    if meta.exif and image_format in EXIF_FORMATS:
        options["exif"] = meta.exif
    if image_format == "JPEG":
        options["quality"] = 95
    if image_format == "WEBP":
        options.update({"lossless": True, "exact": True} if meta.lossless else {"quality": 95})
    return options


def _encode_deep_colour(photo: PhotoPixels, image_format: str) -> bytes:
    """16-bit colour as PNG (with its ICC profile and EXIF) or TIFF, encoded by OpenCV."""
    order = [2, 1, 0] if photo.mode == "RGB;16" else [2, 1, 0, 3]
    ok, encoded = cv2.imencode(".png" if image_format == "PNG" else ".tif", photo.values[..., order])
    if not ok:
        raise InputError(f"OpenCV could not encode a {photo.mode} photo as {image_format}")
    data = encoded.tobytes()
    return _with_png_metadata(data, photo.meta, photo.mode) if image_format == "PNG" else data


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _with_png_metadata(png: bytes, meta: PhotoMeta, mode: str) -> bytes:
    """The PNG with iCCP and eXIf chunks inserted right after its IHDR chunk (OpenCV writes neither)."""
    chunks = b""
    if meta.icc_profile and _profile_fits(meta.icc_profile, mode):
        chunks += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(meta.icc_profile))
    if meta.exif:
        chunks += _png_chunk(b"eXIf", meta.exif.removeprefix(EXIF_PREFIX))
    header_end = 8 + 8 + 13 + 4   # signature, then IHDR (always first): length, type, 13 bytes, CRC
    return png[:header_end] + chunks + png[header_end:]
