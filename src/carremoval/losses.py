"""The GAN's losses: adversarial (vanilla | lsgan | hinge), VGG19 perceptual, and pixel (hole / valid weighted).

VGG19 weights follow DESIGN.md section 4: torchvision's pretrained ImageNet weights from a local file or the
torch hub cache (downloaded only when asked and the host is reachable); without them the `missing` policy
decides: 'skip' drops the perceptual term, 'random' uses a seeded random-weight VGG19, 'error' stops. Which
one happened is returned as `VggInfo` so training can tag it in MLflow and metrics/train.json.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from carremoval.io import InputError
from carremoval import weights as weight_policy

ADVERSARIAL_MODES = ("vanilla", "lsgan", "hinge")
PIXEL_KINDS = ("l1", "mse")
VGG_MISSING_POLICIES = ("skip", "random", "error")

# Keras layer names (as in the original) -> index of that conv's ReLU in torchvision's vgg19().features.
VGG19_LAYERS = {
    "block1_conv1": 1, "block1_conv2": 3,
    "block2_conv1": 6, "block2_conv2": 8,
    "block3_conv1": 11, "block3_conv2": 13, "block3_conv3": 15, "block3_conv4": 17,
    "block4_conv1": 20, "block4_conv2": 22, "block4_conv3": 24, "block4_conv4": 26,
    "block5_conv1": 29, "block5_conv2": 31, "block5_conv3": 33, "block5_conv4": 35,
}
# pix2pixHD's VGGLoss: relu1_1 .. relu5_1, weighted 1/32 .. 1, with L1.
PIX2PIXHD_LAYERS = {"block1_conv1": 1 / 32, "block2_conv1": 1 / 16, "block3_conv1": 1 / 8,
                    "block4_conv1": 1 / 4, "block5_conv1": 1.0}
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1
VGG19_FILE = VGG19_URL.rsplit("/", 1)[-1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AdversarialLoss:
    """GAN objective on raw discriminator logits; optional one-sided-noise label smoothing for D (vanilla, lsgan).

    The original used vanilla (BCE) with real labels drawn from [0.8, 1.0] and fake labels from [0.0, 0.2].
    """

    def __init__(self, mode: str = "vanilla", smoothing: bool = True,
                 real_range: tuple[float, float] = (0.8, 1.0), fake_range: tuple[float, float] = (0.0, 0.2)):
        if mode not in ADVERSARIAL_MODES:
            raise ValueError(f"unknown GAN mode {mode!r} (expected one of {', '.join(ADVERSARIAL_MODES)})")
        self.mode, self.smoothing = mode, smoothing
        self.real_range, self.fake_range = tuple(real_range), tuple(fake_range)

    def _labels(self, logits: torch.Tensor, value_range: tuple[float, float], exact: float) -> torch.Tensor:
        if not self.smoothing:
            return torch.full_like(logits, exact)
        low, high = value_range
        return low + (high - low) * torch.rand_like(logits)

    def _against(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return F.mse_loss(logits.float(), labels.float())

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss on real, loss on fake) for the discriminator's update."""
        if self.mode == "hinge":
            return F.relu(1.0 - real_logits.float()).mean(), F.relu(1.0 + fake_logits.float()).mean()
        real = self._against(real_logits, self._labels(real_logits, self.real_range, 1.0))
        fake = self._against(fake_logits, self._labels(fake_logits, self.fake_range, 0.0))
        return real, fake

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial term: make D call the fakes real (target 1, never smoothed)."""
        if self.mode == "hinge":
            return -fake_logits.float().mean()
        return self._against(fake_logits, torch.ones_like(fake_logits))


class PixelLoss:
    """L1 or MSE, averaged per image inside the hole and outside it, then weighted and summed.

    Per-image means match the hole_l1 metric (a small hole counts as much as a big one). In mask mode the
    output equals the input outside the hole, so only the hole term moves the generator there.
    """

    def __init__(self, kind: str = "l1", hole_weight: float = 1.0, valid_weight: float = 1.0):
        if kind not in PIXEL_KINDS:
            raise ValueError(f"unknown pixel loss {kind!r} (expected l1 or mse)")
        self.kind, self.hole_weight, self.valid_weight = kind, float(hole_weight), float(valid_weight)

    def __call__(self, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        difference = output.float() - target.float()
        error = difference.abs() if self.kind == "l1" else difference.square()
        error = error.mean(dim=1, keepdim=True)
        total = output.new_zeros((), dtype=torch.float32)
        for region, weight in ((mask, self.hole_weight), (1.0 - mask, self.valid_weight)):
            if weight:
                area = region.sum(dim=(1, 2, 3)).clamp(min=1.0)
                total = total + weight * ((error * region).sum(dim=(1, 2, 3)) / area).mean()
        return total


@dataclass
class VggInfo:
    """What the perceptual loss runs on: pretrained weights (and from where), random weights, or nothing."""

    pretrained: bool
    source: str  # a file path, 'random (seed N)', or 'skipped: <why>'

    @property
    def enabled(self) -> bool:
        return not self.source.startswith("skipped")


def hub_vgg19_path() -> Path:
    """Where torchvision keeps downloaded VGG19 weights (under torch.hub.get_dir())."""
    return weight_policy.cache_path(VGG19_URL)


def _load_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise InputError(f"{path}: not a VGG19 state dict ({type(err).__name__}: {err})") from None


def _vgg19_state(weights: str | None, download: bool) -> tuple[dict | None, str]:
    """Pretrained VGG19 state dict and its source, or (None, why not). Never downloads unless `download`."""
    from torchvision.models import VGG19_Weights

    if weights not in (None, "auto"):
        path = Path(weights).expanduser()
        if not path.is_file():
            return None, f"{path} does not exist"
        return _load_state(path), str(path)
    cached = hub_vgg19_path()
    if cached.is_file():
        return _load_state(cached), str(cached)
    if not download:
        return None, f"not in the torch hub cache ({cached}) and download is off"
    if not weight_policy.network_reachable(VGG19_URL, timeout=3.0):  # offline: fail in seconds, not in a download
        return None, f"not cached and {VGG19_URL} is unreachable"
    state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    return state, f"downloaded to {cached}"


class Vgg19Features(nn.Module):
    """Frozen VGG19 `features` up to the deepest requested layer; returns the requested activations.

    Only that prefix is built and loaded (block1_conv1 needs two layers, block5_conv4 all but the last pool),
    from a torchvision VGG19 state dict; without one the layers get torchvision's Kaiming initialisation.
    """

    def __init__(self, layers: list[str], state_dict: dict | None):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.indices = {VGG19_LAYERS[name]: name for name in layers}
        self.features = make_layers(cfgs["E"])[: max(self.indices) + 1]
        if state_dict is None:
            for module in self.features.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(module.bias)
        else:
            needed = {f"features.{key}": key for key in self.features.state_dict()}
            missing = [key for key in needed if key not in state_dict]
            if missing:
                raise ValueError(f"not a VGG19 state dict: no {missing[0]}")
            self.features.load_state_dict({short: state_dict[full] for full, short in needed.items()})
        self.features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> Vgg19Features:
        return super().train(False)  # always frozen, always in eval mode

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = ((image + 1.0) / 2.0 - self.mean) / self.std
        found = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.indices:
                found[self.indices[index]] = x
        return found


class PerceptualLoss(nn.Module):
    """Weighted distance between VGG19 activations of output and target (original: block5_conv4, MSE)."""

    def __init__(self, features: Vgg19Features, layer_weights: dict[str, float], criterion: str = "mse"):
        super().__init__()
        if criterion not in PIXEL_KINDS:
            raise ValueError(f"unknown perceptual criterion {criterion!r} (expected l1 or mse)")
        self.features, self.layer_weights, self.criterion = features, dict(layer_weights), criterion

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        fake = self.features(output)
        with torch.no_grad():
            real = self.features(target)
        return sum(weight * distance(fake[name].float(), real[name].float())
                   for name, weight in self.layer_weights.items())


def layer_weights(layers: str | list[str] | dict[str, float]) -> dict[str, float]:
    """'pix2pixhd' -> its five layers and weights; a list -> equal weights; a dict passes through; names checked."""
    if layers == "pix2pixhd":
        chosen = dict(PIX2PIXHD_LAYERS)
    elif isinstance(layers, str):
        chosen = {layers: 1.0}
    elif isinstance(layers, dict):
        chosen = {str(name): float(weight) for name, weight in layers.items()}
    else:
        chosen = {str(name): 1.0 for name in layers}
    unknown = [name for name in chosen if name not in VGG19_LAYERS]
    if unknown or not chosen:
        raise ValueError(f"unknown VGG19 layers {unknown} (expected Keras names: {', '.join(VGG19_LAYERS)})")
    return chosen


def build_perceptual_loss(layers: str | list[str] | dict[str, float] = ("block5_conv4",), criterion: str = "mse",
                          weights: str | None = "auto", download: bool = False, missing: str = "skip",
                          seed: int = 0) -> tuple[PerceptualLoss | None, VggInfo]:
    """The VGG19 perceptual loss under the weights policy; (None, info) when the term is skipped."""
    if missing not in VGG_MISSING_POLICIES:
        raise ValueError(f"unknown VGG missing-weights policy {missing!r} (expected skip, random or error)")
    chosen = layer_weights(list(layers) if isinstance(layers, tuple) else layers)
    state, source = _vgg19_state(weights, download)
    if state is not None:
        try:
            features = Vgg19Features(list(chosen), state)
        except ValueError as err:
            raise InputError(f"{source}: {err}") from None
        return PerceptualLoss(features, chosen, criterion), VggInfo(True, source)
    if missing == "error":
        raise InputError(
            f"train.vgg.missing is 'error' and pretrained VGG19 weights are missing ({source}); put {VGG19_FILE} "
            f"there, give train.vgg.weights a path, set train.vgg.download true on a machine with internet, or "
            f"choose train.vgg.missing skip|random"
        )
    if missing == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            features = Vgg19Features(list(chosen), None)
        return PerceptualLoss(features, chosen, criterion), VggInfo(False, f"random (seed {seed}); {source}")
    return None, VggInfo(False, f"skipped: {source}")
