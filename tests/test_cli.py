"""`carremoval remove` end to end on real photos and a real DAVIS clip: outputs, exit codes, bad input."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from carremoval.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_UNAVAILABLE, main
from carremoval.io import read_mask, read_rgb
from carremoval.masks import prepare_mask
from carremoval.video import VideoWriter, probe, read_frames
from weights_support import no_network

CLIP_FRAMES = 12


@pytest.fixture(scope="module")
def davis_clip(tmp_path_factory, shared_data):
    """The first frames of DAVIS car-shadow as a lossless video, with their real masks in a folder."""
    root = tmp_path_factory.mktemp("clip")
    sequence = shared_data / "videos/davis/car-shadow"
    frames = sorted((sequence / "frames").glob("*.jpg"))[:CLIP_FRAMES]
    masks = root / "masks"
    masks.mkdir()
    with VideoWriter(root / "clip.mkv", 854, 480, Fraction(24), lossless=True) as writer:
        for frame in frames:
            writer.write(read_rgb(frame))
            (masks / f"{frame.stem}.png").write_bytes((sequence / "masks" / f"{frame.stem}.png").read_bytes())
    return root / "clip.mkv", masks


def remove_help(capsys, monkeypatch, columns: int = 118) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit) as exit_info:
        main(["remove", "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_help_lists_the_options_and_points_to_the_exit_codes(capsys, monkeypatch, repo):
    text = remove_help(capsys, monkeypatch)
    for option in ("--masks", "--model", "--dilate", "--device", "--shadow-margin", "--save-masks", "--inpainter"):
        assert option in text
    assert text.rstrip().splitlines()[-1].startswith("More (masks, output formats, model lookup, exit codes): "
                                                     "docs/cli.md")
    assert "## Exit codes" in (repo / "docs/cli.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("columns", [100, 120])
def test_help_fits_one_screen_with_the_examples_first(capsys, monkeypatch, columns):
    lines = remove_help(capsys, monkeypatch, columns).rstrip().splitlines()
    assert len(lines) <= 45 and max(map(len, lines)) <= columns
    assert lines[0] == "usage: carremoval remove [options] INPUT"
    assert lines.index("examples:") < lines.index("positional arguments:")


def test_the_exit_codes_of_docs_cli_are_the_programs(repo):
    """docs/cli.md's exit-code table lists exactly the codes main() returns."""
    from carremoval import cli

    text = (repo / "docs/cli.md").read_text(encoding="utf-8").split("## Exit codes", 1)[1]
    documented = set()
    for line in text.splitlines():
        if line.startswith("| ") and line[2].isdigit():
            documented |= {int(code) for code in line.split("|")[1].split("/")}
    assert documented == {cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_BAD_INPUT, cli.EXIT_UNAVAILABLE,
                          cli.EXIT_INTERRUPTED, cli.EXIT_TERMINATED}


def test_version_is_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"carremoval {version('carremoval')}"


def test_photo_with_a_given_mask_changes_only_the_dilated_hole(tmp_path, shared_data):
    photo = shared_data / "photos/cars/rembg_car-2.jpg"
    mask_file = shared_data / "photos/cars/rembg_car-2.mask.png"
    out = tmp_path / "clean.png"
    assert main(["remove", str(photo), "-o", str(out), "--masks", str(mask_file), "--inpainter", "telea",
                 "--dilate", "5", "--shadow", "off"]) == EXIT_OK
    before, after = read_rgb(photo), read_rgb(out)
    hole = prepare_mask(read_mask(mask_file), 5)
    assert after.shape == before.shape
    assert np.array_equal(after[~hole], before[~hole])
    assert np.abs(after[hole].astype(int) - before[hole]).mean() > 10


def test_video_with_mask_folder_keeps_frames_fps_and_pixels_outside_the_hole(tmp_path, davis_clip):
    clip, masks = davis_clip
    out = tmp_path / "clean.mkv"
    assert main(["remove", str(clip), "-o", str(out), "--masks", str(masks), "--inpainter", "telea",
                 "--lossless", "--no-progress", "--shadow", "off"]) == EXIT_OK
    source, result = probe(clip), probe(out)
    assert (result.width, result.height, result.fps) == (source.width, source.height, source.fps)
    frames_in, frames_out = list(read_frames(clip)), list(read_frames(out))
    assert len(frames_out) == len(frames_in) == CLIP_FRAMES
    mask_files = sorted(masks.glob("*.png"))
    for frame_in, frame_out, mask_file in zip(frames_in, frames_out, mask_files):
        hole = prepare_mask(read_mask(mask_file), 7)
        assert np.array_equal(frame_out[~hole], frame_in[~hole])


