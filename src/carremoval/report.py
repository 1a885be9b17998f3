"""The results tables of README.md and docs/*.md, rendered from metrics/*.json.

A document marks each generated table with a pair of comments::

    <!-- results:photo -->
    ...table, rewritten by `make report`...
    <!-- /results:photo -->

`python -m carremoval.report` rewrites every block from the metrics; `--check` only says which blocks differ
(exit 1), as tests/test_report.py does. A metric a table needs that is missing from the JSON is an error naming the
file and the key, never an empty cell. `python -m carremoval.report images` regenerates the pictures of docs/img/
(carremoval.docs_images; needs the trained models/generator.pt).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DOCUMENTS = ("README.md", "docs/*.md")
BLOCK = re.compile(r"(<!-- results:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)
OPENING = re.compile(r"<!-- /?results:([^ ]*) -->")


class MissingMetric(KeyError):
    """A key a table needs is not in the metrics file."""

    def __str__(self) -> str:
        return str(self.args[0])


class Node:
    """A dict read from a metrics file; a missing key raises MissingMetric naming the file and the key path."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def __getitem__(self, key: str) -> Any:
        if key not in self.data:
            raise MissingMetric(f"{self.where}: no key {key!r} (has: {', '.join(sorted(self.data)) or 'nothing'}); "
                                "re-run the stage that writes it, or update carremoval.report")
        value = self.data[key]
        return Node(value, f"{self.where}.{key}") if isinstance(value, dict) else value

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def keys(self) -> list[str]:
        return list(self.data)

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((key, self[key]) for key in self.data)


class Metrics:
    """metrics/<name>.json files of a repository, each read once."""

    def __init__(self, root: Path) -> None:
        self.root, self.cache = root, {}

    def __getitem__(self, name: str) -> Node:
        if name not in self.cache:
            path = self.root / "metrics" / f"{name}.json"
            if not path.is_file():
                raise MissingMetric(f"{path}: not found; run `make repro` (or the stage that writes it)")
            self.cache[name] = Node(json.loads(path.read_text(encoding="utf-8")), f"metrics/{name}.json")
        return self.cache[name]


# ---------------------------------------------------------------------------------------------------------------
# Formatting

