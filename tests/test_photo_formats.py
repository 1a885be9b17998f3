"""Photo formats through `carremoval remove`, on small generated files: 16-bit grey and colour, EXIF orientation,
palette transparency, ICC profiles, lossless WebP, animations, masks that would silently mean "no car", and the
mode and depth of every output where its format can hold them."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from carremoval.cli import EXIT_BAD_INPUT, EXIT_OK, main
from carremoval.io import InputError, read_mask
from carremoval.photo_io import load_photo

HEIGHT, WIDTH = 48, 64
BOX = (slice(14, 30), slice(20, 44))   # the car: rows, columns
ORIENTATION, MAKE = 0x0112, 0x010F


def run(photo: Path, out: Path, mask: Path) -> int:
    """The CLI on a photo with a given mask, exactly as the hole (no dilation, no shadow)."""
    return main(["remove", str(photo), "-o", str(out), "--masks", str(mask), "--inpainter", "telea",
                 "--shadow", "off", "--dilate", "0", "--no-progress"])


def car(shape: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    hole = np.zeros(shape, bool)
    hole[BOX] = True
    return hole


def write_mask(path: Path, hole: np.ndarray, value: int = 255) -> Path:
    Image.fromarray(np.where(hole, value, 0).astype(np.uint8)).save(path)
    return path


def smooth_rgb(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Gradients that differ along each axis (so a turn shows) and compress well (so JPEG stays close)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([40 + 3 * x, 30 + 4 * y, 120 + x - y]).clip(0, 255).astype(np.uint8)


def palette_photo() -> Image.Image:
    """A palette image of flat 8x8 blocks (48 colours, kept exactly)."""
    blocks = np.repeat(np.repeat(smooth_rgb()[::8, ::8], 8, axis=0), 8, axis=1)
    return Image.fromarray(blocks).quantize(64)


@cache
def srgb_profile() -> bytes:
    """One sRGB profile for the whole run: LittleCMS stamps each new profile with the time of day, so two made
    a second apart differ."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def webp_is_lossless(path: Path) -> bool:
    """For a simple WebP (no VP8X header): its one image chunk is VP8L, not VP8."""
    chunk = path.read_bytes()[12:16]
    assert chunk in (b"VP8L", b"VP8 ")
    return chunk == b"VP8L"


def test_16_bit_grey_png_written_as_jpeg_keeps_its_brightness(tmp_path):
    grey = np.full((HEIGHT, WIDTH), 93 * 257, np.uint16) + np.arange(WIDTH, dtype=np.uint16)
    photo = tmp_path / "grey16.png"
    Image.fromarray(grey).save(photo)
    assert Image.open(photo).mode == "I;16"
    out = tmp_path / "out.jpg"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    result = Image.open(out)
    assert result.mode == "L" and result.size == (WIDTH, HEIGHT)
    assert abs(np.asarray(result)[~car()].astype(float).mean() - grey[~car()].mean() / 257) < 1.0


def test_16_bit_grey_png_stays_16_bit_and_bit_identical_outside_the_hole(tmp_path):
    grey = (np.random.default_rng(1).integers(20000, 40000, (HEIGHT, WIDTH))).astype(np.uint16)
    photo = tmp_path / "grey16.png"
    Image.fromarray(grey).save(photo)
    out = tmp_path / "out.png"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    result = np.asarray(Image.open(out))
    assert Image.open(out).mode == "I;16"
    assert np.array_equal(result[~car()], grey[~car()])
    assert np.all(result[car()] % 257 == 0), "the 8-bit fill, scaled to 16 bits"


