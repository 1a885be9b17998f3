"""The README's usage examples run verbatim: every `carremoval ...` line of the fenced blocks of its "Use it"
section goes through carremoval.cli.main (args split by shlex) and must exit 0 and write what it names.

They run in a temporary folder laid out as the README assumes (the repository's folder, `../shared` beside it),
with copies of the files they name from ../shared/data. Videos are cut to their first TRIM_FRAMES frames, to keep
the test's time down; photos are copied as they are. The trained generator is a DVC output that a clean clone does
not have, so a small untrained generator stands in through $CARREMOVAL_MODEL (as in test_cli_robustness.py): the
examples check the command lines, not the fill's quality.
"""
from __future__ import annotations

import re
import shlex
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from carremoval.cli import build_parser, is_photo, main
from carremoval.models import build_generator, save_generator
from weights_support import no_network

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Use it"
SHARED_PREFIX = "../shared/"
TRIM_FRAMES = 8


def readme_blocks() -> list[list[str]]:
    """The `carremoval` command lines of each fenced code block in the README's usage section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    commands = [[line.strip() for line in block.splitlines() if line.strip().startswith("carremoval ")]
                for block in blocks]
    return [block for block in commands if block]


def arguments(line: str) -> list[str]:
    """The command line's arguments after `carremoval`, as a shell would split them (comments dropped)."""
    words = shlex.split(line, comments=True)
    assert words[0] == "carremoval", line
    return words[1:]


def runs_a_removal(block: list[str]) -> bool:
    return any(arguments(line)[:1] == ["remove"] and "--help" not in arguments(line) for line in block)


BLOCKS = readme_blocks()


def test_the_readme_has_photo_and_video_examples_on_real_files():
    assert len(BLOCKS) >= 2
    inputs = [arguments(line)[1] for block in BLOCKS for line in block if runs_a_removal([line])]
    assert any(is_photo(Path(name)) for name in inputs) and any(not is_photo(Path(name)) for name in inputs)
    for name in inputs:
        assert name.startswith(SHARED_PREFIX), f"{name}: README examples use the test data in ../shared"
        assert (REPO / name).is_file(), f"{name}: named in the README, missing beside the repository"


@pytest.mark.parametrize("line", [line for block in BLOCKS for line in block])
def test_every_example_parses(line):
    if "--help" in arguments(line) or "--version" in arguments(line):
        return
    build_parser().parse_args(arguments(line))


def copy_input(source: Path, target: Path) -> None:
    """A copy of a test file; a video cut to its first TRIM_FRAMES frames (same size, rate and codec family)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_photo(source):
        shutil.copyfile(source, target)
        return
    from carremoval.video import VideoWriter, probe, read_frames

    info = probe(source)
    with VideoWriter(target, info.width, info.height, Fraction(info.fps)) as writer:
        for index, frame in zip(range(TRIM_FRAMES), read_frames(source)):
            writer.write(frame)


@pytest.fixture
def readme_folder(tmp_path, monkeypatch) -> Path:
    """tmp/repo (the working directory) beside tmp/shared; a tiny generator as $CARREMOVAL_MODEL; no network."""
    work = tmp_path / "repo"
    work.mkdir()
    config = {"kind": "unet", "image_size": [32, 48], "base_channels": 4, "depth": 3}
    model = tmp_path / "tiny.pt"
    save_generator(model, build_generator(**config), config)
    monkeypatch.setenv("CARREMOVAL_MODEL", str(model))
    monkeypatch.chdir(work)
    no_network(monkeypatch)
    return work


def check_outputs(args: list[str]) -> None:
    """What the command names as output exists: the -o file, and the --save-masks folder with PNGs in it."""
    if "-o" in args:
        output = Path(args[args.index("-o") + 1])
        assert output.is_file() and output.stat().st_size > 0, f"{output}: not written"
    if "--save-masks" in args:
        folder = Path(args[args.index("--save-masks") + 1])
        assert any(folder.glob("*.png")), f"{folder}: no mask written"


@pytest.mark.parametrize("block", [
    pytest.param(block, marks=[pytest.mark.slow] if runs_a_removal(block) else [], id=f"block{number}")
    for number, block in enumerate(BLOCKS)])
def test_the_readme_examples_run(block, readme_folder, capsys):
    for line in block:
        args = arguments(line)
        for name in args:
            if name.startswith(SHARED_PREFIX) and not (readme_folder / name).exists():
                copy_input(REPO / name, readme_folder / name)
        try:
            code = main(args)
        except SystemExit as stop:   # --help and --version exit through argparse
            code = stop.code
        err = capsys.readouterr().err
        assert code == 0, f"`{line}` exited with {code}: {err}"
        check_outputs(args)