def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def num(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def share(value: float) -> str:
    return f"{value:.0%}"


def bold_best(values: dict[str, float], digits: int, higher_is_better: bool = True) -> dict[str, str]:
    """Each value formatted, the best one bold."""
    best = (max if higher_is_better else min)(values.values())
    return {key: (f"**{num(value, digits)}**" if value == best else num(value, digits)) for key, value in values.items()}


METHOD_NAMES = {
    "input": "the input (car left in)",
    "telea": "OpenCV Telea",
    "ns": "OpenCV Navier-Stokes",
    "patchmatch": "PatchMatch",
    "generator": "generator",
    "textured": "**textured** (generator + the photo's own texture; the default)",
    "control": "control: truth blurred + band-matched noise",
}


# ---------------------------------------------------------------------------------------------------------------
# Targets (the issues' quality and speed targets, as judged by the stages and make bench)

EVAL_TARGETS = [   # eval.json `targets`; the thresholds are those of carremoval.evaluation.target_checks/sharp_fill_checks
    ("photo_target_met", "Photos, test pairs: generator hole PSNR above the better of Telea / Navier-Stokes", "≥ +2 dB"),
    ("hd_psnr_target_met", "Full-resolution photos: textured hole PSNR above the best of Telea / NS / PatchMatch",
     "≥ +1 dB"),
    ("hd_swd_target_met", "Full-resolution photos: textured hole SWD / PatchMatch's (/ the control's)", "≤ 1x (< 1x)"),
    ("video_target_met", "Video with ground truth: temporal hole PSNR above the best per-frame method, worst clip",
     "≥ +3 dB on every clip"),
    ("e_warp_target_met", "Video with ground truth: E_warp / the original video's, worst clip", "≤ 1.2x on every clip"),
    ("video_vs_generator_target_met", "Video with ground truth: hole PSNR, textured keyframes against the "
     "generator's, worst clip", "≥ -0.3 dB on every clip"),
]
SEGMENTATION_TARGETS = {
    "davis_recall_0.97_precision_0.8_every_sequence": ("Automatic masks, DAVIS car clips: recall and precision",
                                                        "recall ≥ 0.97, precision ≥ 0.8 on every clip"),
    "photos_mean_iou_0.8": ("Automatic masks, photos with every car masked: mean IoU", "≥ 0.8"),
    "auto_removal_within_10pct_of_given": ("Real removal with automatic masks: E_warp and flicker against given masks",
                                           "within 10%"),
}
SHADOW_TARGETS = {
    "fixed_camera_psnr_gain_3db": ("Shadows, fixed camera: changed-region PSNR, auto against off", "+3 dB"),
    "fixed_camera_stray_under_1pct": ("Shadows, fixed camera: hole added away from the changed region",
                                      "< 1% of the frame"),
    "davis_residual_halved": ("Shadows, DAVIS: residual shadow on the ground, auto / off", "≤ 0.5x"),
    "davis_e_warp_not_worse": ("Shadows, DAVIS: E_warp in the car's hole, auto / off", "≤ 1x"),
    "photo_shadow_covered_80pct": ("Shadows, photos (test pairs re-rendered): rendered shadow pixels in the hole",
                                   "≥ 80%"),
    "photo_growth_under_5pct": ("Shadows, photos: mask added beside cars rendered without a shadow",
                                "≤ 5% of the car's area"),
}


def eval_target_value(targets: Node, key: str) -> str:
    if key == "photo_target_met":
        return f"{targets['photo_hole_psnr_margin_db']:+.2f} dB"
    if key == "hd_psnr_target_met":
        return f"{targets['hd_hole_psnr_margin_db']:+.2f} dB"
    if key == "hd_swd_target_met":
        return f"{targets['hd_swd_vs_patchmatch']:.2f}x ({targets['hd_swd_vs_control']:.2f}x)"
    per_clip, unit, worst = {
        "video_target_met": ("video_hole_psnr_margin_db", " dB", min),
        "e_warp_target_met": ("video_e_warp_ratio", "x", max),
        "video_vs_generator_target_met": ("video_vs_generator_margin_db", " dB", min),
    }[key]
    values = dict(targets[per_clip].items())
    clip = worst(values, key=values.get)
    sign = "+" if unit == " dB" else ""
    return f"{values[clip]:{sign}.2f}{unit} ({clip})"


def checked_targets(node: Node, known: dict[str, tuple[str, str]]) -> list[list[str]]:
    """Rows for a metrics file's `targets` section ({name: {ok, detail}}); every name must be described above."""
    unknown = sorted(set(node.keys()) - set(known))
    if unknown:
        raise MissingMetric(f"{node.where}: no description in carremoval.report for {', '.join(unknown)}")
    rows = []
    for key, (what, target) in known.items():
        check = node[key]
        rows.append([what, check["detail"], target, met(check["ok"])])
    return rows


def bench_checks(metrics: Metrics) -> list[list[str]]:
    rows = []
    for _, section in metrics["bench"].items():
        for check in section["checks"]:
            rows.append([f"Speed ({section['name']}): {check['target']}", check["detail"], "", met(check["ok"])])
    return rows


def render_targets(metrics: Metrics) -> str:
    targets = metrics["eval"]["targets"]
    rows = [[what, eval_target_value(targets, key), target, met(targets[key])] for key, what, target in EVAL_TARGETS]
    rows += checked_targets(metrics["segmentation"]["targets"], SEGMENTATION_TARGETS)
    rows += checked_targets(metrics["shadow"]["targets"], SHADOW_TARGETS)
    rows += bench_checks(metrics)
    return table(["what is measured", "result", "target", ""], rows)


# ---------------------------------------------------------------------------------------------------------------
# Photos

def render_train(metrics: Metrics) -> str:
    train = metrics["train"]
    reference, val = train["reference"], train["val"]
    rows = []
    for name in ["input", "telea", *sorted(set(reference.keys()) - {"input", "telea"})]:
        label = METHOD_NAMES[name] if name in ("input", "telea") else f"{name} fill alone (the generator's prefill)"
        scores = reference[name]
        rows.append([label, num(scores["hole_l1"], 4), num(scores["hole_psnr"], 2), num(scores["hole_ssim"], 3),
                     num(scores["hole_swd"], 0)])
    rows.append(["**trained generator**", f"**{num(val['hole_l1'], 4)}**", f"**{num(val['hole_psnr'], 2)}**",
                 f"**{num(val['hole_ssim'], 3)}**", num(val["hole_swd"], 0)])
    perceptual = "pretrained VGG19" if train["vgg_pretrained"] else f"off ({train['vgg_source']})"
    note = (f"\n\n{train['steps']} steps in {train['seconds'] / 60:.0f} min on {train['device']}, "
            f"{train['val_pairs']} val pairs; perceptual term: {perceptual}.")
    return table([f"val pairs ({train['val_pairs']})", "hole L1", "hole PSNR", "hole SSIM", "hole SWD"], rows) + note


PHOTO_METHODS = ("telea", "ns", "patchmatch", "generator", "textured")


def render_photo(metrics: Metrics) -> str:
    photos = metrics["eval"]["photos"]
    psnr = bold_best({name: photos[name]["hole_psnr"] for name in PHOTO_METHODS}, 2)
    swd = bold_best({name: photos[name]["hole_swd"] for name in PHOTO_METHODS}, 0, higher_is_better=False)
    rows = [[METHOD_NAMES[name], psnr[name], num(photos[name]["hole_ssim"], 3), num(photos[name]["hole_l1"], 3),
             swd[name], num(photos[name]["psnr"], 2)] for name in PHOTO_METHODS]
    header = f"photo test pairs ({photos['generator']['pairs']}), 128x192"
    return table([header, "hole PSNR", "hole SSIM", "hole L1", "hole SWD", "PSNR"], rows)


def photo_hd_table(split: Node, methods: tuple[str, ...], label: str) -> str:
    scored = [name for name in methods if name != "control"]
    psnr = bold_best({name: split[name]["hole_psnr"] for name in scored}, 2)
    swd = bold_best({name: split[name]["hole_swd"] for name in scored}, 0, higher_is_better=False)
    rows = []
    for name in methods:
        scores = split[name]
        seconds = num(scores["median_seconds"], 2) if name != "control" else ""
        rows.append([METHOD_NAMES[name], psnr.get(name, num(scores["hole_psnr"], 2)), num(scores["hole_ssim"], 3),
                     swd.get(name, num(scores["hole_swd"], 0)), seconds])
    return table([f"{label} ({split['cases']} cases)", "hole PSNR", "hole SSIM", "hole SWD", "s per photo (median)"],
                 rows)


def render_photo_hd(metrics: Metrics) -> str:
    return photo_hd_table(metrics["eval"]["photo_hd"]["test"], (*PHOTO_METHODS, "control"), "photo_hd test")


def render_photo_hd_val(metrics: Metrics) -> str:
    return photo_hd_table(metrics["eval"]["photo_hd"]["val"], ("telea", "generator", "textured", "control"),
                          "photo_hd val")


# ---------------------------------------------------------------------------------------------------------------
# Video

PER_FRAME = ("telea", "ns", "generator")
CLIP_NOTES = {
    "drift-straight": "drift-straight (smoke, fast pan)",
    "static-road": "static-road (fixed camera)",
    "bus-late": "bus-late (frames 40-79)",
    "car-roundabout-late": "car-roundabout-late (frames 40-74)",
    "running-car": "running-car (rally on snow, tracking camera)",
    "dashcam": "dashcam (test_video.mp4, highway)",
}


def best_per_frame(clip: Node) -> tuple[str, float]:
    scores = {name: clip[name]["hole_psnr"] for name in PER_FRAME}
    name = max(scores, key=scores.get)
    return name, scores[name]


def video_rows(clips: Node) -> list[list[str]]:
    rows = []
    for name, clip in clips.items():
        temporal = clip["temporal"]
        method, best = best_per_frame(clip)
        rows.append([CLIP_NOTES.get(name, name), f"**{num(temporal['hole_psnr'], 1)}**",
                     f"{num(best, 1)} ({METHOD_NAMES[method].replace('OpenCV ', '')})",
                     num(temporal["hole_ssim"], 3), num(temporal["e_warp_ratio"], 2),
                     f"{num(temporal['flicker_hole'], 2)} ({num(clip['original']['flicker_hole'], 2)})",
                     share(temporal["propagated_fraction"]), num(temporal["fps"], 1)])
    return rows


VIDEO_HEADER = ["hole PSNR", "best per-frame method", "hole SSIM", "E_warp / original's",
                "hole flicker (original's)", "seen in other frames", "frames/s"]


def render_video_gt(metrics: Metrics) -> str:
    return table(["ground-truth clip, 432x240", *VIDEO_HEADER], video_rows(metrics["eval"]["video_ground_truth"]))


def render_video_val(metrics: Metrics) -> str:
    return table(["validation clip, 432x240", *VIDEO_HEADER], video_rows(metrics["eval"]["video_validation"]))


def render_video_keyframes(metrics: Metrics) -> str:
    rows = []
    for name, clip in metrics["eval"]["video_ground_truth"].items():
        textured, generator = clip["temporal"], clip["temporal_generator"]
        rows.append([name, f"{num(textured['hole_psnr'], 2)} / {num(generator['hole_psnr'], 2)}",
                     f"{num(textured['hole_swd'], 0)} / {num(generator['hole_swd'], 0)}",
                     share(textured["hallucinated_fraction"])])
    return table(["clip", "hole PSNR, textured / generator keyframes", "hole SWD, textured / generator",
                  "made up (no frame shows it)"], rows)


def render_real_removal(metrics: Metrics) -> str:
    rows = []
    for name, clip in metrics["eval"]["real_removal"].items():
        rows.append([name, str(clip["frames"]), num(clip["e_warp"] * 1e3, 2), num(clip["e_warp_ratio"], 2),
                     num(clip["flicker_hole"], 2), share(clip["propagated_fraction"]), num(clip["fps"], 2)])
    return table(["DAVIS, own masks, 854x480", "frames", "E_warp x1e3", "/ original's", "hole flicker",
                  "seen in other frames", "frames/s"], rows)


# ---------------------------------------------------------------------------------------------------------------
# Automatic masks and shadows

def render_segmentation_davis(metrics: Metrics) -> str:
    davis = metrics["segmentation"]["davis"]
    rows = []
    for name, sequence in davis["sequences"].items():
        rows.append([name, num(sequence["recall"], 3), num(sequence["precision"], 3), num(sequence["stability"], 3),
                     f"{sequence['empty_frames']} of {sequence['frames']}", num(sequence["fps"], 1)])
    mean = davis["mean"]
    rows.append(["*mean*", num(mean["recall"], 3), num(mean["precision"], 3), num(mean["stability"], 3), "",
                 num(mean["fps"], 1)])
    settings = davis["settings"]
    model = metrics["segmentation"]["models"]["video"]
    return table([f"DAVIS, all frames, {model} every {settings['every']} frames, `--cars {settings['cars']}`",
                  "recall", "precision", "stability", "frames without a mask", "frames/s"], rows)


def render_segmentation_photos(metrics: Metrics) -> str:
    photos = metrics["segmentation"]["photos"]
    rows = [[name, num(iou, 3)] for name, iou in photos["per_photo"].items()]
    rows.append(["*mean*", f"**{num(photos['mean_iou'], 3)}**"])
    return table([f"photo (every car masked), {metrics['segmentation']['models']['photo']}", "IoU"], rows)


def render_segmentation_real(metrics: Metrics) -> str:
    rows = []
    for name, clip in metrics["segmentation"]["real_removal"].items():
        given, auto = clip["given"], clip["auto"]
        rows.append([name, f"{num(given['e_warp'] * 1e3, 2)} / {num(auto['e_warp'] * 1e3, 2)}",
                     f"{num(given['flicker_hole'], 2)} / {num(auto['flicker_hole'], 2)}",
                     f"{num(clip['e_warp_ratio'], 2)} / {num(clip['flicker_ratio'], 2)}",
                     f"{num(given['fps'], 2)} / {num(auto['fps'], 2)}"])
    return table(["DAVIS, 854x480, Telea keyframes", "E_warp x1e3, given / automatic masks",
                  "hole flicker, given / automatic", "automatic / given (E_warp / flicker)", "frames/s"], rows)


def render_segmentation_speed(metrics: Metrics) -> str:
    rows = [[model, *(num(sizes[size], 1) for size in ("432x240", "854x480"))]
            for model, sizes in metrics["segmentation"]["speed"].items()]
    return table(["segmenter alone, images/s", "432x240", "854x480"], rows)


def render_shadow(metrics: Metrics) -> str:
    shadow = metrics["shadow"]
    fixed = shadow["fixed_camera"]
    rows = [[f"fixed camera ({fixed['frames']} frames): changed-region PSNR", f"{num(fixed['psnr_off'], 2)} dB",
             f"{num(fixed['psnr_auto'], 2)} dB", f"{fixed['psnr_gain']:+.2f} dB"],
            ["fixed camera: hole added away from the changed region", "", f"{fixed['stray_share']:.2%} of the frame",
             ""],
            ["fixed camera: shadow found, share of the changed region outside the bodies", "",
             share(fixed["shadow_covered"]), ""],
            ["fixed camera: changed region outside the body-only hole (what a shadow mask can add)",
             share(fixed["changed_beyond_body_hole"]), "", ""]]
    photos = shadow["photos"]
    rows += [[f"photos ({photos['pairs']} test pairs re-rendered): rendered shadow pixels in the hole",
              share(photos["shadow_covered_off"]), share(photos["shadow_covered_auto"]), ""],
             ["photos: rendered shadow pixels in the shadow mask alone (no dilation)", "",
              share(photos["shadow_found"]), ""],
             ["photos, the same cars rendered without a shadow: shadow mask area / car area", "",
              share(photos["growth_without_shadow"]), ""]]
    for name, clip in shadow["davis"].items():
        rows.append([f"{name}: residual shadow on the ground band ({clip['with_reference']} of {clip['frames']} "
                     "frames with a reference)", num(clip["residual_ground_off"], 2),
                     num(clip["residual_ground_auto"], 2), f"{num(clip['residual_ground_ratio'], 2)}x"])
        rows.append([f"{name}: E_warp x1e3 in the car's hole", num(clip["e_warp_hole_off"] * 1e3, 2),
                     num(clip["e_warp_hole_auto"] * 1e3, 2),
                     f"{num(clip['e_warp_hole_auto'] / clip['e_warp_hole_off'], 2)}x"])
        rows.append([f"{name}: hole area against the car mask's", "", f"{num(clip['hole_growth_auto'], 2)}x", ""])
    return table(["given the body masks only", "`--shadow off`", "`--shadow auto`", "auto against off"], rows)


# ---------------------------------------------------------------------------------------------------------------
# Speed and data

def value_with_unit(row: Node) -> str:
    value, unit = row["value"], row["unit"]
    return f"{value:.0f} {unit}" if abs(value) >= 100 else f"{value:.3g} {unit}"


def render_bench(metrics: Metrics) -> str:
    rows = []
    for _, section in metrics["bench"].items():
        for row in section["rows"]:
            rows.append([section["name"], row["what"], value_with_unit(row), row["note"]])
    return table(["section", "what", "measured", "how"], rows)


def nonzero(counts: Node) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in counts.items() if count) or "none"


