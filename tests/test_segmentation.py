"""Segmenters: DeepLab's class selection from the weights' metadata, preprocessing, resizing back, the weight policy
(DEFAULT offline, a local .pth, none), with a stand-in model that returns known logits; nothing is downloaded."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from carremoval import segmentation, weights
from carremoval.masks import iou
from carremoval.segmentation import (
    DeepLabSegmenter,
    SegmenterConfig,
    build_model,
    build_segmenter,
    category_indices,
    optional_segmenter,
)
from carremoval.weights import WeightsUnavailable
from weights_support import no_network

CATEGORIES = segmentation.DEEPLAB_MODELS["deeplabv3_mobilenet_v3_large"][1].meta["categories"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class ColourLogits(nn.Module):
    """A stand-in for DeepLab: the 'car' logit is 6 x redness, the 'bus' logit 6 x blueness, where saturated
    (> 0.4), and -10 elsewhere; every other class 0. Pure red gives P(car) = 0.95, red 135 gives 0.55."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.inputs.append(x)
        rgb = x * STD + MEAN
        red = rgb[:, 0] - torch.maximum(rgb[:, 1], rgb[:, 2])
        blue = rgb[:, 2] - torch.maximum(rgb[:, 0], rgb[:, 1])
        logits = torch.zeros(x.shape[0], len(CATEGORIES), *x.shape[2:])
        logits[:, CATEGORIES.index("car")] = torch.where(red > 0.4, 6 * red, torch.tensor(-10.0))
        logits[:, CATEGORIES.index("bus")] = torch.where(blue > 0.4, 6 * blue, torch.tensor(-10.0))
        return {"out": logits}


def stand_in_segmenter(**config) -> DeepLabSegmenter:
    defaults = {"model": "deeplabv3_mobilenet_v3_large", "weights": None, "inference_size": 64, "batch_size": 2}
    return DeepLabSegmenter(ColourLogits(), SegmenterConfig(**{**defaults, **config}), "stand-in")


def painted(shape: tuple[int, int], red: tuple[slice, slice], blue: tuple[slice, slice] | None = None) -> np.ndarray:
    """A grey image with a pure red (car) and optionally a pure blue (bus) rectangle."""
    image = np.full((*shape, 3), 120, np.uint8)
    image[red] = (255, 0, 0)
    if blue is not None:
        image[blue] = (0, 0, 255)
    return image


