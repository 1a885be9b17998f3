"""Model factories (as LaMa's make_generator): build a generator or discriminator from params, save and load.

    generator = build_generator("unet", image_size=[128, 192], mask_input=True, base_channels=32, depth=6)
    save_generator("models/generator.pt", generator, config)
    generator, config = load_generator("models/generator.pt", device)   # eval mode, weights_only load
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from carremoval.io import InputError, atomic_file
from carremoval.models.discriminators import PatchDiscriminator, layers_for_patch_size
from carremoval.models.generators import BACKBONES, InpaintingGenerator, check_divisible, input_channels

__all__ = [
    "InpaintingGenerator", "PatchDiscriminator", "build_discriminator", "build_generator",
    "discriminator_channels", "load_generator", "save_generator",
]



def build_generator(kind: str = "unet", image_size: tuple[int, int] | list[int] = (128, 192),
                    mask_input: bool = True, prefill: str = "harmonic", **backbone_kwargs: Any
                    ) -> InpaintingGenerator:
    """A generator from its config: `kind` picks the backbone (unet | unet2), the rest are its arguments."""
    if kind not in BACKBONES:
        raise ValueError(f"unknown generator kind {kind!r} (expected one of {', '.join(sorted(BACKBONES))})")
    depth = int(backbone_kwargs.get("depth", 7))
    if depth < 2:
        raise ValueError(f"generator depth must be at least 2, got {depth}")
    check_divisible(tuple(image_size), 2 ** depth, f"a {kind} generator of depth {depth}")
    backbone = BACKBONES[kind](in_channels=input_channels(mask_input, prefill), out_channels=3, **backbone_kwargs)
    return InpaintingGenerator(backbone, mask_input=mask_input, prefill=prefill)


def discriminator_channels(mask_input: bool) -> int:
    """Input channels of a conditional discriminator: condition (image [+ mask]) plus the judged image."""
    return (4 if mask_input else 3) + 3


def build_discriminator(kind: str = "patchgan", in_channels: int = 7, base_channels: int = 64,
                        n_layers: int | None = 3, patch_size: int | None = None, norm: str = "batch"
                        ) -> PatchDiscriminator:
    """A conditional PatchGAN; give its depth as `n_layers` or its receptive field as `patch_size` (70 = 3)."""
    if kind != "patchgan":
        raise ValueError(f"unknown discriminator kind {kind!r} (expected patchgan)")
    if patch_size is not None:
        n_layers = layers_for_patch_size(int(patch_size))
    return PatchDiscriminator(in_channels, base_channels=base_channels, n_layers=int(n_layers or 3), norm=norm)


def _config_from(generator_config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kwargs = dict(generator_config)
    return kwargs.pop("kind"), kwargs


def save_generator(path: str | os.PathLike, generator: nn.Module, config: dict[str, Any]) -> None:
    """models/generator.pt: {"state_dict": CPU tensors, "config": plain values}, written atomically."""
    state = {name: tensor.detach().cpu().clone() for name, tensor in generator.state_dict().items()}
    with atomic_file(path) as tmp:
        torch.save({"state_dict": state, "config": dict(config)}, tmp)


def load_generator(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[InpaintingGenerator, dict]:
    """Rebuild the generator saved by `save_generator` (weights_only load) in eval mode on `device`."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise InputError(f"{path}: not a generator checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(saved, dict) or not {"state_dict", "config"} <= saved.keys():
        raise InputError(f"{path}: not a generator checkpoint (expected keys 'state_dict' and 'config')")
    config = saved["config"]
    try:
        kind, kwargs = _config_from(config)
        generator = build_generator(kind, **kwargs)
        generator.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(f"{path}: the saved config does not rebuild the saved weights ({err})") from None
    return generator.to(device).eval(), config
