"""Car segmentation behind one interface: ESPNetv2 (Cityscapes, PASCAL VOC, or the union of both) or torchvision
DeepLabV3 (ResNet-101 or MobileNetV3), under an explicit weight policy.

    segmenter = build_segmenter({"model": "espnetv2", "weights": "../shared/models/espnetv2"})
    probabilities = segmenter.probabilities([rgb, ...])   # HxW float32 P(car) per photo
    masks = segmenter.masks([rgb, ...])                   # HxW bool, thresholded and cleaned

Models (`model` param): espnetv2_city, espnetv2_voc, espnetv2 (both; a pixel's car probability is the larger of
the two), deeplabv3_resnet101, deeplabv3_mobilenet_v3_large.
Weights (`weights` param):
- "DEFAULT": the published weights from the torch hub cache when they are there, else downloaded (a short network
  check first, so an offline machine fails in seconds, not minutes): torchvision's COCO_WITH_VOC_LABELS_V1 for
  DeepLab, the authors' files at a pinned commit, checked against their sha256, for ESPNetv2;
- a path: a .pth state dict (loaded with torch.load(weights_only=True)), or for ESPNetv2 a folder holding the
  authors' file names;
- "none": no model.
When no pretrained weights can be had, `build_segmenter` raises WeightsUnavailable (carremoval.weights); a model
with random weights is never used to make masks.
"""
from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import segmentation as tv_segmentation

from carremoval.device import select_device
from carremoval.espnet_segmenter import EspnetCarSegmenter, dataset_spec
from carremoval.masks import MaskCleaning, clean_mask
from carremoval.params import resolve_path
from carremoval.weights import (
    WeightsUnavailable,
    default_state_dict,
    espnet_weights_file,
    load_state_dict_file,
    weights_mode,
)

log = logging.getLogger(__name__)

DEEPLAB_MODELS: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "deeplabv3_resnet101": (
        tv_segmentation.deeplabv3_resnet101,
        tv_segmentation.DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1,
    ),
    "deeplabv3_mobilenet_v3_large": (
        tv_segmentation.deeplabv3_mobilenet_v3_large,
        tv_segmentation.DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1,
    ),
}
ESPNET_MODELS: dict[str, tuple[str, ...]] = {   # model name -> the ESPNetv2 datasets whose weights it runs
    "espnetv2_city": ("cityscapes",),
    "espnetv2_voc": ("pascal",),
    "espnetv2": ("cityscapes", "pascal"),
}
MODELS = (*ESPNET_MODELS, *DEEPLAB_MODELS)
REMOVED_CLASSES = ("car", "truck", "bus")   # what automatic removal masks take (each model uses those it knows)
REMOVAL_ESPNET_HEIGHT = 256   # ESPNetv2's input height for removal masks: Cityscapes 512x256, PASCAL 256x256, 4x and 2x
                              # faster than their training sizes, about as good on the DAVIS clips and the fully masked
                              # photos (docs/segmentation.md)
HOW_TO_GIVE_WEIGHTS = (
    "To use pretrained weights: on a machine with internet, run the stage once with weights: DEFAULT (torchvision "
    "downloads them into the torch hub cache, $TORCH_HOME/hub/checkpoints/), or copy {file} there, or set "
    "segment.weights to a local .pth state dict. Without them, set weights: none to use the annotation/alpha policy."
)


