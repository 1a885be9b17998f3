"""`carremoval remove INPUT -o OUTPUT`: remove cars from a photo or a video."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from carremoval.io import InputError, read_mask
from carremoval.params import load_params, package_repo, resolve_path
from carremoval.video.auto_masks import CAR_CHOICES, AutoMaskSettings
from carremoval.video.flow import FLOW_METHODS
from carremoval.video.io import is_video_path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM
MODEL_ENV = "CARREMOVAL_MODEL"
DEVICE_TYPES = ("auto", "cpu", "cuda")
INPAINTERS = ("textured", "generator", "patchmatch", "telea", "ns")
SEGMENTERS = ("espnetv2", "espnetv2_city", "espnetv2_voc", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large")
# carremoval.segmentation.MODELS, named here so that --help does not import torch (a test keeps them equal)
DEFAULT_SEGMENTER = {"photo": "espnetv2", "video": "espnetv2"}   # = params.yaml evaluate_segmentation

EXAMPLES = """\
Remove the cars from a photo or a video and fill their place with background. Pixels outside
the hole (car, shadow, dilation) stay as they were.

examples:
  carremoval remove street.jpg                         every car, found automatically
  carremoval remove street.jpg --masks car.png         your own mask: a PNG, 255 = car
  carremoval remove street.jpg --save-masks holes/     also write the hole that was replaced
  carremoval remove drive.mp4 -o clean.mp4             a video: moving cars go, parked cars stay
  carremoval remove dashcam.mp4 --cars all             every car, also those the camera follows
  carremoval remove drive.mp4 -o clean.mkv --lossless  lossless video (FFV1)
"""
MORE_HELP = "More (masks, output formats, model lookup, exit codes): docs/cli.md in the carremoval repository"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """One line per option: help texts start at column 30, lines up to 118 columns (less on a narrow terminal)."""

    def __init__(self, prog: str) -> None:
        import shutil

        super().__init__(prog, max_help_position=30, width=min(shutil.get_terminal_size().columns, 118))


class Unavailable(Exception):
    """A model or segmenter the command needs cannot be loaded here."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that temp files are cleaned up as for Ctrl-C."""


def package_version() -> str:
    """The installed package's version (its metadata), or "unknown" when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("carremoval")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carremoval", description="Remove cars from photos and videos.",
                                     epilog="carremoval remove --help: the options and examples")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    remove = commands.add_parser(
        "remove", help="remove the car(s) from a photo or a video", usage="%(prog)s [options] INPUT",
        description=EXAMPLES, epilog=MORE_HELP, formatter_class=HelpFormatter,
    )
    remove.add_argument("input", type=Path, metavar="INPUT", help="a photo (.jpg, .png, ...) or a video (.mp4, .mkv, ...)")
    remove.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="the result (default: INPUT_nocar); its extension sets the format")

    masks = remove.add_argument_group("what goes")
    masks.add_argument("--masks", default="auto", metavar="auto|DIR|FILE",
                       help="auto (default), one PNG per frame in DIR, or one PNG FILE")
    masks.add_argument("--cars", choices=CAR_CHOICES, metavar="all|largest|moving",
                       help="with --masks auto (default: moving in a video, all in a photo)")
    masks.add_argument("--shadow", choices=("auto", "off"), default="auto", metavar="auto|off",
                       help="also remove each car's shadow (default: auto)")
    masks.add_argument("--shadow-margin", type=int, default=0, metavar="PX",
                       help="also remove a band this high below the car (default: 0)")
    masks.add_argument("--dilate", type=int, default=7, metavar="PX", help="grow the hole by PX pixels (default: 7)")
    masks.add_argument("--save-masks", type=Path, metavar="DIR", help="write the hole actually replaced as PNGs into DIR")
    masks.add_argument("--segmenter", choices=SEGMENTERS, metavar="NAME",
                       help="for --masks auto: espnetv2 (both models, the default), espnetv2_voc, ...")
    masks.add_argument("--segmenter-weights", metavar="PATH",
                       help="a weights file or folder, or DEFAULT (the torch hub cache)")
    masks.add_argument("--segment-every", type=int, default=AutoMaskSettings.every, metavar="K",
                       help=f"video, --masks auto: segment every K-th frame (default: {AutoMaskSettings.every})")

    fill = remove.add_argument_group("how the hole is filled")
    fill.add_argument("--inpainter", choices=INPAINTERS, default="textured", metavar="NAME",
                      help="textured (default), generator; patchmatch, telea, ns need no model")
    fill.add_argument("--model", type=Path, metavar="FILE",
                      help="the generator (default: $CARREMOVAL_MODEL, models/generator.pt, ...)")
    fill.add_argument("--device", default="auto", metavar="DEV", help="auto | cpu | cuda | cuda:N (default: auto)")
    fill.add_argument("--flow", choices=FLOW_METHODS, default="dis", metavar="NAME",
                      help="video: optical flow, dis (default), raft_small, raft_large")
    fill.add_argument("--flow-weights", default="DEFAULT", metavar="PATH",
                      help="for --flow raft_*: DEFAULT (torchvision) or a .pth state dict")
    fill.add_argument("--lossless", action="store_true", help="video: encode losslessly (FFV1, write .mkv)")

    other = remove.add_argument_group("other")
    other.add_argument("--no-progress", action="store_true", help="no progress bar")
    other.add_argument("-v", "--verbose", action="store_true", help="log more; tracebacks of unexpected errors")
    return parser


def default_output(input_path: Path) -> Path:
    """INPUT_nocar.<same extension>; for a video whose container we do not write, INPUT_nocar.mp4."""
    if is_photo(input_path):
        return input_path.with_name(f"{input_path.stem}_nocar{input_path.suffix}")
    from carremoval.video.io import default_video_output

    return default_video_output(input_path)


def user_model_path() -> Path:
    """The installed default model: $XDG_CACHE_HOME/carremoval/generator.pt, else ~/.cache/carremoval/..."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "carremoval" / "generator.pt"


