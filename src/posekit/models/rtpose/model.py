"""rtpose: a one-stage, anchor-free, multi-instance keypoint detector (sizes n/s/m/l/x).

One pass predicts, at every location of three feature maps (strides 8, 16, 32), class scores,
a box (distances to its four sides) and, for every keypoint, its position and a visibility
logit. Keypoints are regressed directly as offsets from the location and trained with an OKS
loss using the schema's sigmas (the YOLO-pose design): each location yields a whole instance,
so no grouping step is needed. Regression from one location is coarse and learns slowly (it
must point at joints far from where it stands), so a light stride-8 heatmap head (one channel
per keypoint plus sub-cell offsets, CenterNet-style) is trained densely alongside it, and at
inference every regressed keypoint snaps to the nearest peak of its own heatmap within a window
that grows with the instance. On the synthetic-person benchmark this raised held-out AP after
20 CPU minutes from 0.136 to 0.161, although one epoch fewer fit in the budget (the head adds
0.4 GFLOPs at 640).

We chose regression plus heatmap refinement over per-axis coordinate classification (RTMO /
SimCC) because it costs 3 numbers per keypoint and location instead of two vectors of hundreds
of bins, which keeps small models fast on a CPU, works unchanged for any number of keypoints,
and the OKS loss optimises the metric users read. Classification heads win on large backbones
at high resolution; that is not the regime rtpose-n/s targets.

Layout: blocks (models/blocks.py) -> backbone -> neck (top-down + bottom-up feature pyramid)
-> decoupled heads -> config table -> registered sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import nn

from posekit.models.base import (
    KeypointModel,
    Targets,
    class_tables,
)
from posekit.models.blocks import SPPF, ConvBNAct, CSPBlock
from posekit.models.registry import register_family, register_sizes
from posekit.ops.instances import Instances
from posekit.schema import KeypointSchema
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError

STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class RTPoseConfig:
    """Size and input settings of an rtpose model (saved with the weights)."""

    width: float = ranged(0.25, 0.01, 4)  # channel multiplier
    depth: float = ranged(0.34, 0.01, 4)  # block repeat multiplier
    max_channels: int = ranged(1024, 8, 8192)
    imgsz: int = ranged(640, 32, 8192)  # training / default inference size (square letterbox)
    mean: tuple[float, float, float] = ranged((0.0, 0.0, 0.0), -1000, 1000)  # on 0..1 RGB
    std: tuple[float, float, float] = ranged((1.0, 1.0, 1.0), 1e-06, 1000)
    name: str = "rtpose"
    heatmap: bool = True  # stride-8 keypoint heatmaps that refine the regressed keypoints

    def __post_init__(self) -> None:
        check_ranges(self, f"{self.name} config")

    def channels(self) -> list[int]:
        base = (64, 128, 256, 512, 1024)
        return [min(self.max_channels, max(8, int(math.ceil(c * self.width / 8) * 8)))
                for c in base]  # fmt: skip

    def repeats(self) -> list[int]:
        return [max(1, round(n * self.depth)) for n in (3, 6, 6, 3)]


class Backbone(nn.Module):
    """CSP backbone: a stride-2 stem then four stages; returns strides 8, 16, 32."""

    def __init__(self, cfg: RTPoseConfig) -> None:
        super().__init__()
        c, n = cfg.channels(), cfg.repeats()
        self.stem = ConvBNAct(3, c[0], 3, 2)
        self.stage1 = nn.Sequential(ConvBNAct(c[0], c[1], 3, 2), CSPBlock(c[1], c[1], n[0]))
        self.stage2 = nn.Sequential(ConvBNAct(c[1], c[2], 3, 2), CSPBlock(c[2], c[2], n[1]))
        self.stage3 = nn.Sequential(ConvBNAct(c[2], c[3], 3, 2), CSPBlock(c[3], c[3], n[2]))
        self.stage4 = nn.Sequential(ConvBNAct(c[3], c[4], 3, 2), CSPBlock(c[4], c[4], n[3]),
                                    SPPF(c[4], c[4]))  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3 = self.stage2(self.stage1(self.stem(x)))  # (B, c2, H/8, W/8)
        p4 = self.stage3(p3)  # (B, c3, H/16, W/16)
        p5 = self.stage4(p4)  # (B, c4, H/32, W/32)
        return p3, p4, p5


class Neck(nn.Module):
    """Feature pyramid: top-down then bottom-up fusion of the three backbone levels."""

    def __init__(self, cfg: RTPoseConfig) -> None:
        super().__init__()
        c, n = cfg.channels(), cfg.repeats()[-1]
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = CSPBlock(c[4] + c[3], c[3], n, shortcut=False)
        self.td3 = CSPBlock(c[3] + c[2], c[2], n, shortcut=False)
        self.down3 = ConvBNAct(c[2], c[2], 3, 2)
        self.bu4 = CSPBlock(c[2] + c[3], c[3], n, shortcut=False)
        self.down4 = ConvBNAct(c[3], c[3], 3, 2)
        self.bu5 = CSPBlock(c[3] + c[4], c[4], n, shortcut=False)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        p3, p4, p5 = feats
        t4 = self.td4(torch.cat([self.up(p5), p4], 1))
        o3 = self.td3(torch.cat([self.up(t4), p3], 1))
        o4 = self.bu4(torch.cat([self.down3(o3), t4], 1))
        o5 = self.bu5(torch.cat([self.down4(o4), p5], 1))
        return [o3, o4, o5]


def _branch(c_in: int, hidden: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(ConvBNAct(c_in, hidden, 3), ConvBNAct(hidden, hidden, 3),
                         nn.Conv2d(hidden, c_out, 1))  # fmt: skip


class PoseHead(nn.Module):
    """Per level: a class branch, a box branch and a keypoint branch (decoupled)."""

    def __init__(self, in_channels: list[int], num_classes: int, num_keypoints: int) -> None:
        super().__init__()
        self.nc, self.nk = num_classes, num_keypoints
        c_box = max(64, in_channels[0] // 4)
        c_cls = max(in_channels[0], min(num_classes, 100))
        c_kpt = max(in_channels[0] // 4, num_keypoints * 3)
        self.cls = nn.ModuleList(_branch(c, c_cls, num_classes) for c in in_channels)
        self.box = nn.ModuleList(_branch(c, c_box, 4) for c in in_channels)
        self.kpt = nn.ModuleList(_branch(c, c_kpt, num_keypoints * 3) for c in in_channels)
        self._init_bias()

    def _init_bias(self) -> None:
        for conv, s in zip(self.cls, STRIDES, strict=True):  # prior: few objects per location
            nn.init.constant_(conv[-1].bias, math.log(5 / self.nc / (640 / s) ** 2))
        for conv in self.box:
            nn.init.constant_(conv[-1].bias, 1.0)
        for conv in self.kpt:
            nn.init.zeros_(conv[-1].bias)
            nn.init.normal_(conv[-1].weight, std=0.01)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        cls, box, kpt = [], [], []
        for i, f in enumerate(feats):
            b = f.shape[0]
            cls.append(self.cls[i](f).flatten(2))  # (B, nc, HW)
            box.append(self.box[i](f).flatten(2))  # (B, 4, HW)
            kpt.append(self.kpt[i](f).view(b, self.nk * 3, -1))  # (B, K*3, HW)
        return torch.cat(cls, 2), torch.cat(box, 2), torch.cat(kpt, 2)


class HeatmapHead(nn.Module):
    """Stride-8 keypoint heatmaps (one channel per keypoint) and per-keypoint sub-cell offsets.

    Trained densely (every cell is supervised), so it learns where joints are much faster than
    the per-location regression; at inference each regressed keypoint snaps to the nearest
    heatmap peak of its own type (see `posekit.predict.postprocess.snap_keypoints`). With
    several classes, channel k holds keypoint slot k of every class.
    """

    def __init__(self, c_in: int, num_keypoints: int) -> None:
        super().__init__()
        self.nk = num_keypoints
        hidden = max(c_in // 2, num_keypoints)
        self.body = nn.Sequential(ConvBNAct(c_in, hidden, 3), ConvBNAct(hidden, hidden, 3))
        self.heat = nn.Conv2d(hidden, num_keypoints, 1)
        self.offset = nn.Conv2d(hidden, num_keypoints * 2, 1)
        nn.init.constant_(self.heat.bias, math.log(0.01 / 0.99))  # prior: few joint cells
        nn.init.zeros_(self.offset.bias)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, H, W) heatmap logits and (B, K, 2, H, W) offsets in cells."""
        y = self.body(f)
        b, _, h, w = y.shape
        return self.heat(y), self.offset(y).view(b, self.nk, 2, h, w)


