"""pafpose: bottom-up pose with part affinity fields (OpenPose, Cao et al. 2017), whose cost
does not grow with the number of people in the frame.

One pass over the whole letterboxed image predicts, at stride 8 (or 4), a heatmap per keypoint
and a two-channel field per skeleton limb that points along the limb wherever a limb lies;
people are then assembled from the heatmaps' peaks by following the fields
(`posekit.models.pafpose.grouping`). A top-down model runs its network once per person; this
network runs once per image, and only the grouping (cheap, vectorised) sees the crowd.

Layout: CSPNeXt backbone (shared with rtmpose and heatpose) -> a small feature pyramid to the
output stride -> `stages` refinement stages as in OpenPose (each sees the features and the
previous stage's maps; every stage is supervised) -> config -> model class -> sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from posekit.models.base import KeypointModel, Targets
from posekit.models.blocks import ConvBNAct
from posekit.models.cspnext import CSPNeXt, scale_cspnext, scaled
from posekit.models.pafpose.grouping import GroupingSettings, group_people
from posekit.models.pafpose.limbs import Limbs, schema_limbs
from posekit.models.pafpose.targets import draw_targets
from posekit.models.registry import register_family, register_sizes
from posekit.models.topdown import IMAGENET_MEAN, IMAGENET_STD
from posekit.ops.instances import Instances
from posekit.schema import KeypointSchema
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError


@dataclass(frozen=True)
class PafPoseConfig:
    """Size, input, target and grouping settings of a pafpose model (saved with the weights)."""

    widen: float = ranged(0.5, 0.01, 4)  # CSPNeXt channel multiplier
    deepen: float = ranged(0.33, 0.01, 4)  # CSPNeXt block-count multiplier
    width: int = ranged(128, 8, 4096)  # channels of the pyramid and the stages, at widen 1
    stages: int = ranged(2, 1, 8)  # refinement stages (OpenPose's; each is supervised)
    stride: int = ranged(8, 4, 8)  # output stride of the maps: 4 or 8
    imgsz: int = ranged(512, 64, 8192)  # training / default inference size (square letterbox)
    sigma: float = ranged(1.5, 0.1, 100)  # of the target Gaussians, in cells of the maps
    limb_width: float = ranged(1.0, 0.1, 100)  # half-width of a limb's field, in cells
    mean: tuple[float, float, float] = ranged(IMAGENET_MEAN, -1000, 1000)  # on 0..1 RGB
    std: tuple[float, float, float] = ranged(IMAGENET_STD, 1e-06, 1000)
    peak_threshold: float = ranged(0.1, -1, 1)  # heatmap value a keypoint's peak must exceed
    paf_threshold: float = ranged(0.05, -1, 1)  # field alignment a limb sample must exceed
    min_aligned: float = ranged(0.8, 0, 1)  # fraction of a limb's samples above it
    min_keypoints: int = ranged(3, 1, 1000)  # people with fewer found keypoints are dropped
    name: str = "pafpose"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ranges(self, f"{self.name} config")
        if self.stride not in (4, 8):
            raise UserError(f"{self.name} config: stride must be 4 or 8, got {self.stride}")

    def grouping(self) -> GroupingSettings:
        return GroupingSettings(self.peak_threshold, self.paf_threshold, self.min_aligned,
                                min_keypoints=self.min_keypoints)  # fmt: skip


@dataclass
class PafOutput:
    """Every stage's maps, the last one last: heatmaps (B, K, H, W) and fields (B, 2L, H, W)
    at the output stride."""

    heatmaps: tuple[torch.Tensor, ...]
    pafs: tuple[torch.Tensor, ...]


class Pyramid(nn.Module):
    """Stage outputs (strides 4..32) -> one map of `c` channels at `stride`: lateral 1x1
    projections, the coarser level upsampled 2x and added, a 3x3 convolution after each merge."""

    def __init__(self, stage_channels: tuple[int, ...], c: int, stride: int) -> None:
        super().__init__()
        self.first = 0 if stride == 4 else 1  # the finest stage used
        used = stage_channels[self.first :]
        self.lateral = nn.ModuleList(ConvBNAct(ch, c, 1) for ch in used)
        self.smooth = nn.ModuleList(ConvBNAct(c, c, 3) for _ in used[:-1])

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        feats = stages[self.first :]
        x = self.lateral[-1](feats[-1])
        for level in range(len(feats) - 2, -1, -1):
            up = F.interpolate(x, size=feats[level].shape[-2:], mode="nearest")
            x = self.smooth[level](self.lateral[level](feats[level]) + up)
        return x


class Stage(nn.Module):
    """Three 3x3 convolutions and two 1x1 heads: heatmaps (k) and fields (2 * limbs)."""

    def __init__(self, c_in: int, c: int, k: int, limbs: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(c_in, c, 3), ConvBNAct(c, c, 3), ConvBNAct(c, c, 3))
        self.heat = nn.Conv2d(c, k, 1)
        self.paf = nn.Conv2d(c, 2 * limbs, 1)
        for head in (self.heat, self.paf):
            nn.init.normal_(head.weight, std=0.001)
            nn.init.zeros_(head.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.body(x)
        return self.heat(y), self.paf(y)


@register_family("pafpose")
class PafPose(KeypointModel):
    """pafpose for one keypoint schema with a skeleton: K heatmaps and 2L fields.

    Input: (B, 3, H, W) RGB in 0..1, H and W multiples of 32; output: `PafOutput`.
    """

    config_class: ClassVar[type] = PafPoseConfig
    export_check_conf: ClassVar[float] = 0.25

    @classmethod
    def scale_config(cls, cfg: PafPoseConfig, width: float, depth: float) -> PafPoseConfig:
        return scale_cspnext(cfg, width, depth)  # type: ignore[no-any-return]

    def __init__(self, cfg: PafPoseConfig, schemas: list[KeypointSchema], names: list[str]):
        super().__init__()
        if len(schemas) != 1:
            raise UserError(f"pafpose models one kind of object (one schema), got {len(schemas)}"
                            "; train one model per kind")  # fmt: skip
        self.config = cfg
        self.schemas = list(schemas)
        self.names = list(names)
        self.limbs: Limbs = schema_limbs(schemas[0])
        k, n_limbs = self.num_keypoints, self.limbs.count
        self.backbone = CSPNeXt(cfg.widen, cfg.deepen)
        c = scaled(cfg.width, cfg.widen)
        self.pyramid = Pyramid(self.backbone.stage_channels, c, cfg.stride)
        self.stages = nn.ModuleList(
            Stage(c if s == 0 else c + k + 2 * n_limbs, c, k, n_limbs) for s in range(cfg.stages)
        )

    def forward(self, x: torch.Tensor) -> PafOutput:
        cfg = self.config
        mean = torch.tensor(cfg.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(cfg.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        feats = self.pyramid(self.backbone.stage_outputs((x - mean) / std))
        heats, pafs = [], []
        y = feats
        for stage in self.stages:
            heat, paf = stage(y)
            heats.append(heat)
            pafs.append(paf)
            y = torch.cat([feats, heat, paf], 1)
        return PafOutput(tuple(heats), tuple(pafs))

    def loss(self, outputs: PafOutput, targets: Targets) -> tuple[torch.Tensor, dict[str, float]]:
        """Squared error of every stage's heatmaps and fields against the drawn targets
        (`posekit.models.pafpose.targets`), summed over channels and averaged over the
        supervised cells, and over stages (OpenPose's intermediate supervision)."""
        cfg = self.config
        size = tuple(outputs.heatmaps[-1].shape[-2:])
        t = draw_targets(targets, self.limbs, self.num_keypoints, size, cfg.stride, cfg.sigma,
                         cfg.limb_width)  # fmt: skip
        cells = t.mask.sum().clamp(min=1)
        heat_terms, paf_terms = [], []
        for heat, paf in zip(outputs.heatmaps, outputs.pafs, strict=True):
            heat_terms.append((((heat.float() - t.heat) ** 2) * t.mask).sum() / cells)
            paf_terms.append((((paf.float() - t.paf) ** 2) * t.mask).sum() / cells)
        total = (sum(heat_terms) + sum(paf_terms)) / len(heat_terms)
        parts = {"heatmap": float(heat_terms[-1].detach()), "paf": float(paf_terms[-1].detach())}
        return total, parts  # type: ignore[return-value]

    def decode(
        self,
        outputs: PafOutput,
        *,
        conf: float,
        iou: float,
        max_det: int,
        oks_nms: float,
    ) -> list[Instances]:
        """People of each image (`group_people`) in input pixels: keypoints at their peaks with
        the heatmap's value as confidence (missing ones at the person's centre, confidence 0),
        a box around the found keypoints, the person's score; `conf` and `max_det` applied
        (the grouping gives each peak to one person, so there is nothing for NMS to do)."""
        del iou, oks_nms
        heats, pafs = outputs.heatmaps[-1].float(), outputs.pafs[-1].float()
        stride, settings = self.config.stride, self.config.grouping()
        out = []
        for heat, paf in zip(heats, pafs, strict=True):  # images of the batch
            people = group_people(heat, paf, self.limbs, settings)
            people = people.select(people.scores >= conf)
            people = people.select(torch.argsort(people.scores, descending=True)[:max_det])
            out.append(_in_input_pixels(people, stride))
        return out

    def export_output_names(self) -> list[str]:
        return ["heatmaps", "pafs"]

    def export_outputs(self, outputs: PafOutput) -> tuple[torch.Tensor, ...]:
        """The last stage's heatmaps and fields: the grouping runs after either backend."""
        return outputs.heatmaps[-1], outputs.pafs[-1]

    def from_export_outputs(
        self, tensors: Sequence[torch.Tensor], input_shape: tuple[int, int]
    ) -> PafOutput:
        return PafOutput((tensors[0],), (tensors[1],))

    @classmethod
    def for_graph(
        cls, output_names: list[str], input_shape: list[Any], schema: KeypointSchema
    ) -> PafPose | None:
        if output_names[:2] != ["heatmaps", "pafs"]:
            return None
        fixed = input_shape[2] if isinstance(input_shape[2], int) else PafPoseConfig.imgsz
        return cls(PafPoseConfig(imgsz=fixed, name="pafpose (onnx)"), [schema], [schema.name])


def _in_input_pixels(people: Instances, stride: int) -> Instances:
    """Grid-cell people -> input pixels (cell j's centre is (j + 0.5) * stride): keypoints not
    found at the person's centre (confidence 0), boxes padded by 10 % (at least half a cell)."""
    kp = people.keypoints
    found = kp[..., 2:] > 0
    xy = (kp[..., :2] + 0.5) * stride
    centre = (xy * found).sum(1) / found.sum(1).clamp(min=1)
    xy = torch.where(found, xy, centre[:, None])
    boxes = (people.boxes.reshape(-1, 2, 2) + 0.5) * stride
    pad = ((boxes[:, 1] - boxes[:, 0]) * 0.1).clamp(min=stride / 2)
    boxes = torch.cat([boxes[:, 0] - pad, boxes[:, 1] + pad], 1)
    keypoints = torch.cat([xy, kp[..., 2:].clamp(0, 1)], -1)
    return Instances(boxes=boxes, keypoints=keypoints, classes=people.classes, scores=people.scores)


# ---------------------------------------------------------------------- sizes
SIZES: dict[str, PafPoseConfig] = {
    "s": PafPoseConfig(widen=0.5, deepen=0.33, name="pafpose-s"),
    "m": PafPoseConfig(widen=0.75, deepen=0.67, name="pafpose-m"),
    "l": PafPoseConfig(widen=1.0, deepen=1.0, stages=3, name="pafpose-l"),
}


register_sizes(PafPose, SIZES)
