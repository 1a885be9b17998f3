"""What the MLflow UI shows of a training run, checked on temporary stores: the experiment is tagged as model
training, each run has a description (DVC experiment, changed params), per-step metric series and sample grids
both as artifacts and as time-stepped images; `python -m carremoval.tracking url` gives the runs page."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from carremoval.data import PairFolder
from carremoval.synthesis import PairRenderer
from carremoval.tracking import (ABSENT, EXPERIMENT, EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, NOTE_TAG, SAMPLES_KEY,
                                 Tracker, changed_params, committed_params, describe_run, experiment_id, ui_url)
from carremoval.training import TrainSettings, run_training
from test_training import REPO, outputs_in, pairs, tiny_params  # noqa: F401 (pairs: a fixture)


def client_for(root: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def test_changed_params_compares_flattened_values_and_numbers_by_value():
    defaults = {"lr": 2.0e-4, "seed": 42, "train": {"steps": 800, "betas": [0.5, 0.999], "amp": True}}
    params = {"lr": "1e-4", "seed": "42", "train": {"steps": 800, "betas": [0.5, 0.99], "amp": False, "new": "x"}}
    assert changed_params(params, defaults) == {
        "lr": ("1e-4", 2.0e-4), "train.amp": (False, True), "train.betas": ([0.5, 0.99], [0.5, 0.999]),
        "train.new": ("x", ABSENT)}
    assert changed_params({"lr": "2e-4"}, {"lr": 2.0e-4}) == {}, "`-S lr=2e-4` is the default 2.0e-4"
    assert changed_params({"seed": 42}, {"seed": 42, "train": {"steps": 800}}) == {}, "only the run's own params"


def test_describe_run_names_the_experiment_the_commit_and_each_changed_param():
    note = describe_run({"lr": "1e-4", "train": {"steps": 6}}, "0123456789abcdef", "exp-lr",
                        {"lr": 2.0e-4, "train": {"steps": 800}})
    assert note.startswith("DVC experiment **exp-lr** at commit `0123456`.")
    assert "- `lr`: 1e-4 (default 0.0002)" in note and "- `train.steps`: 6 (default 800)" in note
    plain = describe_run({"lr": 2.0e-4}, "0123456789", None, {"lr": 2.0e-4})
    assert plain.startswith("Training run") and "unchanged" in plain
    assert "No committed params.yaml" in describe_run({"lr": 1}, "unknown", None, None)
    many = describe_run({f"p{index:03d}": index for index in range(100)}, "0123456789", "exp", {})
    assert "- `p039`: 39 (default (absent))" in many and "p040" not in many and "... and 60 more" in many
    assert len(many) < 8000, "MLflow truncates a tag at 8000 characters"


def test_committed_params_reads_head_not_the_workspace(tmp_path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org"}
    assert committed_params(tmp_path) is None, "outside git"
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "params.yaml").write_text("lr: 2.0e-4\ntrain: {steps: 800}\n", encoding="utf-8")
    subprocess.run(["git", "add", "params.yaml"], cwd=tmp_path, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "params"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "params.yaml").write_text("lr: 1e-4\ntrain: {steps: 800}\n", encoding="utf-8")  # what -S does
    assert committed_params(tmp_path) == {"lr": 2.0e-4, "train": {"steps": 800}}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """One temporary store for the tests below (creating one runs MLflow's migrations, a few seconds)."""
    return tmp_path_factory.mktemp("store")


def test_experiment_is_tagged_as_model_training_also_one_made_before_the_tag(store):
    Tracker(store, name="first").finish()
    client = client_for(store)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    client.delete_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG)  # as in a store made before
    Tracker(store, name="later").finish()
    assert client.get_experiment(experiment.experiment_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_a_run_has_its_description_metric_series_and_sample_grids(store):
    tracker = Tracker(store, name="exp-lr")
    tracker.set_description("DVC experiment **exp-lr**")
    tracker.log_metrics([{"step": step, "g_total": 10.0 / step} for step in range(1, 6)])
    for step in (2, 4):
        tracker.log_metrics([{"step": step, "val_hole_l1": 0.1 / step}])
        tracker.log_samples(np.full((12, 20, 3), 40 * step, np.uint8), step)
    tracker.finish()

    client = client_for(store)
    run = client.get_run(tracker.run_id)
    assert run.data.tags[NOTE_TAG] == "DVC experiment **exp-lr**"
    assert [entry.step for entry in client.get_metric_history(run.info.run_id, "g_total")] == [1, 2, 3, 4, 5]
    assert [entry.step for entry in client.get_metric_history(run.info.run_id, "val_hole_l1")] == [2, 4]
    samples = {item.path for item in client.list_artifacts(run.info.run_id, "samples")}
    assert samples == {"samples/step-00000002.png", "samples/step-00000004.png"}
    images = [item.path for item in client.list_artifacts(run.info.run_id, "images")]
    stepped = sorted(path for path in images if path.startswith(f"images/{SAMPLES_KEY}+step+") and path.endswith(".png"))
    assert [path.split("+")[2] for path in stepped] == ["2", "4"], images
    assert run.data.tags["mlflow.loggedImages"] == "True"


def test_ui_url_opens_the_runs_of_the_experiment_in_the_machine_learning_view(store, tmp_path):
    assert experiment_id(tmp_path) is None
    assert ui_url(tmp_path) == "http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
    Tracker(store, name="run").finish()
    found = client_for(store).get_experiment_by_name(EXPERIMENT).experiment_id
    assert experiment_id(store) == found
    expected = f"http://127.0.0.1:5001/#/experiments/{found}/runs?workflowType=machine_learning"
    assert ui_url(store, port=5001) == expected
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "carremoval.tracking", "url", "--root", str(store), "--port",
                             "5001"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == expected, result.stderr


@pytest.mark.slow
def test_a_training_run_is_described_and_writes_the_val_series(pairs, tmp_path, monkeypatch):
    """A tiny real training run as `dvc exp run -S lr=1e-4 -S train.steps=4` would make it."""
    params = tiny_params(steps=4, eval_every=2)
    params["lr"] = "1e-4"
    monkeypatch.setenv("DVC_EXP_NAME", "exp-tiny")
    monkeypatch.chdir(REPO)
    outputs = outputs_in(tmp_path)
    outputs.val = tmp_path / "metrics/train_val.csv"
    renderer = PairRenderer.from_recipe(pairs / "train_recipe.json")
    run_training(TrainSettings.from_params(params), renderer, PairFolder(pairs / "val"), outputs,
                 tracking_root=tmp_path, progress=False)

    client = client_for(tmp_path)
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    note = run.data.tags[NOTE_TAG]
    assert note.startswith("DVC experiment **exp-tiny** at commit")
    defaults = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    if committed_params(REPO) == defaults:  # the checkout's params.yaml is the committed one
        assert "- `lr`: 1e-4 (default 0.0002)" in note and "- `train.steps`: 4 (default 800)" in note
    assert [entry.step for entry in client.get_metric_history(run.info.run_id, "val_hole_l1")] == [2, 4]
    with open(outputs.val, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["2", "4"]
    assert set(rows[0]) == {"step", "psnr", "ssim", "hole_psnr", "hole_ssim", "hole_l1", "hole_swd"}
    assert all(0 < float(row["hole_l1"]) < 1 for row in rows)
