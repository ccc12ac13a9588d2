"""The yolo family: Ultralytics' YOLOv8, YOLO11 and YOLO26 pose (and detect) networks on the
family contract, built from the architecture description their files carry.

`forward` returns the same per-location outputs as rtpose (`RTPoseOutput`: class logits,
xyxy boxes, keypoints in input pixels and visibility logits), so the trainer fine-tunes it with
rtpose's loss (task-aligned assignment, CIoU, OKS; the YOLO-pose design) and `decode` applies
Ultralytics' own post-processing: best class above `conf`, class-offset NMS, `max_det` (the
one-to-many branch), or, for end-to-end models (YOLO26), the top scores of the one-to-one
branch with no NMS. A detect model (no keypoints) reports one keypoint per box, its centre.

Layout: config -> network -> registered sizes (the published pose architectures, untrained).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, ClassVar

import torch
import yaml
from torch import nn

from posekit.models.base import KeypointModel, Targets, class_tables
from posekit.models.registry import register_family, register_model
from posekit.models.rtpose.model import RTPoseOutput
from posekit.models.yolo.build import Scaling, build_layers
from posekit.models.yolo.head import SURE_LOGIT
from posekit.ops.instances import Instances
from posekit.schema import KeypointSchema
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError

SIZE_LETTERS = ("n", "s", "m", "l", "x")


@dataclass(frozen=True)
class YOLOConfig:
    """A YOLO network: its layer rows as Ultralytics describes them, their scales and the head's
    settings (saved with the weights; the class count and keypoints come from the schemas)."""

    backbone: tuple[Any, ...] = ()  # rows [from, repeats, module, args]
    head: tuple[Any, ...] = ()  # rows after the backbone; the last is the Detect/Pose head
    depth: float = ranged(0.5, 0.01, 4)  # repeat multiplier
    width: float = ranged(0.25, 0.01, 4)  # channel multiplier
    max_channels: int = ranged(1024, 8, 8192)
    scale: str = "n"  # the size letter: C3k2 blocks use C3k inside at m, l and x
    reg_max: int = ranged(16, 1, 64)  # box distribution bins (1: direct distances)
    end2end: bool = False  # the network has a one-to-one (NMS-free) branch
    one2one: bool = True  # decode the one-to-one branch when there is one (else NMS)
    kpt_dims: int = ranged(3, 2, 3)  # 3: x, y and a visibility logit per keypoint; 2: x, y
    detect: bool = False  # a detect model: no keypoint branch (one keypoint: the box centre)
    imgsz: int = ranged(640, 32, 8192)  # default inference size (letterboxed, rect)
    name: str = "yolo"
    origin: str = ""  # where the weights came from (e.g. "Ultralytics 8.3.40, AGPL-3.0")

    def __post_init__(self) -> None:
        check_ranges(self, f"{self.name} config")
        if self.scale not in SIZE_LETTERS:
            raise UserError(
                f"{self.name} config: scale {self.scale!r} is not one of {', '.join(SIZE_LETTERS)}"
            )


def cell_centres(
    sizes: list[tuple[int, int]], strides: list[int], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres (A, 2) in cell units (x, y: column + 0.5, row + 0.5) of every level,
    level after level, and each one's stride (A,)."""
    cells, out_strides = [], []
    for (h, w), s in zip(sizes, strides, strict=True):
        ys = torch.arange(h, device=device, dtype=torch.float32) + 0.5
        xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        cells.append(torch.stack([xx, yy], -1).view(-1, 2))
        out_strides.append(torch.full((h * w,), float(s), device=device))
    return torch.cat(cells), torch.cat(out_strides)


