"""Adversarial, pixel and VGG19 perceptual losses, and the VGG19 weights policy (never a download in tests)."""
from __future__ import annotations

import math

import pytest
import torch

from carremoval import losses
from carremoval.io import InputError
from carremoval.losses import AdversarialLoss, PixelLoss, Vgg19Features, build_perceptual_loss, layer_weights
from weights_support import no_network


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """The network is unreachable, and any call of torchvision's downloader fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download VGG19 weights")

    no_network(monkeypatch)
    monkeypatch.setattr("torchvision.models.VGG19_Weights.get_state_dict", refuse, raising=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.fixture
def empty_hub(monkeypatch, tmp_path):
    """A torch hub cache without VGG19 in it."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_vanilla_loss_without_smoothing_is_binary_cross_entropy():
    adversarial = AdversarialLoss("vanilla", smoothing=False)
    zero = torch.zeros(2, 1, 4, 4)
    real, fake = adversarial.discriminator(zero, zero)
    assert math.isclose(float(real), math.log(2), rel_tol=1e-6) and math.isclose(float(fake), math.log(2), rel_tol=1e-6)
    confident = torch.full((2, 1, 4, 4), 8.0)
    assert float(adversarial.generator(confident)) < 1e-3 < float(adversarial.generator(-confident))


def test_label_smoothing_draws_labels_in_the_original_ranges():
    adversarial = AdversarialLoss("vanilla", smoothing=True)
    logits = torch.zeros(64, 1, 8, 8)
    real = adversarial._labels(logits, adversarial.real_range, 1.0)
    fake = adversarial._labels(logits, adversarial.fake_range, 0.0)
    assert 0.8 <= float(real.min()) < float(real.max()) <= 1.0
    assert 0.0 <= float(fake.min()) < float(fake.max()) <= 0.2
    # A discriminator that is certain is penalised: smoothed labels never reach 0 or 1.
    real_loss, fake_loss = adversarial.discriminator(torch.full_like(logits, 20.0), torch.full_like(logits, -20.0))
    assert float(real_loss) > 1.0 and float(fake_loss) > 1.0


def test_lsgan_and_hinge_objectives():
    ones, zeros = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    lsgan = AdversarialLoss("lsgan", smoothing=False)
    assert [float(value) for value in lsgan.discriminator(ones, zeros)] == [0.0, 0.0]
    assert float(lsgan.generator(zeros)) == 1.0
    hinge = AdversarialLoss("hinge", smoothing=True)  # smoothing does not apply to hinge
    assert [float(value) for value in hinge.discriminator(ones, -ones)] == [0.0, 0.0]
    assert [float(value) for value in hinge.discriminator(zeros, zeros)] == [1.0, 1.0]
    assert float(hinge.generator(2 * ones)) == -2.0
    with pytest.raises(ValueError, match="unknown GAN mode 'wgan'"):
        AdversarialLoss("wgan")


def test_pixel_loss_weighs_inside_and_outside_the_hole_per_image():
    target = torch.zeros(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, :, :2, :2] = 1  # a 4-pixel hole in image 0
    mask[1, :, :4, :] = 1   # a 32-pixel hole in image 1
    output = target.clone()
    output[0, :, :2, :2] = 0.5  # error 0.5 everywhere in hole 0
    output[1, :, 6:, :] = 0.25  # error outside hole 1 only (16 of its 32 valid pixels)
    assert math.isclose(float(PixelLoss("l1", 1.0, 0.0)(output, target, mask)), 0.5 / 2)
    assert math.isclose(float(PixelLoss("l1", 0.0, 1.0)(output, target, mask)), 0.125 / 2)
    assert math.isclose(float(PixelLoss("l1", 200.0, 10.0)(output, target, mask)), 200 * 0.25 + 10 * 0.0625)
    assert math.isclose(float(PixelLoss("mse", 1.0, 0.0)(output, target, mask)), 0.25 / 2)
    with pytest.raises(ValueError, match="unknown pixel loss 'l2'"):
        PixelLoss("l2")


def test_layer_presets_and_names():
    assert layer_weights(["block5_conv4"]) == {"block5_conv4": 1.0}
    assert layer_weights("pix2pixhd") == {"block1_conv1": 1 / 32, "block2_conv1": 1 / 16, "block3_conv1": 1 / 8,
                                          "block4_conv1": 1 / 4, "block5_conv1": 1.0}
    with pytest.raises(ValueError, match="unknown VGG19 layers"):
        layer_weights(["relu5_4"])


def test_missing_weights_follow_the_policy_without_any_download(empty_hub):
    loss, info = build_perceptual_loss(["block5_conv4"], missing="skip")
    assert loss is None and not info.pretrained and not info.enabled and "hub cache" in info.source
    with pytest.raises(InputError, match="train.vgg.missing is 'error'"):
        build_perceptual_loss(["block5_conv4"], missing="error")
    # download asked for but the host unreachable: fall back quickly instead of hanging
    loss, info = build_perceptual_loss(["block1_conv1"], download=True, missing="skip")
    assert loss is None and "unreachable" in info.source


def test_random_fallback_is_seeded_frozen_and_tagged(empty_hub):
    loss, info = build_perceptual_loss(["block1_conv1", "block2_conv1"], missing="random", seed=3)
    again, _ = build_perceptual_loss(["block1_conv1", "block2_conv1"], missing="random", seed=3)
    assert not info.pretrained and info.enabled and info.source.startswith("random (seed 3)")
    assert all(torch.equal(a, b) for a, b in zip(loss.state_dict().values(), again.state_dict().values()))
    target = torch.rand(1, 3, 32, 32) * 2 - 1
    output = (target + 0.3 * torch.randn_like(target)).clamp(-1, 1).requires_grad_(True)
    assert float(loss(target, target)) == 0.0
    value = loss(output, target)
    value.backward()
    assert value.detach().item() > 0 and output.grad.abs().sum() > 0
    assert not any(parameter.requires_grad for parameter in loss.parameters())
    loss.train()
    assert not loss.features.training


def test_pretrained_weights_load_from_a_path_or_the_hub_cache(empty_hub, tmp_path):
    """A torchvision-format state dict (only the layers needed) is found by path and in the hub cache."""
    reference = Vgg19Features(["block1_conv2"], None)
    state = {f"features.{key}": value + 1 for key, value in reference.features.state_dict().items()}
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    loss, info = build_perceptual_loss(["block1_conv2"], weights=str(path))
    assert info.pretrained and info.source == str(path)
    assert torch.equal(loss.features.features[2].weight, state["features.2.weight"])
    cached = losses.hub_vgg19_path()
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    _, info = build_perceptual_loss(["block1_conv2"])
    assert info.pretrained and info.source == str(cached)
    with pytest.raises(InputError, match="vgg.pth: not a VGG19 state dict: no features.5.weight"):
        build_perceptual_loss(["block2_conv1"], weights=str(path))
    path.write_bytes(b"garbage")
    with pytest.raises(InputError, match="vgg.pth: not a VGG19 state dict"):
        build_perceptual_loss(["block1_conv2"], weights=str(path))
    _, info = build_perceptual_loss(["block1_conv2"], weights=str(tmp_path / "absent.pth"))
    assert not info.pretrained and "absent.pth does not exist" in info.source
