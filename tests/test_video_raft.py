"""RAFT flow for the video remover: the code path runs here with random weights (tests never download), the
weights policy refuses to run without pretrained ones, and the remover uses RAFT when asked."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.optical_flow import raft_small

from carremoval.io import read_rgb
from carremoval.video import TemporalConfig, remove_frames
from carremoval.video.flow import FlowSettings
from carremoval.video.raft import MODELS, RaftFlow
from carremoval.weights import WeightsUnavailable
from weights_support import no_network


@pytest.fixture(scope="module")
def random_raft_file(tmp_path_factory) -> str:
    """A raft_small state dict with random weights, as a .pth file (stands in for the pretrained one)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), path)
    return str(path)


@pytest.fixture()
def offline(tmp_path, monkeypatch) -> list[str]:
    """An empty torch hub cache and no network; records every download attempt."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return no_network(monkeypatch)


@pytest.mark.parametrize("shape", [(60, 90), (240, 432), (137, 250)])
def test_raft_returns_a_flow_of_the_frame_size(shape):
    rng = np.random.default_rng(0)
    grey_a, grey_b = (rng.integers(0, 256, shape).astype(np.uint8) for _ in range(2))
    flow = RaftFlow(raft_small(weights=None), torch.device("cpu"), updates=2)(grey_a, grey_b)
    assert flow.shape == (*shape, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def test_raft_without_pretrained_weights_is_refused_clearly(tmp_path, offline):
    with pytest.raises(WeightsUnavailable) as error:
        RaftFlow.load("raft_small", "DEFAULT")
    message = str(error.value)
    assert offline == [MODELS["raft_small"][1].url]
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message and "flow_method dis" in message
    with pytest.raises(WeightsUnavailable, match="'none'"):
        RaftFlow.load("raft_small", "none")
    with pytest.raises(WeightsUnavailable, match="file not found"):
        RaftFlow.load("raft_small", str(tmp_path / "missing.pth"))


def test_raft_weights_from_a_file(tmp_path, random_raft_file):
    raft = RaftFlow.load("raft_small", random_raft_file, device="cpu")
    saved = torch.load(random_raft_file, weights_only=True)
    assert all(torch.equal(raft.model.state_dict()[key], value) for key, value in saved.items())
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(WeightsUnavailable, match="not raft_small weights"):
        RaftFlow.load("raft_small", str(wrong))
    with pytest.raises(ValueError, match="flow method 'raft'"):
        FlowSettings(method="raft")


def test_the_remover_runs_on_raft_flow(shared_data, random_raft_file, monkeypatch):
    """Random weights make a meaningless flow, so this checks the plumbing, not the quality: the remover's flow
    comes from RAFT, and it keeps every pixel outside the hole and the frame count."""
    photo = read_rgb(shared_data / "photos/backgrounds/dpst_in20.png")
    frames = [np.ascontiguousarray(photo[10 + t: 138 + t, 20 + 3 * t: 196 + 3 * t]) for t in range(5)]
    hole = np.zeros(frames[0].shape[:2], bool)
    hole[40:80, 60:120] = True
    config = TemporalConfig(flow_method="raft_small", flow_weights=random_raft_file, device="cpu",
                            chunk_frames=4, overlap_frames=1)
    calls = []
    real_call = RaftFlow.__call__

    def counted(self, grey_from, grey_to):
        calls.append(grey_from.shape)
        return real_call(self, grey_from, grey_to)

    monkeypatch.setattr(RaftFlow, "__call__", counted)
    outputs = list(remove_frames(frames, [hole] * len(frames), lambda image, mask: image, config))
    assert len(calls) == 2 * (len(frames) - 1)  # forward and backward flow per pair of neighbouring frames
    grown = np.zeros_like(hole)
    grown[40 - config.dilate_px: 80 + config.dilate_px, 60 - config.dilate_px: 120 + config.dilate_px] = True
    assert len(outputs) == len(frames)
    assert all(np.array_equal(out[~grown], frame[~grown]) for out, frame in zip(outputs, frames))