@dataclass(frozen=True)
class SegmenterConfig:
    model: str = "espnetv2"
    weights: str | None = "DEFAULT"           # DEFAULT | <path to .pth, or a folder for ESPNetv2> | none
    classes: tuple[str, ...] = ("car",)       # class names (each model uses those it knows); add bus, truck
    inference_size: int = 520                 # DeepLab: the shorter side the photo is resized to
    espnet_height: int | None = None          # ESPNetv2: its input height (aspect kept); None = the training
                                              # size, 1024x512 (Cityscapes) or 384x384 (PASCAL)
    espnet_equalize: bool = False             # ESPNetv2: equalise its input's lightness (CLAHE) first
    batch_size: int = 4
    device: str = "auto"
    threshold: float = 0.5                    # car probability above which a pixel is car
    download_timeout: float = 20.0            # seconds, for the network check and each socket read
    cleaning: MaskCleaning = field(default_factory=MaskCleaning)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"segment.model must be one of {list(MODELS)}, got {self.model!r}")
        if self.inference_size < 32 or self.batch_size < 1:
            raise ValueError("segment: inference_size must be >= 32 and batch_size >= 1")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "SegmenterConfig":
        """The segmenter's own keys of params['segment'] (others are ignored)."""
        names = {"model", "weights", "inference_size", "espnet_height", "espnet_equalize", "batch_size", "device",
                 "threshold", "download_timeout"}
        values = {key: params[key] for key in names if key in params}
        if "classes" in params:
            values["classes"] = tuple(params["classes"])
        values["cleaning"] = MaskCleaning.from_params(params.get("cleaning"))
        return cls(**values)

    @property
    def is_espnet(self) -> bool:
        return self.model in ESPNET_MODELS

    @property
    def weights_enum(self) -> Any:
        """torchvision's weights entry of a DeepLab model."""
        return DEEPLAB_MODELS[self.model][1]


def category_indices(categories: Sequence[str], classes: Sequence[str]) -> list[int]:
    """Indices of the wanted class names in the weights' category list; a clear error for an unknown name."""
    unknown = [name for name in classes if name not in categories]
    if unknown or not classes:
        raise ValueError(f"segment.classes {list(classes)}: unknown {unknown}; the weights know {list(categories)}")
    return [list(categories).index(name) for name in classes]


def build_model(name: str, state_dict: dict[str, torch.Tensor] | None = None, source: str = "") -> nn.Module:
    """A DeepLabV3 with the COCO/VOC head (21 classes), random-init unless a state dict is given; never downloads."""
    builder, weights_enum = DEEPLAB_MODELS[name]
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
    """The DeepLab model and a description of where its weights came from, per the weight policy."""
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


class Segmenter:
    """Car probability maps and cleaned car masks for RGB photos of any size; subclasses give the probabilities."""

    config: SegmenterConfig
    weights_source: str
    device: torch.device

    def probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per image, an HxW float32 map of P(car) (the chosen classes summed), at the image's own size."""
        raise NotImplementedError

    def probability(self, image: np.ndarray) -> np.ndarray:
        """One image's HxW float32 P(car)."""
        return self.probabilities([image])[0]

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per image, an HxW bool car mask: probability above the threshold, then cleaned."""
        return [self.mask_from_probability(prob) for prob in self.probabilities(images)]

    def mask_from_probability(self, probability: np.ndarray, keep: str | None = None) -> np.ndarray:
        """The cleaned mask of a probability map; `keep` (all, largest, center) overrides the configured choice."""
        cleaning = self.config.cleaning if keep is None else replace(self.config.cleaning, keep=keep)
        return clean_mask(probability > self.config.threshold, cleaning)

    def describe(self) -> str:
        return f"{self.config.model} with {self.weights_source} on {self.device}"


def check_images(images: Sequence[np.ndarray]) -> None:
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image {index}: expected HxWx3 uint8 RGB, got {image.shape} {image.dtype}")


class EspnetSegmenter(Segmenter):
    """ESPNetv2 on one or both of its datasets; with both, a pixel's car probability is the larger one."""

    def __init__(self, networks: Sequence[EspnetCarSegmenter], config: SegmenterConfig, weights_source: str) -> None:
        self.networks = list(networks)
        self.config = config
        self.weights_source = weights_source
        self.device = self.networks[0].device

    @classmethod
    def from_config(cls, config: SegmenterConfig) -> "EspnetSegmenter":
        """The pretrained networks of `config.model`, per the weight policy; WeightsUnavailable when missing."""
        networks, files = [], []
        weights = str(resolve_path(config.weights)) if weights_mode(config.weights) == "path" else config.weights
        for dataset in ESPNET_MODELS[config.model]:
            spec = dataset_spec(dataset)
            path = espnet_weights_file(spec, weights, config.download_timeout)
            classes = [name for name in config.classes if name in spec.class_names]
            if not classes:
                raise ValueError(f"segment.classes {list(config.classes)}: none is a class of ESPNetv2 {spec.name} "
                                 f"({', '.join(spec.class_names)})")
            try:
                networks.append(EspnetCarSegmenter.from_file(path, dataset, config.device, classes,
                                                             config.espnet_height, config.espnet_equalize))
            except ValueError as err:
                raise WeightsUnavailable(str(err)) from None
            files.append(str(path))
        return cls(networks, config, " + ".join(files))

    def probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        check_images(images)
        with flush_denormals():
            return [np.maximum.reduce([network.probabilities(image) for network in self.networks])
                    for image in images]


