"""MLflow tracking for training runs: one store per repository, one run per training, resumable.

The store is `sqlite:///<root>/mlflow.db` with artifacts in `<root>/mlartifacts/`, where root is the repository
root (DVC_ROOT when DVC runs the stage, which DVC points at the main repository for `dvc exp run --queue/--temp`
too), so every experiment lands in the same place. Experiment `car-removal`; the run is named after the DVC
experiment (DVC_EXP_NAME) when there is one, else `train-<git short sha>`, and described (its note) by that name and
the params that differ from the committed params.yaml.

The experiment carries the tag mlflow.experimentKind=custom_model_development (a model-training experiment, not a
GenAI app). The MLflow 3 UI bundled with mlflow 3.17 takes the kind from its workflow switch instead (the URL's
`workflowType`, else the browser's saved choice, default GenAI), so `ui_url` links with
`workflowType=machine_learning` to open straight on the runs table.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import yaml

from carremoval.params import flatten

EXPERIMENT = "car-removal"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI's "Machine learning" kind (genai_development: GenAI apps)
NOTE_TAG = "mlflow.note.content"              # the run's description, Markdown
UI_WORKFLOW = "machine_learning"              # the UI's workflowType for model training (the other: genai)
SAMPLES_KEY = "val_samples"                   # the time-stepped val sample grids
ABSENT = "(absent)"                           # a param missing from the defaults (changed_params)
MAX_NOTE_CHANGES = 40                         # changed params listed in a run's note (MLflow keeps 8000 chars)
STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
QUIET_ENVIRONMENT = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GIT_PYTHON_REFRESH": "quiet",
}


def quiet_mlflow() -> None:
    """No telemetry, no progress bars, no INFO chatter from mlflow and its database migrations."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for logger in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(logger).setLevel(logging.WARNING)


