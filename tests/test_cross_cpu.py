"""The synthesize stage writes the same bytes on every x86 CPU (issue 16): run it with all SIMD features on and as
on an older CPU (SSE4.2 at most, no FMA: OpenCV, its IPP, NumPy, OpenBLAS, glibc's libm, simsimd, libjpeg-turbo),
each in its own process, and compare every output file. docs/reproducibility.md explains the switches."""
from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
from PIL import Image

import carremoval
from carremoval.io import write_jsonl
from carremoval.synthesis import exact
from carremoval.synthesis.weather import ExactFog, ExactRain, ExactSunFlare

BASELINE_ENV = {   # features can be switched off, not added: these make this CPU behave like an older one
    "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-COMMON,AVX512F,AVX2,FMA3,FP16,AVX,POPCNT,SSE4.2,SSE4.1",
    "OPENCV_IPP": "sse42",
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Nehalem",
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA,-AVX",
    "JSIMD_FORCENONE": "1",
}
SETTINGS = {   # the repository's size and render options, every weather effect on half of the pairs
    "size": [256, 384], "val_pairs": 40, "test_pairs": 40, "pairs_per_epoch": 64, "preview_pairs": 4,
    "render": {"weather": {"rain": 0.5, "sun_flare": 0.5, "shadow": 0.5, "fog": 0.5, "rgb_shift": 0.5}},
}
CHILD = """
import json, sys
from pathlib import Path
root, baseline = Path(sys.argv[1]), sys.argv[2] == "baseline"
import simsimd
if baseline:
    for name, on in simsimd.get_capabilities().items():
        if on and name != "serial":
            simsimd.disable_capability(name)
import cv2
import numpy as np
from carremoval.synthesis.export import SynthesisSettings, synthesize
features = {
    "opencv": cv2.getCPUFeaturesLine(),
    "ipp": cv2.ipp.getIppVersion(),
    "numpy": [name for name, on in np._core._multiarray_umath.__cpu_features__.items() if on],
    "simsimd": sorted(name for name, on in simsimd.get_capabilities().items() if on),
}
settings = SynthesisSettings.from_params(json.loads((root / "settings.json").read_text()))
metrics = synthesize(root / "backgrounds", root / "cutouts", root / "out" / "pairs", root / "out" / "preview.png",
                     settings, 42)
(root / "out" / "metrics.json").write_text(json.dumps(metrics, sort_keys=True))
print(json.dumps(features))
"""


def write_inputs(shared_data: Path, root: Path) -> None:
    """The stage's inputs: manifests over the real shared backgrounds and cut-outs, and its settings."""
    backgrounds, cutouts = root / "backgrounds", root / "cutouts"
    rows = [
        {"id": path.stem, "path": os.path.relpath(path, backgrounds), "group": f"shared:{path.stem}"}
        for path in sorted((shared_data / "photos" / "backgrounds").iterdir())
    ]
    backgrounds.mkdir(parents=True)
    write_jsonl(backgrounds / "manifest.jsonl", rows)
    rows = []
    for path in sorted((shared_data / "cutouts").glob("*.png")):
        group = "davis:" + path.stem.split("_")[1] if path.stem.startswith("davis_") else f"photo:{path.stem}"
        rows.append({"id": path.stem, "path": os.path.relpath(path, cutouts), "group": group})
    cutouts.mkdir(parents=True)
    write_jsonl(cutouts / "manifest.jsonl", rows)
    (root / "settings.json").write_text(json.dumps(SETTINGS))