def render_data(metrics: Metrics) -> str:
    rows = []
    for source in ("oir_mobi", "motorpage"):
        crawl = metrics[f"crawl/{source}"]
        rows.append([f"`crawl@{source}`", f"{crawl['images_kept']} images kept of {crawl['image_urls']} image URLs",
                     nonzero(crawl["skipped"])])
    frames = metrics["youtube_frames"]
    rows.append(["`youtube_frames`", f"{frames['frames_kept']} frames from {frames['videos']} videos", ""])
    segment = metrics["segment"]
    rows.append(["`segment`", f"{segment['cutouts']} cut-outs of {segment['photos']} car photos "
                 f"(by method: {nonzero(segment['methods'])}; model {segment['model']})", nonzero(segment["skipped"])])
    backgrounds = metrics["backgrounds"]
    rows.append(["`backgrounds`", f"{backgrounds['kept']} kept of {backgrounds['candidates']} candidates "
                 f"({nonzero(backgrounds['kept_by_source'])}; car check: {backgrounds['car_check']})",
                 nonzero(backgrounds["skipped"])])
    synthesize = metrics["synthesize"]
    splits = ("train", "val", "test")
    counts = "; ".join(f"{split}: {synthesize['backgrounds'][split]} backgrounds, {synthesize['cutouts'][split]} "
                       "cut-outs" for split in splits)
    pairs = synthesize["pairs"]
    rows.append(["`synthesize`", f"{counts}; {pairs['val']} val and {pairs['test']} test pairs, "
                 f"{pairs['train_per_epoch']} fresh train pairs per epoch; size {synthesize['size'][0]}x"
                 f"{synthesize['size'][1]}", nonzero(synthesize["skipped_reasons"])])
    return table(["stage", "kept", "skipped, by reason"], rows)


