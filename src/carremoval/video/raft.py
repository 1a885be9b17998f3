"""RAFT optical flow (torchvision's raft_small / raft_large): the learned alternative to DIS for large, blurred
motion (`remove.flow_method`).

RAFT needs pretrained weights (`remove.flow_weights`: DEFAULT is torchvision's, from the torch hub cache or
downloaded; or a path to a .pth state dict). Without them `RaftFlow.load` raises WeightsUnavailable: a
random-weight RAFT's flow is garbage and is never used. The remover keeps grey frames, so RAFT sees the grey frame
in all three channels.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torchvision.models import optical_flow

from carremoval.device import select_device
from carremoval.params import resolve_path
from carremoval.weights import WeightsUnavailable, default_state_dict, load_state_dict_file, weights_mode

MODELS: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "raft_small": (optical_flow.raft_small, optical_flow.Raft_Small_Weights.C_T_V2),
    "raft_large": (optical_flow.raft_large, optical_flow.Raft_Large_Weights.C_T_SKHT_V2),
}
MIN_SIDE = 128  # RAFT's correlation pyramid needs feature maps (1/8 of the frame) of at least 16 px
HOW_TO_GIVE_WEIGHTS = (
    "To use RAFT flow: on a machine with internet, run once with flow_weights DEFAULT (torchvision downloads {file} "
    "into the torch hub cache, $TORCH_HOME/hub/checkpoints/), or copy {file} there, or set remove.flow_weights "
    "(--flow-weights) to a local .pth state dict. Otherwise use flow_method dis (--flow dis)."
)


class RaftFlow:
    """Dense flow from one grey frame to the next (pixels, HxWx2 float32, the layout DIS returns)."""

    def __init__(self, model: nn.Module, device: torch.device, updates: int = 12):
        self.model = model.eval().to(device)
        self.device = device
        self.updates = updates

    @classmethod
    def load(cls, name: str, weights: str | None, device: str = "auto", timeout: float = 20.0) -> RaftFlow:
        """RAFT `name` with pretrained weights per the weights policy; WeightsUnavailable when there are none."""
        if name not in MODELS:
            raise ValueError(f"RAFT model {name!r}: expected one of {', '.join(MODELS)}")
        builder, weights_enum = MODELS[name]
        mode = weights_mode(weights)
        if mode == "none":
            raise WeightsUnavailable(f"remove.flow_weights is 'none': {name} needs pretrained weights (DEFAULT or a "
                                     ".pth state dict); otherwise use flow_method dis (--flow dis)")
        if mode == "default":
            state_dict, source = default_state_dict(weights_enum, timeout, HOW_TO_GIVE_WEIGHTS)
        else:
            path = resolve_path(weights)
            state_dict, source = load_state_dict_file(path, "remove.flow_weights"), str(path)
        model = builder(weights=None)
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as err:
            raise WeightsUnavailable(f"{source}: not {name} weights ({str(err).splitlines()[0]} ...)") from None
        return cls(model, select_device(device))

    @torch.inference_mode()
    def __call__(self, grey_from: np.ndarray, grey_to: np.ndarray) -> np.ndarray:
        height, width = grey_from.shape
        flows = self.model(self._tensor(grey_from), self._tensor(grey_to), num_flow_updates=self.updates)
        return flows[-1][0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy()

    def _tensor(self, grey: np.ndarray) -> torch.Tensor:
        """1x3xHxW in [-1, 1], edge-padded at the bottom and right to a size RAFT takes (multiples of 8, at least
        MIN_SIDE)."""
        height, width = grey.shape
        padded_height, padded_width = (max(MIN_SIDE, -(-side // 8) * 8) for side in (height, width))
        padded = np.pad(grey, ((0, padded_height - height), (0, padded_width - width)), mode="edge")
        image = torch.from_numpy(padded).to(self.device, torch.float32) / 127.5 - 1.0
        return image.expand(1, 3, padded_height, padded_width)
