"""Where the repository is, and its params.yaml."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from carremoval.io import InputError


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The workspace root: the nearest parent of `start` (default: the working directory) holding dvc.yaml or .git.

    DVC runs stage commands there, also in the temporary copies of `dvc exp run --temp/--queue`, so params and
    data are read from the workspace being run (not from $DVC_ROOT, which DVC points at the main repository).
    """
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").exists() or (candidate / ".git").exists():
            return candidate
    return here


def package_repo() -> Path | None:
    """The repository this package's source lives in (an editable install), or None when installed elsewhere."""
    candidate = Path(__file__).resolve().parents[2]
    return candidate if (candidate / "params.yaml").is_file() else None


def tracking_root(start: str | os.PathLike | None = None) -> Path:
    """Where stores shared by every experiment live (mlflow.db): $DVC_ROOT when DVC runs us (the main repository,
    even for `dvc exp run --temp/--queue`), else the workspace root."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    return repo_root(start)


def load_params(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """params.yaml as a dict; a clear error names the file when it is missing or malformed."""
    params_path = Path(path) if path else repo_root() / "params.yaml"
    try:
        params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{params_path}: file not found") from None
    except yaml.YAMLError as err:
        raise InputError(f"{params_path}: not valid YAML ({err})") from None
    if not isinstance(params, dict):
        raise InputError(f"{params_path}: expected a mapping at the top level")
    return params


def resolve_path(value: str | os.PathLike | None, root: Path | None = None) -> Path | None:
    """A params path relative to the repo root (absolute paths and None pass through)."""
    if value is None:
        return None
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else (root or repo_root()) / path


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}, for logging nested params."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
