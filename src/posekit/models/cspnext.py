"""CSPNeXt: the convolutional backbone of RTMDet and RTMPose (Lyu et al., 2022; Jiang et al.,
2023), built from posekit's ConvBNAct.

Stem of three 3x3 convolutions (stride 2), then four stages, each a stride-2 3x3 convolution
and a CSP layer whose blocks are a 3x3 convolution followed by a 5x5 depthwise-separable one
(a large receptive field cheaply), with channel attention on the concatenated halves; the
last stage starts with spatial pyramid pooling. Output: the stride-32 feature map
(`forward`), or every stage's (strides 4, 8, 16, 32: `stage_outputs`) for a decoder that
upsamples.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from posekit.models.blocks import ConvBNAct

#: the output stride of the last stage: crop sides are multiples of it
STRIDE = 32

#: (in channels, out channels, blocks, residual, SPP) of the four stages at width 1, depth 1
STAGES = ((64, 128, 3, True, False), (128, 256, 6, True, False),
          (256, 512, 6, True, False), (512, 1024, 3, False, True))  # fmt: skip


class ChannelAttention(nn.Module):
    """Global average -> 1x1 convolution -> hard sigmoid, multiplied into the channels."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(x.mean((2, 3), keepdim=True)))


class CSPNeXtBlock(nn.Module):
    """3x3 convolution, then a 5x5 depthwise and a 1x1 pointwise convolution; residual."""

    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(c, c, 3)
        self.depthwise = ConvBNAct(c, c, 5, groups=c)
        self.pointwise = ConvBNAct(c, c, 1)
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise(self.depthwise(self.conv1(x)))
        return x + y if self.add else y


class CSPLayer(nn.Module):
    """Two 1x1 branches of half the channels, blocks on one, concatenated, channel attention,
    and a 1x1 fusion."""

    def __init__(self, c_in: int, c_out: int, n: int, shortcut: bool) -> None:
        super().__init__()
        mid = c_out // 2
        self.main = ConvBNAct(c_in, mid, 1)
        self.short = ConvBNAct(c_in, mid, 1)
        self.blocks = nn.Sequential(*(CSPNeXtBlock(mid, shortcut) for _ in range(n)))
        self.attention = ChannelAttention(2 * mid)
        self.fuse = ConvBNAct(2 * mid, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.blocks(self.main(x)), self.short(x)], 1)
        return self.fuse(self.attention(y))


class SPPBottleneck(nn.Module):
    """1x1 reduction, max-pools of 5, 9 and 13 pixels side by side, 1x1 fusion."""

    def __init__(self, c: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        mid = c // 2
        self.reduce = ConvBNAct(c, mid, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.fuse = ConvBNAct(mid * (len(kernels) + 1), c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.fuse(torch.cat([x, *(pool(x) for pool in self.pools)], 1))


def scaled(channels: int, widen: float) -> int:
    return max(8, int(channels * widen))


def scale_cspnext(cfg: Any, width: float, depth: float) -> Any:
    """A CSPNeXt family's config (`widen`, `deepen` fields) with its channels times `width`
    and its blocks times `depth`: the registry's generic multipliers."""
    return replace(cfg, widen=cfg.widen * width, deepen=cfg.deepen * depth)


class CSPNeXt(nn.Module):
    """CSPNeXt at a width (channel) and depth (blocks) multiplier; `stage_channels` are the
    four stages' output channels (strides 4 to 32), `out_channels` the stride-32 map's."""

    def __init__(self, widen: float, deepen: float) -> None:
        super().__init__()
        stem = scaled(STAGES[0][0], widen)
        self.stem = nn.Sequential(ConvBNAct(3, stem // 2, 3, 2), ConvBNAct(stem // 2, stem // 2, 3),
                                  ConvBNAct(stem // 2, stem, 3))  # fmt: skip
        stages = []
        for c_in, c_out, n, shortcut, spp in STAGES:
            c_in, c_out = scaled(c_in, widen), scaled(c_out, widen)
            layers: list[nn.Module] = [ConvBNAct(c_in, c_out, 3, 2)]
            if spp:
                layers.append(SPPBottleneck(c_out))
            layers.append(CSPLayer(c_out, c_out, max(1, round(n * deepen)), shortcut))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.stage_channels = tuple(scaled(stage[1], widen) for stage in STAGES)
        self.out_channels = self.stage_channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four stages' outputs, at strides 4, 8, 16 and 32."""
        outputs, x = [], self.stem(x)
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs
