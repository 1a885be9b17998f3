"""Generators, the push-pull, harmonic and row-wise prefills, the PatchGAN discriminator, and saving/loading the
generator."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from carremoval.data import image_to_tensor, mask_to_tensor, tensor_to_image
from carremoval.io import InputError, read_mask, read_rgb
from carremoval.models import build_discriminator, build_generator, load_generator, save_generator
from carremoval.models.generators import harmonic_fill, pushpull_fill, rows_fill
from carremoval.blending import smooth_fill
from carremoval.params import load_params

SIZE = (32, 48)
TINY = {"base_channels": 4, "depth": 3}


def batch(seed: int = 0, size: tuple[int, int] = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, *size, generator=generator) * 2 - 1
    mask = torch.zeros(2, 1, *size)
    mask[0, :, 8:20, 10:30] = 1
    mask[1, :, 2:9, 30:46] = 1
    return x, mask


def perturb(module: torch.nn.Module, seed: int = 1) -> None:
    """Random weights everywhere (the prefill generator starts with a zero output layer)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)


@pytest.mark.parametrize(("kind", "upsample"), [("unet", "transpose"), ("unet", "resize"), ("unet2", "transpose")])
@pytest.mark.parametrize("prefill", ["pushpull", "harmonic", "pushpull_rows", "none"])
def test_mask_mode_keeps_every_pixel_outside_the_hole_bit_exact(kind, upsample, prefill):
    generator = build_generator(kind, image_size=SIZE, mask_input=True, prefill=prefill, upsample=upsample, **TINY)
    perturb(generator)
    x, mask = batch()
    for mode in (generator.train, generator.eval):
        mode()
        out = generator(x, mask)
        outside = mask.expand_as(x) == 0
        assert out.shape == x.shape
        assert torch.equal(out[outside], x[outside])
        assert not torch.equal(out[~outside], x[~outside]), "the hole must be filled, not copied"
        assert out.abs().max() <= 1.0


def test_blind_mode_regenerates_the_whole_image_and_ignores_the_mask():
    generator = build_generator("unet", image_size=SIZE, mask_input=False, **TINY).eval()
    x, mask = batch()
    out = generator(x, mask)
    assert torch.equal(out, generator(x, torch.zeros_like(mask)))
    assert not torch.equal(out[mask.expand_as(x) == 0], x[mask.expand_as(x) == 0])
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize(("kind", "upsample"), [("unet", "transpose"), ("unet", "resize"), ("unet2", "resize")])
@pytest.mark.parametrize("prefill", [pushpull_fill, harmonic_fill])
def test_prefill_generator_starts_from_the_smooth_fill_and_learns_from_it(kind, upsample, prefill):
    name = prefill.__name__.removesuffix("_fill")
    generator = build_generator(kind, image_size=SIZE, prefill=name, upsample=upsample, **TINY).eval()
    x, mask = batch()
    start = generator(x, mask)
    assert torch.allclose(start, prefill(x, mask), atol=2e-3)
    generator.train()
    generator(x, mask).sum().backward()
    assert generator.backbone.output_layer.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown upsample 'pixelshuffle'"):
        build_generator(kind, image_size=SIZE, upsample="pixelshuffle", **TINY)


def test_two_prefill_generator_starts_from_the_mean_of_both_fills():
    generator = build_generator("unet", image_size=SIZE, prefill="pushpull_rows", **TINY).eval()
    first_conv = next(m for m in generator.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 7  # both fills and the hole
    x, mask = batch()
    expected = (pushpull_fill(x, mask) + rows_fill(x, mask)) / 2
    assert torch.allclose(generator(x, mask), expected, atol=2e-3)
    with pytest.raises(ValueError, match="unknown prefill 'rows'"):
        build_generator("unet", image_size=SIZE, prefill="rows", **TINY)


def test_rows_fill_continues_horizontal_layers_that_pushpull_blurs():
    """Bands of colour stacked vertically (sky, facade, road) are continued exactly along each row; a row the
    hole crosses completely falls back to the push-pull fill."""
    bands = torch.repeat_interleave(torch.tensor([-0.8, 0.1, 0.6, -0.3]), 16).view(1, 1, 64, 1)
    layered = bands.expand(1, 3, 64, 96).clone()
    hole = torch.zeros(1, 1, 64, 96)
    hole[..., 10:50, 20:80] = 1
    hole[..., 60:62, :] = 1
    inside = hole.expand_as(layered) > 0
    by_rows, smooth = rows_fill(layered, hole), pushpull_fill(layered, hole)
    assert torch.equal(by_rows[~inside], layered[~inside])
    assert torch.allclose(by_rows[..., :56, :], layered[..., :56, :], atol=1e-6)
    assert (smooth - layered).abs()[inside].mean() > 0.05
    assert torch.equal(by_rows[..., 60:62, :], smooth[..., 60:62, :])


def test_pushpull_fill_continues_smooth_surroundings_into_the_hole():
    rows = torch.linspace(-1, 1, 64).view(1, 1, 64, 1)
    ramp = rows.expand(1, 3, 64, 96).clone()
    hole = torch.zeros(1, 1, 64, 96)
    hole[..., 20:44, 30:70] = 1
    filled = pushpull_fill(ramp, hole)
    assert torch.equal(filled[hole.expand_as(ramp) == 0], ramp[hole.expand_as(ramp) == 0])
    assert (filled - ramp).abs().max() < 0.15  # a linear ramp is nearly continued
    constant = torch.full((1, 3, 64, 96), 0.3)
    assert torch.allclose(pushpull_fill(constant, hole), constant, atol=1e-6)


def test_pushpull_fill_beats_the_hole_mean_on_a_real_photo(shared_data):
    """On a real photo with a real car-shaped hole, the fill is closer to the truth than the photo's mean."""
    photo = read_rgb(shared_data / "photos" / "backgrounds" / "dpst_in32.png")[:240, :360]
    car = read_mask(shared_data / "photos" / "cars" / "davis_car-shadow_00000.mask.png")
    hole = np.zeros(photo.shape[:2], bool)
    hole[100:220, 100:300] = np.asarray(torch.nn.functional.interpolate(
        torch.from_numpy(car).float()[None, None], size=(120, 200)))[0, 0] > 0.5
    x, m = image_to_tensor(photo)[None], mask_to_tensor(hole)[None]
    filled = pushpull_fill(x * (1 - m), m)
    truth = x[m.expand_as(x) > 0]
    error = (filled[m.expand_as(x) > 0] - truth).abs().mean()
    assert error < (truth - x.mean()).abs().mean() * 0.7


def test_harmonic_fill_continues_a_ramp_and_matches_the_video_fill(shared_data):
    """The membrane fill reproduces a linear ramp and agrees with its NumPy twin (used for video flow) on a real
    photo with a car-shaped hole, within one grey level; outside the hole the image is untouched."""
    rows = torch.linspace(-1, 1, 64).view(1, 1, 64, 1)
    ramp = rows.expand(1, 3, 64, 96).clone()
    box = torch.zeros(1, 1, 64, 96)
    box[..., 20:44, 30:70] = 1
    assert (harmonic_fill(ramp, box) - ramp).abs().max() < 0.02  # push-pull: 0.15
    photo = read_rgb(shared_data / "photos" / "backgrounds" / "dpst_in32.png")[:240, :360]
    hole = np.zeros(photo.shape[:2], bool)
    car = read_mask(shared_data / "photos" / "cars" / "davis_car-shadow_00000.mask.png")
    hole[100:220, 100:300] = cv2.resize(car.astype(np.uint8), (200, 120), interpolation=cv2.INTER_NEAREST) > 0
    x, m = image_to_tensor(photo)[None], mask_to_tensor(hole)[None]
    filled = tensor_to_image(harmonic_fill(x, m)[0])
    reference = np.clip(np.rint(smooth_fill(photo.astype(np.float32), ~hole)), 0, 255)
    assert np.abs(filled.astype(int) - reference).max() <= 1
    assert np.array_equal(filled[~hole], photo[~hole])


def test_harmonic_fill_is_closer_to_the_road_than_pushpull(shared_data):
    """On the shared background photos with a car-shaped hole low in the frame, the membrane fill is nearer the
    truth overall (mean squared error summed over the photos; push-pull wins on a few)."""
    car = read_mask(shared_data / "photos" / "cars" / "davis_car-shadow_00000.mask.png")
    errors = {"pushpull": [], "harmonic": []}
    for path in sorted((shared_data / "photos" / "backgrounds").glob("*.png")):
        photo = read_rgb(path)[:240, :360]
        hole = np.zeros(photo.shape[:2], bool)
        hole[110:230, 80:280] = cv2.resize(car.astype(np.uint8), (200, 120), interpolation=cv2.INTER_NEAREST) > 0
        x, m = image_to_tensor(photo)[None], mask_to_tensor(hole)[None]
        inside = m.expand_as(x) > 0
        for fill in (pushpull_fill, harmonic_fill):
            errors[fill.__name__.removesuffix("_fill")].append((fill(x, m) - x)[inside].square().mean().item())
    assert sum(errors["harmonic"]) < 0.9 * sum(errors["pushpull"])


@pytest.mark.parametrize("kind", ["unet", "unet2"])
def test_both_kinds_build_from_the_params_yaml_section(repo, kind):
    section = {**load_params(repo / "params.yaml")["train"]["generator"], "kind": kind, **TINY}
    generator = build_generator(**section, image_size=SIZE)
    x, mask = batch()
    assert generator(x, mask).shape == x.shape


@pytest.mark.parametrize("kind", ["unet", "unet2"])
def test_working_size_must_fit_the_depth(kind):
    with pytest.raises(ValueError, match="divisible by 8"):
        build_generator(kind, image_size=(36, 48), **TINY)
    with pytest.raises(ValueError, match="unknown generator kind"):
        build_generator("gated", image_size=SIZE)


def test_two_branch_unet_trains_both_branches():
    generator = build_generator("unet2", image_size=SIZE, mask_input=False, **TINY)
    x, mask = batch()
    generator(x, mask).square().mean().backward()
    backbone = generator.backbone
    for branch in (backbone.encoder_a, backbone.encoder_b, backbone.decoder_a, backbone.decoder_b):
        assert all(parameter.grad is not None and parameter.grad.abs().sum() > 0
                   for parameter in branch.parameters())


@pytest.mark.parametrize(("n_layers", "patch"), [(1, 16), (3, 70)])
def test_patchgan_logits_see_patches_of_the_stated_size(n_layers, patch):
    """The gradient of one central logit w.r.t. the image covers exactly a patch x patch square."""
    discriminator = build_discriminator(in_channels=7, base_channels=4, n_layers=n_layers, norm="none")
    condition = torch.zeros(1, 4, 160, 160)
    image = torch.zeros(1, 3, 160, 160, requires_grad=True)
    logits = discriminator(condition, image)
    logits[0, 0, logits.shape[2] // 2, logits.shape[3] // 2].backward()
    touched = image.grad[0].abs().sum(0) > 0
    rows, cols = touched.any(1).nonzero(), touched.any(0).nonzero()
    assert int(rows.max() - rows.min() + 1) <= patch and int(cols.max() - cols.min() + 1) <= patch
    assert int(rows.max() - rows.min() + 1) >= patch - 2
    assert build_discriminator(in_channels=7, patch_size=patch).patch_size == patch
    with pytest.raises(ValueError, match="patch size 50"):
        build_discriminator(in_channels=7, patch_size=50)


def test_saved_generator_loads_with_weights_only_and_gives_the_same_output(tmp_path):
    config = {"kind": "unet", "image_size": list(SIZE), "mask_input": True, "prefill": "pushpull", **TINY}
    generator = build_generator(**config)
    perturb(generator)
    generator.eval()
    path = tmp_path / "generator.pt"
    save_generator(path, generator, config)
    assert set(torch.load(path, weights_only=True)) == {"state_dict", "config"}
    loaded, loaded_config = load_generator(path, "cpu")
    x, mask = batch()
    assert loaded_config == config and not loaded.training
    assert torch.equal(loaded(x, mask), generator(x, mask))


def test_load_generator_names_the_file_on_bad_input(tmp_path):
    with pytest.raises(InputError, match="missing.pt: file not found"):
        load_generator(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt: not a generator checkpoint"):
        load_generator(junk)
    mismatch = tmp_path / "mismatch.pt"
    generator = build_generator("unet", image_size=SIZE, **TINY)
    save_generator(mismatch, generator, {"kind": "unet", "image_size": list(SIZE), "base_channels": 8, "depth": 3})
    with pytest.raises(InputError, match="mismatch.pt: the saved config does not rebuild"):
        load_generator(mismatch)