RENDERERS: dict[str, Callable[[Metrics], str]] = {
    "targets": render_targets,
    "train": render_train,
    "photo": render_photo,
    "photo_hd": render_photo_hd,
    "photo_hd_val": render_photo_hd_val,
    "video_gt": render_video_gt,
    "video_val": render_video_val,
    "video_keyframes": render_video_keyframes,
    "real_removal": render_real_removal,
    "segmentation_davis": render_segmentation_davis,
    "segmentation_photos": render_segmentation_photos,
    "segmentation_real": render_segmentation_real,
    "segmentation_speed": render_segmentation_speed,
    "shadow": render_shadow,
    "bench": render_bench,
    "data": render_data,
}


# ---------------------------------------------------------------------------------------------------------------
# Documents

def documents(root: Path) -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in root.glob(pattern)})


def block_names(text: str) -> list[str]:
    return [match["name"] for match in BLOCK.finditer(text)]


def render_text(text: str, metrics: Metrics, where: str = "") -> str:
    """The text with every results block's body rendered afresh; an unknown or unclosed block is an error."""
    markers = OPENING.findall(text)
    if len(markers) != 2 * len(block_names(text)):
        raise ValueError(f"{where}: a results block is not closed (or nested): {markers}")
    for name in block_names(text):
        if name not in RENDERERS:
            raise ValueError(f"{where}: unknown results block {name!r}; known: {', '.join(RENDERERS)}")
    return BLOCK.sub(lambda match: f"{match[1]}{RENDERERS[match['name']](metrics)}\n{match[4]}", text)


