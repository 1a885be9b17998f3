"""`dvc exp run -S lr=...` twice on a minimal copy of the pipeline: two MLflow runs named after the experiments,
each with the full per-step series of every loss term, and `dvc exp show` listing their metrics."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from carremoval.training import LOSS_TERMS
from test_training import REPO, finished_runs, make_workspace, pairs, tiny_params  # noqa: F401 (pairs: a fixture)

STEPS = 6


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_train_stage(repo: Path) -> None:
    """dvc.yaml with the repository's own `train` stage, and the code it depends on."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["train"]
    for dependency in stage["deps"]:
        source, target = REPO / dependency, repo / dependency
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        elif source.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}, sort_keys=False), encoding="utf-8")


def experiments(shown: list[dict]) -> dict[str, dict]:
    """{experiment name: its data} from `dvc exp show --json`."""
    found = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for revision in experiment.get("revs", []):
                if revision.get("name"):
                    found[revision["name"]] = revision["data"]
    return found


@pytest.mark.slow
def test_two_dvc_experiments_become_two_mlflow_runs_with_full_loss_series(pairs, tmp_path):
    repo = make_workspace(tmp_path / "repo", pairs, tiny_params(steps=2, checkpoint_every=3, eval_every=3))
    copy_train_stage(repo)
    (repo / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n__pycache__/\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("DVC_")}
    env.update(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.org", GIT_COMMITTER_NAME="test",
               GIT_COMMITTER_EMAIL="test@example.org", PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    dvc = [sys.executable, "-m", "dvc"]
    run(["git", "init", "-q"], repo, env)
    run([*dvc, "init", "-q"], repo, env)
    run([*dvc, "add", "-q", "data/processed/pairs"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "minimal pipeline"], repo, env)

    names = {}
    for lr, extra in (("1e-4", []), ("2e-4", ["--temp"])):
        output = run([*dvc, "exp", "run", *extra, "-S", f"lr={lr}", "-S", f"train.steps={STEPS}"], repo, env)
        names[lr] = output.split("Ran experiment(s): ")[1].split()[0]

    runs = {run_.info.run_name: run_ for run_ in finished_runs(repo)}
    assert set(runs) == set(names.values()), "one MLflow run per experiment, named after it, in the repo's store"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    for lr, name in names.items():
        found = runs[name]
        assert found.info.status == "FINISHED" and found.data.tags["dvc_experiment"] == name
        assert float(found.data.params["lr"]) == float(lr) and found.data.params["train.steps"] == str(STEPS)
        for term in (*LOSS_TERMS, "lr"):
            steps = [entry.step for entry in client.get_metric_history(found.info.run_id, term)]
            assert sorted(steps) == list(range(1, STEPS + 1)), (name, term)

    shown = experiments(json.loads(run([*dvc, "exp", "show", "--json"], repo, env)))
    assert set(names.values()) <= set(shown)
    for lr, name in names.items():
        data = shown[name]
        assert float(data["params"]["params.yaml"]["data"]["lr"]) == float(lr)
        metrics = data["metrics"]["metrics/train.json"]["data"]
        assert metrics["steps"] == STEPS and 0 < metrics["val"]["hole_l1"] < 1
