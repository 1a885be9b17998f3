"""ESPNetv2 semantic segmentation (Mehta et al., "ESPNetv2: A Light-weight, Power Efficient, and General Purpose
Convolutional Neural Network", CVPR 2019), width multiplier s = 2.0, in plain PyTorch.

A re-implementation of the authors' network (github:sacmehta/EdgeNets, MIT licence) whose module names match
their state dicts, so the published Cityscapes (20 classes) and PASCAL VOC (21 classes) weights load with
`strict=True`:

    model = ESPNetv2Segmentation(num_classes=20).eval()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    logits = model(normalised_bx3xhxw)          # B x num_classes x H x W

Structure: an EESP encoder (`base_net`, levels 1-4 of the ImageNet EESPNet, input reinforcement on) and a
bottom-up decoder of efficient pyramid-pooling blocks (`bu_dec_l1..l4`) merged with gated encoder projections
(`merge_enc_dec_l2..l4`, `bu_br_l2..l4`); the logits are upsampled bilinearly to the input's size.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ESPNetv2Segmentation", "EESPEncoder", "EESP", "DownSampler", "EfficientPyramidPool",
           "EfficientPWConv", "CHANNELS_S2"]

#: Encoder output channels per level at width s = 2.0 (levels 1-4; the classifier's levels 5+ are unused).
CHANNELS_S2: tuple[int, int, int, int] = (32, 128, 256, 512)
#: EESP blocks after the down-sampling block of levels 3 and 4.
REPEATS: tuple[int, int] = (3, 7)
#: Receptive-field limit (effective kernel size) of the EESP branches, per spatial level.
RECEPTIVE_LIMITS: tuple[int, ...] = (13, 11, 9, 7, 5)
#: Parallel branches in each EESP block.
BRANCHES = 4
#: Channels of the input-reinforcement path (the RGB image, pooled to each level).
REINFORCEMENT_CHANNELS = 3


# --------------------------------------------------------------------------------------------------------------
# Encoder building blocks (attribute names as in the authors' nn_layers/espnet_utils.py)
# --------------------------------------------------------------------------------------------------------------

class ConvBN(nn.Module):
    """Conv (no bias, 'same' padding) -> BatchNorm; parameters `conv`, `bn`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False,
                              groups=groups)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class ConvBNAct(ConvBN):
    """Conv (no bias, 'same' padding) -> BatchNorm -> PReLU; parameters `conv`, `bn`, `act`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(in_ch, out_ch, kernel, stride, groups)
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class BNAct(nn.Module):
    """BatchNorm -> PReLU; parameters `bn`, `act`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class DilatedDWConv(nn.Module):
    """Depth-wise 3x3 convolution with dilation `dilation` (padding keeps the size at stride 1); `conv`."""

    def __init__(self, channels: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=stride, padding=dilation, dilation=dilation,
                              groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def branch_dilations(branches: int, receptive_limit: int) -> list[int]:
    """Dilation rates of the EESP branches: effective kernel sizes 3, 5, 7, ... (one per branch), those above
    `receptive_limit` falling back to 3, sorted ascending; a 3x3 kernel of size 2d+1 has dilation d."""
    sizes = sorted(3 + 2 * i if 3 + 2 * i <= receptive_limit else 3 for i in range(branches))
    return [(size - 1) // 2 for size in sizes]


class EESP(nn.Module):
    """Extremely Efficient Spatial Pyramid block: reduce (group 1x1) -> split into `branches` dilated depth-wise
    convolutions fused hierarchically -> BN+PReLU -> group 1x1 expansion; residual + PReLU at stride 1.

    At stride 2 (`downsample=True`) it returns the expansion before the residual and activation, which the
    DownSampler merges with its average-pooled branch."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, branches: int = BRANCHES,
                 receptive_limit: int = 7, downsample: bool = False) -> None:
        super().__init__()
        width = out_ch // branches
        if width * branches != out_ch:
            raise ValueError(f"EESP output channels ({out_ch}) must be divisible by the branches ({branches})")
        self.stride = stride
        self.downsample = downsample
        self.proj_1x1 = ConvBNAct(in_ch, width, 1, groups=branches)
        self.spp_dw = nn.ModuleList(DilatedDWConv(width, stride, d)
                                    for d in branch_dilations(branches, receptive_limit))
        self.conv_1x1_exp = ConvBN(out_ch, out_ch, 1, groups=branches)
        self.br_after_cat = BNAct(out_ch)
        self.module_act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.proj_1x1(x)
        outputs = [self.spp_dw[0](reduced)]
        for branch in self.spp_dw[1:]:
            outputs.append(branch(reduced) + outputs[-1])  # hierarchical feature fusion
        expanded = self.conv_1x1_exp(self.br_after_cat(torch.cat(outputs, 1)))
        if self.stride == 2 and self.downsample:
            return expanded
        if expanded.shape == x.shape:
            expanded = expanded + x
        return self.module_act(expanded)


class DownSampler(nn.Module):
    """Strided EESP concatenated with a 3x3 average pool of the input, plus (input reinforcement) a projection
    of the RGB image average-pooled to the same size; then PReLU. Halves the resolution (ceil)."""

    def __init__(self, in_ch: int, out_ch: int, branches: int = BRANCHES, receptive_limit: int = 9,
                 image_channels: int = 3, reinforcement: bool = True) -> None:
        super().__init__()
        self.eesp = EESP(in_ch, out_ch - in_ch, stride=2, branches=branches, receptive_limit=receptive_limit,
                         downsample=True)
        self.avg = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        self.inp_reinf: nn.Sequential | None = None
        if reinforcement:
            self.inp_reinf = nn.Sequential(ConvBNAct(image_channels, REINFORCEMENT_CHANNELS, 3),
                                           ConvBN(REINFORCEMENT_CHANNELS, out_ch, 1))
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.avg(x)
        out = torch.cat([pooled, self.eesp(x)], 1)
        if image is not None and self.inp_reinf is not None:
            # pool the image (3x3, stride 2) until its height matches this level's, as the authors do
            while image.shape[2] > pooled.shape[2]:
                image = F.avg_pool2d(image, kernel_size=3, stride=2, padding=1)
            out = out + self.inp_reinf(image)
        return self.act(out)


class EESPEncoder(nn.Module):
    """Levels 1-4 of the ImageNet EESPNet (the segmentation network drops level 5 and the classifier).

    `forward` returns the four levels' feature maps, at 1/2, 1/4, 1/8 and 1/16 of the input size."""

    def __init__(self, channels: Sequence[int] = CHANNELS_S2, repeats: Sequence[int] = REPEATS,
                 image_channels: int = 3) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        limits = RECEPTIVE_LIMITS
        self.input_reinforcement = True
        self.level1 = ConvBNAct(image_channels, c1, 3, stride=2)
        self.level2_0 = DownSampler(c1, c2, receptive_limit=limits[0], image_channels=image_channels)
        self.level3_0 = DownSampler(c2, c3, receptive_limit=limits[1], image_channels=image_channels)
        self.level3 = nn.ModuleList(EESP(c3, c3, receptive_limit=limits[2]) for _ in range(repeats[0]))
        self.level4_0 = DownSampler(c3, c4, receptive_limit=limits[2], image_channels=image_channels)
        self.level4 = nn.ModuleList(EESP(c4, c4, receptive_limit=limits[3]) for _ in range(repeats[1]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        image = x if self.input_reinforcement else None
        l1 = self.level1(x)
        l2 = self.level2_0(l1, image)
        l3 = self.level3_0(l2, image)
        for block in self.level3:
            l3 = block(l3)
        l4 = self.level4_0(l3, image)
        for block in self.level4:
            l4 = block(l4)
        return l1, l2, l3, l4


# --------------------------------------------------------------------------------------------------------------
# Decoder building blocks (attribute names as in the authors' nn_layers/cnn_utils.py: Sequential `cbr` / `br`)
# --------------------------------------------------------------------------------------------------------------

class SeqConvBNAct(nn.Module):
    """Conv (no bias, 'same' padding) -> BatchNorm -> PReLU held as the Sequential `cbr`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, groups: int = 1) -> None:
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel, padding=(kernel - 1) // 2, bias=False, groups=groups),
            nn.BatchNorm2d(out_ch),
            nn.PReLU(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbr(x)


class SeqBNAct(nn.Module):
    """BatchNorm -> PReLU held as the Sequential `br`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.br = nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.br(x)


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle: (groups, C/groups) -> (C/groups, groups)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class EfficientPyramidPool(nn.Module):
    """Efficient pyramid pooling: project to `proj_ch`, apply a depth-wise 3x3 at scales 2, 1.5, 1, 0.5, 0.1 of
    the map (at least 5x5; bilinear with aligned corners / adaptive average pooling to go there and back), then
    BN+PReLU, shuffle, group 3x3 CBR and a 1x1 to `out_ch` (+ BN+PReLU unless this is the last layer)."""

    SCALES: tuple[float, ...] = (2.0, 1.5, 1.0, 0.5, 0.1)

    def __init__(self, in_ch: int, proj_ch: int, out_ch: int, last_layer: bool = False) -> None:
        super().__init__()
        n = len(self.SCALES)
        self.stages = nn.ModuleList(nn.Conv2d(proj_ch, proj_ch, 3, padding=1, bias=False, groups=proj_ch)
                                    for _ in self.SCALES)
        self.projection_layer = SeqConvBNAct(in_ch, proj_ch, 1)
        self.merge_layer = nn.Sequential(
            SeqBNAct(proj_ch * n),
            ChannelShuffle(n),
            SeqConvBNAct(proj_ch * n, proj_ch, 3, groups=proj_ch),
            nn.Conv2d(proj_ch, out_ch, 1, bias=last_layer),
        )
        self.br: SeqBNAct | None = None if last_layer else SeqBNAct(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.projection_layer(x)
        height, width = x.shape[2:]
        pyramid = []
        for scale, stage in zip(self.SCALES, self.stages):
            size = (max(int(math.ceil(height * scale)), 5), max(int(math.ceil(width * scale)), 5))
            if scale < 1.0:
                h = stage(F.adaptive_avg_pool2d(x, size))
                h = F.interpolate(h, (height, width), mode="bilinear", align_corners=True)
            elif scale > 1.0:
                h = stage(F.interpolate(x, size, mode="bilinear", align_corners=True))
                h = F.adaptive_avg_pool2d(h, (height, width))
            else:
                h = stage(x)
            pyramid.append(h)
        out = self.merge_layer(torch.cat(pyramid, 1))
        return out if self.br is None else self.br(out)


class EfficientPWConv(nn.Module):
    """Projects an encoder map to the decoder's width: a group 3x3 CBR (groups = gcd of the widths) gated
    channel-wise by sigmoid(1x1 conv(global average))."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1, bias=False),
                                      nn.Sigmoid())
        self.expansion_layer = SeqConvBNAct(in_ch, out_ch, 3, groups=math.gcd(in_ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expansion_layer(x) * self.wt_layer(x)


# --------------------------------------------------------------------------------------------------------------
# The segmentation network
# --------------------------------------------------------------------------------------------------------------

class ESPNetv2Segmentation(nn.Module):
    """ESPNetv2 (s = 2.0) for semantic segmentation: a normalised B x 3 x H x W image -> B x num_classes x H x W
    logits. Cityscapes weights have 20 classes, PASCAL VOC 21; `decoder_base` is 16 for both (32 for COCO).

    H and W need not be multiples of 16: each decoder step upsamples to the skip connection's size, which for
    multiples of 16 is exactly the authors' 2x (bilinear, aligned corners)."""

    def __init__(self, num_classes: int = 20, decoder_base: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.base_net = EESPEncoder()
        c1, c2, c3, c4 = CHANNELS_S2
        dec = (4 * decoder_base, 3 * decoder_base, 2 * decoder_base, num_classes)
        proj = min(num_classes // 2, decoder_base)
        self.bu_dec_l1 = EfficientPyramidPool(c4, proj, dec[0])
        self.bu_dec_l2 = EfficientPyramidPool(dec[0], proj, dec[1])
        self.bu_dec_l3 = EfficientPyramidPool(dec[1], proj, dec[2])
        self.bu_dec_l4 = EfficientPyramidPool(dec[2], proj, dec[3], last_layer=True)
        self.merge_enc_dec_l2 = EfficientPWConv(c3, dec[0])
        self.merge_enc_dec_l3 = EfficientPWConv(c2, dec[1])
        self.merge_enc_dec_l4 = EfficientPWConv(c1, dec[2])
        self.bu_br_l2 = nn.Sequential(nn.BatchNorm2d(dec[0]), nn.PReLU(dec[0]))
        self.bu_br_l3 = nn.Sequential(nn.BatchNorm2d(dec[1]), nn.PReLU(dec[1]))
        self.bu_br_l4 = nn.Sequential(nn.BatchNorm2d(dec[2]), nn.PReLU(dec[2]))

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        l1, l2, l3, l4 = self.base_net(x)
        out = self.bu_dec_l1(l4)
        for skip, merge, br, dec in ((l3, self.merge_enc_dec_l2, self.bu_br_l2, self.bu_dec_l2),
                                     (l2, self.merge_enc_dec_l3, self.bu_br_l3, self.bu_dec_l3),
                                     (l1, self.merge_enc_dec_l4, self.bu_br_l4, self.bu_dec_l4)):
            out = dec(br(merge(skip) + self._up(out, skip)))
        return F.interpolate(out, size=size, mode="bilinear", align_corners=True)
