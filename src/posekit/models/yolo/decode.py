"""From YOLO outputs to detections, as Ultralytics post-processes them for the same settings.

- One-to-many (YOLOv8, YOLO11, YOLO26 with `one2one=False`): per location the best class; keep
  scores strictly above `conf`; at most `MAX_NMS` candidates by score; greedy NMS within each
  class at `iou`; the `max_det` best kept.
- One-to-one (YOLO26, end-to-end): the `max_det` locations with the best top class, then the
  `max_det` best (location, class) pairs among them, kept when strictly above `conf`; no NMS.

Both run on the whole batch at once.
"""

from __future__ import annotations

import torch

from posekit.models.rtpose.model import RTPoseOutput
from posekit.ops.boxes import batched_nms
from posekit.ops.instances import Instances

#: candidates per image that enter NMS (Ultralytics' `max_nms`)
MAX_NMS = 30000


def _instances(
    out: RTPoseOutput,
    anchor: torch.Tensor,
    score: torch.Tensor,
    cls: torch.Tensor,
    kept: torch.Tensor,
) -> list[Instances]:
    """Per image, the kept (B, D) rows of anchor indices, scores and classes as instances."""
    k = out.keypoints.shape[2]
    box = out.boxes.gather(1, anchor[..., None].expand(-1, -1, 4))
    xy = out.keypoints.gather(1, anchor[..., None, None].expand(-1, -1, k, 2))
    kconf = out.kpt_logits.gather(1, anchor[..., None].expand(-1, -1, k)).sigmoid()
    kp = torch.cat([xy, kconf[..., None]], -1)
    counts = kept.sum(1).tolist()
    parts = [t[kept].split(counts) for t in (box, kp, cls, score)]
    return [Instances(*p) for p in zip(*parts, strict=True)]


@torch.no_grad()
def one_to_many(out: RTPoseOutput, *, conf: float, iou: float, max_det: int) -> list[Instances]:
    """Best class per location above `conf`, class-aware NMS, `max_det` kept (see above)."""
    best, cls = out.cls_logits.sigmoid().max(-1)  # (B, A)
    n = min(MAX_NMS, int((best > conf).sum(1).max())) if best.numel() else 0
    top, anchor = best.topk(n, dim=1)  # ranked (B, n)
    valid = top > conf
    classes = cls.gather(1, anchor)
    boxes = out.boxes.gather(1, anchor[..., None].expand(-1, -1, 4))
    keep = batched_nms(boxes, valid, iou, classes, max_keep=max_det)
    d = int(keep.sum(1).max()) if n else 0
    order = keep.to(torch.uint8).argsort(dim=1, descending=True, stable=True)[:, :d]
    return _instances(
        out,
        anchor.gather(1, order),
        top.gather(1, order),
        classes.gather(1, order),
        keep.gather(1, order),
    )


@torch.no_grad()
def one_to_one(out: RTPoseOutput, *, conf: float, max_det: int) -> list[Instances]:
    """The best (location, class) pairs of the one-to-one branch above `conf` (see above)."""
    scores = out.cls_logits.sigmoid()  # (B, A, nc)
    _, a, nc = scores.shape
    k = min(max_det, a)
    first = scores.max(-1).values.topk(k, dim=1).indices  # (B, k) locations
    cand = scores.gather(1, first[..., None].expand(-1, -1, nc)).flatten(1)  # (B, k * nc)
    score, pair = cand.topk(k, dim=1)  # ranked (B, k)
    anchor = first.gather(1, pair // nc)
    kept = score > conf
    return _instances(out, anchor, score, pair % nc, kept)
