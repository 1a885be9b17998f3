"""Generators: backbones (U-Nets) and the mask-aware wrapper that turns a backbone into an inpainter.

A backbone maps an input tensor to three raw (pre-activation) channels at the same size. `InpaintingGenerator`
chooses what the backbone sees (the image, or the hole-emptied image plus its mask), how its output becomes an
image in [-1, 1], and, in mask mode, keeps every pixel outside the hole bit-identical to the input.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

def norm_layer(kind: str, channels: int, momentum: float = 0.1) -> nn.Module:
    """'batch' | 'instance' | 'none' normalisation for `channels` feature maps."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, momentum=momentum)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (expected batch, instance or none)")


def check_divisible(image_size: tuple[int, int], factor: int, what: str) -> None:
    """Raise a clear ValueError when H or W is not a multiple of `factor`."""
    height, width = image_size
    if height % factor or width % factor:
        raise ValueError(
            f"{what} needs H and W divisible by {factor}; the working size {height}x{width} (HxW) is not"
        )


UPSAMPLINGS = ("transpose", "resize")


def up_layer(source: int, target: int, upsample: str) -> nn.Module:
    """2x up: pix2pix's 4x4 transposed convolution, or bilinear resize + 3x3 convolution (no checkerboard)."""
    if upsample == "transpose":
        return nn.ConvTranspose2d(source, target, 4, stride=2, padding=1)
    if upsample == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                             nn.Conv2d(source, target, 3, padding=1))
    raise ValueError(f"unknown upsample {upsample!r} (expected one of {', '.join(UPSAMPLINGS)})")