def make_anchors(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres (A, 2) in input pixels (continuous coordinates) and their strides (A,)."""
    return anchors_for([f.shape[-2:] for f in feats], feats[0].device)


def anchors_for(
    sizes: Sequence[Sequence[int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """`make_anchors` from the (height, width) of each level's feature map."""
    points, strides = [], []
    for (h, w), s in zip(sizes, STRIDES, strict=True):
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * s
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([xx, yy], -1).view(-1, 2))
        strides.append(torch.full((h * w,), float(s), device=device))
    return torch.cat(points), torch.cat(strides)


@dataclass
class RTPoseOutput:
    """Decoded predictions for every location (input-image pixels, continuous coordinates)."""

    cls_logits: torch.Tensor  # (B, A, nc)
    boxes: torch.Tensor  # (B, A, 4) x1, y1, x2, y2
    keypoints: torch.Tensor  # (B, A, K, 2)
    kpt_logits: torch.Tensor  # (B, A, K) visibility / confidence logits
    anchors: torch.Tensor  # (A, 2)
    strides: torch.Tensor  # (A,)
    heatmap: torch.Tensor | None = None  # (B, K, H, W) logits on the stride-8 grid
    heatmap_offset: torch.Tensor | None = None  # (B, K, 2, H, W) sub-cell x, y offsets
    heatmap_stride: int = STRIDES[0]