class DeepLabSegmenter(Segmenter):
    """torchvision DeepLabV3, batched by image size, with the weights' own preprocessing."""

    def __init__(self, model: nn.Module, config: SegmenterConfig, weights_source: str = "") -> None:
        self.config = config
        self.weights_source = weights_source
        self.device = select_device(config.device)
        self.model = model.to(self.device).eval()
        self.class_indices = category_indices(config.weights_enum.meta["categories"], config.classes)
        self.preprocess = config.weights_enum.transforms(resize_size=config.inference_size)
        self.amp = self.device.type == "cuda"

    def probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        check_images(images)
        results: list[np.ndarray | None] = [None] * len(images)
        for indices in self._batches(images):
            maps = self._forward([images[i] for i in indices])
            for index, prob in zip(indices, maps):
                results[index] = prob
        return results  # type: ignore[return-value]

    def _batches(self, images: Sequence[np.ndarray]) -> list[list[int]]:
        """Indices grouped by image size (so a batch needs no padding), in chunks of batch_size."""
        by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, image in enumerate(images):
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


def build_segmenter(params: dict[str, Any] | SegmenterConfig) -> Segmenter:
    """The pretrained segmenter of params['segment'] (or a config); WeightsUnavailable when there are no weights."""
    config = params if isinstance(params, SegmenterConfig) else SegmenterConfig.from_params(params)
    if weights_mode(config.weights) == "none":
        raise WeightsUnavailable("segment.weights is 'none': no segmentation model is used")
    if config.is_espnet:
        return EspnetSegmenter.from_config(config)
    model, source = load_pretrained(config)
    return DeepLabSegmenter(model, config, source)


def removal_segmenter(model: str, weights: str | None, device: str = "auto", keep: str = "all",
                      video: bool = False) -> Segmenter:
    """The segmenter of `carremoval remove --masks auto`: cars, trucks and buses, ESPNetv2 at its fast input size;
    its masks keep every car or the largest (`keep`). For a `video` ESPNetv2's input has its lightness equalised
    (CLAHE): on the hazy DAVIS drift clips recall 0.30 -> 0.80 (drift-chicane), precision 0.49 -> 0.80
    (drift-straight); on photos it gained nothing (mean IoU 0.809 -> 0.811) and saw a car in a building."""
    return build_segmenter({"model": model, "weights": weights, "device": device, "classes": list(REMOVED_CLASSES),
                            "espnet_height": REMOVAL_ESPNET_HEIGHT, "espnet_equalize": video,
                            "cleaning": {"keep": keep}})


def optional_segmenter(params: dict[str, Any]) -> Segmenter | None:
    """The pretrained segmenter, or None (logged loudly, with the reason) when the weight policy gives none."""
    try:
        segmenter = build_segmenter(params)
    except WeightsUnavailable as err:
        log.warning("no pretrained segmenter: %s", err)
        return None
    log.info("segmenter: %s", segmenter.describe())
    return segmenter