def rectangle(shape: tuple[int, int], region: tuple[slice, slice]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[region] = True
    return mask


def test_class_indices_come_from_the_weights_metadata():
    assert category_indices(CATEGORIES, ["car"]) == [CATEGORIES.index("car")]
    assert category_indices(CATEGORIES, ["car", "bus"]) == [CATEGORIES.index("car"), CATEGORIES.index("bus")]
    with pytest.raises(ValueError, match="unknown \\['truck'\\]"):
        category_indices(CATEGORIES, ["car", "truck"])


def test_probabilities_come_back_at_each_photo_size_in_batches():
    car_a, car_b = (slice(20, 70), slice(40, 120)), (slice(100, 150), slice(10, 60))
    images = [painted((90, 160), car_a), painted((180, 90), car_b), painted((90, 160), car_a)]
    segmenter = stand_in_segmenter()
    probs = segmenter.probabilities(images)
    assert [p.shape for p in probs] == [(90, 160), (180, 90), (90, 160)]
    assert all(p.dtype == np.float32 for p in probs)
    assert iou(probs[0] > 0.5, rectangle((90, 160), car_a)) > 0.93
    assert iou(probs[1] > 0.5, rectangle((180, 90), car_b)) > 0.93
    assert np.array_equal(probs[0], probs[2])
    assert probs[0][45, 80] == pytest.approx(np.exp(6) / (np.exp(6) + 20), abs=0.01)
    # the same-size photos went through together; each input was resized to the inference size (shorter side)
    assert sorted(tuple(x.shape) for x in segmenter.model.inputs) == [(1, 3, 128, 64), (2, 3, 64, 113)]
    grey = segmenter.model.inputs[0][0, :, 0, 0] * STD[0, :, 0, 0] + MEAN[0, :, 0, 0]
    assert torch.allclose(grey, torch.full((3,), 120 / 255), atol=1e-3), "ImageNet normalisation of the weights"


def test_bus_counts_only_when_asked_for():
    car, bus = (slice(10, 50), slice(10, 60)), (slice(60, 110), slice(100, 190))
    image = painted((120, 200), car, bus)
    car_only = stand_in_segmenter(classes=("car",)).probabilities([image])[0] > 0.5
    car_and_bus = stand_in_segmenter(classes=("car", "bus")).probabilities([image])[0] > 0.5
    assert iou(car_only, rectangle(image.shape[:2], car)) > 0.9
    both = rectangle(image.shape[:2], car) | rectangle(image.shape[:2], bus)
    assert iou(car_and_bus, both) > 0.9


def test_masks_are_thresholded_and_cleaned():
    car, speck = (slice(30, 100), slice(40, 160)), (slice(5, 12), slice(180, 187))
    image = painted((120, 200), car)
    image[speck] = (255, 0, 0)
    mask = stand_in_segmenter().masks([image])[0]
    assert mask.dtype == bool and mask.shape == (120, 200)
    assert not mask[speck].any(), "the small second blob is dropped"
    assert iou(mask, rectangle((120, 200), car)) > 0.95


def test_bad_image_arrays_are_refused():
    with pytest.raises(ValueError, match="expected HxWx3 uint8"):
        stand_in_segmenter().probabilities([np.zeros((10, 10), np.uint8)])


def test_weights_none_means_no_segmenter():
    with pytest.raises(WeightsUnavailable, match="'none'"):
        build_segmenter({"weights": "none"})
    assert optional_segmenter({"weights": None}) is None


def test_default_weights_offline_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    attempts = no_network(monkeypatch)
    with pytest.raises(WeightsUnavailable) as error:
        build_segmenter({"model": "deeplabv3_mobilenet_v3_large", "weights": "DEFAULT"})
    message = str(error.value)
    url = segmentation.DEEPLAB_MODELS["deeplabv3_mobilenet_v3_large"][1].url
    assert attempts == [url]
    assert url in message and str(tmp_path / "torch" / "hub" / "checkpoints") in message
    assert "segment.weights to a local .pth" in message and "weights: none" in message


def test_network_check_fails_fast_on_a_closed_port():
    assert weights.network_reachable("http://127.0.0.1:9/x.pth", timeout=2.0) is False


@pytest.fixture(scope="module")
def random_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_model("deeplabv3_mobilenet_v3_large").state_dict()


def test_default_weights_are_taken_from_the_hub_cache(tmp_path, monkeypatch, random_state_dict):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    attempts = no_network(monkeypatch)
    cached = weights.cache_path(segmentation.DEEPLAB_MODELS["deeplabv3_mobilenet_v3_large"][1].url)
    cached.parent.mkdir(parents=True)
    torch.save(random_state_dict, cached)
    segmenter = build_segmenter({"model": "deeplabv3_mobilenet_v3_large", "weights": "DEFAULT"})
    assert attempts == [] and str(cached) in segmenter.weights_source
    loaded = segmenter.model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in random_state_dict.items())


def test_a_weights_file_is_loaded_weights_only(tmp_path, monkeypatch, random_state_dict):
    path = tmp_path / "deeplab.pth"
    torch.save({"model": random_state_dict}, path)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    segmenter = build_segmenter(
        {"model": "deeplabv3_mobilenet_v3_large", "weights": str(path), "inference_size": 64}
    )
    assert calls == [True] and segmenter.weights_source == str(path)
    assert torch.equal(segmenter.model.state_dict()["classifier.4.weight"], random_state_dict["classifier.4.weight"])
    assert segmenter.probabilities([np.zeros((40, 60, 3), np.uint8)])[0].shape == (40, 60)


class NotTensors:
    pass


def test_unsafe_or_wrong_weight_files_are_refused(tmp_path):
    pickled = tmp_path / "pickled.pth"
    torch.save({"evil": NotTensors()}, pickled)
    with pytest.raises(WeightsUnavailable, match="not a loadable weights_only state dict"):
        build_segmenter({"model": "deeplabv3_resnet101", "weights": str(pickled)})
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(WeightsUnavailable, match="not deeplabv3_resnet101 weights"):
        build_segmenter({"model": "deeplabv3_resnet101", "weights": str(wrong)})
    with pytest.raises(WeightsUnavailable, match="file not found"):
        build_segmenter({"model": "deeplabv3_resnet101", "weights": str(tmp_path / "missing.pth")})
