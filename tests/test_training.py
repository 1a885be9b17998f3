"""Training end to end on real pairs (synthesized from ../shared backgrounds and cut-outs), MLflow logging,
checkpoints, and resuming after a SIGKILL of the real stage script."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from carremoval.data import Augment, PairFolder, RenderedPairs
from carremoval.io import InputError, write_png
from carremoval.models import load_generator
from carremoval.params import load_params
from carremoval.synthesis import PairRenderer
from carremoval.synthesis.export import SynthesisSettings, synthesize
from carremoval.inpainters import telea
from carremoval.training import (LOSS_TERMS, Checkpoints, TrainOutputs, TrainSettings, lr_factor, reference_scores,
                                 run_training)
from test_synthesis_stage import write_manifests

REPO = Path(__file__).resolve().parents[1]
PAIRS = Path("data/processed/pairs")


def render_pairs(shared_data: Path, root: Path, size: tuple[int, int], val_pairs: int = 4) -> Path:
    """A real synthesize-stage output (train recipe + rendered val/test) from the shared photos."""
    backgrounds, cutouts = write_manifests(shared_data, root / "interim")
    settings = SynthesisSettings.from_params({"size": list(size), "val_pairs": val_pairs, "test_pairs": 2,
                                              "pairs_per_epoch": 64, "preview_pairs": 2})
    synthesize(backgrounds, cutouts, root / PAIRS, root / "preview.png", settings, seed=42)
    return root / PAIRS


def tiny_params(steps: int = 4, **train: object) -> dict:
    """The real params.yaml defaults, shrunk to seconds: tiny networks, a cheap random-VGG perceptual term."""
    params = load_params(REPO / "params.yaml")
    section = params["train"]
    section.update(steps=steps, batch_size=2, eval_every=2, checkpoint_every=2, log_every=1, samples=2, threads=1)
    section["generator"].update(base_channels=4, depth=3)
    section["discriminator"].update(base_channels=4, n_layers=1)
    section["vgg"].update(layers=["block1_conv1", "block2_conv1"], missing="random", weights="auto", download=False)
    section["loss"]["vgg"] = 1.0
    section.update(train)
    return {"seed": params["seed"], "lr": params["lr"], "train": section}


def make_workspace(root: Path, pairs: Path, params: dict) -> Path:
    """A minimal checkout for the stage script: stages/train.py, params.yaml and the pairs."""
    (root / "stages").mkdir(parents=True)
    shutil.copy(REPO / "stages" / "train.py", root / "stages" / "train.py")
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    shutil.copytree(pairs, root / PAIRS)
    return root


def outputs_in(root: Path) -> TrainOutputs:
    return TrainOutputs(root / "models/generator.pt", root / "models/checkpoints", root / "metrics/train.json",
                        root / "metrics/train_losses.csv")


def read_losses(path: Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def finished_runs(root: Path) -> list:
    """The runs of experiment car-removal in the MLflow store under `root`."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["car-removal"], output_format="list")


# One tiny configuration for the end-to-end run and for the kill-and-resume run, so they can be compared.
STEPS = 40
RUN_PARAMS = {"steps": STEPS, "batch_size": 4, "checkpoint_every": 5, "eval_every": 20, "log_every": 5}


@pytest.fixture(scope="module")
def pairs(shared_data, tmp_path_factory) -> Path:
    return render_pairs(shared_data, tmp_path_factory.mktemp("pairs"), size=(32, 48))


@pytest.fixture(scope="module")
def uninterrupted(pairs, tmp_path_factory) -> tuple[Path, dict]:
    """A complete in-process training run: its folder (outputs and MLflow store) and metrics."""
    root = tmp_path_factory.mktemp("uninterrupted")
    settings = TrainSettings.from_params(tiny_params(**RUN_PARAMS))
    renderer = PairRenderer.from_recipe(pairs / "train_recipe.json")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("DVC_EXP_NAME", raising=False)
        metrics = run_training(settings, renderer, PairFolder(pairs / "val"), outputs_in(root), tracking_root=root,
                               progress=False)
    return root, metrics


