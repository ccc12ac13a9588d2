"""HeatPose: CSPNeXt features at strides 4 to 32 merged top-down (a feature pyramid) into one
UDP heatmap per keypoint at stride 4, decoded with DARK.

Why a second CNN family next to RTMPose: RTMPose's SimCC head reads the stride-32 map through
one fully connected projection, which must learn where every map cell lies; pretrained on
COCO that is cheap, from scratch on a few dozen frames it is not (see the README's figures).
A heatmap decoder is convolutional all the way: a keypoint seen in one place of the frame
teaches every place, and each keypoint's peak is its own (what DeepLabCut's and SimpleBaseline's
heatmap heads do). The heatmap codec, flip test and loss are ViTPose's
(`posekit.models.topdown.HeatmapTopDownModel`).

Layout: decoder -> config -> model class -> registered sizes (heatpose-t/s/m/l, the widths
and depths of rtmpose-t/s/m/l).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from posekit.models.blocks import ConvBNAct
from posekit.models.cspnext import STRIDE, CSPNeXt, scale_cspnext, scaled
from posekit.models.registry import register_family, register_sizes
from posekit.models.topdown import HeatmapTopDownModel, TopDownConfig
from posekit.schema import KeypointSchema
from posekit.utils.bounds import ranged
from posekit.utils.errors import UserError

#: heatmap pixels per input pixel: the decoder's output stride is 4
HEATMAP_STRIDE = 4


class PyramidDecoder(nn.Module):
    """Stage outputs (strides 4, 8, 16, 32) -> K heatmaps at stride 4: each stage projected to
    `width` channels, the coarser level upsampled 2x (nearest) and added, a 3x3 convolution
    after each merge (a depthwise 5x5 and a pointwise one at stride 4, where a full 3x3
    convolution would cost more than the backbone's last stage), then a 1x1 convolution."""

    def __init__(self, stage_channels: tuple[int, ...], width: int, k: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(ConvBNAct(c, width, 1) for c in stage_channels)
        self.smooth = nn.ModuleList(ConvBNAct(width, width, 3) for _ in stage_channels[1:-1])
        self.fine = nn.Sequential(ConvBNAct(width, width, 5, groups=width),
                                  ConvBNAct(width, width, 1))  # fmt: skip
        self.final = nn.Conv2d(width, k, 1)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](stages[-1])
        for level in range(len(stages) - 2, -1, -1):
            x = self.lateral[level](stages[level]) + F.interpolate(x, scale_factor=2.0)
            x = self.fine(x) if level == 0 else self.smooth[level - 1](x)
        return self.final(x)


@dataclass(frozen=True)
class HeatPoseConfig(TopDownConfig):
    """Size, input and codec settings of a HeatPose model (the crop settings are
    `TopDownConfig`'s)."""

    widen: float = ranged(0.5, 0.01, 4)  # CSPNeXt channel multiplier
    deepen: float = ranged(0.33, 0.01, 4)  # CSPNeXt block-count multiplier
    decoder_width: int = ranged(128, 1, 8192)  # the pyramid decoder's channels at widen 1
    sigma: float = ranged(2.0, 0.01, 1000)  # of the target Gaussians, in heatmap pixels
    name: str = "heatpose"

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(height, width) of the heatmaps: a quarter of the crop's."""
        h, w = self.input_size
        return h // HEATMAP_STRIDE, w // HEATMAP_STRIDE


@register_family("heatpose")
class HeatPose(HeatmapTopDownModel):
    """HeatPose for given keypoint schemas: one heatmap channel per keypoint slot.

    Input: (B, 3, H, W) RGB crops in 0..1 of `config.input_size`; output: (B, K, H/4, W/4)
    heatmaps.
    """

    config_class: ClassVar[type] = HeatPoseConfig

    @classmethod
    def scale_config(cls, cfg: HeatPoseConfig, width: float, depth: float) -> HeatPoseConfig:
        return scale_cspnext(cfg, width, depth)  # type: ignore[no-any-return]

    def __init__(self, cfg: HeatPoseConfig, schemas: list[KeypointSchema], names: list[str]):
        super().__init__()
        if not schemas:
            raise UserError("heatpose needs at least one keypoint schema")
        h, w = cfg.input_size
        if h % STRIDE or w % STRIDE:
            raise UserError(f"heatpose input sides must be multiples of {STRIDE}, got {h}x{w}")
        self.config = cfg
        self.schemas = list(schemas)
        self.names = list(names)
        self.backbone = CSPNeXt(cfg.widen, cfg.deepen)
        width = scaled(cfg.decoder_width, cfg.widen)
        self.decoder = PyramidDecoder(self.backbone.stage_channels, width, self.num_keypoints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) RGB crops in 0..1 -> heatmaps (B, K, H/4, W/4)."""
        return self.decoder(self.backbone.stage_outputs(self.normalise(x)))


# ---------------------------------------------------------------------- sizes
SIZES: dict[str, HeatPoseConfig] = {
    "t": HeatPoseConfig(widen=0.375, deepen=0.167, name="heatpose-t"),
    "s": HeatPoseConfig(widen=0.5, deepen=0.33, name="heatpose-s"),
    "m": HeatPoseConfig(widen=0.75, deepen=0.67, name="heatpose-m"),
    "l": HeatPoseConfig(widen=1.0, deepen=1.0, name="heatpose-l"),
}


register_sizes(HeatPose, SIZES)
