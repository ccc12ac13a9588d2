"""LiftPose: VideoPose3D's temporal convolutional network from a window of 2D poses to the 3D
pose of one frame (Pavllo et al., "3D human pose estimation in video with temporal
convolutions and semi-supervised training", CVPR 2019).

A 1D convolution of width 3 over the frames expands each frame's K x (x, y, seen) to
`channels` features; each following block is a width-3 convolution dilated by the receptive
field so far (3, 9, 27, ...) and a 1x1 convolution, both with batch norm, ReLU and dropout,
around a residual connection cut to the shorter output; a 1x1 convolution shrinks to K x 3.
The receptive field is the product of the widths: 27, 81 or 243 frames (liftpose-27/81/243).
A window of T >= receptive-field frames gives T - receptive field + 1 outputs at once, which is
how training reads whole chunks and `lift` whole clips (edges padded by repeating the first and
last frames, as VideoPose3D does). `causal` aligns each output with the last frame of its
window (for live streams) instead of its centre.

Layout: config -> network -> registered sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from posekit.models.base import KeypointModel
from posekit.models.lift_codec import root_weights
from posekit.models.registry import register_family, register_sizes
from posekit.schema import KeypointSchema
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError

#: what the network reads per keypoint: x, y (camera-normalised) and a seen flag (1 or 0)
IN_FEATURES = 3


@dataclass(frozen=True)
class LiftPoseConfig:
    """A LiftPose network; `filter_widths` fixes the receptive field (their product)."""

    filter_widths: tuple[int, ...] = (3, 3, 3)
    channels: int = ranged(1024, 8, 4096)
    dropout: float = ranged(0.25, 0, 0.9)
    causal: bool = False
    #: output frames of one training sample (the window is this plus the receptive field - 1)
    chunk: int = ranged(32, 1, 1024)
    name: str = "liftpose-27"

    def __post_init__(self) -> None:
        check_ranges(self, "liftpose")
        if not self.filter_widths or any(w < 1 or w % 2 == 0 for w in self.filter_widths):
            raise UserError(
                f"liftpose: filter widths must be odd and positive, got {self.filter_widths}"
            )

    @property
    def receptive_field(self) -> int:
        return math.prod(self.filter_widths)


@register_family("liftpose")
class LiftPose(KeypointModel):
    """2D keypoint windows (N, T, K, 3) -> root-relative 3D keypoints (N, T - RF + 1, K, 3)
    in metres (see `posekit.models.lift_codec` for both)."""

    config_class: ClassVar[type] = LiftPoseConfig
    input_kind: ClassVar[str] = "keypoints"

    @classmethod
    def scale_config(cls, cfg: LiftPoseConfig, width: float, depth: float) -> LiftPoseConfig:
        if depth != 1.0:
            raise UserError(
                "liftpose's depth is its receptive field: choose liftpose-27, "
                "liftpose-81 or liftpose-243 instead of --depth"
            )
        return replace(cfg, channels=max(8, round(cfg.channels * width)))

    def __init__(self, cfg: LiftPoseConfig, schemas: list[KeypointSchema], names: list[str]):
        super().__init__()
        if len(schemas) != 1:
            raise UserError(f"liftpose lifts one subject's keypoints, not {len(schemas)} classes")
        self.config, self.schemas, self.names = cfg, schemas, names
        k, c, widths = schemas[0].num_keypoints, cfg.channels, cfg.filter_widths
        self.expand = nn.Conv1d(k * IN_FEATURES, c, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(c)
        self.dilated = nn.ModuleList()
        self.dilated_bn = nn.ModuleList()
        self.pointwise = nn.ModuleList()
        self.pointwise_bn = nn.ModuleList()
        #: per block: frames cut from each end of the residual, and the causal shift
        self.cuts: list[tuple[int, int]] = []
        dilation = widths[0]
        for w in widths[1:]:
            pad = (w - 1) * dilation // 2
            self.cuts.append((pad, pad if cfg.causal else 0))
            self.dilated.append(nn.Conv1d(c, c, w, dilation=dilation, bias=False))
            self.dilated_bn.append(nn.BatchNorm1d(c))
            self.pointwise.append(nn.Conv1d(c, c, 1, bias=False))
            self.pointwise_bn.append(nn.BatchNorm1d(c))
            dilation *= w
        self.shrink = nn.Conv1d(c, k * 3, 1)
        self.drop = nn.Dropout(cfg.dropout)
        root = torch.tensor(root_weights(schemas[0]), dtype=torch.float32)
        self.register_buffer("root", root, persistent=False)

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, k, f = x.shape
        if t < self.receptive_field:
            raise ValueError(
                f"liftpose reads windows of at least {self.receptive_field} frames, got {t}"
            )
        y = x.reshape(n, t, k * f).transpose(1, 2)
        y = self.drop(F.relu(self.expand_bn(self.expand(y))))
        for i, (cut, shift) in enumerate(self.cuts):
            residual = y[:, :, cut + shift : y.shape[2] - cut + shift]
            y = self.drop(F.relu(self.dilated_bn[i](self.dilated[i](y))))
            y = residual + self.drop(F.relu(self.pointwise_bn[i](self.pointwise[i](y))))
        out = self.shrink(y).transpose(1, 2).reshape(n, -1, k, 3)
        root = torch.einsum("k,ntkc->ntc", self.root.to(out.dtype), out)
        return out - root[:, :, None]

    def padding(self) -> tuple[int, int]:
        """Frames of context before and after each output frame."""
        context = self.receptive_field - 1
        return (context, 0) if self.config.causal else (context // 2, context - context // 2)

    def lift(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, T, K, 3) inputs -> (N, T, K, 3) root-relative 3D, one output per frame (the
        ends padded by repeating the first and last frames)."""
        before, after = self.padding()
        first, last = inputs[:, :1], inputs[:, -1:]
        padded = torch.cat(
            [first.expand(-1, before, -1, -1), inputs, last.expand(-1, after, -1, -1)], 1
        )
        return self(padded)

    def training_samples(self, ds: Any, imgsz: int, augment: Any, **options: Any) -> Any:
        """Chunks of `chunk` output frames with their context, cut from a sequence dataset's
        clips (`posekit.models.liftpose.samples`)."""
        from posekit.models.liftpose.samples import LiftSamples

        return LiftSamples(ds, self, augment, seed=int(options.get("seed", 0)))

    def example_input(self, batch: int = 2) -> torch.Tensor:
        k = self.num_keypoints
        return torch.randn(batch, self.receptive_field + 3, k, IN_FEATURES) * 0.2

    def prepare_inputs(self, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
        return batch.to(device, non_blocking=True).float()

    def loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """MPJPE (metres) over the known joints, as VideoPose3D trains."""
        known = torch.isfinite(targets).all(-1)
        error = torch.linalg.vector_norm(outputs.float() - targets.nan_to_num(), dim=-1)
        mpjpe = (error * known).sum() / known.sum().clamp(min=1)
        return mpjpe, {"mpjpe": float(mpjpe.detach())}

    def export_output_names(self) -> list[str]:
        return ["points3d"]


def _sizes() -> dict[str, LiftPoseConfig]:
    return {
        str(3**d): LiftPoseConfig(filter_widths=(3,) * d, name=f"liftpose-{3**d}")
        for d in (3, 4, 5)
    }


#: liftpose-27, -81 and -243: VideoPose3D's receptive fields (243 frames: its 46.8 mm)
SIZES = _sizes()
register_sizes(LiftPose, SIZES)