def test_a_short_run_trains_end_to_end_and_every_loss_term_reaches_mlflow(uninterrupted, pairs):
    root, metrics = uninterrupted
    outputs = outputs_in(root)
    assert metrics["steps"] == STEPS and metrics["val_pairs"] == 4 and metrics["device"] == "cpu"
    assert metrics["vgg_pretrained"] is False and metrics["vgg_source"].startswith("random")
    assert set(metrics["val"]) == {"psnr", "ssim", "hole_psnr", "hole_ssim", "hole_l1", "hole_swd"}
    assert set(metrics["reference"]) == {"input", "telea", "harmonic"}
    assert {"beats_input_hole_l1", "beats_telea_hole_l1", "beats_harmonic_hole_l1"} <= set(metrics)
    assert json.loads(outputs.metrics.read_text()) == metrics
    assert list(outputs.checkpoints.iterdir()) == [], "a finished run leaves the persisted checkpoint folder empty"
    rows = read_losses(outputs.losses)
    assert [row["step"] for row in rows] == list(range(1, STEPS + 1))
    assert all(math.isfinite(row[name]) for row in rows for name in LOSS_TERMS)
    assert all(row["g_vgg"] > 0 for row in rows)

    generator, config = load_generator(outputs.model)
    assert config["image_size"] == [32, 48] and config["mask_input"] is True
    item = PairFolder(pairs / "val")[0]
    x, mask = item["input"][None], item["mask"][None]
    outside = mask.expand_as(x) == 0
    assert torch.equal(generator(x, mask)[outside], x[outside])

    import mlflow
    from mlflow.tracking import MlflowClient

    runs = finished_runs(root)
    assert len(runs) == 1
    run = runs[0]
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("train-")
    for name in (*LOSS_TERMS, "lr"):
        history = client.get_metric_history(run.info.run_id, name)
        assert sorted(entry.step for entry in history) == list(range(1, STEPS + 1)), name
        assert all(math.isfinite(entry.value) for entry in history), name
    assert sorted(entry.step for entry in client.get_metric_history(run.info.run_id, "val_hole_l1")) == [20, 40]
    assert run.data.tags["device"] == "cpu" and run.data.tags["vgg_pretrained"] == "false"
    assert run.data.tags["vgg_source"].startswith("random") and run.data.tags["git_commit"]
    assert run.data.params["train.generator.kind"] == "unet" and float(run.data.params["lr"]) == tiny_params()["lr"]
    assert run.data.metrics["ref_telea_hole_l1"] == pytest.approx(metrics["reference"]["telea"]["hole_l1"], abs=1e-5)
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id, "samples")}
    assert artifacts == {"samples/step-00000020.png", "samples/step-00000040.png"}
    models = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert [model.source_run_id for model in models] == [run.info.run_id]
    assert (root / "mlartifacts").is_dir()


def test_references_on_real_pairs(pairs):
    val = PairFolder(pairs / "val")
    image, _, mask = val.arrays(0)
    filled = telea()(image, mask)
    assert np.array_equal(filled[~mask], image[~mask]) and not np.array_equal(filled[mask], image[mask])
    references = reference_scores(val, prefill="pushpull_rows")
    assert set(references) == {"input", "telea", "pushpull", "rows"}
    assert all(math.isfinite(value) for scores in references.values() for value in scores.values())
    assert references["input"]["hole_psnr"] != references["telea"]["hole_psnr"]


def test_rendered_pairs_walk_the_epochs_in_order(pairs):
    renderer = PairRenderer.from_recipe(pairs / "train_recipe.json")
    dataset = RenderedPairs(renderer)
    item = dataset[renderer.pairs_per_epoch + 3]
    pair = renderer.render(epoch=1, index=3)
    assert item["id"] == "1-3" and len(dataset) == renderer.pairs_per_epoch
    assert torch.equal(item["mask"][0] > 0.5, torch.from_numpy(pair.mask))
    assert item["input"].shape == (3, 32, 48) and -1 <= float(item["input"].min()) <= float(item["input"].max()) <= 1


def test_augmentation_moves_the_pair_together_and_keeps_input_equal_to_target_outside_the_hole(pairs):
    renderer = PairRenderer.from_recipe(pairs / "train_recipe.json")
    pair = renderer.render(epoch=0, index=1)
    mirror = Augment(flip=1.0)(pair.input, pair.target, pair.mask, np.random.default_rng(0))
    assert all(np.array_equal(moved, original[:, ::-1]) for moved, original in
               zip(mirror, (pair.input, pair.target, pair.mask)))
    strong = Augment(flip=0.5, zoom=1.5, colour=0.2)
    dataset = RenderedPairs(renderer, strong, seed=7)
    for sample in range(6):
        item = dataset[sample]
        hole = item["mask"][0] > 0.5
        assert torch.equal(item["input"][:, ~hole], item["target"][:, ~hole])
        assert hole.any() and torch.equal(dataset[sample]["input"], item["input"]), "seeded per pair"
    plain = RenderedPairs(renderer, Augment(flip=0.0), seed=7)[1]
    assert torch.equal(plain["input"][0], torch.from_numpy(pair.input[..., 0]).float() / 127.5 - 1)


def test_pair_folder_names_the_broken_file(pairs, tmp_path):
    broken = tmp_path / "val"
    shutil.copytree(pairs / "val", broken)
    first = sorted((broken / "mask").glob("*.png"))[0]
    first.unlink()
    with pytest.raises(InputError, match=f"mask: 1 pairs lack this part, e.g. {first.name}"):
        PairFolder(broken)
    shutil.copy(pairs / "val" / "mask" / first.name, first)
    write_png(broken / "target" / first.name, np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match=f"target/{first.stem}.png: size differs"):
        PairFolder(broken)[0]
    with pytest.raises(InputError, match="no such folder"):
        PairFolder(tmp_path / "nowhere")


