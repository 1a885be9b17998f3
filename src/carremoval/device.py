"""Device choice: CUDA (with AMP) when present, else the CPU with a sensible thread count."""
from __future__ import annotations

import os

import torch


def select_device(name: str | None = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU; 'cpu' / 'cuda' / 'cuda:1' are taken as given."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for, but CUDA is not available here")
    return device


def configure_cpu_threads(threads: int | None = None) -> int:
    """Use one intra-op thread per available core (or `threads`); returns the number set."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    count = max(1, threads or available)
    torch.set_num_threads(count)
    return count
