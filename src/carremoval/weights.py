"""Pretrained weights under an explicit policy: the torch hub cache, a download, or a local file.

A `weights` param is "DEFAULT" (torchvision's weights from the torch hub cache when they are there, else
downloaded after a short network check, so an offline machine fails in seconds, not minutes), a path to a .pth
state dict (loaded with torch.load(weights_only=True)), or "none". When no weights can be had, WeightsUnavailable
says what was tried and what to do; callers never fall back to random weights silently.
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any, Protocol

import torch

from carremoval.io import sha256_file

log = logging.getLogger(__name__)


class WeightsUnavailable(RuntimeError):
    """No pretrained weights could be had; the message says what was tried and what to do."""


def weights_mode(weights: str | None) -> str:
    """'default', 'none' or 'path' for a `weights` param value."""
    if weights is None or str(weights).strip().lower() in ("none", "null", ""):
        return "none"
    return "default" if str(weights).strip().upper() == "DEFAULT" else "path"


def cache_path(url: str) -> Path:
    """Where torch.hub keeps a downloaded checkpoint ($TORCH_HOME/hub/checkpoints/<file name>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)


def network_reachable(url: str, timeout: float) -> bool:
    """True when the URL's host resolves and accepts a TCP connection within `timeout` seconds."""
    parts = urllib.parse.urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)

    def connect() -> None:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(connect).result(timeout=timeout)
        return True
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)


def download_checkpoint(url: str, target: Path, timeout: float) -> None:
    """torch.hub's download (hash-prefix checked, atomic) with a socket timeout."""
    target.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = torch.hub.HASH_REGEX.search(target.name)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=hash_prefix.group(1) if hash_prefix else None)
    finally:
        socket.setdefaulttimeout(previous)


def default_state_dict(weights_enum: Any, timeout: float, how_to: str) -> tuple[dict[str, torch.Tensor], str]:
    """torchvision's pretrained state dict from the hub cache, else downloaded; WeightsUnavailable offline.
    `how_to` tells the user how to provide the weights ({file} is replaced by the checkpoint's file name)."""
    url = weights_enum.url
    cached = cache_path(url)
    how = how_to.format(file=cached.name)
    if not cached.exists():
        if not network_reachable(url, timeout):
            raise WeightsUnavailable(
                f"pretrained {weights_enum} weights are not in the torch hub cache ({cached}) and {url} "
                f"cannot be reached (no network). {how}"
            )
        log.info("downloading %s to %s", url, cached)
        try:
            download_checkpoint(url, cached, timeout)
        except (OSError, RuntimeError) as err:
            raise WeightsUnavailable(f"downloading {url} failed ({err}). {how}") from None
    return load_state_dict_file(cached, f"cached {weights_enum}"), f"torchvision {weights_enum} ({cached})"


def load_state_dict_file(path: Path, param: str) -> dict[str, torch.Tensor]:
    """A state dict from a .pth file (weights_only); a {'model'|'state_dict': ...} checkpoint is unwrapped.
    `param` names the setting the path came from, for the error message."""
    if not path.is_file():
        raise WeightsUnavailable(f"{param}: {path}: file not found")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad or unsafe file
        raise WeightsUnavailable(f"{param}: {path}: not a loadable weights_only state dict ({err})") from None
    for key in ("model", "state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise WeightsUnavailable(f"{param}: {path}: does not hold a state dict of tensors")
    return loaded


class PublishedFile(Protocol):
    """A weights file published at a URL with a known sha256 (e.g. espnet_segmenter.EspnetDataset)."""

    file_name: str
    sha256: str
    url: str


def espnet_weights_file(published: PublishedFile, weights: str | None, timeout: float) -> Path:
    """The local path of a published weights file per the `weights` policy: a file, a folder holding it (directly
    or in espnetv2/), or DEFAULT (the torch hub cache, else downloaded and checked against its sha256)."""
    mode = weights_mode(weights)
    if mode == "none":
        raise WeightsUnavailable("segment.weights is 'none': no segmentation model is used")
    if mode == "path":
        return local_weights_file(Path(str(weights)), published.file_name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / published.file_name
    if cached.is_file():
        return cached
    if not network_reachable(published.url, timeout):
        raise WeightsUnavailable(
            f"{published.file_name} is not in the torch hub cache ({cached}) and {published.url} cannot be reached "
            "(no network). Point segment.weights / --segmenter-weights at a folder holding it (this repository's "
            "params use ../shared/models/espnetv2), or copy it into the cache."
        )
    download_verified(published, cached, timeout)
    return cached


def local_weights_file(path: Path, file_name: str) -> Path:
    """`path` itself when it is a file, else `file_name` inside the folder `path` (or its espnetv2/)."""
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in (path / file_name, path / "espnetv2" / file_name):
            if candidate.is_file():
                return candidate
        raise WeightsUnavailable(f"{path}: no {file_name} in this folder (nor in {path / 'espnetv2'})")
    raise WeightsUnavailable(f"{path}: weights file or folder not found")


def download_verified(published: PublishedFile, target: Path, timeout: float) -> None:
    """Download to `target` (atomically) and keep it only when its sha256 is the published one."""
    log.info("downloading %s to %s", published.url, target)
    partial = target.with_name(f".{target.name}.part")
    try:
        download_checkpoint(published.url, partial, timeout)
        digest = sha256_file(partial)
        if digest != published.sha256:
            raise WeightsUnavailable(f"{published.url}: sha256 {digest} is not the published {published.sha256}")
        partial.replace(target)
    except (OSError, RuntimeError) as err:
        if isinstance(err, WeightsUnavailable):
            raise
        raise WeightsUnavailable(f"downloading {published.url} failed ({err})") from None
    finally:
        partial.unlink(missing_ok=True)