def run_stage(root: Path, mode: str) -> tuple[dict[str, str], dict]:
    """Run the stage in a fresh process; (md5 of every output file by relative path, the CPU features it saw)."""
    env = {key: value for key, value in os.environ.items() if key not in BASELINE_ENV}
    if mode == "baseline":
        env.update(BASELINE_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(carremoval.__file__).parents[1]), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", CHILD, str(root), mode], env=env, capture_output=True, text=True,
                            check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = root / "out"
    hashes = {
        str(path.relative_to(out)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*")) if path.is_file()
    }
    return hashes, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_synthesize_writes_the_same_bytes_with_and_without_simd(shared_data: Path, tmp_path: Path):
    runs = {}
    for mode in ("full", "baseline"):
        write_inputs(shared_data, tmp_path / mode)
        runs[mode] = run_stage(tmp_path / mode, mode)
    (full, seen_full), (baseline, seen_baseline) = runs["full"], runs["baseline"]
    assert "*AVX2 " not in seen_baseline["opencv"] + " " and "SSE4.2" in seen_baseline["ipp"]
    assert seen_baseline["simsimd"] == ["serial"] and "X86_V3" not in seen_baseline["numpy"]
    if seen_full == seen_baseline:
        pytest.skip("this CPU has no SIMD features beyond the baseline: nothing to compare")

    metrics = json.loads((tmp_path / "full" / "out" / "metrics.json").read_text())
    assert set(metrics["weather_rate"]) == {"rain", "sun_flare", "shadow", "fog", "rgb_shift"}, metrics
    assert metrics["shadow_rate"] == 1.0 and len(full) > 3 * (SETTINGS["val_pairs"] + SETTINGS["test_pairs"])
    with Image.open(next((tmp_path / "full" / "out" / "pairs" / "val" / "input").iterdir())) as image:
        assert image.size == (384, 256)

    assert sorted(full) == sorted(baseline)
    differing = sorted(name for name in full if full[name] != baseline[name])
    assert not differing, f"{len(differing)} of {len(full)} files differ between CPUs: {differing[:20]}"


# ---- the exact replacements stay close to what they replace ------------------------------------------------------

def test_exact_functions_are_accurate_and_close_to_opencv():
    x = np.linspace(-50.0, 50.0, 20001)
    assert np.abs(exact.exp(x) / np.exp(x) - 1).max() < 1e-14
    assert np.abs(exact.log(np.exp(x)) - x).max() < 1e-13
    rng = np.random.default_rng(0)
    image = rng.random((37, 53, 3)).astype(np.float32)
    assert np.abs(exact.gaussian_blur(image, 0.7) - cv2.GaussianBlur(image, (0, 0), 0.7)).max() < 1e-6
    assert np.abs(exact.gaussian_blur(image[:5, :4], 3.0) - cv2.GaussianBlur(image[:5, :4], (0, 0), 3.0)).max() < 1e-6
    for size, interpolation in (((20, 14), cv2.INTER_AREA), ((90, 61), cv2.INTER_LINEAR)):
        assert np.abs(exact.resize(image, *size) - cv2.resize(image, size, interpolation=interpolation)).max() < 1e-6
    assert np.abs(exact.rgb_to_hsv(image) - cv2.cvtColor(image, cv2.COLOR_RGB2HSV)).max() < 1e-3
    assert np.abs(exact.hsv_to_rgb(exact.rgb_to_hsv(image)) - image).max() < 1e-6
    assert np.abs(exact.rgb_to_lab(image) - cv2.cvtColor(image, cv2.COLOR_RGB2LAB)).max() < 0.5
    assert np.abs(exact.lab_to_rgb(exact.rgb_to_lab(image)) - image).max() < 1e-4
    assert np.array_equal(exact.rgb_to_lab((image * 255).astype(np.uint8)),
                          exact.rgb_to_lab((image * 255).astype(np.uint8) / 255.0))


RAIN = {"blur_value": 2, "brightness_coefficient": 0.85, "p": 1.0}
FLARE = {"src_radius": 58, "method": "overlay", "p": 1.0}
FOG = {"fog_coef_range": (0.2, 0.6), "p": 1.0}


@pytest.fixture
def simsimd_serial():
    """albumentations blends through simsimd, whose AVX2 / AVX-512 kernels round differently from CPU to CPU (the
    flare differed in 0.85% of values on CI's CPU, 0.001% here): compare with its portable serial kernel."""
    import simsimd

    switched = [name for name, on in simsimd.get_capabilities().items() if on and name != "serial"]
    for name in switched:
        simsimd.disable_capability(name)
    yield
    for name in switched:
        simsimd.enable_capability(name)


@pytest.mark.parametrize("ours, theirs, most", [
    (ExactRain(**RAIN), A.RandomRain(**RAIN), 0.0),
    (ExactSunFlare(**FLARE), A.RandomSunFlare(**FLARE), 0.0),
    (ExactFog(**FOG), A.RandomFog(**FOG), 0.01),
])
def test_exact_weather_draws_what_albumentations_draws(shared_data: Path, simsimd_serial, ours, theirs, most: float):
    """Same sampled parameters, same picture: at most 1 level apart, in at most `most` of the values."""
    with Image.open(shared_data / "photos" / "backgrounds" / "dpst_in7.png") as opened:
        image = np.asarray(opened.convert("RGB").resize((192, 128)))
    for seed in range(4):
        outs = []
        for transform in (ours, theirs):
            compose = A.Compose([transform])
            compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
            outs.append(compose(image=image)["image"].astype(int))
        difference = np.abs(outs[0] - outs[1])
        assert difference.max() <= 1 and (difference > 0).mean() <= most
