"""Car segmentation with torchvision DeepLabV3 (ResNet-101 or MobileNetV3), under an explicit weight policy.

Weights (`weights` param):
- "DEFAULT": torchvision's COCO_WITH_VOC_LABELS_V1 weights, from the torch hub cache when they are there, else
  downloaded (a short network check first, so an offline machine fails in seconds, not minutes);
- a path to a .pth state dict (loaded with torch.load(weights_only=True));
- "none": no model.
When no pretrained weights can be had, `CarSegmenter.from_params` raises WeightsUnavailable (carremoval.weights);
a model with random weights is never used to make masks.
"""
from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import segmentation as tv_segmentation

from carremoval.device import select_device
from carremoval.masks import MaskCleaning, clean_mask
from carremoval.params import resolve_path
from carremoval.weights import WeightsUnavailable, default_state_dict, load_state_dict_file, weights_mode

log = logging.getLogger(__name__)

MODELS: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "deeplabv3_resnet101": (
        tv_segmentation.deeplabv3_resnet101,
        tv_segmentation.DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1,
    ),
    "deeplabv3_mobilenet_v3_large": (
        tv_segmentation.deeplabv3_mobilenet_v3_large,
        tv_segmentation.DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1,
    ),
}
HOW_TO_GIVE_WEIGHTS = (
    "To use pretrained weights: on a machine with internet, run the stage once with weights: DEFAULT (torchvision "
    "downloads them into the torch hub cache, $TORCH_HOME/hub/checkpoints/), or copy {file} there, or set "
    "segment.weights to a local .pth state dict. Without them, set weights: none to use the annotation/alpha policy."
)


@dataclass(frozen=True)
class SegmenterConfig:
    model: str = "deeplabv3_resnet101"
    weights: str | None = "DEFAULT"           # DEFAULT | <path to .pth> | none
    classes: tuple[str, ...] = ("car",)       # category names from the weights' metadata; add "bus" to include it
    inference_size: int = 520                 # the shorter side the photo is resized to for the model
    batch_size: int = 4
    device: str = "auto"
    threshold: float = 0.5                    # car probability above which a pixel is car
    download_timeout: float = 20.0            # seconds, for the network check and each socket read
    cleaning: MaskCleaning = field(default_factory=MaskCleaning)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"segment.model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.inference_size < 32 or self.batch_size < 1:
            raise ValueError("segment: inference_size must be >= 32 and batch_size >= 1")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "SegmenterConfig":
        """The segmenter's own keys of params['segment'] (others are ignored)."""
        names = {"model", "weights", "inference_size", "batch_size", "device", "threshold", "download_timeout"}
        values = {key: params[key] for key in names if key in params}
        if "classes" in params:
            values["classes"] = tuple(params["classes"])
        values["cleaning"] = MaskCleaning.from_params(params.get("cleaning"))
        return cls(**values)

    @property
    def weights_enum(self) -> Any:
        return MODELS[self.model][1]


def category_indices(categories: Sequence[str], classes: Sequence[str]) -> list[int]:
    """Indices of the wanted class names in the weights' category list; a clear error for an unknown name."""
    unknown = [name for name in classes if name not in categories]
    if unknown or not classes:
        raise ValueError(f"segment.classes {list(classes)}: unknown {unknown}; the weights know {list(categories)}")
    return [list(categories).index(name) for name in classes]


def build_model(name: str, state_dict: dict[str, torch.Tensor] | None = None, source: str = "") -> nn.Module:
    """A DeepLabV3 with the COCO/VOC head (21 classes), random-init unless a state dict is given; never downloads."""
    builder, weights_enum = MODELS[name]
    aux = state_dict is not None and any(key.startswith("aux_classifier.") for key in state_dict)
    model = builder(
        weights=None, weights_backbone=None, num_classes=len(weights_enum.meta["categories"]), aux_loss=aux
    )
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as err:
            first_line = str(err).splitlines()[0]
            raise WeightsUnavailable(f"{source}: not {name} weights ({first_line} ...)") from None
    return model.eval()