def model_candidates(model: Path | None) -> list[tuple[str, Path]]:
    """Where the generator is looked for, in order, each with where that place comes from: --model alone when
    given, else $CARREMOVAL_MODEL alone when set, else this package's repository and the user cache."""
    if model is not None:
        return [("--model", model)]
    if os.environ.get(MODEL_ENV):
        return [(f"${MODEL_ENV}", Path(os.path.expanduser(os.environ[MODEL_ENV])))]
    places = []
    repo = package_repo()
    if repo is not None:
        places.append(("the package's repository", repo / "models" / "generator.pt"))
    places.append(("the user cache", user_model_path()))
    return places


def find_model(model: Path | None) -> Path:
    """The first generator file of model_candidates, or Unavailable listing every place looked at."""
    places = model_candidates(model)
    for _, path in places:
        if path.is_file():
            return path
    looked = "; ".join(f"{path}: no trained generator there ({origin})" for origin, path in places)
    raise Unavailable(f"{looked}. Run `make repro`, pass --model FILE, set ${MODEL_ENV}, or use --inpainter "
                      "telea, ns or patchmatch")


def is_photo(path: Path) -> bool:
    """An image by its extension; GIF and the MPEG extensions Pillow also reads are videos here."""
    return path.suffix.lower() in Image.registered_extensions() and not is_video_path(path)


