"""RTMPose: a CSPNeXt backbone and a SimCC head, run on one crop per instance (top-down), or
on the whole frame in single-subject mode (Jiang et al., 2023, "RTMPose: Real-Time
Multi-Person Pose Estimation based on MMPose").

Layout: config -> model class -> registered sizes (rtmpose-t/s/m/l). A 256x192 crop gives a
8x6 stride-32 feature map; the head classifies each keypoint's x over 384 and y over 512 bins
(split ratio 2, half-pixel bins), decoded by `posekit.models.rtmpose.simcc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from posekit.models.cspnext import STRIDE, CSPNeXt, scale_cspnext
from posekit.models.registry import register_family, register_sizes
from posekit.models.rtmpose.head import SimCCHead
from posekit.models.topdown import TopDownConfig, TopDownModel
from posekit.schema import KeypointSchema
from posekit.utils.bounds import ranged
from posekit.utils.errors import UserError


@dataclass(frozen=True)
class RTMPoseConfig(TopDownConfig):
    """Size, input and codec settings of an RTMPose model (the crop settings are
    `TopDownConfig`'s)."""

    widen: float = ranged(0.5, 0.01, 4)  # CSPNeXt channel multiplier
    deepen: float = ranged(0.33, 0.01, 4)  # CSPNeXt block-count multiplier
    hidden: int = ranged(256, 1, 8192)  # keypoint token width of the head
    kernel: int = ranged(7, 1, 31)  # the head's first convolution
    # gated attention across the keypoint tokens (published RTMPose's head); off by default:
    # trained from scratch at small batches it made training unstable (see the README)
    gau: bool = False
    # SimCC bins per pixel (a whole number: the flip test is exact)
    split_ratio: float = ranged(2.0, 0.25, 16)
    sigma: tuple[float, float] = ranged((4.9, 5.66), 0.01, 1000)  # label Gaussians (x, y), in bins
    beta: float = ranged(10.0, 0.001, 1000)  # logits and labels are compared as softmax(beta * .)
    # auxiliary heatmap loss on the head's maps (`simcc.dense_loss`)
    dense_weight: float = ranged(1.0, 0, 1000)
    name: str = "rtmpose"

    @property
    def bins(self) -> tuple[int, int]:
        """(x, y) SimCC bin counts."""
        h, w = self.input_size
        return round(w * self.split_ratio), round(h * self.split_ratio)


@register_family("rtmpose")
class RTMPose(TopDownModel):
    """RTMPose for given keypoint schemas: one x and one y classifier per keypoint slot.

    Input: (B, 3, H, W) RGB crops in 0..1 of `config.input_size`; output: (x logits
    (B, K, W * ratio), y logits (B, K, H * ratio)), and in training mode the head's stride-32
    keypoint maps third (for the dense auxiliary loss).
    """

    config_class: ClassVar[type] = RTMPoseConfig

    @classmethod
    def scale_config(cls, cfg: RTMPoseConfig, width: float, depth: float) -> RTMPoseConfig:
        return scale_cspnext(cfg, width, depth)  # type: ignore[no-any-return]

    def __init__(self, cfg: RTMPoseConfig, schemas: list[KeypointSchema], names: list[str]):
        super().__init__()
        if not schemas:
            raise UserError("rtmpose needs at least one keypoint schema")
        h, w = cfg.input_size
        if h % STRIDE or w % STRIDE:
            raise UserError(f"rtmpose input sides must be multiples of {STRIDE}, got {h}x{w}")
        if cfg.split_ratio != round(cfg.split_ratio) or cfg.split_ratio < 1:
            raise UserError(f"split_ratio must be a whole number, got {cfg.split_ratio}")
        self.config = cfg
        self.schemas = list(schemas)
        self.names = list(names)
        self.backbone = CSPNeXt(cfg.widen, cfg.deepen)
        self.head = SimCCHead(self.backbone.out_channels, self.num_keypoints,
                              (h // STRIDE, w // STRIDE), cfg.bins, cfg.hidden, cfg.kernel,
                              cfg.gau)  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x: (B, 3, H, W) RGB crops in 0..1 -> (x logits, y logits[, maps when training])."""
        sx, sy, maps = self.head(self.backbone(self.normalise(x)))
        return (sx, sy, maps) if self.training else (sx, sy)

    @classmethod
    def for_graph(
        cls, output_names: list[str], input_shape: list[Any], schema: KeypointSchema
    ) -> RTMPose | None:
        if output_names != ["simcc_x", "simcc_y"]:
            return None
        h, w = input_shape[2:4]
        if not (isinstance(h, int) and isinstance(w, int)):
            raise UserError("a SimCC graph without posekit metadata needs a fixed crop size")
        # the smallest network: its weights are never used, only the decoder and settings
        cfg = RTMPoseConfig(input_size=(h, w), widen=0.125, deepen=0.1, hidden=8, gau=False,
                            name="rtmpose (onnx)")  # fmt: skip
        return cls(cfg, [schema], [schema.name])

    def export_output_names(self) -> list[str]:
        return ["simcc_x", "simcc_y"]

    def export_outputs(self, outputs: Any) -> tuple[torch.Tensor, ...]:
        return tuple(outputs[:2])

    def from_export_outputs(self, tensors: Any, input_shape: tuple[int, int]) -> Any:
        return tensors[0], tensors[1]

    def crop_encoder(self) -> Any:
        """Gaussian SimCC labels and keypoint weights (`simcc.SimCCEncoder`)."""
        from posekit.models.rtmpose.simcc import SimCCEncoder

        c = self.config
        return SimCCEncoder(c.input_size, c.split_ratio, c.sigma)

    def loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """KL divergence of each axis's classifier from its Gaussian labels, plus the dense
        auxiliary loss on the head's maps (the `CropTargets` of `crop_encoder`: x labels, y
        labels, weights, keypoints)."""
        from posekit.models.rtmpose.simcc import dense_loss, kl_loss

        label_x, label_y, weights, xy = targets.parts
        c = self.config
        lx = kl_loss(outputs[0], label_x, weights, c.beta)
        ly = kl_loss(outputs[1], label_y, weights, c.beta)
        parts = {"simcc_x": float(lx.detach()), "simcc_y": float(ly.detach())}
        loss = lx + ly
        if c.dense_weight and len(outputs) > 2:
            dense = dense_loss(outputs[2], xy, weights, STRIDE)
            loss = loss + c.dense_weight * dense
            parts["dense"] = float(dense.detach())
        return loss, parts

    def decode_crops(self, outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The classifiers' peaks refined within their window (`simcc.decode_simcc`), in
        crop-input pixel indices, and the probability mass there as confidence."""
        from posekit.models.rtmpose.simcc import decode_simcc

        c = self.config
        return decode_simcc(outputs[0], outputs[1], c.split_ratio, c.sigma, c.beta)

    def merge_flip_test(self, outputs: Any, classes: torch.Tensor) -> Any:
        """The mean of each crop's logits and its mirror's, flipped back (x bins mirrored,
        left and right keypoints swapped by the class's flip permutation)."""
        from posekit.models.rtmpose.simcc import flip_back_x, flip_back_y

        sx, sy = outputs
        m = len(sx) // 2
        index = self.flip_index(classes)
        fx = flip_back_x(sx[m:], index, self.config.split_ratio)
        return (sx[:m] + fx) / 2, (sy[:m] + flip_back_y(sy[m:], index)) / 2


# ---------------------------------------------------------------------- sizes
SIZES: dict[str, RTMPoseConfig] = {
    "t": RTMPoseConfig(widen=0.375, deepen=0.167, name="rtmpose-t"),
    "s": RTMPoseConfig(widen=0.5, deepen=0.33, name="rtmpose-s"),
    "m": RTMPoseConfig(widen=0.75, deepen=0.67, name="rtmpose-m"),
    "l": RTMPoseConfig(widen=1.0, deepen=1.0, name="rtmpose-l"),
}


register_sizes(RTMPose, SIZES)