@register_family("yolo")
class YOLO(KeypointModel):
    """A YOLOv8 / YOLO11 / YOLO26 pose or detect network for given schemas (one per class)."""

    config_class: ClassVar[type] = YOLOConfig
    #: Ultralytics' prediction defaults where posekit's differ: NMS at IoU 0.7 and no keypoint
    #: NMS (so results are the ones its users know)
    predict_defaults: ClassVar[dict[str, Any]] = {"iou": 0.7, "oks_nms": 1.0}
    #: Ultralytics resizes with bilinear interpolation, shrinking too
    letterbox_interpolation: ClassVar[str] = "linear"

    def __init__(self, cfg: YOLOConfig, schemas: list[KeypointSchema], names: list[str]):
        super().__init__()
        if not schemas:
            raise UserError("yolo needs at least one class")
        self.config, self.schemas, self.names = cfg, list(schemas), list(names)
        if cfg.detect and self.num_keypoints != 1:
            raise UserError("a yolo detect model has one keypoint per class (the box centre)")
        scaling = Scaling(
            cfg.depth,
            cfg.width,
            cfg.max_channels,
            cfg.scale,
            len(schemas),
            self.num_keypoints,
            cfg.kpt_dims,
            cfg.reg_max,
            cfg.end2end,
        )
        rows = [list(r) for r in (*cfg.backbone, *cfg.head)]
        rows[-1] = [*rows[-1][:2], "Detect" if cfg.detect else rows[-1][2], rows[-1][3]]
        layers, head, self.head_sources, strides = build_layers(rows, scaling)
        self.model = nn.ModuleList([*(layer.module for layer in layers), head])
        self.sources = [layer.source for layer in layers]
        self.strides = strides
        self.input_stride = max(32, *strides)  # type: ignore[misc]

    @property
    def head(self) -> nn.Module:
        return self.model[-1]

    @property
    def decodes_one2one(self) -> bool:
        """Inference runs the one-to-one branch (an end-to-end network, unless `one2one` is
        off) and decodes it without NMS."""
        return self.config.end2end and self.config.one2one

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The head's input feature maps, one per level: (B, C_l, H / s_l, W / s_l)."""
        outs: list[torch.Tensor] = []
        for module, source in zip(self.model[:-1], self.sources, strict=True):
            if isinstance(source, list):
                x = module([outs[j] for j in source])
            else:
                x = module(x if source == -1 else outs[source])
            outs.append(x)
        return [outs[j] for j in self.head_sources]

    def forward(self, x: torch.Tensor) -> RTPoseOutput | tuple[RTPoseOutput, RTPoseOutput]:
        """x: (B, 3, H, W) RGB in 0..1, H and W multiples of the largest stride. An end-to-end
        network in training returns both branches' outputs (one-to-many, one-to-one: the
        latter on detached features, so that it does not steer the body)."""
        feats = self.features(x)
        if self.training and self.head.end2end:
            return (
                self._outputs(feats, x, one2one=False),
                self._outputs([f.detach() for f in feats], x, one2one=True),
            )
        return self._outputs(feats, x, one2one=self.decodes_one2one)

    def _outputs(self, feats: list[torch.Tensor], x: torch.Tensor, one2one: bool) -> RTPoseOutput:
        box, cls, kpt = self.head(feats, one2one)  # (B, 4*bins, A), (B, nc, A), (B, K*dims, A)
        cells, strides = cell_centres([f.shape[-2:] for f in feats], self.strides, x.device)
        dist = self.head.distances(box).transpose(1, 2) * strides[None, :, None]  # (B, A, 4)
        centres = cells * strides[:, None]  # (A, 2) input pixels
        boxes = torch.cat([centres - dist[..., :2], centres + dist[..., 2:]], -1)
        if self.config.detect:
            kxy = ((boxes[..., :2] + boxes[..., 2:]) / 2)[:, :, None]  # (B, A, 1, 2)
            kvis = torch.full_like(kxy[..., 0], SURE_LOGIT)
        else:
            kxy, kvis = self.head.keypoints(kpt, cells, strides)
        return RTPoseOutput(cls.transpose(1, 2), boxes, kxy, kvis, centres, strides)

    @classmethod
    def scale_config(cls, cfg: YOLOConfig, width: float, depth: float) -> YOLOConfig:
        return replace(cfg, width=cfg.width * width, depth=cfg.depth * depth)

    def loss(
        self, outputs: RTPoseOutput | tuple[RTPoseOutput, RTPoseOutput], targets: Targets
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """rtpose's losses (task-aligned assignment, BCE, CIoU, OKS + L1, visibility BCE);
        an end-to-end network's one-to-one branch learns with one positive per instance (the
        assignment's top 1), as its NMS-free decoding needs."""
        from posekit.models.rtpose.loss import RTPoseLoss

        fns = self.__dict__.get("_loss_fns")
        if fns is None:
            _, sigmas, used = class_tables(self.schemas)
            s, u = torch.tensor(sigmas, dtype=torch.float32), torch.tensor(used)
            fns = (RTPoseLoss(s, u), RTPoseLoss(s, u, topk=1))
            self.__dict__["_loss_fns"] = fns  # a plain attribute: not part of the state dict
        if isinstance(outputs, RTPoseOutput):
            return fns[0](outputs, targets)
        many, parts = fns[0](outputs[0], targets)
        one, one_parts = fns[1](outputs[1], targets)
        return many + one, {**parts, **{f"o2o_{k}": v for k, v in one_parts.items()}}

    def decode(
        self, outputs: RTPoseOutput, *, conf: float, iou: float, max_det: int, oks_nms: float
    ) -> list[Instances]:
        """Ultralytics' post-processing (see `posekit.models.yolo.decode`)."""
        from posekit.models.yolo.decode import one_to_many, one_to_one

        if self.decodes_one2one:
            return one_to_one(outputs, conf=conf, max_det=max_det)
        return one_to_many(outputs, conf=conf, iou=iou, max_det=max_det)

    def export_output_names(self) -> list[str]:
        return ["cls_logits", "boxes", "keypoints", "kpt_logits"]

    def export_outputs(self, outputs: RTPoseOutput) -> tuple[torch.Tensor, ...]:
        o = outputs
        return (o.cls_logits, o.boxes, o.keypoints, o.kpt_logits)

    def from_export_outputs(self, tensors: Any, input_shape: tuple[int, int]) -> RTPoseOutput:
        h, w = input_shape
        sizes = [(h // s, w // s) for s in self.strides]
        cells, strides = cell_centres(sizes, self.strides, tensors[0].device)
        return RTPoseOutput(*tensors[:4], cells * strides[:, None], strides)


# ---------------------------------------------------------------------- sizes
def published_architectures() -> dict[str, dict[str, Any]]:
    """The published pose architectures (architectures.yaml beside this module)."""
    text = resources.files(__package__).joinpath("architectures.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def config_for(description: dict[str, Any], scale: str, **fields: Any) -> YOLOConfig:
    """The config of one size of an architecture description (a file's or a published one)."""
    scales = description.get("scales") or {}
    if scales:
        if scale not in scales:
            raise UserError(f"the YOLO architecture has no scale {scale!r} ({sorted(scales)})")
        depth, width, max_channels = scales[scale]
    else:  # descriptions from before compound scales
        depth = description.get("depth_multiple", 1.0)
        width = description.get("width_multiple", 1.0)
        max_channels = 8192
    return YOLOConfig(
        backbone=tuple(description["backbone"]),
        head=tuple(description["head"]),
        depth=float(depth),
        width=float(width),
        max_channels=int(max_channels),
        scale=scale if scale in SIZE_LETTERS else "n",
        reg_max=int(description.get("reg_max", 16)),
        end2end=bool(description.get("end2end", False)),
        **fields,
    )


def _register_published() -> None:
    for arch, description in published_architectures().items():
        version = arch.removesuffix("-pose")
        for scale in SIZE_LETTERS:
            name = f"{version}{scale}-pose"
            cfg = config_for(description, scale, name=name)

            def build(
                schemas: list[KeypointSchema],
                names: list[str],
                _cfg: YOLOConfig = cfg,
                **overrides: Any,
            ) -> YOLO:
                width, depth = overrides.pop("width", None), overrides.pop("depth", None)
                c = YOLO.scale_config(_cfg, float(width or 1), float(depth or 1))
                return YOLO(replace(c, **overrides), schemas, names)

            build.__name__ = f"{version}{scale}_pose"
            build.__doc__ = f"{name}: untrained {version} pose network, size {scale}"
            register_model(name)(build)


_register_published()
