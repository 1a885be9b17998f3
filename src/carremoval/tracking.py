"""MLflow tracking for training runs: one store per repository, one run per training, resumable.

The store is `sqlite:///<root>/mlflow.db` with artifacts in `<root>/mlartifacts/`, where root is the repository
root (DVC_ROOT when DVC runs the stage, which DVC points at the main repository for `dvc exp run --queue/--temp`
too), so every experiment lands in the same place. Experiment `car-removal`; the run is named after the DVC
experiment (DVC_EXP_NAME) when there is one, else `train-<git short sha>`.
"""
from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

EXPERIMENT = "car-removal"
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
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return self.client.create_experiment(EXPERIMENT, artifact_location=(self.root / ARTIFACTS_DIR).as_uri())
        except Exception:  # another run created it meanwhile
            return self.client.get_experiment_by_name(EXPERIMENT).experiment_id

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
