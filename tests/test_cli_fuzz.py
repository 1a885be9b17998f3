"""`carremoval remove` over a generated corpus of small bad inputs: each one exits 0, 2 (bad input) or 3 (no model),
never 1, prints no traceback, and when it fails leaves nothing under the output name and no temp file beside it."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from test_cli_robustness import SIZE, box_mask, noise_frames, write_video

from carremoval.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_UNAVAILABLE, main

FAST = ["--inpainter", "telea", "--shadow", "off", "--no-progress"]


@dataclass(frozen=True)
class Case:
    """One command line (after `remove`), the exit code it must give, and where its output would go."""

    args: list[str]
    expected: int
    output: Path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_size_png() -> bytes:
    """A PNG whose header says 0x0 pixels."""
    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def write_mp4(path: Path, frames: list[np.ndarray], faststart: bool = False) -> None:
    """H.264 in MP4, the index (moov) at the end as usual, or at the start with `faststart`."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))


def write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        audio = container.add_stream("aac", rate=16000, layout="mono")
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        chunk.sample_rate, chunk.pts = 16000, 0
        container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))


def first_half(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def build_corpus(root: Path) -> dict[str, Case]:
    """Inputs in root/in, each case's output in its own folder root/out/<case>."""
    src = root / "in"
    src.mkdir()
    rng = np.random.default_rng(7)
    frames = noise_frames(12)
    photo = src / "photo.png"
    Image.fromarray(frames[0]).save(photo)
    Image.fromarray(frames[0]).save(src / "photo.jpg", quality=90)
    mask = box_mask(src / "mask.png")
    video = src / "video.mkv"
    write_video(video, frames)
    write_mp4(src / "video.mp4", frames)
    write_mp4(src / "faststart.mp4", frames, faststart=True)
    write_video(src / "video.gif", noise_frames(12, colours=16), codec="gif", pix_fmt="rgb8")

    def case(name: str, expected: int, source: Path | str, suffix: str, *extra: str,
             output: Path | None = None) -> tuple[str, Case]:
        target = output or root / "out" / name / f"result{suffix}"
        if output is None:
            target.parent.mkdir(parents=True)
        return name, Case([str(source), "-o", str(target), *extra], expected, target)

    cases = dict([
        case("photo_ok", EXIT_OK, photo, ".png", "--masks", str(mask), *FAST),
        case("video_ok", EXIT_OK, video, ".mkv", "--masks", str(mask), *FAST),
    ])
    for seed in range(2):
        for suffix in (".jpg", ".png", ".mp4", ".mkv", ".avi", ".gif", ".xyz"):
            junk = src / f"random{seed}{suffix}"
            junk.write_bytes(rng.integers(0, 256, 3000 + 5000 * seed, dtype=np.uint8).tobytes())
            out_suffix = suffix if suffix != ".xyz" else ".mp4"
            cases.update([case(f"random{seed}{suffix}", EXIT_BAD_INPUT, junk, out_suffix, "--masks", str(mask),
                               *FAST)])
    empty = src / "empty.jpg"
    empty.write_bytes(b"")
    zero = src / "zero.png"
    zero.write_bytes(zero_size_png())
    one = src / "one.png"
    Image.fromarray(frames[0][:1, :1]).save(one)
    one_car, one_road = src / "one_car.png", src / "one_road.png"
    Image.fromarray(np.full((1, 1), 255, np.uint8)).save(one_car)
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(one_road)
    small_mask = box_mask(src / "small_mask.png", size=(32, 24), box=(2, 2, 8, 8))
    text_mask = src / "text_mask.png"
    text_mask.write_text("255 255 255\n", encoding="utf-8")
    empty_dir, two_masks, one_mask_dir = src / "no_masks", src / "two_masks", src / "one_mask"
    for folder in (empty_dir, two_masks, one_mask_dir):
        folder.mkdir()
    for name in ("a.png", "b.png"):
        (two_masks / name).write_bytes(mask.read_bytes())
    (one_mask_dir / "a.png").write_bytes(mask.read_bytes())
    everything = src / "everything.png"
    Image.fromarray(np.full((SIZE[1], SIZE[0]), 255, np.uint8)).save(everything)
    tiny = src / "tiny.mkv"
    write_video(tiny, noise_frames(3, size=(3, 2)))
    tiny_mask = box_mask(src / "tiny_mask.png", size=(3, 2), box=(0, 0, 1, 1))
    audio_only = src / "audio_only.mp4"
    write_audio_only(audio_only)
    junk_model = src / "junk.pt"
    junk_model.write_bytes(b"not a checkpoint")
    a_file = src / "a_file.txt"
    a_file.write_text("not a folder", encoding="utf-8")
    png_as_xyz = src / "photo.xyz"
    png_as_xyz.write_bytes(photo.read_bytes())
    bad = EXIT_BAD_INPUT
    cases.update([
        case("empty.jpg", bad, empty, ".jpg", "--masks", str(mask), *FAST),
        case("zero_size.png", bad, zero, ".png", "--masks", str(mask), *FAST),
        case("cut.png", bad, first_half(photo, src / "cut.png"), ".png", "--masks", str(mask), *FAST),
        case("cut.jpg", bad, first_half(src / "photo.jpg", src / "cut.jpg"), ".jpg", "--masks", str(mask), *FAST),
        case("cut.mp4", bad, first_half(src / "video.mp4", src / "cut.mp4"), ".mp4", "--masks", str(mask), *FAST),
        case("cut_faststart.mp4", bad, first_half(src / "faststart.mp4", src / "cut_fs.mp4"), ".mp4",
             "--masks", str(mask), *FAST),
        case("cut.mkv", bad, first_half(video, src / "cut.mkv"), ".mkv", "--masks", str(mask), *FAST),
        case("cut.gif", bad, first_half(src / "video.gif", src / "cut.gif"), ".gif", "--masks", str(mask), *FAST),
        case("one_pixel_car", bad, one, ".png", "--masks", str(one_car), "--dilate", "0", *FAST),
        case("one_pixel_road", EXIT_OK, one, ".png", "--masks", str(one_road), "--dilate", "0", *FAST),
        case("photo_mask_wrong_size", bad, photo, ".png", "--masks", str(small_mask), *FAST),
        case("video_mask_wrong_size", bad, video, ".mkv", "--masks", str(small_mask), *FAST),
        case("photo_mask_empty_dir", bad, photo, ".png", "--masks", str(empty_dir), *FAST),
        case("photo_mask_dir_of_two", bad, photo, ".png", "--masks", str(two_masks), *FAST),
        case("video_masks_too_few", bad, video, ".mkv", "--masks", str(two_masks), *FAST),
        case("video_mask_empty_dir", bad, video, ".mkv", "--masks", str(empty_dir), *FAST),
        case("photo_text_mask", bad, photo, ".png", "--masks", str(text_mask), *FAST),
        case("video_text_mask", bad, video, ".mkv", "--masks", str(text_mask), *FAST),
        case("photo_missing_mask", bad, photo, ".png", "--masks", str(src / "nowhere.png"), *FAST),
        case("photo_full_mask", bad, photo, ".png", "--masks", str(everything), *FAST),
        case("video_full_mask", bad, video, ".mkv", "--masks", str(everything), *FAST),
        case("gif_full_mask", bad, src / "video.gif", ".gif", "--masks", str(everything), *FAST),
        case("tiny_video", bad, tiny, ".mkv", "--masks", str(tiny_mask), "--dilate", "0", *FAST),
        case("audio_only", bad, audio_only, ".mp4", "--masks", str(mask), *FAST),
        case("png_named_xyz", bad, png_as_xyz, ".xyz", "--masks", str(mask), *FAST),
        case("photo_to_video_name", bad, photo, ".mp4", "--masks", str(mask), *FAST),
        case("video_to_photo_name", bad, video, ".png", "--masks", str(mask), *FAST),
        case("photo_unknown_output", bad, photo, ".abc", "--masks", str(mask), *FAST),
        case("photo_no_output_suffix", bad, photo, "", "--masks", str(mask), *FAST),
        case("mp4_lossless", bad, video, ".mp4", "--masks", str(mask), "--lossless", *FAST),
        case("output_in_missing_folder", bad, photo, ".png", "--masks", str(mask), *FAST,
             output=root / "out" / "missing" / "no" / "such" / "result.png"),
        case("output_is_input", bad, photo, ".png", "--masks", str(mask), *FAST, output=photo),
        case("input_is_a_folder", bad, empty_dir, ".png", "--masks", str(mask), *FAST),
        case("input_missing", bad, src / "nowhere.jpg", ".jpg", "--masks", str(mask), *FAST),
        case("save_masks_is_a_file", bad, photo, ".png", "--masks", str(mask), "--save-masks", str(a_file), *FAST),
        case("segment_every_zero", bad, video, ".mkv", "--masks", str(mask), "--segment-every", "0", *FAST),
        case("junk_model", bad, photo, ".png", "--masks", str(mask), "--model", str(junk_model),
             "--inpainter", "generator", "--shadow", "off"),
        case("missing_model", EXIT_UNAVAILABLE, photo, ".png", "--masks", str(mask), "--model",
             str(src / "none.pt"), "--inpainter", "generator", "--shadow", "off"),
    ])
    return cases


CASES = ["photo_ok", "video_ok", *(f"random{seed}{suffix}" for seed in range(2)
                                   for suffix in (".jpg", ".png", ".mp4", ".mkv", ".avi", ".gif", ".xyz")),
         "empty.jpg", "zero_size.png", "cut.png", "cut.jpg", "cut.mp4", "cut_faststart.mp4", "cut.mkv", "cut.gif",
         "one_pixel_car", "one_pixel_road", "photo_mask_wrong_size", "video_mask_wrong_size", "photo_mask_empty_dir",
         "photo_mask_dir_of_two", "video_masks_too_few", "video_mask_empty_dir", "photo_text_mask", "video_text_mask",
         "photo_missing_mask", "photo_full_mask", "video_full_mask", "gif_full_mask", "tiny_video", "audio_only",
         "png_named_xyz", "photo_to_video_name", "video_to_photo_name", "photo_unknown_output",
         "photo_no_output_suffix", "mp4_lossless", "output_in_missing_folder", "output_is_input",
         "input_is_a_folder", "input_missing", "save_masks_is_a_file", "segment_every_zero", "junk_model",
         "missing_model"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Case]:
    return build_corpus(tmp_path_factory.mktemp("fuzz"))


def test_the_corpus_is_what_the_test_runs(corpus):
    assert sorted(corpus) == sorted(CASES)


@pytest.mark.parametrize("name", CASES)
def test_a_bad_input_exits_cleanly_and_leaves_nothing(corpus, name, capsys):
    case = corpus[name]
    inputs_before = sorted(case.output.parent.iterdir()) if case.output.parent.is_dir() else []
    code = main(["remove", *case.args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == case.expected, err
    if code == EXIT_OK:
        assert case.output.is_file()
        return
    assert err.startswith("carremoval: error: "), err
    folder = case.output.parent
    if folder.is_dir():
        after = sorted(folder.iterdir())
        assert not [path.name for path in after if path.name.startswith(".")]  # no temp file
        assert after == inputs_before  # nothing new under the output name (or any other)