def stale_blocks(path: Path, metrics: Metrics) -> list[str]:
    """The names of the blocks of a document whose committed text differs from the rendered one."""
    text = path.read_text(encoding="utf-8")
    fresh = render_text(text, metrics, str(path))
    old, new = BLOCK.finditer(text), BLOCK.finditer(fresh)
    return [a["name"] for a, b in zip(old, new) if a["body"] != b["body"]]


def update(root: Path, check: bool) -> int:
    metrics = Metrics(root)
    stale = {}
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        fresh = render_text(text, metrics, str(path.relative_to(root)))
        if fresh != text:
            stale[path.relative_to(root)] = stale_blocks(path, metrics)
            if not check:
                path.write_text(fresh, encoding="utf-8")
    for path, names in stale.items():
        print(f"{path}: {'stale' if check else 'updated'}: {', '.join(names)}")
    if check and stale:
        print("run `make report` to render them from metrics/*.json", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from carremoval.params import repo_root

    parser = argparse.ArgumentParser(prog="python -m carremoval.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=("tables", "images"), default="tables",
                        help="tables: the results blocks of README.md and docs/*.md (default); images: docs/img/")
    parser.add_argument("--check", action="store_true", help="tables: only report stale blocks (exit 1)")
    args = parser.parse_args(argv)
    root = repo_root()
    if args.what == "images":
        from carremoval import docs_images

        return docs_images.main(root)
    try:
        return update(root, args.check)
    except (MissingMetric, ValueError) as err:
        print(f"carremoval.report: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
