"""From network outputs to detections: confidence filter, class-aware box NMS, top max_det,
keypoints snapped to heatmap peaks, then NMS on keypoint similarity."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from posekit.models.base import Detections
from posekit.models.rtpose.model import RTPoseOutput
from posekit.ops.boxes import nms
from posekit.ops.oks import keypoint_nms


@torch.no_grad()
def postprocess(
    out: RTPoseOutput,
    *,
    conf: float = 0.25,
    iou: float = 0.65,
    max_det: int = 100,
    max_candidates: int = 3000,
    snap: bool = True,
    sigmas: torch.Tensor | None = None,
    oks_nms: float = 0.9,
) -> list[Detections]:
    """Per image: keep locations whose best class score reaches `conf`, at most
    `max_candidates` of them by score, suppress box overlaps per class, keep `max_det`; with
    `snap` (and a model with heatmaps), move each keypoint onto its nearest heatmap peak.
    With `sigmas` ((nc, K), `RTPose.keypoint_sigmas()`), then drop detections whose keypoint
    similarity (OKS) with a higher-scored one of their class exceeds `oks_nms` (1 keeps all):
    two locations whose boxes differ can still snap to the same joints."""
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
        xy = out.keypoints[b, a]
        if snap and out.heatmap is not None and out.heatmap_offset is not None and len(a):
            xy = snap_keypoints(xy, out.boxes[b, a], out.heatmap[b].sigmoid(),
                                out.heatmap_offset[b], out.heatmap_stride)  # fmt: skip
        if sigmas is not None and oks_nms < 1 and len(a) > 1:
            box = out.boxes[b, a]
            area = (box[:, 2:] - box[:, :2]).clamp(min=0).prod(-1)
            c = cls[b, a]
            k2 = keypoint_nms(xy, best[b, a], area, sigmas.to(xy)[c], oks_nms, c)
            a, xy = a[k2], xy[k2]
        kp = torch.cat([xy, kconf[b, a][..., None]], -1)
        results.append(Detections(out.boxes[b, a], best[b, a], cls[b, a], kp))
    return results


def snap_keypoints(
    xy: torch.Tensor,
    boxes: torch.Tensor,
    heat: torch.Tensor,
    offset: torch.Tensor,
    stride: int,
    *,
    thresh: float = 0.1,
    max_radius: int = 3,
) -> torch.Tensor:
    """Move regressed keypoints onto the nearest heatmap peak of their own type (CenterNet's
    rule), searching a window that grows with the instance (1 to `max_radius` cells).

    xy: (N, K, 2) regressed keypoints and boxes (N, 4) in input pixels; heat: (K, H, W)
    probabilities; offset: (K, 2, H, W) sub-cell offsets. Peaks are local 3x3 maxima of at
    least `thresh`; a keypoint without a peak in its window keeps its regressed position.
    """
    k = xy.shape[1]
    _, h, w = heat.shape
    peaks = (heat == F.max_pool2d(heat[None], 3, 1, 1)[0]) & (heat >= thresh)  # (K, H, W)
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
    gxc, gyc = gx.clamp(0, w - 1), gy.clamp(0, h - 1)
    is_peak = peaks[kk, gyc, gxc] & inside
    px = (gxc + offset[kk, 0, gyc, gxc] + 0.5) * stride  # peak positions in input pixels
    py = (gyc + offset[kk, 1, gyc, gxc] + 0.5) * stride
    d2 = (px - xy[..., :1]) ** 2 + (py - xy[..., 1:]) ** 2
    d2 = torch.where(is_peak, d2, torch.inf)
    best = d2.argmin(-1, keepdim=True)
    found = is_peak.any(-1, keepdim=True)
    snapped = torch.cat([px.gather(-1, best), py.gather(-1, best)], -1)  # (N, K, 2)
    return torch.where(found, snapped, xy)
