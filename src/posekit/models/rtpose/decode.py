"""From network outputs to detections: confidence filter, class-aware box NMS, top max_det,
keypoints snapped to heatmap peaks, then NMS on keypoint similarity."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from posekit.models.rtpose.model import RTPoseOutput
from posekit.ops.boxes import batched_nms
from posekit.ops.instances import Instances
from posekit.ops.oks import batched_keypoint_nms


@torch.no_grad()
def postprocess(
    out: RTPoseOutput,
    *,
    conf: float,
    iou: float,
    max_det: int,
    oks_nms: float,
    max_candidates: int = 3000,
    snap: bool = True,
    sigmas: torch.Tensor | None = None,
) -> list[Instances]:
    """Per image: keep locations whose best class score reaches `conf`, at most
    `max_candidates` of them by score, suppress box overlaps per class, keep `max_det`; with
    `snap` (and a model with heatmaps), move each keypoint onto its nearest heatmap peak.
    With `sigmas` ((nc, K), `RTPose.keypoint_sigmas()`), then drop detections whose keypoint
    similarity (OKS) with a higher-scored one of their class exceeds `oks_nms` (1 keeps all):
    two locations whose boxes differ can still snap to the same joints.

    Every step runs on the whole batch at once, on the outputs' device (no loop over images):
    candidates are the per-image top scores padded to the batch's largest count."""
    scores_all = out.cls_logits.sigmoid()  # (B, A, nc)
    best, cls = scores_all.max(-1)  # (B, A)
    bsz = best.shape[0]
    top, idx = best.topk(min(max_candidates, best.shape[1]), dim=1)  # ranked (B, C)
    valid = top >= conf
    n = int(valid.sum(1).max()) if bsz else 0
    top, idx, valid = top[:, :n], idx[:, :n], valid[:, :n]
    boxes = out.boxes.gather(1, idx[..., None].expand(-1, -1, 4))
    classes = cls.gather(1, idx)
    keep = batched_nms(boxes, valid, iou, classes, max_keep=max_det)
    # the kept ones first, in rank order: (B, D) with D the largest count kept
    d = int(keep.sum(1).max()) if n else 0
    order = keep.to(torch.uint8).argsort(dim=1, descending=True, stable=True)[:, :d]
    kept = keep.gather(1, order)
    a = idx.gather(1, order)  # (B, D) anchor indices
    score, c, box = top.gather(1, order), classes.gather(1, order), boxes.gather(
        1, order[..., None].expand(-1, -1, 4))  # fmt: skip
    k = out.keypoints.shape[2]
    xy = out.keypoints.gather(1, a[..., None, None].expand(-1, -1, k, 2))  # (B, D, K, 2)
    kconf = out.kpt_logits.gather(1, a[..., None].expand(-1, -1, k)).sigmoid()
    if snap and out.heatmap is not None and out.heatmap_offset is not None and d:
        owner = torch.arange(bsz, device=a.device)[:, None].expand(-1, d)[kept]
        xy[kept] = snap_keypoints(xy[kept], box[kept], out.heatmap.sigmoid(),
                                  out.heatmap_offset, out.heatmap_stride, owner=owner)  # fmt: skip
    if sigmas is not None and oks_nms < 1 and d > 1:
        area = (box[..., 2:] - box[..., :2]).clamp(min=0).prod(-1)
        kept &= batched_keypoint_nms(xy, area, sigmas.to(xy)[c], kept, oks_nms, c)
    counts = kept.sum(1).tolist()
    kp = torch.cat([xy, kconf[..., None]], -1)[kept]
    parts = [t.split(counts) for t in (box[kept], kp, c[kept], score[kept])]
    return [Instances(*p) for p in zip(*parts, strict=True)]  # the fields' order


def snap_keypoints(
    xy: torch.Tensor,
    boxes: torch.Tensor,
    heat: torch.Tensor,
    offset: torch.Tensor,
    stride: int,
    *,
    owner: torch.Tensor | None = None,
    thresh: float = 0.1,
    max_radius: int = 3,
) -> torch.Tensor:
    """Move regressed keypoints onto the nearest heatmap peak of their own type (CenterNet's
    rule), searching a window that grows with the instance (1 to `max_radius` cells).

    xy: (N, K, 2) regressed keypoints and boxes (N, 4) in input pixels; heat: (K, H, W)
    probabilities and offset: (K, 2, H, W) sub-cell offsets of one image, or (B, K, H, W) and
    (B, K, 2, H, W) of a batch with `owner` (N,) the image of each detection. Peaks are local
    3x3 maxima of at least `thresh`; a keypoint without a peak in its window keeps its
    regressed position.
    """
    if owner is None:
        heat, offset = heat[None], offset[None]
        owner = torch.zeros(len(xy), dtype=torch.long, device=xy.device)
    k = xy.shape[1]
    h, w = heat.shape[-2:]
    peaks = (heat == F.max_pool2d(heat, 3, 1, 1)) & (heat >= thresh)  # (B, K, H, W)
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(-1).sqrt()  # (N,)
    radius = (0.25 * size / stride).round().clamp(1, max_radius)  # (N,)
    r = torch.arange(-max_radius, max_radius + 1, device=xy.device)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    dx, dy = dx.reshape(-1), dy.reshape(-1)  # (W2,)
    cu = (xy[..., 0] / stride - 0.5).round().long()  # (N, K) nearest cell
    cv = (xy[..., 1] / stride - 0.5).round().long()
    gx, gy = cu[..., None] + dx, cv[..., None] + dy  # (N, K, W2)
    inside = (gx >= 0) & (gx < w) & (gy >= 0) & (gy < h)
    inside &= dx.abs().maximum(dy.abs()) <= radius[:, None, None]
    kk = torch.arange(k, device=xy.device)[None, :, None].expand_as(gx)
    bb = owner[:, None, None].expand_as(gx)
    gxc, gyc = gx.clamp(0, w - 1), gy.clamp(0, h - 1)
    is_peak = peaks[bb, kk, gyc, gxc] & inside
    px = (gxc + offset[bb, kk, 0, gyc, gxc] + 0.5) * stride  # peak positions in input pixels
    py = (gyc + offset[bb, kk, 1, gyc, gxc] + 0.5) * stride
    d2 = (px - xy[..., :1]) ** 2 + (py - xy[..., 1:]) ** 2
    d2 = torch.where(is_peak, d2, torch.inf)
    best = d2.argmin(-1, keepdim=True)
    found = is_peak.any(-1, keepdim=True)
    snapped = torch.cat([px.gather(-1, best), py.gather(-1, best)], -1)  # (N, K, 2)
    return torch.where(found, snapped, xy)
