"""Discriminators: pix2pix's conditional PatchGAN (real/fake logits per overlapping patch)."""
from __future__ import annotations

import torch
from torch import nn

from carremoval.models.generators import norm_layer

# Receptive field of a PatchGAN with n stride-2 layers (plus two stride-1 layers), all 4x4 kernels.
PATCH_SIZES = {1: 16, 2: 34, 3: 70, 4: 142, 5: 286}


def layers_for_patch_size(patch_size: int) -> int:
    """The depth whose receptive field is `patch_size` (16, 34, 70, 142 or 286 pixels)."""
    for layers, size in PATCH_SIZES.items():
        if size == patch_size:
            return layers
    raise ValueError(f"PatchGAN patch size {patch_size} is not one of {sorted(PATCH_SIZES.values())}")


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: D(condition, image) -> Bx1xhxw logits (no sigmoid; the loss applies it).

    `n_layers` stride-2 4x4 convolutions (the first without normalisation), then a stride-1 layer and a 1-channel
    stride-1 projection, so each logit sees a square patch of PATCH_SIZES[n_layers] pixels.
    """

    def __init__(self, in_channels: int, base_channels: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if n_layers not in PATCH_SIZES:
            raise ValueError(f"PatchGAN depth n_layers={n_layers} must be one of {sorted(PATCH_SIZES)}")
        self.patch_size = PATCH_SIZES[n_layers]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = base_channels
        for layer in range(1, n_layers + 1):
            previous, width = width, base_channels * min(2 ** layer, 8)
            stride = 2 if layer < n_layers else 1
            layers += [nn.Conv2d(previous, width, 4, stride=stride, padding=1), norm_layer(norm, width),
                       nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([condition, image], dim=1))
