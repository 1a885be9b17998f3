"""remove_video end to end: decode -> temporal remover -> encode, on a real DAVIS clip and its real masks."""
from __future__ import annotations

import shutil
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from carremoval.inpainters import telea
from carremoval.io import InputError
from carremoval.video import TemporalConfig, mask_from_file, masks_from_dir, probe, read_frames, remove_video
from carremoval.video.evaluation import borrowed_masks, read_frame_dir
from carremoval.video.io import VideoWriter
from carremoval.masks import prepare_mask
from test_video_io import make_clip_with_audio

SIZE = (320, 180)
COUNT = 20
CONFIG = TemporalConfig(chunk_frames=12, overlap_frames=3, dilate_px=4, shadow="off")   # the car's hole exactly


@pytest.fixture(scope="module")
def clip(shared_data, tmp_path_factory):
    """A lossless .mkv of 20 real car-shadow frames at 29.97 fps, and a folder with its 20 car masks."""
    folder = tmp_path_factory.mktemp("clip")
    root = shared_data / "videos/davis/car-shadow"
    frames = read_frame_dir(root / "frames", SIZE, COUNT)
    with VideoWriter(folder / "input.mkv", *SIZE, Fraction(30000, 1001)) as writer:
        for frame in frames:
            writer.write(frame)
    masks = borrowed_masks(root / "masks", COUNT, SIZE)
    (folder / "masks").mkdir()
    for index, mask in enumerate(masks):
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / f"{index:05d}.png")
    return folder, frames, masks


def test_lossless_output_is_bit_identical_outside_the_hole(clip, tmp_path):
    folder, frames, masks = clip
    output = tmp_path / "clean.mkv"
    stats = remove_video(folder / "input.mkv", output, masks_from_dir(folder / "masks"), telea(), CONFIG,
                         progress=False)
    info = probe(output)
    assert (info.width, info.height, info.fps) == (*SIZE, Fraction(30000, 1001))
    result = list(read_frames(output))
    assert len(result) == COUNT
    for frame, mask, out in zip(frames, masks, result):
        hole = prepare_mask(mask, CONFIG.dilate_px)
        assert np.array_equal(out[~hole], frame[~hole])
        assert not np.array_equal(out[hole], frame[hole])
    assert stats["frames"] == stats["frames_in"] == stats["frames_out"] == COUNT
    assert stats["fps_in"] == stats["fps_out"] == pytest.approx(29.97, abs=0.01)
    assert 0 < stats["propagated_fraction"] <= 1 and stats["processing_fps"] > 0
    assert stats["static_camera"] is False


def test_mp4_output_keeps_count_fps_size_and_audio(clip, tmp_path):
    folder, frames, _ = clip
    source = tmp_path / "with_audio.mp4"
    make_clip_with_audio(source, frames)
    output = tmp_path / "clean.mp4"
    mask = np.zeros((SIZE[1], SIZE[0]), bool)
    mask[60:120, 100:180] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "region.png")
    stats = remove_video(source, output, mask_from_file(tmp_path / "region.png"), telea(), CONFIG, progress=False)
    assert stats["audio"] is True
    info, original = probe(output), probe(source)
    assert (info.width, info.height, info.fps, info.frames) == (original.width, original.height, 12, COUNT)
    with av.open(str(source)) as before, av.open(str(output)) as after:
        assert after.streams.audio[0].codec_context.name == "aac"
        copied = [p.size for p in after.demux(after.streams.audio[0]) if p.dts is not None]
        assert copied == [p.size for p in before.demux(before.streams.audio[0]) if p.dts is not None]


def test_bad_inputs_leave_no_output(clip, tmp_path):
    folder, _, _ = clip
    masks = masks_from_dir(folder / "masks")
    output = tmp_path / "out.mkv"
    corrupt = tmp_path / "corrupt.mkv"
    corrupt.write_bytes(b"\x1aE\xdf\xa3" + bytes(5000))
    with pytest.raises(InputError, match="corrupt.mkv"):
        remove_video(corrupt, output, masks, telea(), CONFIG, progress=False)
    few = tmp_path / "few_masks"
    shutil.copytree(folder / "masks", few)
    for extra in sorted(few.iterdir())[15:]:
        extra.unlink()
    with pytest.raises(InputError, match="few_masks: 15 masks, but the video has more frames"):
        remove_video(folder / "input.mkv", output, masks_from_dir(few), telea(), CONFIG, progress=False)
    many = tmp_path / "many_masks"
    shutil.copytree(folder / "masks", many)
    shutil.copy(many / "00000.png", many / "00020.png")
    with pytest.raises(InputError, match="many_masks: 21 masks for a video of 20 frames"):
        remove_video(folder / "input.mkv", output, masks_from_dir(many), telea(), CONFIG, progress=False)
    small = tmp_path / "small.png"
    Image.new("L", (100, 50)).save(small)
    with pytest.raises(InputError, match="small.png: mask is 100x50, the frame is 320x180"):
        remove_video(folder / "input.mkv", output, mask_from_file(small), telea(), CONFIG, progress=False)
    with pytest.raises(InputError, match="the output folder .*missing does not exist"):
        remove_video(folder / "input.mkv", tmp_path / "missing" / "out.mkv", masks, telea(), CONFIG, progress=False)
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.mkv", "few_masks", "many_masks", "small.png"]


def test_malloc_arenas_are_capped_unless_the_user_set_them(monkeypatch):
    """The cap is what keeps the peak memory flat over a long video (make bench); the user's own setting wins."""
    from carremoval.video.remove import cap_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert cap_malloc_arenas.__wrapped__() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert cap_malloc_arenas.__wrapped__() is False