@register_family("rtpose")
class RTPose(KeypointModel):
    """The rtpose network for given keypoint schemas (one per class).

    Classes may have different keypoint counts: the head predicts the largest count and each
    class uses its first K_c keypoints.
    """

    input_stride = STRIDES[-1]
    config_class: ClassVar[type] = RTPoseConfig
    legacy_defaults: ClassVar[dict[str, Any]] = {"heatmap": False}  # before the heatmap head

    def __init__(self, cfg: RTPoseConfig, schemas: list[KeypointSchema], names: list[str]):
        super().__init__()
        if not schemas:
            raise UserError("rtpose needs at least one keypoint schema")
        self.config = cfg
        self.schemas = list(schemas)
        self.names = list(names)
        c = cfg.channels()
        self.backbone = Backbone(cfg)
        self.neck = Neck(cfg)
        self.head = PoseHead([c[2], c[3], c[4]], len(schemas), self.num_keypoints)
        self.heatmap = HeatmapHead(c[2], self.num_keypoints) if cfg.heatmap else None

    def forward(self, x: torch.Tensor) -> RTPoseOutput:
        """x: (B, 3, H, W) RGB in 0..1, H and W multiples of 32."""
        feats = self.neck(self.backbone(self._normalise(x)))
        cls, box, kpt = self.head(feats)
        anchors, strides = make_anchors(feats)
        b, k = x.shape[0], self.num_keypoints
        box = box.transpose(1, 2)  # (B, A, 4) distances in stride units
        dist = nn.functional.softplus(box) * strides[None, :, None]
        xy = anchors[None]
        boxes = torch.cat([xy - dist[..., :2], xy + dist[..., 2:]], -1)
        kpt = kpt.view(b, k, 3, -1).permute(0, 3, 1, 2)  # (B, A, K, 3)
        kxy = kpt[..., :2] * (2 * strides[None, :, None, None]) + anchors[None, :, None, :]
        heat = offset = None
        if self.heatmap is not None:
            heat, offset = self.heatmap(feats[0])
        return RTPoseOutput(cls.transpose(1, 2), boxes, kxy, kpt[..., 2], anchors, strides,
                            heat, offset)  # fmt: skip

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.mean == (0.0, 0.0, 0.0) and cfg.std == (1.0, 1.0, 1.0):
            return x
        mean = torch.tensor(cfg.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(cfg.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @classmethod
    def scale_config(cls, cfg: RTPoseConfig, width: float, depth: float) -> RTPoseConfig:
        return replace(cfg, width=cfg.width * width, depth=cfg.depth * depth)

    def loss(
        self, outputs: RTPoseOutput, targets: Targets
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Task-aligned assignment, then box, class, keypoint and heatmap losses (see
        `posekit.models.rtpose.loss`)."""
        from posekit.models.rtpose.loss import RTPoseLoss

        fn = self.__dict__.get("_loss_fn")
        if fn is None:
            # unused slots get sigma 1 (never 0/0); they carry no weight
            _, sigmas, used = class_tables(self.schemas)
            fn = RTPoseLoss(torch.tensor(sigmas, dtype=torch.float32), torch.tensor(used))
            self.__dict__["_loss_fn"] = fn  # a plain attribute: not part of the state dict
        return fn(outputs, targets)

    def decode(
        self,
        outputs: RTPoseOutput,
        *,
        conf: float,
        iou: float,
        max_det: int,
        oks_nms: float,
    ) -> list[Instances]:
        """Confidence filter, class-aware box NMS, keypoints snapped to their heatmap peaks,
        then keypoint NMS (see `posekit.models.rtpose.decode.postprocess`)."""
        from posekit.models.rtpose.decode import postprocess

        sigmas = self.keypoint_sigmas().to(outputs.boxes.device)
        return postprocess(outputs, conf=conf, iou=iou, max_det=max_det, sigmas=sigmas,
                           oks_nms=oks_nms)  # fmt: skip

    @classmethod
    def for_graph(
        cls, output_names: list[str], input_shape: list[Any], schema: KeypointSchema
    ) -> RTPose | None:
        if output_names[:4] != ["cls_logits", "boxes", "keypoints", "kpt_logits"]:
            return None
        fixed = input_shape[2] if isinstance(input_shape[2], int) else RTPoseConfig.imgsz
        cfg = RTPoseConfig(imgsz=fixed, heatmap=len(output_names) > 4, name="rtpose (onnx)")
        return cls(cfg, [schema], [schema.name])

    def export_output_names(self) -> list[str]:
        names = ["cls_logits", "boxes", "keypoints", "kpt_logits"]
        return names + (["heatmap", "heatmap_offset"] if self.heatmap is not None else [])

    def export_outputs(self, outputs: RTPoseOutput) -> tuple[torch.Tensor, ...]:
        """Scores, boxes and keypoints of every location (input pixels) and, with the heatmap
        head, its logits and offsets; anchors follow from the input size."""
        o = outputs
        flat = (o.cls_logits, o.boxes, o.keypoints, o.kpt_logits)
        if o.heatmap is not None and o.heatmap_offset is not None:
            flat += (o.heatmap, o.heatmap_offset)
        return flat

    def from_export_outputs(
        self, tensors: Sequence[torch.Tensor], input_shape: tuple[int, int]
    ) -> RTPoseOutput:
        h, w = input_shape
        anchors, strides = anchors_for([(h // s, w // s) for s in STRIDES], tensors[0].device)
        heat = tensors[4:6] if len(tensors) > 4 else (None, None)
        return RTPoseOutput(*tensors[:4], anchors, strides, *heat)


# ---------------------------------------------------------------------- sizes
SIZES: dict[str, RTPoseConfig] = {
    "n": RTPoseConfig(width=0.25, depth=0.34, max_channels=1024, name="rtpose-n"),
    "s": RTPoseConfig(width=0.50, depth=0.34, max_channels=1024, name="rtpose-s"),
    "m": RTPoseConfig(width=0.75, depth=0.67, max_channels=768, name="rtpose-m"),
    "l": RTPoseConfig(width=1.00, depth=1.00, max_channels=512, name="rtpose-l"),
    "x": RTPoseConfig(width=1.25, depth=1.00, max_channels=512, name="rtpose-x"),
}


register_sizes(RTPose, SIZES)
