"""Car masks from the authors' pretrained ESPNetv2 (s = 2.0) segmentation weights, Cityscapes or PASCAL VOC.

    segmenter = EspnetCarSegmenter.from_file("../shared/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth")
    probability = segmenter.probabilities(rgb)     # HxW float32, P(car)
    mask = segmenter.mask(rgb)                     # HxW bool, P(car) > 0.5

The weights file is checked against its published sha256 before it is loaded (torch.load(weights_only=True),
load_state_dict(strict=True)). Preprocessing follows the authors' test script: the whole photo is resized
(PIL bilinear) to the training size (1024x512 for Cityscapes, 384x384 for PASCAL), scaled to [0, 1] and
normalised with the ImageNet mean and std; `labels` upsamples the logits bilinearly to the photo's size (as the
authors do); `probabilities` sums the soft-maxed probabilities of the chosen classes (car by default; Cityscapes
also has truck and bus) at the network's size and upsamples that sum. With `equalize`, the resized input's
lightness is equalised first (CLAHE; hazy or washed-out footage, where the car's contrast is low).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from carremoval.device import select_device
from carremoval.io import sha256_file
from carremoval.models.espnetv2 import ESPNetv2Segmentation

__all__ = ["DATASETS", "EspnetCarSegmenter", "EspnetDataset", "dataset_spec"]

EDGENETS_COMMIT = "2b232d3f7fb60658755dad1ebca0ffc895cc795e"   # sacmehta/EdgeNets, MIT licence
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EspnetDataset:
    """What a pretrained ESPNetv2 file was trained on: its file, checksum, classes and input size."""

    name: str
    file_name: str
    sha256: str
    input_size: tuple[int, int]  # (width, height), as PIL's resize takes it
    class_names: tuple[str, ...]
    default_classes: tuple[str, ...] = ("car",)

    @property
    def url(self) -> str:
        """The authors' raw file at the pinned commit."""
        return (f"https://raw.githubusercontent.com/sacmehta/EdgeNets/{EDGENETS_COMMIT}/model/segmentation/"
                f"model_zoo/espnetv2/{self.file_name}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_index(self, cls: int | str) -> int:
        """A class given by index or name -> its index; ValueError when this dataset has no such class."""
        if isinstance(cls, str):
            if cls not in self.class_names:
                raise ValueError(f"{self.name} has no class {cls!r} (classes: {', '.join(self.class_names)})")
            return self.class_names.index(cls)
        index = int(cls)
        if not 0 <= index < self.num_classes:
            raise ValueError(f"{self.name} class index {index} is out of range 0..{self.num_classes - 1}")
        return index


DATASETS: dict[str, EspnetDataset] = {
    "cityscapes": EspnetDataset(
        name="cityscapes",
        file_name="espnetv2_s_2.0_city_1024x512.pth",
        sha256="a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8",
        input_size=(1024, 512),
        class_names=("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                     "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                     "motorcycle", "bicycle", "background"),
    ),
    "pascal": EspnetDataset(
        name="pascal",
        file_name="espnetv2_s_2.0_pascal_384x384.pth",
        sha256="bc479586b0ba9254e02589020346931a14d99028ad6bac4817198be6d9e719a6",
        input_size=(384, 384),
        class_names=("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
                     "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
                     "sheep", "sofa", "train", "tvmonitor"),
    ),
}


def dataset_spec(dataset: str) -> EspnetDataset:
    """The EspnetDataset for "cityscapes" (or "city") or "pascal"."""
    key = {"city": "cityscapes"}.get(dataset.lower(), dataset.lower())
    if key not in DATASETS:
        raise ValueError(f"unknown ESPNetv2 dataset {dataset!r} (expected one of {', '.join(DATASETS)})")
    return DATASETS[key]


def scaled_input_size(spec: EspnetDataset, height: int | None) -> tuple[int, int]:
    """The network's input (width, height): the training size, or scaled to `height` with its aspect kept."""
    if height is None:
        return spec.input_size
    if height < 32:
        raise ValueError(f"ESPNetv2 input height {height}: must be at least 32")
    width, training_height = spec.input_size
    return round(width * height / training_height), int(height)


def equalize_lightness(rgb: np.ndarray, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """The RGB image with its CIELAB lightness equalised by CLAHE (contrast-limited adaptive histogram
    equalisation, `tiles` x `tiles` tiles), its colours' a, b kept."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clip_limit, (tiles, tiles)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """The photo as an HxWx3 uint8 array; ValueError for anything else."""
    array = np.asarray(rgb)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got dtype {array.dtype} and shape {array.shape}")
    return array


class EspnetCarSegmenter:
    """Car probabilities and masks from a pretrained ESPNetv2 (in eval mode, under torch.no_grad)."""

    def __init__(self, model: ESPNetv2Segmentation, dataset: str = "cityscapes",
                 device: torch.device | str | None = "auto",
                 classes: Sequence[int | str] | None = None, input_height: int | None = None,
                 equalize: bool = False) -> None:
        self.spec = dataset_spec(dataset)
        self.equalize = equalize
        self.input_size = scaled_input_size(self.spec, input_height)
        if model.num_classes != self.spec.num_classes:
            raise ValueError(f"the model has {model.num_classes} classes, {self.spec.name} has "
                             f"{self.spec.num_classes}")
        self.device = select_device(None if device is None else str(device))
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()   # CPU: 0.65-0.7x the time
        chosen = self.spec.default_classes if classes is None else tuple(classes)
        if not chosen:
            raise ValueError("classes must name at least one class")
        self.class_indices: tuple[int, ...] = tuple(sorted({self.spec.class_index(c) for c in chosen}))
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_file(cls, path: str | os.PathLike, dataset: str = "cityscapes",
                  device: torch.device | str | None = "auto",
                  classes: Sequence[int | str] | None = None, input_height: int | None = None,
                  equalize: bool = False) -> EspnetCarSegmenter:
        """Load the authors' state dict for `dataset` after checking the file's sha256.

        ValueError (naming the file) when it is missing, its checksum is not the published one, or it does not
        load into the network with strict=True. `device` "auto" picks CUDA when available. `input_height` scales
        the network's input from the training size (None) to that height, its aspect kept: faster, coarser.
        `equalize`: equalise the input's lightness (CLAHE) before the network."""
        spec = dataset_spec(dataset)
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: ESPNetv2 {spec.name} weights file not found (expected {spec.file_name}, "
                             f"sha256 {spec.sha256})")
        digest = sha256_file(path)
        if digest != spec.sha256:
            raise ValueError(f"{path}: sha256 {digest} does not match the published {spec.sha256} of "
                             f"{spec.file_name} ({spec.name}); the file is corrupt or not these weights")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = ESPNetv2Segmentation(num_classes=spec.num_classes)
            model.load_state_dict(state, strict=True)
        except Exception as err:  # torch raises many types for a foreign or damaged file
            raise ValueError(f"{path}: does not load as ESPNetv2 {spec.name} weights "
                             f"({type(err).__name__}: {err})") from None
        return cls(model, dataset=spec.name, device=device, classes=classes, input_height=input_height,
                   equalize=equalize)

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """The photo resized (PIL bilinear) to the input size (its lightness equalised with `equalize`), in [0, 1],
        ImageNet-normalised: 1x3xhxw."""
        resized = np.array(Image.fromarray(check_rgb(rgb)).resize(self.input_size, Image.BILINEAR))
        if self.equalize:
            resized = equalize_lightness(resized)
        x = torch.from_numpy(resized).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        return ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def network_logits(self, rgb: np.ndarray) -> torch.Tensor:
        """1 x C x h x w logits at the training size (1024x512 or 384x384), on the segmenter's device."""
        return self.model(self.preprocess(rgb)).float()

    @torch.no_grad()
    def logits(self, rgb: np.ndarray) -> torch.Tensor:
        """1 x C x H x W logits upsampled bilinearly to the photo's size, on the segmenter's device."""
        height, width = np.asarray(rgb).shape[:2]
        return F.interpolate(self.network_logits(rgb), size=(height, width), mode="bilinear",
                             align_corners=False)

    def labels(self, rgb: np.ndarray) -> np.ndarray:
        """HxW int64 class map (argmax of the photo-size logits)."""
        return self.logits(rgb)[0].argmax(0).cpu().numpy()

    @torch.no_grad()
    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """HxW float32: the probability of the chosen classes (summed), soft-maxed at the network's size and
        upsampled bilinearly to the photo's (one channel, not every class's logits: several times cheaper, the same
        mask to within an edge pixel)."""
        height, width = np.asarray(rgb).shape[:2]
        probs = torch.softmax(self.network_logits(rgb), dim=1)[:, list(self.class_indices)].sum(1, keepdim=True)
        probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
        return probs.clamp_(0.0, 1.0).cpu().numpy().astype(np.float32, copy=False)

    def mask(self, rgb: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """HxW bool: car probability above `threshold`."""
        return self.probabilities(rgb) > threshold
