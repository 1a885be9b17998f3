"""Video in and out: frames, size, fps and count kept, lossless .mkv, audio copied, clear errors, atomic output."""
from __future__ import annotations

import itertools
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from carremoval.io import InputError
from carremoval.video.evaluation import read_frame_dir
from carremoval.video.io import VideoReader, VideoWriter, probe, read_frames


@pytest.fixture(scope="module")
def clip(shared_data):
    """12 real DAVIS frames at an odd size (215x121), so 4:2:0 chroma cannot be used."""
    return read_frame_dir(shared_data / "videos/davis/car-shadow/frames", (215, 121), limit=12)


def write(path, frames, fps=Fraction(24), **kwargs):
    with VideoWriter(path, frames[0].shape[1], frames[0].shape[0], fps, **kwargs) as writer:
        for frame in frames:
            writer.write(frame)


def make_clip_with_audio(path, frames, audio_codec="aac", seconds=1.0, rate=16000):
    """A small video with a sine-tone audio track, written with PyAV."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = frames[0].shape[1] & ~1, frames[0].shape[0] & ~1, "yuv420p"
        audio = container.add_stream(audio_codec, rate=rate, layout="mono")
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: video.height, : video.width]),
                                                 format="rgb24")
            picture.pts = index
            container.mux(video.encode(picture))
        tone = (np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 440 / rate) * 0.3).astype(np.float32)
        for start in range(0, len(tone), 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = rate, start
            container.mux(audio.encode(chunk))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))


def test_lossless_mkv_round_trip_is_bit_exact(tmp_path, clip):
    path = tmp_path / "clip.mkv"
    write(path, clip, fps=Fraction(30000, 1001))
    info = probe(path)
    assert (info.width, info.height, info.fps) == (215, 121, Fraction(30000, 1001))
    back = list(read_frames(path))
    assert len(back) == len(clip)
    assert all(np.array_equal(a, b) for a, b in zip(back, clip))


def test_h264_keeps_size_fps_and_count_at_an_odd_size(tmp_path, clip):
    path = tmp_path / "clip.mp4"
    write(path, clip, fps=Fraction(25), crf=12)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.frames, info.codec) == (215, 121, 25, 12, "h264")
    back = list(read_frames(path))
    assert len(back) == 12 and back[0].shape == (121, 215, 3)
    assert np.abs(back[5].astype(int) - clip[5]).mean() < 3


def test_real_avi_is_read_whole(shared_data):
    reader = VideoReader(shared_data / "videos/static/video.avi")
    assert (reader.info.width, reader.info.height, reader.info.fps, reader.info.frames) == (640, 360, 30, 374)
    assert reader.info.has_audio
    first = next(iter(reader))
    assert first.shape == (360, 640, 3) and first.dtype == np.uint8


def test_audio_is_copied(tmp_path, clip):
    source = tmp_path / "with_audio.mp4"
    make_clip_with_audio(source, clip)
    output = tmp_path / "out.mp4"
    info = probe(source)
    with VideoWriter(output, info.width, info.height, info.fps, audio_from=source) as writer:
        for frame in read_frames(source):
            writer.write(frame)
    with av.open(str(source)) as original, av.open(str(output)) as copied:
        assert copied.streams.audio[0].codec_context.name == "aac"
        packets = [p.size for p in copied.demux(copied.streams.audio[0]) if p.dts is not None]
        expected = [p.size for p in original.demux(original.streams.audio[0]) if p.dts is not None]
        assert packets == expected  # stream copy: the very same packets
    assert probe(output).frames == len(clip)


def test_audio_the_container_cannot_hold_is_re_encoded(tmp_path, clip):
    source = tmp_path / "pcm.mkv"
    make_clip_with_audio(source, clip, audio_codec="pcm_u8")  # MP4 cannot hold 8-bit PCM
    output = tmp_path / "out.mp4"
    info = probe(source)
    with VideoWriter(output, info.width, info.height, info.fps, audio_from=source) as writer:
        for frame in read_frames(source):
            writer.write(frame)
    with av.open(str(output)) as copied:
        audio = copied.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert float(copied.duration / av.time_base) == pytest.approx(1.0, abs=0.15)


def test_corrupt_and_truncated_videos_name_the_file(tmp_path, shared_data):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="garbage.mp4"):
        probe(garbage)
    with pytest.raises(InputError, match="missing.mp4: file not found"):
        probe(tmp_path / "missing.mp4")
    source = (shared_data / "videos/static/video.avi").read_bytes()
    truncated = tmp_path / "cut.avi"
    truncated.write_bytes(source[: len(source) // 3])
    with pytest.raises(InputError, match=r"cut.avi: truncated or corrupt: decoded \d+ of 374 frames"):
        for _ in read_frames(truncated):
            pass
    cut_mp4 = tmp_path / "cut.mp4"
    cut_mp4.write_bytes((shared_data / "videos/other/test_video.mp4").read_bytes()[:50000])
    with pytest.raises(InputError, match="cut.mp4"):
        for _ in read_frames(cut_mp4):
            pass


def test_bad_output_paths(tmp_path, clip):
    with pytest.raises(InputError, match="does not exist"):
        write(tmp_path / "no" / "such" / "dir.mp4", clip)
    with pytest.raises(InputError, match="unsupported output type '.png'"):
        write(tmp_path / "out.png", clip)
    with pytest.raises(InputError, match="name the output .mkv"):
        write(tmp_path / "out.mp4", clip, lossless=True)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_leaves_nothing_under_the_output_name(tmp_path, clip):
    output = tmp_path / "out.mp4"
    output.write_bytes(b"the previous good output")
    with pytest.raises(RuntimeError, match="stop"):
        with VideoWriter(output, 215, 121, Fraction(24)) as writer:
            for frame in itertools.islice(clip, 5):
                writer.write(frame)
            raise RuntimeError("stop")
    assert output.read_bytes() == b"the previous good output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_wrong_frame_size_is_refused(tmp_path, clip):
    with pytest.raises(ValueError, match=r"frame 1 is \(120, 215, 3\)"):
        write(tmp_path / "out.mkv", [clip[0], cv2.resize(clip[1], (215, 120))])
    assert list(tmp_path.iterdir()) == []