def load_pretrained(config: SegmenterConfig) -> tuple[nn.Module, str]:
    """The model and a description of where its weights came from, per the weight policy."""
    mode = weights_mode(config.weights)
    if mode == "none":
        raise WeightsUnavailable("segment.weights is 'none': no segmentation model is used")
    if mode == "default":
        state_dict, source = default_state_dict(config.weights_enum, config.download_timeout, HOW_TO_GIVE_WEIGHTS)
    else:
        path = resolve_path(config.weights)
        state_dict, source = load_state_dict_file(path, "segment.weights"), str(path)
    return build_model(config.model, state_dict, source), source


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush denormal floats to zero while inside (CPU): a random-init or badly scaled network otherwise
    spends most of its time on denormals (70x slower convolutions measured here). Restores the default after."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class CarSegmenter:
    """Car probability maps and cleaned car masks for RGB photos of any size, batched, on the chosen device."""

    def __init__(self, model: nn.Module, config: SegmenterConfig, weights_source: str = "") -> None:
        self.config = config
        self.weights_source = weights_source
        self.device = select_device(config.device)
        self.model = model.to(self.device).eval()
        self.class_indices = category_indices(config.weights_enum.meta["categories"], config.classes)
        self.preprocess = config.weights_enum.transforms(resize_size=config.inference_size)
        self.amp = self.device.type == "cuda"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "CarSegmenter":
        """A segmenter with pretrained weights per params['segment']; WeightsUnavailable when there are none."""
        config = SegmenterConfig.from_params(params)
        model, source = load_pretrained(config)
        return cls(model, config, source)

    def probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per image, an HxW float32 map of P(car) (the chosen classes summed), at the image's own size."""
        results: list[np.ndarray | None] = [None] * len(images)
        for indices in self._batches(images):
            maps = self._forward([images[i] for i in indices])
            for index, prob in zip(indices, maps):
                results[index] = prob
        return results  # type: ignore[return-value]

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per image, an HxW bool car mask: probability above the threshold, then cleaned."""
        return [self.mask_from_probability(prob) for prob in self.probabilities(images)]

    def mask_from_probability(self, probability: np.ndarray) -> np.ndarray:
        return clean_mask(probability > self.config.threshold, self.config.cleaning)

    def _batches(self, images: Sequence[np.ndarray]) -> list[list[int]]:
        """Indices grouped by image size (so a batch needs no padding), in chunks of batch_size."""
        by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"image {index}: expected HxWx3 uint8 RGB, got {image.shape} {image.dtype}")
            by_shape[image.shape[:2]].append(index)
        size = self.config.batch_size
        return [group[start : start + size] for group in by_shape.values() for start in range(0, len(group), size)]

    @torch.inference_mode()
    def _forward(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """One same-size batch: the weights' preprocessing, the model, softmax, back to the photo size."""
        height, width = images[0].shape[:2]
        batch = torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).contiguous()
        inputs = self.preprocess(batch)
        with flush_denormals(), torch.autocast(device_type="cuda", dtype=torch.float16, enabled=self.amp):
            logits = self.model(inputs)["out"]
        probs = torch.softmax(logits.float(), dim=1)[:, self.class_indices].sum(dim=1, keepdim=True)
        probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
        return list(probs.clamp_(0.0, 1.0)[:, 0].cpu().numpy().astype(np.float32))


def optional_segmenter(params: dict[str, Any]) -> CarSegmenter | None:
    """The pretrained segmenter, or None (logged loudly, with the reason) when the weight policy gives none."""
    try:
        segmenter = CarSegmenter.from_params(params)
    except WeightsUnavailable as err:
        log.warning("no pretrained segmenter: %s", err)
        return None
    log.info("segmenter: %s with %s on %s", segmenter.config.model, segmenter.weights_source, segmenter.device)
    return segmenter