def test_corrupt_video_is_a_clear_error_and_leaves_no_output(tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    mask = tmp_path / "mask.png"
    Image.new("L", (8, 8)).save(mask)
    out = tmp_path / "out.mp4"
    assert main(["remove", str(broken), "-o", str(out), "--masks", str(mask), "--inpainter", "telea"]) \
        == EXIT_BAD_INPUT
    assert "broken.mp4" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4", "mask.png"]


def test_mask_of_the_wrong_size_names_the_mask(tmp_path, shared_data, capsys):
    wrong = tmp_path / "wrong.png"
    Image.new("L", (10, 10)).save(wrong)
    out = tmp_path / "out.png"
    code = main(["remove", str(shared_data / "photos/cars/rembg_car-1.jpg"), "-o", str(out), "--masks", str(wrong),
                 "--inpainter", "telea"])
    assert code == EXIT_BAD_INPUT and "wrong.png: mask is 10x10" in capsys.readouterr().err
    assert not out.exists()


def test_output_in_a_missing_directory(tmp_path, shared_data, capsys):
    code = main(["remove", str(shared_data / "photos/cars/rembg_car-1.jpg"), "-o", str(tmp_path / "no" / "x.png"),
                 "--masks", str(shared_data / "photos/cars/rembg_car-1.mask.png")])
    assert code == EXIT_BAD_INPUT and "does not exist" in capsys.readouterr().err


def test_missing_model_and_missing_segmenter_weights_exit_3(tmp_path, shared_data, capsys, monkeypatch):
    photo = str(shared_data / "photos/cars/rembg_car-1.jpg")
    code = main(["remove", photo, "-o", str(tmp_path / "a.png"), "--model", str(tmp_path / "none.pt"),
                 "--masks", str(shared_data / "photos/cars/rembg_car-1.mask.png")])
    assert code == EXIT_UNAVAILABLE and "none.pt: no trained generator" in capsys.readouterr().err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = main(["remove", photo, "-o", str(tmp_path / "b.png"), "--segmenter-weights", str(tmp_path / "no.pth")])
    assert code == EXIT_UNAVAILABLE and "--masks DIR" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_raft_flow_without_weights_exits_3_and_writes_nothing(tmp_path, davis_clip, capsys, monkeypatch):
    clip, masks = davis_clip
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    no_network(monkeypatch)
    out = tmp_path / "clean.mkv"
    code = main(["remove", str(clip), "-o", str(out), "--masks", str(masks), "--inpainter", "telea", "--lossless",
                 "--no-progress", "--flow", "raft_small"])
    error = capsys.readouterr().err
    assert code == EXIT_UNAVAILABLE and "--flow raft_small" in error and "--flow dis" in error
    assert [path.name for path in tmp_path.iterdir() if path.name != "torch"] == []  # no output, no temp file


def test_the_installed_command_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "carremoval.cli", "remove", "--help"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and "carremoval remove" in result.stdout


def test_a_mask_over_the_whole_photo_exits_2_and_writes_nothing(tmp_path, shared_data, capsys):
    photo = shared_data / "photos/cars/rembg_car-2.jpg"
    width, height = Image.open(photo).size
    everything = tmp_path / "all.png"
    Image.fromarray(np.full((height, width), 255, np.uint8)).save(everything)
    out = tmp_path / "clean.png"
    code = main(["remove", str(photo), "-o", str(out), "--masks", str(everything), "--inpainter", "patchmatch"])
    assert code == EXIT_BAD_INPUT and "covers the whole photo" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_patchmatch_and_a_one_pixel_photo(tmp_path, shared_data):
    photo = shared_data / "photos/cars/rembg_car-2.jpg"
    mask_file = shared_data / "photos/cars/rembg_car-2.mask.png"
    out = tmp_path / "clean.png"
    assert main(["remove", str(photo), "-o", str(out), "--masks", str(mask_file), "--inpainter", "patchmatch",
                 "--shadow", "off"]) == EXIT_OK
    hole = prepare_mask(read_mask(mask_file), 7)
    assert np.array_equal(read_rgb(out)[~hole], read_rgb(photo)[~hole])
    tiny, tiny_mask = tmp_path / "tiny.png", tmp_path / "tiny.mask.png"
    Image.fromarray(np.full((1, 2, 3), 200, np.uint8)).save(tiny)
    Image.fromarray(np.array([[255, 0]], np.uint8)).save(tiny_mask)
    assert main(["remove", str(tiny), "-o", str(tmp_path / "t.png"), "--masks", str(tiny_mask), "--dilate", "0",
                 "--inpainter", "patchmatch"]) == EXIT_OK
    assert read_rgb(tmp_path / "t.png").shape == (1, 2, 3)


def test_the_segmenter_choices_are_the_library_models():
    from carremoval.cli import SEGMENTERS
    from carremoval.segmentation import MODELS

    assert set(SEGMENTERS) == set(MODELS)


def test_auto_masks_on_a_photo_offline(tmp_path, shared_data, capsys, monkeypatch):
    """The default --masks auto finds the car with ESPNetv2 from this repository's params, without a network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    no_network(monkeypatch)
    photo = shared_data / "photos/cars/rembg_car-3.jpg"
    out = tmp_path / "clean.png"
    assert main(["remove", str(photo), "-o", str(out), "--inpainter", "telea"]) == EXIT_OK
    assert "pixels replaced" in capsys.readouterr().out
    changed = np.any(read_rgb(out) != read_rgb(photo), axis=2)
    car = read_mask(shared_data / "photos/cars/rembg_car-3.mask.png")
    assert changed[car].mean() > 0.9, "the car is replaced"
    assert changed[~prepare_mask(car, 40)].mean() < 0.02, "little else is"


def test_auto_masks_on_a_photo_without_a_car(tmp_path, shared_data, capsys):
    """A building with no car: nothing is replaced, and the summary says so. (ESPNetv2 does see cars in some
    photos far from its street scenes, e.g. in a lake's reflections: docs/segmentation.md.)"""
    photo = shared_data / "photos/backgrounds/opencv_building.jpg"
    out = tmp_path / "clean.png"
    assert main(["remove", str(photo), "-o", str(out), "--inpainter", "telea"]) == EXIT_OK
    assert "no car found" in capsys.readouterr().out
    assert np.array_equal(read_rgb(out), read_rgb(photo))


def test_segmenter_weights_that_fail_their_checksum_exit_3(tmp_path, shared_data, capsys):
    fake = tmp_path / "espnetv2_s_2.0_city_1024x512.pth"
    fake.write_bytes(b"not weights")
    out = tmp_path / "clean.png"
    code = main(["remove", str(shared_data / "photos/cars/rembg_car-3.jpg"), "-o", str(out), "--inpainter", "telea",
                 "--segmenter", "espnetv2_city", "--segmenter-weights", str(fake)])
    error = capsys.readouterr().err
    assert code == EXIT_UNAVAILABLE and str(fake) in error and "sha256" in error and not out.exists()


@pytest.mark.slow
def test_auto_masks_on_a_video(tmp_path, davis_clip, capsys):
    """Every frame's hole covers the DAVIS car (the only moving car) with the default --cars moving."""
    clip, masks = davis_clip
    out = tmp_path / "clean.mkv"
    assert main(["remove", str(clip), "-o", str(out), "--inpainter", "telea", "--lossless", "--no-progress",
                 "--shadow", "off"]) == EXIT_OK
    for frame, cleaned, mask_file in zip(read_frames(clip), read_frames(out), sorted(masks.iterdir())):
        changed = np.any(frame != cleaned, axis=2)
        car = read_mask(mask_file)
        assert changed[car].mean() > 0.9
        assert changed[~prepare_mask(car, 40)].mean() < 0.02


def test_the_default_segmenters_are_the_evaluated_ones(repo):
    from carremoval.cli import DEFAULT_SEGMENTER
    from carremoval.params import load_params

    evaluated = load_params(repo / "params.yaml")["evaluate_segmentation"]
    assert DEFAULT_SEGMENTER == {"photo": evaluated["photo_model"], "video": evaluated["video_model"]}


def test_shadow_auto_and_save_masks_on_a_photo(tmp_path, shared_data, capsys):
    """rembg_car-1: the car's shadow on the ground goes too; the hole written by --save-masks is what changed."""
    photo = shared_data / "photos/cars/rembg_car-1.jpg"
    car = read_mask(shared_data / "photos/cars/rembg_car-1.mask.png")
    holes = {}
    for shadow in ("off", "auto"):
        out, masks = tmp_path / f"{shadow}.png", tmp_path / f"masks_{shadow}"
        assert main(["remove", str(photo), "-o", str(out), "--masks", str(shared_data / "photos/cars/rembg_car-1.mask.png"),
                     "--inpainter", "telea", "--shadow", shadow, "--save-masks", str(masks)]) == EXIT_OK
        holes[shadow] = read_mask(masks / "rembg_car-1.png")
        changed = np.any(read_rgb(out) != read_rgb(photo), axis=2)
        assert not changed[~holes[shadow]].any()
    assert np.array_equal(holes["off"], prepare_mask(car, 7))
    added = holes["auto"] & ~holes["off"]
    assert 0.05 * car.sum() < added.sum() < 1.0 * car.sum()
    assert added[: np.nonzero(car.any(1))[0].min() + car.any(1).sum() // 3].sum() == 0  # beside or under the car


def test_save_masks_on_a_video_writes_one_hole_per_frame(tmp_path, davis_clip):
    clip, masks = davis_clip
    out, saved = tmp_path / "clean.mkv", tmp_path / "holes"
    assert main(["remove", str(clip), "-o", str(out), "--masks", str(masks), "--inpainter", "telea", "--lossless",
                 "--no-progress", "--save-masks", str(saved)]) == EXIT_OK
    files = sorted(saved.iterdir())
    assert [file.name for file in files] == [f"{index:05d}.png" for index in range(CLIP_FRAMES)]
    for frame, cleaned, hole_file, mask_file in zip(read_frames(clip), read_frames(out), files, sorted(masks.iterdir())):
        hole = read_mask(hole_file)
        assert np.all(hole[read_mask(mask_file)])
        assert np.array_equal(frame[~hole], cleaned[~hole])