def oriented_jpeg(path: Path) -> np.ndarray:
    """A JPEG stored 64 wide x 48 high with EXIF orientation 6 (shown turned 90 degrees clockwise, 48 x 64);
    returns the pixels as displayed."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "TestCam"
    Image.fromarray(smooth_rgb()).save(path, exif=exif.tobytes(), quality=95)
    return np.asarray(ImageOps.exif_transpose(Image.open(path)))


def test_exif_orientation_is_applied_on_load_and_the_output_is_upright(tmp_path):
    photo = tmp_path / "turned.jpg"
    displayed = oriented_jpeg(photo)
    assert displayed.shape[:2] == (WIDTH, HEIGHT)
    hole = car((WIDTH, HEIGHT))                    # drawn on the photo as it is displayed
    mask = write_mask(tmp_path / "mask.png", hole)
    assert np.array_equal(load_photo(photo).rgb, displayed), "the segmenter and the inpainter see it upright"

    out = tmp_path / "out.png"
    assert run(photo, out, mask) == EXIT_OK
    result = Image.open(out)
    assert result.getexif().get(ORIENTATION, 1) == 1 and result.getexif().get(MAKE) == "TestCam"
    assert np.array_equal(np.asarray(result)[~hole], displayed[~hole])
    assert not np.array_equal(np.asarray(result)[hole], displayed[hole])

    out = tmp_path / "out.jpg"
    assert run(photo, out, mask) == EXIT_OK
    result = Image.open(out)
    assert result.getexif()[ORIENTATION] == 1 and result.getexif()[MAKE] == "TestCam"
    shown = np.asarray(ImageOps.exif_transpose(result))
    assert shown.shape == displayed.shape
    assert np.abs(shown[~hole].astype(int) - displayed[~hole]).mean() < 2


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_colour_keeps_16_bits_outside_the_hole(tmp_path, channels, suffix):
    bgr = np.random.default_rng(2).integers(0, 65536, (HEIGHT, WIDTH, channels)).astype(np.uint16)
    photo = tmp_path / f"deep{suffix}"
    assert cv2.imwrite(str(photo), bgr)
    out = tmp_path / f"out{suffix}"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    result = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert result.dtype == np.uint16 and result.shape == bgr.shape
    assert np.array_equal(result[~car()], bgr[~car()])
    assert np.all(result[car()][:, :3] % 257 == 0), "the 8-bit fill, scaled to 16 bits"
    assert not np.array_equal(result[car()][:, :3], bgr[car()][:, :3])
    if channels == 4:
        assert np.array_equal(result[..., 3], bgr[..., 3]), "alpha untouched, inside the hole too"


def test_16_bit_colour_png_keeps_its_icc_profile_and_becomes_8_bit_in_a_jpeg(tmp_path):
    from carremoval.photo_io import PhotoMeta, PhotoPixels, save_photo

    rgb = (smooth_rgb().astype(np.uint16) * 257 + 100).astype(np.uint16)
    photo = tmp_path / "deep.png"
    save_photo(PhotoPixels(rgb, "RGB;16", PhotoMeta(icc_profile=srgb_profile())), photo)
    assert Image.open(photo).info["icc_profile"] == srgb_profile()
    assert np.array_equal(cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)[..., ::-1], rgb)
    mask = write_mask(tmp_path / "mask.png", car())
    out = tmp_path / "out.png"
    assert run(photo, out, mask) == EXIT_OK
    assert Image.open(out).info["icc_profile"] == srgb_profile()
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1][~car()], rgb[~car()])
    out = tmp_path / "out.jpg"
    assert run(photo, out, mask) == EXIT_OK
    result = Image.open(out)
    assert result.mode == "RGB" and result.info["icc_profile"] == srgb_profile()
    assert np.abs(np.asarray(result)[~car()].astype(int) - smooth_rgb()[~car()]).mean() < 2


def test_16_bit_colour_png_with_an_exif_orientation_is_turned_too(tmp_path):
    from carremoval.photo_io import PhotoMeta, PhotoPixels, save_photo

    exif = Image.Exif()
    exif[ORIENTATION] = 8                           # shown turned 90 degrees anticlockwise
    stored = np.random.default_rng(4).integers(0, 65536, (HEIGHT, WIDTH, 3)).astype(np.uint16)
    photo = tmp_path / "turned16.png"
    save_photo(PhotoPixels(stored, "RGB;16", PhotoMeta(exif=exif.tobytes())), photo)
    assert Image.open(photo).getexif()[ORIENTATION] == 8
    displayed = np.rot90(stored, 1)
    hole = car((WIDTH, HEIGHT))
    out = tmp_path / "out.png"
    assert run(photo, out, write_mask(tmp_path / "mask.png", hole)) == EXIT_OK
    assert Image.open(out).getexif().get(ORIENTATION, 1) == 1
    result = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert result.shape == displayed.shape and np.array_equal(result[~hole], displayed[~hole])


def test_palette_png_keeps_its_transparency(tmp_path):
    palette = palette_photo()
    indices = np.asarray(palette)
    transparent = int(indices[0, 0])                # this colour (top left and wherever it recurs) is see-through
    photo = tmp_path / "palette.png"
    palette.save(photo, transparency=transparent)
    before = np.asarray(Image.open(photo).convert("RGBA"))
    assert (before[..., 3] == 0).any() and (before[..., 3] == 255).any()
    out = tmp_path / "out.png"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    result = Image.open(out)
    assert result.mode == "RGBA" and result.size == (WIDTH, HEIGHT)
    after = np.asarray(result)
    assert np.array_equal(after[~car()], before[~car()])
    assert np.array_equal(after[..., 3], before[..., 3])


@pytest.mark.parametrize("source, target", [(".png", ".png"), (".png", ".jpg"), (".png", ".webp"),
                                            (".jpg", ".jpg"), (".jpg", ".webp"), (".webp", ".png")])
def test_icc_profile_is_kept(tmp_path, source, target):
    photo = tmp_path / f"profiled{source}"
    Image.fromarray(smooth_rgb()).save(photo, icc_profile=srgb_profile())
    assert Image.open(photo).info["icc_profile"] == srgb_profile()
    out = tmp_path / f"out{target}"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    assert Image.open(out).info.get("icc_profile") == srgb_profile()


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_lossless_webp_is_written_lossless(tmp_path, mode):
    values = np.random.default_rng(3).integers(0, 256, (HEIGHT, WIDTH, len(mode))).astype(np.uint8)
    if mode == "RGBA":
        values[:8, :, 3] = 0                        # transparent pixels whose colour must survive too
    photo = tmp_path / "lossless.webp"
    Image.fromarray(values).save(photo, lossless=True, exact=True)
    assert np.array_equal(np.asarray(Image.open(photo)), values)
    out = tmp_path / "out.webp"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    assert webp_is_lossless(out)
    after = np.asarray(Image.open(out))
    assert np.array_equal(after[~car()], values[~car()])
    assert not np.array_equal(after[car()], values[car()])


def test_lossy_webp_stays_lossy(tmp_path):
    photo = tmp_path / "lossy.webp"
    Image.fromarray(smooth_rgb()).save(photo, quality=90)
    out = tmp_path / "out.webp"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    assert not webp_is_lossless(out)


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_an_animation_is_refused_with_what_to_do(tmp_path, capsys, suffix):
    frames = [Image.fromarray(np.full((HEIGHT, WIDTH, 3), level, np.uint8)) for level in (10, 100, 200)]
    photo = tmp_path / f"animated{suffix}"
    frames[0].save(photo, save_all=True, append_images=frames[1:], duration=100)
    out = tmp_path / f"out{suffix}"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_BAD_INPUT
    message = capsys.readouterr().err
    assert f"animated{suffix}" in message and "3 frames" in message and "video" in message
    assert not out.exists()


def test_a_camera_mpo_jpeg_is_a_photo_not_an_animation(tmp_path):
    photo = tmp_path / "camera.jpg"
    preview = Image.fromarray(smooth_rgb()[::2, ::2])
    Image.fromarray(smooth_rgb()).save(photo, format="MPO", save_all=True, append_images=[preview])
    assert Image.open(photo).format == "MPO"
    out = tmp_path / "out.jpg"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    assert Image.open(out).size == (WIDTH, HEIGHT)


@pytest.mark.parametrize("value, message", [(1, r"values 0\.\.1\); did you mean a 0/255 mask"),
                                            (100, r"values 0\.\.100\)")])
def test_a_faint_mask_is_refused_not_read_as_no_car(tmp_path, capsys, value, message):
    mask = write_mask(tmp_path / "mask.png", car(), value)
    with pytest.raises(InputError, match=r"mask.png: no pixel at or above 128 \(" + message):
        read_mask(mask)
    photo = tmp_path / "photo.png"
    Image.fromarray(smooth_rgb()).save(photo)
    assert run(photo, tmp_path / "out.png", mask) == EXIT_BAD_INPUT
    assert "mask.png: no pixel at or above 128" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_a_16_bit_mask_of_ones_is_refused(tmp_path):
    mask = tmp_path / "mask16.png"
    Image.fromarray(car().astype(np.uint16)).save(mask)
    with pytest.raises(InputError, match=r"no pixel at or above 32768 \(values 0\.\.1\); did you mean a 0/65535"):
        read_mask(mask)


def test_an_empty_mask_is_still_valid(tmp_path):
    mask = write_mask(tmp_path / "mask.png", np.zeros((HEIGHT, WIDTH), bool))
    assert not read_mask(mask).any()
    photo = tmp_path / "photo.png"
    Image.fromarray(smooth_rgb()).save(photo)
    out = tmp_path / "out.png"
    assert run(photo, out, mask) == EXIT_OK
    assert np.array_equal(np.asarray(Image.open(out)), smooth_rgb())


@pytest.mark.parametrize("colour", [(255, 0, 0), (0, 0, 200), (128, 0, 0)])
def test_a_coloured_mask_counts_a_pixel_by_its_brightest_channel(tmp_path, colour):
    drawn = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    drawn[car()] = colour
    mask = tmp_path / "coloured.png"
    Image.fromarray(drawn).save(mask)
    assert np.array_equal(read_mask(mask), car())
    photo = tmp_path / "photo.png"
    Image.fromarray(smooth_rgb()).save(photo)
    out = tmp_path / "out.png"
    assert run(photo, out, mask) == EXIT_OK
    changed = np.any(np.asarray(Image.open(out)) != smooth_rgb(), axis=2)
    assert changed.any() and not changed[~car()].any()


def test_a_dark_coloured_mask_is_refused(tmp_path):
    drawn = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    drawn[car()] = (90, 40, 0)
    mask = tmp_path / "dark.png"
    Image.fromarray(drawn).save(mask)
    with pytest.raises(InputError, match=r"dark.png: no pixel at or above 128 \(brightest channel 0\.\.90\)"):
        read_mask(mask)


def make_photo(path: Path, kind: str) -> Image.Image:
    """A smooth photo in mode `kind` (P-T: palette with a transparent colour), saved to `path`; returns it as read."""
    rgb = Image.fromarray(smooth_rgb())
    if kind == "1":
        image = Image.fromarray((np.indices((HEIGHT, WIDTH)).sum(axis=0) // 8) % 2 == 0)
    elif kind == "I;16":
        image = Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 250)
    elif kind in ("LA", "RGBA"):
        image = rgb.convert(kind)
        image.putalpha(Image.fromarray(np.linspace(0, 255, WIDTH).astype(np.uint8)[None].repeat(HEIGHT, 0)))
    elif kind == "P-T":
        image = palette_photo()
        image.info["transparency"] = int(np.asarray(image)[0, 0])
    elif kind == "P":
        image = palette_photo()
    else:
        image = rgb.convert(kind)
    options = {"transparency": image.info["transparency"]} if kind == "P-T" else {}
    image.save(path, **options)
    return Image.open(path)


OUTPUT_MODES = {  # input mode -> output mode for .png, .tif, .jpg, .webp
    "1": ("1", "1", "L", "RGB"),
    "L": ("L", "L", "L", "RGB"),
    "LA": ("LA", "LA", "L", "RGBA"),
    "RGB": ("RGB", "RGB", "RGB", "RGB"),
    "RGBA": ("RGBA", "RGBA", "RGB", "RGBA"),
    "P": ("RGB", "RGB", "RGB", "RGB"),
    "P-T": ("RGBA", "RGBA", "RGB", "RGBA"),
    "CMYK": ("RGB", "CMYK", "CMYK", "RGB"),
    "I;16": ("I;16", "I;16", "L", "RGB"),
}


@pytest.mark.parametrize("kind", list(OUTPUT_MODES))
@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg", ".webp"])
def test_every_output_keeps_the_size_and_the_mode_its_format_can_hold(tmp_path, kind, suffix):
    photo = tmp_path / ("input.tif" if kind == "CMYK" else "input.png")
    source = make_photo(photo, kind)
    out = tmp_path / f"out{suffix}"
    assert run(photo, out, write_mask(tmp_path / "mask.png", car())) == EXIT_OK
    result = Image.open(out)
    expected = OUTPUT_MODES[kind][(".png", ".tif", ".jpg", ".webp").index(suffix)]
    assert result.mode == expected and result.size == (WIDTH, HEIGHT)
    after = np.asarray(result).astype(np.int64)
    if kind == "I;16" and expected != "I;16":
        before = np.rint(np.asarray(source) / 257).astype(np.int64)
        before = before if expected == "L" else np.repeat(before[..., None], 3, axis=2)
    else:
        before = np.asarray(source.convert(expected) if kind != "I;16" else source).astype(np.int64)
    if suffix in (".png", ".tif"):
        assert np.array_equal(after[~car()], before[~car()])
    else:
        assert np.abs(after[~car()] - before[~car()]).mean() < (12 if kind == "1" else 3)
