"""Test support for the pretrained-weights policy: a machine without network, where every attempt is recorded."""
from __future__ import annotations

import pytest

from carremoval import weights


def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every network check fail at once and any download an error; returns the URLs that were tried."""
    attempts: list[str] = []

    def unreachable(url: str, timeout: float) -> bool:
        attempts.append(url)
        return False

    def refuse(url, target, timeout):
        raise AssertionError(f"tests never download ({url})")

    monkeypatch.setattr(weights, "network_reachable", unreachable)
    monkeypatch.setattr(weights, "download_checkpoint", refuse)
    return attempts
