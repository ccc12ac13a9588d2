"""From network outputs to detections: confidence filter, class-aware NMS, top max_det."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from posekit.models.rtpose import RTPoseOutput
from posekit.ops.boxes import nms


@dataclass
class Detections:
    """Detections of one image in input pixels: boxes (N, 4) xyxy, scores (N,), classes (N,),
    keypoints (N, K, 3) with x, y and keypoint confidence."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor
    keypoints: torch.Tensor


@torch.no_grad()
def postprocess(
    out: RTPoseOutput,
    *,
    conf: float = 0.25,
    iou: float = 0.65,
    max_det: int = 100,
    max_candidates: int = 3000,
) -> list[Detections]:
    """Per image: keep locations whose best class score reaches `conf`, at most
    `max_candidates` of them by score, suppress overlaps per class, keep `max_det`."""
    scores_all = out.cls_logits.sigmoid()  # (B, A, nc)
    best, cls = scores_all.max(-1)  # (B, A)
    kconf = out.kpt_logits.sigmoid()
    results = []
    for b in range(best.shape[0]):  # per image; everything inside is vectorised
        idx = (best[b] >= conf).nonzero().squeeze(1)
        if len(idx) > max_candidates:
            idx = idx[best[b, idx].topk(max_candidates).indices]
        boxes, scores, classes = out.boxes[b, idx], best[b, idx], cls[b, idx]
        keep = nms(boxes, scores, iou, classes)[:max_det]
        a = idx[keep]
        kp = torch.cat([out.keypoints[b, a], kconf[b, a][..., None]], -1)
        results.append(Detections(out.boxes[b, a], best[b, a], cls[b, a], kp))
    return results