class UNet(nn.Module):
    """pix2pix's U-Net: `depth` stride-2 4x4 convolutions down, 2x up-layers back, skips between.

    Channels double per level from `base_channels` up to 8x; the inner `dropout_levels` decoder levels use
    dropout 0.5 as in pix2pix (0 turns it off, which makes training deterministic given the seed). `upsample`:
    'transpose' (pix2pix) or 'resize' (bilinear + conv, free of transposed convolutions' checkerboard).
    """

    def __init__(self, in_channels: int, out_channels: int = 3, base_channels: int = 64, depth: int = 7,
                 norm: str = "batch", dropout_levels: int = 0, upsample: str = "transpose"):
        super().__init__()
        self.depth = depth
        widths = [base_channels * min(2 ** level, 8) for level in range(depth)]
        self.down = nn.ModuleList()
        for level, width in enumerate(widths):
            source = in_channels if level == 0 else widths[level - 1]
            innermost, outermost = level == depth - 1, level == 0
            layers: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(source, width, 4, stride=2, padding=1))
            if not (outermost or innermost):
                layers.append(norm_layer(norm, width))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for level in reversed(range(depth)):
            source = widths[level] if level == depth - 1 else 2 * widths[level]
            target = out_channels if level == 0 else widths[level - 1]
            layers = [nn.ReLU(), up_layer(source, target, upsample)]
            if level > 0:
                layers.append(norm_layer(norm, target))
                if 0 < depth - 1 - level <= dropout_levels:
                    layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        last = self.up[-1][-1]
        self.output_layer = last if isinstance(last, nn.ConvTranspose2d) else last[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = block(x)
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
        return x


def same_conv(source: int, width: int, kernel: int) -> nn.Sequential:
    """A stride-1 convolution padded like Keras' padding='same' (the extra row/column of an even kernel goes
    right/bottom), without PyTorch's copy-and-warn path for even kernels."""
    before = (kernel - 1) // 2
    after = kernel - 1 - before
    return nn.Sequential(nn.ZeroPad2d((before, after, before, after)), nn.Conv2d(source, width, kernel))


KERAS_MOMENTUM = 0.2  # Keras BatchNormalization(momentum=0.8) in PyTorch's convention


class _DownBlock(nn.Module):
    """The original's encoder level: conv (stride 1) + LeakyReLU, conv (stride s) + LeakyReLU, [norm, [max-pool]]."""

    def __init__(self, source: int, width: int, kernel: int, stride: int, normalise: bool, max_pool: bool,
                 norm: str = "batch"):
        super().__init__()
        layers: list[nn.Module] = [
            same_conv(source, width, kernel), nn.LeakyReLU(0.2),
            same_conv(width, width, kernel) if stride == 1 else
            nn.Conv2d(width, width, kernel, stride=stride, padding=(kernel - stride) // 2),
            nn.LeakyReLU(0.2),
        ]
        if normalise:
            layers.append(norm_layer(norm, width, KERAS_MOMENTUM))
            if max_pool:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _UpBlock(nn.Module):
    """The original's decoder level: 2x upsampling, two convs + ReLU, [dropout], norm, then the skip concatenated."""

    def __init__(self, source: int, width: int, kernel: int, norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            same_conv(source, width, kernel), nn.ReLU(),
            same_conv(width, width, kernel), nn.ReLU(),
            nn.Dropout(dropout) if dropout else nn.Identity(),
            norm_layer(norm, width, KERAS_MOMENTUM),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.body(x), skip], dim=1)


class TwoBranchUNet(nn.Module):
    """The original Keras generator, in PyTorch: two parallel encoder/decoder branches joined at the bottleneck.

    Branch 1 uses 4x4 kernels and strided convolutions, branch 2 uses 2x2 kernels and max-pooling; each branch
    decodes with its own skips to a tanh image, and a final 4x4 convolution merges the two images. `depth` levels
    (the original: 7 at 256x384, batch norm, no dropout); `dropout_levels` inner decoder levels get dropout 0.5;
    `upsample` is branch 2's last layer: 'transpose' (the original's 2x2 transposed conv) or 'resize'.
    """

    def __init__(self, in_channels: int, out_channels: int = 3, base_channels: int = 32, depth: int = 7,
                 norm: str = "batch", dropout_levels: int = 0, upsample: str = "transpose"):
        super().__init__()
        widths = [base_channels * min(2 ** level, 8) for level in range(depth)]
        self.encoder_a = nn.ModuleList(
            _DownBlock(in_channels if level == 0 else widths[level - 1], width, 4, 2, level > 0, False, norm)
            for level, width in enumerate(widths)
        )
        self.encoder_b = nn.ModuleList(
            _DownBlock(in_channels if level == 0 else widths[level - 1], width, 2,
                       2 if level == 0 else 1, level > 0, level > 0, norm)
            for level, width in enumerate(widths)
        )
        bottleneck = widths[-1]
        self.join = nn.Sequential(same_conv(2 * bottleneck, bottleneck, 4), nn.ReLU())
        self.decoder_a, self.decoder_b = nn.ModuleList(), nn.ModuleList()
        source = bottleneck
        for level in reversed(range(depth - 1)):
            dropout = 0.5 if depth - 2 - level < dropout_levels else 0.0
            self.decoder_a.append(_UpBlock(source, widths[level], 4, norm, dropout))
            self.decoder_b.append(_UpBlock(source, widths[level], 2, norm, dropout))
            source = 2 * widths[level]
        self.head_a = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                    same_conv(source, out_channels, 4), nn.Tanh())
        head_b = (nn.ConvTranspose2d(source, out_channels, 2, stride=2) if upsample == "transpose"
                  else up_layer(source, out_channels, upsample))
        self.head_b = nn.Sequential(head_b, nn.Tanh())
        self.merge = same_conv(2 * out_channels, out_channels, 4)
        self.output_layer = self.merge[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips_a, skips_b = [], []
        a = b = x
        for block_a, block_b in zip(self.encoder_a, self.encoder_b):
            a, b = block_a(a), block_b(b)
            skips_a.append(a)
            skips_b.append(b)
        joined = self.join(torch.cat([skips_a.pop(), skips_b.pop()], dim=1))
        a = b = joined
        for block_a, block_b in zip(self.decoder_a, self.decoder_b):
            a, b = block_a(a, skips_a.pop()), block_b(b, skips_b.pop())
        return self.merge(torch.cat([self.head_a(a), self.head_b(b)], dim=1))


BACKBONES: dict[str, type[nn.Module]] = {"unet": UNet, "unet2": TwoBranchUNet}


def pushpull_fill(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Fill the hole smoothly from its surroundings (pull-push, Gortler et al. 1996); keeps the rest exactly.

    Pull: average the known pixels down a 2x pyramid (each level's weight = the known fraction, capped at 1).
    Push: from the coarsest level up, every level takes its own colour where it is known and the upsampled
    coarser colour where it is not, blended by its weight. `hole`: Bx1xHxW in {0, 1}, 1 = unknown.
    """
    filled, _ = _pull_push(image, hole, (2, 2))
    return torch.where(hole > 0.5, filled, image)


def rows_fill(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Fill each row of the hole from the known pixels of the same row only (pull-push along x).

    Street scenes are layered horizontally (sky, buildings, kerb, road), so a row continues its own layer where
    the isotropic push-pull mixes the layers above and below. Rows with nothing known take `pushpull_fill`.
    """
    filled, row_known = _pull_push(image, hole, (1, 2))
    filled = torch.where(row_known, filled, pushpull_fill(image, hole))
    return torch.where(hole > 0.5, filled, image)


def _pull_push(image: torch.Tensor, hole: torch.Tensor, kernel: tuple[int, int]
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pull-push with pooling `kernel` (2x2: isotropic; 1x2: along rows): (filled image, where the coarsest
    level knew something, broadcast to full size)."""
    weight = 1.0 - hole
    levels = [(image * weight, weight)]
    pooled_sides = slice(-2, None) if kernel[0] > 1 else slice(-1, None)
    while min(levels[-1][1].shape[pooled_sides]) > 1:
        colour, weight = levels[-1]
        count = kernel[0] * kernel[1]
        summed_weight = F.avg_pool2d(weight, kernel, ceil_mode=True) * count
        summed_colour = F.avg_pool2d(colour, kernel, ceil_mode=True) * count
        normalised = summed_colour / summed_weight.clamp(min=1e-8)
        capped = summed_weight.clamp(max=1.0)
        levels.append((normalised * capped, capped))
    colour, coarsest_weight = levels[-1]
    filled = colour / coarsest_weight.clamp(min=1e-8)
    for colour, weight in reversed(levels[:-1]):
        coarse = F.interpolate(filled, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        filled = colour + (1.0 - weight) * coarse
    known = F.interpolate(coarsest_weight, size=image.shape[-2:], mode="nearest") > 0
    return filled, known


def harmonic_fill(image: torch.Tensor, hole: torch.Tensor, sweeps: int = 12) -> torch.Tensor:
    """Fill the hole with the membrane (harmonic) interpolation of its border; keeps the rest exactly.

    Solves the Laplace equation in the hole, coarse to fine: a pyramid of known-pixel means, the coarsest level's
    gaps set to the image's mean, then on each finer level the upsampled solution refined by `sweeps` Jacobi
    iterations. Smoother than pull-push, whose 2x2 blocks show through, and closer to the hidden road: val hole
    PSNR 19.12 dB against 18.70 as fills alone. The torch twin of `carremoval.blending.smooth_fill`.
    """
    levels = [(image, 1.0 - hole)]
    while min(levels[-1][1].shape[-2:]) > 3:  # by shape only, so that torch.export can trace it
        levels.append(_half(*levels[-1]))
    values, known = levels[-1]
    mean = (values * known).sum((-2, -1), keepdim=True) / known.sum((-2, -1), keepdim=True).clamp(min=1.0)
    solution = torch.where(known > 0, values, mean)
    for values, known in reversed(levels[:-1]):
        guess = F.interpolate(solution, size=values.shape[-2:], mode="bilinear", align_corners=False)
        solution = _relax(torch.where(known > 0, values, guess), known, sweeps)
    return torch.where(hole > 0.5, solution, image)


def _half(values: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The next pyramid level: each 2x2 block's mean over its known pixels; known where any pixel was."""
    weight = F.avg_pool2d(known, 2, ceil_mode=True)
    weighted = F.avg_pool2d(values * known, 2, ceil_mode=True)
    return weighted / weight.clamp(min=1e-6), (weight > 0).to(values.dtype)


def _relax(values: torch.Tensor, known: torch.Tensor, sweeps: int) -> torch.Tensor:
    """Jacobi iterations of the Laplace equation on the unknown pixels (edges replicated)."""
    channels = values.shape[1]
    neighbours = values.new_tensor([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]]).expand(channels, 1, 3, 3)
    for _ in range(sweeps):
        average = F.conv2d(F.pad(values, (1, 1, 1, 1), mode="replicate"), neighbours, groups=channels)
        values = torch.where(known > 0, values, average)
    return values


# The fills each prefill gives the backbone, by name (the references training reports them under).
PREFILL_FILLS = {"pushpull": {"pushpull": pushpull_fill},
                 "harmonic": {"harmonic": harmonic_fill},
                 "pushpull_rows": {"pushpull": pushpull_fill, "rows": rows_fill}}
PREFILLS = ("none", *PREFILL_FILLS)


def input_channels(mask_input: bool, prefill: str) -> int:
    """Channels the backbone sees: the image (blind mode), or each prefill's fill (for 'none': the image with
    the hole emptied) plus the hole."""
    if not mask_input:
        return 3
    images = len(PREFILL_FILLS[prefill]) if prefill in PREFILL_FILLS else 1
    return 3 * images + 1


class InpaintingGenerator(nn.Module):
    """A backbone made into the project's generator: `out = generator(x, mask)`, all in [-1, 1].

    mask_input=True: the backbone sees the image with the hole emptied (or pre-filled, see `prefill`) plus the
    mask, and its output replaces the hole only: outside the mask `out` is `x`, bit for bit.
    mask_input=False: the original blind mode; the backbone sees only `x` and regenerates the whole image.
    prefill='harmonic' or 'pushpull' (mask mode only): the hole is first filled smoothly from its border
    (`harmonic_fill`, `pushpull_fill`) and the backbone predicts a correction in tanh-logit space,
    out = tanh(atanh(prefill) + raw); the last layer starts at zero, so training starts from the smooth fill
    instead of from noise.
    prefill='pushpull_rows': the backbone sees both the push-pull and the row-wise fill (`rows_fill`) and
    corrects their mean, so it can learn where a street's horizontal layers should continue.
    """

    def __init__(self, backbone: nn.Module, mask_input: bool = True, prefill: str = "harmonic"):
        super().__init__()
        if prefill not in PREFILLS:
            raise ValueError(f"unknown prefill {prefill!r} (expected one of {', '.join(PREFILLS)})")
        self.backbone = backbone
        self.mask_input = mask_input
        self.prefill = prefill if mask_input else "none"
        if self.prefill != "none":
            nn.init.zeros_(backbone.output_layer.weight)
            nn.init.zeros_(backbone.output_layer.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not self.mask_input:
            return torch.tanh(self.backbone(x))
        hole = (mask > 0.5).to(x.dtype)
        if self.prefill != "none":
            fills = [fill(x, hole) for fill in PREFILL_FILLS[self.prefill].values()]
            base = torch.stack(fills).mean(0)
            raw = self.backbone(torch.cat([*fills, hole], dim=1))
            filled = torch.tanh(torch.atanh(base.clamp(-0.999, 0.999)) + raw)
        else:
            raw = self.backbone(torch.cat([x * (1.0 - hole), hole], dim=1))
            filled = torch.tanh(raw)
        return torch.where(hole > 0.5, filled.to(x.dtype), x)
