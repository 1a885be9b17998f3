"""The atomic writers and the readers' error messages."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from carremoval.io import InputError, atomic_dir, atomic_file, read_jsonl, read_mask, read_rgb, write_jsonl


def test_atomic_file_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("good")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_dir_replaces_the_whole_directory(tmp_path):
    target = tmp_path / "images"
    target.mkdir()
    (target / "stale.png").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.png").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_atomic_dir_leaves_the_old_directory_on_error(tmp_path):
    target = tmp_path / "images"
    target.mkdir()
    (target / "good.png").write_text("good")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "half.png").write_text("half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["good.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_jsonl_round_trip_and_bad_line_names_the_file(tmp_path):
    path = tmp_path / "manifest.jsonl"
    write_jsonl(path, [{"b": 1, "a": 2}, {"c": "ж"}])
    assert read_jsonl(path) == [{"a": 2, "b": 1}, {"c": "ж"}]
    path.write_text('{"a": 1}\n{broken\n')
    with pytest.raises(InputError, match=r"manifest.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_read_rgb_converts_grey_rgba_and_16_bit(tmp_path):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((4, 5), 200, np.uint8)).save(grey)
    assert read_rgb(grey).shape == (4, 5, 3)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((4, 5, 4), np.uint8)).save(rgba)
    assert read_rgb(rgba).shape == (4, 5, 3)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 5), 65535, np.uint16)).save(deep)
    assert read_rgb(deep).max() == 255


def test_readers_name_the_file_and_the_problem(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"<html>not an image</html>")
    with pytest.raises(InputError, match="broken.jpg: not a readable image"):
        read_rgb(broken)
    with pytest.raises(InputError, match="missing.png: file not found"):
        read_rgb(tmp_path / "missing.png")
    mask = tmp_path / "mask.png"
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(mask)
    with pytest.raises(InputError, match=r"mask.png: mask is 5x4, the frame is 6x4"):
        read_mask(mask, shape=(4, 6))


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    with atomic_file(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "f").write_text("x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o044 == 0o044
    assert (tmp_path / "d").stat().st_mode & 0o055 == 0o055