def build_inpainter(args: argparse.Namespace, device, video: bool = False,
                    find_cars: Callable[[np.ndarray], np.ndarray] | None = None):
    """The Inpainter for holes no frame shows: the trained generator (with texture synthesis, or alone), or a
    classical baseline; a video's keyframes get the texture synthesis' video settings. The texture synthesis
    never copies the pixels `find_cars` (an RGB image -> HxW bool) gives."""
    from carremoval.exemplar import ExemplarSettings
    from carremoval.inpainters import TexturedInpainter, cv2_inpainter, patchmatch
    from carremoval.removal import CropPolicy, GeneratorInpainter

    if args.inpainter == "patchmatch":
        return patchmatch()
    if args.inpainter in ("telea", "ns"):
        return cv2_inpainter(args.inpainter)
    model = find_model(args.model)
    generator = GeneratorInpainter.from_checkpoint(model, device, CropPolicy(feather_px=args.dilate // 2))
    if args.inpainter != "textured":
        return generator
    return TexturedInpainter(generator, ExemplarSettings().for_video() if video else ExemplarSettings(), find_cars)


def default_segmenter_weights() -> str:
    """segment.weights of the repository this package belongs to (resolved there), else DEFAULT."""
    repo = package_repo()
    if repo is None:
        return "DEFAULT"
    weights = load_params(repo / "params.yaml").get("segment", {}).get("weights", "DEFAULT")
    mode_is_path = str(weights).strip().upper() not in ("DEFAULT", "NONE", "NULL", "")
    return str(resolve_path(weights, repo)) if mode_is_path else str(weights)


def build_segmenter(args: argparse.Namespace, kind: str, keep: str = "all"):
    """The automatic car segmenter for a photo or a video (`kind`; its masks keep `keep`: all cars or the
    largest), or Unavailable with what to do instead."""
    from carremoval.segmentation import removal_segmenter
    from carremoval.weights import WeightsUnavailable

    try:
        return removal_segmenter(args.segmenter or DEFAULT_SEGMENTER[kind],
                                 args.segmenter_weights or default_segmenter_weights(), args.device, keep,
                                 video=kind == "video")
    except WeightsUnavailable as err:
        raise Unavailable(f"--masks auto needs a car segmenter: {err}\n"
                          "Give masks instead: --masks DIR (one PNG per frame) or --masks FILE.") from None


def photo_mask(args: argparse.Namespace, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The hole to fill, and the cars the segmenter sees but leaves in the photo (`--cars largest`: the others),
    which the fill must never copy; None unless the masks are automatic and keep the largest car."""
    from carremoval.masks import prepare_mask
    from carremoval.shadow import shadow_mask

    cars_left = None
    if args.masks == "auto":
        segmenter = build_segmenter(args, "photo", keep="largest" if args.cars == "largest" else "all")
        probability = segmenter.probability(rgb)
        mask = segmenter.mask_from_probability(probability)
        if args.cars == "largest":
            cars_left = segmenter.mask_from_probability(probability, keep="all") & ~mask
    else:
        source = Path(args.masks)
        if source.is_dir():
            files = sorted(p for p in source.iterdir() if p.suffix.lower() == ".png")
            if len(files) != 1:
                raise InputError(f"{source}: a photo needs exactly one mask PNG there, found {len(files)}")
            source = files[0]
        mask = read_mask(source, shape=rgb.shape[:2])
    if args.shadow == "auto":
        mask = mask | shadow_mask(rgb, mask)
    return prepare_mask(mask, args.dilate, args.shadow_margin), cars_left


def remove_photo(args: argparse.Namespace, output: Path, device) -> str:
    from carremoval.photo_io import load_photo, save_photo
    from carremoval.removal import remove_from_photo

    photo = load_photo(args.input)
    mask, cars_left = photo_mask(args, photo.rgb)
    if mask.all():
        raise InputError(f"{args.input}: the mask ({args.masks}) covers the whole photo: there is no background "
                         "left to fill it from")
    find_cars = None if cars_left is None else lambda image: cars_left   # the photo's own cars, found above
    inpaint = build_inpainter(args, device, find_cars=find_cars) if mask.any() else None
    result = remove_from_photo(photo, mask, inpaint)
    save_photo(result, output)
    if args.save_masks is not None:
        write_mask(args.save_masks / f"{args.input.stem}.png", mask)
    if not mask.any():
        found = "no car found" if args.masks == "auto" else f"the mask {args.masks} is empty"
        return f"{args.input} -> {output}: {found}; the photo is written unchanged"
    return f"{args.input} -> {output}: {int(mask.sum())} pixels replaced ({mask.mean():.1%} of the photo)"


def video_masks(args: argparse.Namespace):
    from carremoval.video.mask_sources import mask_from_file, masks_from_dir

    if args.masks == "auto":
        from carremoval.video.auto_masks import auto_mask_source

        segmenter = build_segmenter(args, "video")
        settings = AutoMaskSettings(every=args.segment_every, cars=args.cars or "moving")
        return auto_mask_source(segmenter.probability, settings, f"{segmenter.describe()}, cars: {settings.cars}")
    source = Path(args.masks)
    if source.is_dir():
        return masks_from_dir(source)
    return mask_from_file(source)


def remove_video_file(args: argparse.Namespace, output: Path, device) -> str:
    from carremoval.video import TemporalConfig, remove_video
    from carremoval.weights import WeightsUnavailable

    config = TemporalConfig(dilate_px=args.dilate, shadow_margin=args.shadow_margin, lossless=args.lossless,
                            flow_method=args.flow, flow_weights=args.flow_weights, device=args.device,
                            shadow=args.shadow)

    def on_hole(index: int, hole: np.ndarray) -> None:
        raise_if_signalled()
        if args.save_masks is not None:
            write_mask(args.save_masks / f"{index:05d}.png", hole)

    try:
        stats = remove_video(args.input, output, video_masks(args), build_inpainter(args, device, video=True), config,
                             progress=not args.no_progress, on_hole=on_hole)
    except WeightsUnavailable as err:
        raise Unavailable(f"--flow {args.flow}: {err}") from None
    return (f"{args.input} -> {output}: {stats['frames']} frames at {stats['fps_out']:.3g} fps, "
            f"processed at {stats['processing_fps']:.1f} frames/s")


def write_mask(path: Path, mask: np.ndarray) -> None:
    """A hole as an 8-bit PNG (255 = replaced)."""
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path)


def check_arguments(args: argparse.Namespace, output: Path) -> None:
    """InputError for arguments that cannot work, before any file is read or model loaded."""
    if not args.input.is_file():
        raise InputError(f"{args.input}: " + ("a folder, not a file" if args.input.is_dir() else "file not found"))
    if output.resolve() == args.input.resolve():
        raise InputError(f"{output}: the output would overwrite the input; choose another name")
    if not output.parent.is_dir():
        raise InputError(f"{output}: the output directory {output.parent} does not exist")
    if output.is_dir():
        raise InputError(f"{output}: the output is a folder; name a file")
    for option, value in (("--dilate", args.dilate), ("--shadow-margin", args.shadow_margin)):
        if value < 0:
            raise InputError(f"{option} {value}: must be 0 or more")
    if args.segment_every < 1:
        raise InputError(f"--segment-every {args.segment_every}: must be at least 1")
    if args.save_masks is not None and args.save_masks.exists() and not args.save_masks.is_dir():
        raise InputError(f"--save-masks {args.save_masks}: not a folder")
    if is_photo(args.input):
        check_photo_output(output)
    else:
        from carremoval.video.io import check_output_path

        check_output_path(output, args.lossless)


def check_photo_output(output: Path) -> None:
    """InputError unless Pillow writes the format the output's extension names."""
    image_format = Image.registered_extensions().get(output.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise InputError(f"{output}: a photo's output must be an image Pillow writes (.jpg, .png, .webp, .tif, "
                         f"...), not {output.suffix or 'a name without extension'!r}")


def device_from_argument(name: str):
    """The torch device, or InputError for a name that is no device or CUDA where there is none."""
    from carremoval import device

    kind, _, number = name.partition(":")
    if kind not in DEVICE_TYPES or (number and (kind != "cuda" or not number.isdigit())):
        raise InputError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    try:
        return device.select_device(name)
    except RuntimeError as err:
        raise InputError(f"--device {name}: {err}") from None


def run_remove(args: argparse.Namespace) -> str:
    output = args.output or default_output(args.input)
    check_arguments(args, output)
    device = device_from_argument(args.device)
    if args.save_masks is not None:
        args.save_masks.mkdir(parents=True, exist_ok=True)
    runner = remove_photo if is_photo(args.input) else remove_video_file
    message = runner(args, output, device)
    if args.output is None and output.suffix != args.input.suffix:
        message += f" ({args.input.suffix} is read but not written; the output is {output.suffix})"
    return message


_received: list[int] = []   # the signals caught inside `signals_as_interrupts`


def _raise_interrupt(signum: int, frame) -> None:
    _received.append(signum)
    raise_if_signalled()


def raise_if_signalled() -> None:
    """Raise Terminated (SIGTERM) or KeyboardInterrupt (SIGINT) if one was caught. A handler that runs inside a
    finaliser or a C callback has its exception printed and dropped, so the video loop asks again each frame."""
    if signal.SIGTERM in _received:
        raise Terminated
    if signal.SIGINT in _received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises Terminated and SIGINT KeyboardInterrupt, and both are remembered (in the main
    thread only: elsewhere signals cannot be caught); an interrupt dropped in a finaliser prints no traceback."""
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}
    previous_hook = sys.unraisablehook

    def report_unraisable(unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous_hook(unraisable)

    sys.unraisablehook = report_unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        with signals_as_interrupts():
            print(run_remove(args))
    except InputError as err:
        print(f"carremoval: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Unavailable as err:
        print(f"carremoval: error: {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except Terminated:
        print("carremoval: terminated; no output written", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("carremoval: interrupted; no output written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the CLI reports every failure in one line, -v adds the traceback
        if args.verbose:
            traceback.print_exc()
        first_line = next(iter(str(err).splitlines()), "")
        print(f"carremoval: error: unexpected failure: {type(err).__name__}: {first_line}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