def tracking_uri(root: str | os.PathLike) -> str:
    return f"sqlite:///{Path(root).resolve() / STORE_FILE}"


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """The checked-out commit (full sha), or 'unknown' outside a git work tree."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def run_name(commit: str) -> str:
    """DVC_EXP_NAME when DVC runs an experiment, else train-<short sha>."""
    return os.environ.get("DVC_EXP_NAME") or f"train-{commit[:7]}"


def committed_params(cwd: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """params.yaml as committed at HEAD (what an experiment's `-S` changes), or None outside git or without one."""
    try:
        result = subprocess.run(["git", "show", "HEAD:./params.yaml"], cwd=cwd, capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        params = yaml.safe_load(result.stdout)
    except yaml.YAMLError:
        return None
    return params if isinstance(params, dict) else None


def _same(value: Any, default: Any) -> bool:
    """Equal, also as numbers: `-S lr=2e-4` writes the string '2e-4', the same as the default 2.0e-4."""
    if value == default:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return False
    try:
        return float(value) == float(default)
    except (TypeError, ValueError):
        return False


def changed_params(params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{flattened key: (value, default)} for each of `params` that differs from the defaults (ABSENT: not there)."""
    flat, base = flatten(params), flatten(defaults)
    return {key: (value, base.get(key, ABSENT)) for key, value in sorted(flat.items())
            if key not in base or not _same(value, base[key])}


def describe_run(params: dict[str, Any], commit: str, experiment: str | None, defaults: dict[str, Any] | None) -> str:
    """The run's note (Markdown): the DVC experiment, the commit, and the params that differ from `defaults`."""
    origin = f"DVC experiment **{experiment}**" if experiment else "Training run (`dvc repro` or the stage script)"
    lines = [f"{origin} at commit `{commit[:7]}`.", ""]
    changes = changed_params(params, defaults) if defaults is not None else None
    if changes is None:
        lines.append("No committed params.yaml to compare the params with.")
    elif not changes:
        lines.append("Params: the committed params.yaml, unchanged.")
    else:
        lines += ["Params changed from the committed params.yaml:", ""]
        shown = list(changes.items())[:MAX_NOTE_CHANGES]
        lines += [f"- `{key}`: {_short(value)} (default {_short(default)})" for key, (value, default) in shown]
        if len(changes) > len(shown):
            lines.append(f"- ... and {len(changes) - len(shown)} more (see the run's params)")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def experiment_id(root: str | os.PathLike) -> str | None:
    """The id of experiment car-removal in the store under `root`, read without MLflow; None when there is none."""
    store = Path(root).resolve() / STORE_FILE
    if not store.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as connection:
            row = connection.execute("SELECT experiment_id FROM experiments WHERE name = ?", (EXPERIMENT,)).fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def ui_url(root: str | os.PathLike, host: str = "127.0.0.1", port: int = 5000) -> str:
    """The MLflow UI address of the experiment's training runs (the experiment list before the first run)."""
    found = experiment_id(root)
    page = f"experiments/{found}/runs" if found else "experiments"
    return f"http://{host}:{port}/#/{page}?workflowType={UI_WORKFLOW}"


def _as_param(value: Any) -> str:
    return str(value)[:6000]


class Tracker:
    """One MLflow run in the repository's store: create or reopen it, log to it, close it."""

    def __init__(self, root: str | os.PathLike, run_id: str | None = None, name: str | None = None,
                 tags: dict[str, str] | None = None):
        quiet_mlflow()
        import mlflow
        from mlflow.tracking import MlflowClient

        self.root = Path(root).resolve()
        self.uri = tracking_uri(self.root)
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment_id()
        self.resumed = run_id is not None and self._run_exists(run_id)
        if self.resumed:
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            run = self.client.create_run(self.experiment_id, run_name=name, tags=tags or {})
            self.run_id = run.info.run_id

    def _experiment_id(self) -> str:
        """The experiment's id, creating it if needed, tagged as model training (also one made before the tag)."""
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            try:
                self.client.create_experiment(EXPERIMENT, artifact_location=(self.root / ARTIFACTS_DIR).as_uri(),
                                              tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
            except Exception:  # another run created it meanwhile
                pass
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            self.client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment.experiment_id

    def _run_exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id).info.experiment_id == self.experiment_id
        except MlflowException:
            return False

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        entries = [Param(key, _as_param(value)) for key, value in sorted(params.items())]
        for start in range(0, len(entries), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=entries[start:start + MAX_PARAMS_PER_BATCH])

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(key, str(value)) for key, value in sorted(tags.items())])

    def set_description(self, text: str) -> None:
        """The run's description in the UI (Markdown)."""
        self.client.set_tag(self.run_id, NOTE_TAG, text)

    def log_metrics(self, rows: Iterable[dict[str, float]], step_key: str = "step") -> None:
        """Each row: {'step': n, name: value, ...}; logged as one batch of per-step series."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        entries = [Metric(name, float(value), now, int(row[step_key]))
                   for row in rows for name, value in row.items() if name != step_key]
        for start in range(0, len(entries), MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=entries[start:start + MAX_METRICS_PER_BATCH])

    def last_step(self, metric: str) -> int:
        """The highest step logged for `metric` (-1 when none): what a resumed run must not log again."""
        history = self.client.get_metric_history(self.run_id, metric)
        return max((entry.step for entry in history), default=-1)

    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        self.client.log_image(self.run_id, image, artifact_file=artifact_file)

    def log_samples(self, grid: np.ndarray, step: int) -> None:
        """A val sample grid: as samples/step-<step>.png, and as a time-stepped image (the UI's charts show it
        with a step slider beside the val metrics)."""
        self.log_image(grid, f"samples/step-{step:08d}.png")
        self.client.log_image(self.run_id, grid, key=SAMPLES_KEY, step=step, synchronous=True)

    def log_generator(self, generator: Any, image_size: tuple[int, int], name: str = "generator") -> None:
        """The generator as an MLflow PyTorch model in the pt2 (torch.export) format: a traced graph, no pickle.

        Inputs: image Bx3xHxW and mask Bx1xHxW float32, as `generator(x, mask)`. Requirements are given
        explicitly (no pip inference, no network).
        """
        import mlflow
        import torch
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec

        height, width = image_size
        image = np.zeros((2, 3, height, width), np.float32)
        mask = np.zeros((2, 1, height, width), np.float32)
        mask[:, :, height // 4: height // 2, width // 4: width // 2] = 1.0
        float32 = np.dtype(np.float32)
        signature = ModelSignature(
            inputs=Schema([TensorSpec(float32, (-1, 3, height, width), "image"),
                           TensorSpec(float32, (-1, 1, height, width), "mask")]),
            outputs=Schema([TensorSpec(float32, (-1, 3, height, width), "output")]),
        )
        with mlflow.start_run(run_id=self.run_id):
            mlflow.pytorch.log_model(generator, name=name, input_example=(image, mask), signature=signature,
                                     serialization_format="pt2",
                                     pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
        self.client.update_run(self.run_id, status="RUNNING")

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def main(argv: list[str] | None = None) -> int:
    """`python -m carremoval.tracking url`: print the MLflow UI address of the training runs."""
    parser = argparse.ArgumentParser(prog="python -m carremoval.tracking", description=main.__doc__)
    parser.add_argument("command", choices=["url"])
    parser.add_argument("--root", default=".", help="the repository holding mlflow.db (default: .)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    print(ui_url(args.root, args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