def test_settings_name_params_yaml_and_the_key():
    params = tiny_params(steps=4)
    del params["train"]["batch_size"]
    with pytest.raises(InputError, match="params.yaml: missing train.batch_size"):
        TrainSettings.from_params(params)
    with pytest.raises(InputError, match="train.steps and train.batch_size must be positive"):
        TrainSettings.from_params(tiny_params(steps=0))
    with pytest.raises(InputError, match="no `train` section"):
        TrainSettings.from_params({"lr": 1e-4, "seed": 1})
    exponent = tiny_params(steps=4, lr_d="5e-4")  # YAML 1.1 reads 5e-4 as a string
    exponent["lr"] = "1e-4"
    settings = TrainSettings.from_params(exponent)
    assert (settings.lr, settings.lr_d) == (1e-4, 5e-4)
    with pytest.raises(InputError, match="params.yaml: train.lr_d must be a number, got 'fast'"):
        TrainSettings.from_params(tiny_params(steps=4, lr_d="fast"))


def test_lr_decays_linearly_after_the_decay_start():
    assert [lr_factor(step, 10, 0.5) for step in (1, 5, 6, 8, 10)] == [1.0, 1.0, 0.8, 0.4, 0.0]
    assert lr_factor(10, 10, 1.0) == 1.0


def test_checkpoints_keep_the_newest_and_skip_torn_or_foreign_files(tmp_path):
    store = Checkpoints(tmp_path / "checkpoints", keep=1)
    store.save({"step": 2, "fingerprint": "a"}, 2)
    store.save({"step": 4, "fingerprint": "a"}, 4)
    assert [path.name for path in store.paths()] == ["step-00000004.pt"]
    (tmp_path / "checkpoints" / "step-00000006.pt").write_bytes(b"torn")
    assert store.latest("a")["step"] == 4
    assert store.latest("b") is None
    store.reset()
    assert store.latest("a") is None
    assert list((tmp_path / "checkpoints").iterdir()) == []


def wait_for_checkpoint(folder: Path, process: subprocess.Popen, at_least: int, timeout: float = 120) -> int:
    """Poll until a checkpoint of step >= at_least exists; returns its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [int(path.stem.split("-")[1]) for path in folder.glob("step-*.pt")]
        if steps and max(steps) >= at_least:
            return max(steps)
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint of step >= {at_least} within {timeout} s")


@pytest.mark.slow
def test_a_sigkilled_stage_resumes_from_its_last_checkpoint_and_matches_an_uninterrupted_run(
        uninterrupted, pairs, tmp_path):
    """stages/train.py is SIGKILLed mid-run; running it again resumes (same MLflow run, every step logged once)
    and ends with exactly the weights, losses and scores of the run that was never interrupted."""
    workspace = make_workspace(tmp_path / "workspace", pairs, tiny_params(**RUN_PARAMS))
    command = [sys.executable, str(workspace / "stages" / "train.py")]
    environment = {key: value for key, value in os.environ.items() if key not in ("DVC_ROOT", "DVC_EXP_NAME")}
    killed = subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    reached = wait_for_checkpoint(workspace / "models" / "checkpoints", killed, at_least=5)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert reached < STEPS, "the run finished before it could be killed"

    resumed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    resumed_from = int(resumed.stdout.split("resuming from step ")[1].split()[0])
    assert reached <= resumed_from < STEPS and resumed_from % 5 == 0
    assert "val hole L1" in resumed.stdout and "Telea" in resumed.stdout

    outputs = outputs_in(workspace)
    metrics = json.loads(outputs.metrics.read_text())
    assert metrics["steps"] == STEPS
    assert [int(row["step"]) for row in read_losses(outputs.losses)] == list(range(1, STEPS + 1))
    assert not list(outputs.checkpoints.glob(".*step-*")), "no temp files left from the kill"

    from mlflow.tracking import MlflowClient

    runs = finished_runs(workspace)
    assert len(runs) == 1, "the resumed run continues the killed run's MLflow run"
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from_step"] == str(resumed_from)
    history = MlflowClient(tracking_uri=f"sqlite:///{workspace / 'mlflow.db'}").get_metric_history(
        run.info.run_id, "g_total")
    assert sorted(entry.step for entry in history) == list(range(1, STEPS + 1)), "every step logged exactly once"

    reference_root, reference_metrics = uninterrupted
    resumed_state = torch.load(outputs.model, weights_only=True)["state_dict"]
    reference_state = torch.load(outputs_in(reference_root).model, weights_only=True)["state_dict"]
    assert all(torch.equal(resumed_state[name], reference_state[name]) for name in reference_state)
    assert metrics["val"] == reference_metrics["val"]
    assert read_losses(outputs.losses) == read_losses(outputs_in(reference_root).losses)
