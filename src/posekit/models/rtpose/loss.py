"""Label assignment and losses for rtpose.

Assignment is task-aligned (TOOD / YOLOv8 style) with keypoints in the overlap: for every
ground truth, candidate locations are those whose centre lies in its box and within 2.5 strides
of the box centre (YOLOX's centre prior: positives stay mid-object rather than drifting to
where most keypoints cluster, so every keypoint is a moderate offset away), and at least half a
stride from it, so small objects always get candidates; each candidate scores
`cls_score ** alpha * overlap ** beta` with overlap = mean of box IoU and keypoint OKS (box IoU
alone for instances without labelled keypoints); the top k candidates become positives, and a
location claimed by several instances goes to the one it overlaps most. Class targets are the
alignment, rescaled so that each instance's best location gets its best overlap (a quality
score, so confidence ranks predictions by how good they are).

Losses: BCE on classes (soft targets), CIoU on boxes, OKS loss on keypoints (1 - exp(-d^2 /
(2 s^2 (2 sigma)^2)) with the class schema's sigmas, averaged over labelled keypoints) plus an
L1 term in units of the object's size (the OKS loss alone has no gradient for keypoints far
from their target), and BCE on keypoint visibility (v = 1 and v = 2 are both "labelled",
v = 0 is not). When the model has the stride-8 heatmap head: CenterNet's penalty-reduced focal
loss on Gaussian keypoint heatmaps (one channel per keypoint, every instance drawn) and L1 on
the sub-cell offsets of the cells around each labelled keypoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from posekit.models.base import Targets
from posekit.models.dense_targets import gaussian_planes
from posekit.models.rtpose.model import RTPoseOutput
from posekit.ops.boxes import box_iou, ciou
from posekit.ops.oks import oks_pairwise


@dataclass(frozen=True)
class LossWeights:
    box: float = 7.5
    cls: float = 0.5
    pose: float = 12.0
    # the L1 term is what moves keypoints that start far from their target (the OKS term has
    # no gradient there); at 2 a mouse's tail base, 100 px from the head, was never learned
    # within a 30-minute budget, at 10 it is (see the rtpose issue's closing note)
    pose_l1: float = 10.0
    kobj: float = 1.0
    heatmap: float = 1.0
    heatmap_offset: float = 1.0


@dataclass
class HeatmapTargets:
    """Targets on the heatmap grid: `heat` (B, K, H, W) in 0..1, exactly 1 at the cell nearest
    each labelled keypoint; `cells` (N, 4) long rows (batch, keypoint, row, column) of the
    cells whose offsets are supervised (the 2 x 2 cells around each keypoint, each owned by its
    nearest keypoint) and `offset` (N, 2): from those cell centres to the keypoint, in cells."""

    heat: torch.Tensor
    cells: torch.Tensor
    offset: torch.Tensor


def heatmap_targets(
    t: Targets, kvalid: torch.Tensor, size: tuple[int, int], stride: int, sigma: float = 1.0
) -> HeatmapTargets:
    """Heatmap targets of a batch; `size` is the grid's (H, W), `sigma` the Gaussian's width in
    cells. Cell (i, j) has its centre at ((j + 0.5) * stride, (i + 0.5) * stride) in input
    pixels (the anchors' convention), so a keypoint at x lies at x / stride - 0.5 cells.
    Only the cells near each keypoint are touched (no (B, M, K, H, W) intermediate)."""
    h, w = size
    device = t.keypoints.device
    b, _, k = t.keypoints.shape[:3]
    labelled = (t.keypoints[..., 2] > 0) & t.mask[..., None] & kvalid[t.classes]  # (B, M, K)
    bi, mi, ki = labelled.nonzero(as_tuple=True)
    kp = t.keypoints[bi, mi, ki, :2].float()
    u, v = kp[:, 0] / stride - 0.5, kp[:, 1] / stride - 0.5  # continuous cell coordinates
    # Gaussian centred on the nearest cell (so that cell's target is exactly 1), drawn out to
    # 3 sigma with a running maximum over instances
    heat = gaussian_planes(u, v, bi * k + ki, b * k, size, sigma).view(-1)
    plane = (bi * k + ki)[:, None]
    # offsets on the 2 x 2 cells around each keypoint; a cell claimed by two keypoints of one
    # type goes to the nearer
    corner = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], device=device)
    fx = u.floor().long()[:, None] + corner[:, 0]
    fy = v.floor().long()[:, None] + corner[:, 1]
    ox, oy = u[:, None] - fx, v[:, None] - fy
    inside = (fx >= 0) & (fx < w) & (fy >= 0) & (fy < h)
    flat = ((plane * h + fy) * w + fx)[inside]
    dist = (ox**2 + oy**2)[inside]
    nearest = torch.full((b * k * h * w,), torch.inf, device=device)
    nearest.scatter_reduce_(0, flat, dist, "amin")
    own = dist <= nearest[flat]
    flat, offset = flat[own], torch.stack([ox[inside][own], oy[inside][own]], -1)
    flat, first = _unique_first(flat)  # exact ties: keep one
    cells = torch.stack([flat // (k * h * w), flat // (h * w) % k, flat // w % h, flat % w], -1)
    return HeatmapTargets(heat.view(b, k, h, w), cells, offset[first])


def _unique_first(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values of a 1-D tensor and the index of one occurrence of each."""
    uniq, inverse = torch.unique(x, return_inverse=True)
    first = torch.full((len(uniq),), len(x), device=x.device, dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(x), device=x.device), "amin")
    return uniq, first


def heatmap_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), per labelled keypoint."""
    logits = logits.float()
    p = logits.sigmoid()
    pos = target >= 1.0
    pos_loss = -F.logsigmoid(logits) * (1 - p) ** 2 * pos
    neg_loss = -F.logsigmoid(-logits) * p**2 * (1 - target) ** 4 * ~pos
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


class RTPoseLoss:
    """Callable loss: `loss(output, targets) -> (total, parts)`; parts are detached floats."""

    def __init__(
        self,
        sigmas: torch.Tensor,
        kpt_valid: torch.Tensor,
        weights: LossWeights | None = None,
        topk: int = 10,
        alpha: float = 0.5,
        beta: float = 6.0,
        center_radius: float = 2.5,
    ) -> None:
        self.sigmas = sigmas  # (nc, K)
        self.kpt_valid = kpt_valid  # (nc, K) bool: keypoint slot used by the class
        self.w = weights or LossWeights()
        self.topk, self.alpha, self.beta = topk, alpha, beta
        self.center_radius = center_radius

    def __call__(self, out: RTPoseOutput, t: Targets) -> tuple[torch.Tensor, dict[str, float]]:
        sigmas = self.sigmas.to(out.boxes.device)
        kvalid = self.kpt_valid.to(out.boxes.device)
        fg, gt_idx, target_scores = self.assign(out, t, sigmas, kvalid)
        b = out.cls_logits.shape[0]
        tss = target_scores.sum().clamp(min=1.0)
        l_cls = F.binary_cross_entropy_with_logits(out.cls_logits.float(), target_scores,
                                                   reduction="sum") / tss  # fmt: skip
        zero = out.boxes.sum() * 0.0
        l_box = l_pose = l_pose_l1 = l_kobj = zero
        if fg.any():
            bi = torch.arange(b, device=fg.device)[:, None].expand_as(fg)[fg]
            mi = gt_idx[fg]
            weight = target_scores.sum(-1)[fg]
            tbox = t.boxes[bi, mi]
            l_box = ((1.0 - ciou(out.boxes[fg], tbox)) * weight).sum() / tss
            cls = t.classes[bi, mi]
            tk = t.keypoints[bi, mi]  # (n, K, 3)
            valid = (tk[..., 2] > 0) & kvalid[cls]
            area = (tbox[:, 2:] - tbox[:, :2]).prod(-1)
            d2 = ((out.keypoints[fg] - tk[..., :2]) ** 2).sum(-1)
            e = d2 / ((2 * sigmas[cls]) ** 2 * (area[:, None] + 1e-9) * 2)
            n_valid = valid.sum(-1).clamp(min=1)
            per = ((1 - torch.exp(-e)) * valid).sum(-1) / n_valid
            # OKS saturates far from the target (its gradient vanishes); an L1 term in units of
            # the object's size keeps pulling distant keypoints in
            scale = area.sqrt().clamp(min=1.0)[:, None, None]
            l1 = ((out.keypoints[fg] - tk[..., :2]).abs() / scale).sum(-1)
            per_l1 = (l1 * valid).sum(-1) / n_valid
            has = valid.any(-1)
            wsum = (weight * has).sum().clamp(min=1e-6)
            l_pose = (per * weight * has).sum() / wsum
            l_pose_l1 = (per_l1 * weight * has).sum() / wsum
            used = kvalid[cls]
            l_kobj = F.binary_cross_entropy_with_logits(out.kpt_logits[fg][used].float(),
                                                        valid[used].float())  # fmt: skip
        l_heat = l_offset = zero
        if out.heatmap is not None and out.heatmap_offset is not None:
            ht = heatmap_targets(t, kvalid, out.heatmap.shape[-2:], out.heatmap_stride)
            l_heat = heatmap_focal_loss(out.heatmap, ht.heat)
            if len(ht.cells):
                bb, kk, yy, xx = ht.cells.unbind(-1)
                pred = out.heatmap_offset[bb, kk, :, yy, xx].float()  # (N, 2)
                l_offset = (pred - ht.offset).abs().mean()
        w = self.w
        total = (w.box * l_box + w.cls * l_cls + w.pose * l_pose + w.pose_l1 * l_pose_l1
                 + w.kobj * l_kobj + w.heatmap * l_heat + w.heatmap_offset * l_offset)  # fmt: skip
        parts = {k: float(v.detach()) for k, v in
                 (("box", l_box), ("cls", l_cls), ("pose", l_pose), ("pose_l1", l_pose_l1),
                  ("kobj", l_kobj), ("heatmap", l_heat), ("hm_offset", l_offset))}  # fmt: skip
        return total, parts

    @torch.no_grad()
    def assign(
        self, out: RTPoseOutput, t: Targets, sigmas: torch.Tensor, kvalid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positives (B, A), their ground-truth index (B, A) and class targets (B, A, nc)."""
        b, a, nc = out.cls_logits.shape
        m = t.boxes.shape[1]
        device = out.boxes.device
        fg = torch.zeros(b, a, dtype=torch.bool, device=device)
        gt_idx = torch.zeros(b, a, dtype=torch.long, device=device)
        scores = torch.zeros(b, a, nc, device=device)
        if m == 0 or not t.mask.any():
            return fg, gt_idx, scores
        # candidates: anchor centres inside the box and within `center_radius` strides of its
        # centre (so positives sit mid-object and every keypoint is a moderate offset away),
        # but always at least the half stride that guarantees small objects a candidate
        ctr = (t.boxes[..., :2] + t.boxes[..., 2:]) / 2  # (B, M, 2)
        half = (t.boxes[..., 2:] - t.boxes[..., :2]) / 2
        s = out.strides[None, None, :, None]
        reach = torch.maximum(torch.minimum(half[:, :, None, :], self.center_radius * s), s / 2)
        cand = ((out.anchors[None, None] - ctr[:, :, None, :]).abs() < reach).all(-1)
        cand &= t.mask[..., None]  # (B, M, A)
        bi, mi, ai = cand.nonzero(as_tuple=True)
        iou = box_iou(out.boxes[bi, ai].float(), t.boxes[bi, mi]).clamp(min=0)
        cls = t.classes[bi, mi]
        tk = t.keypoints[bi, mi]
        vis = (tk[..., 2] > 0) & kvalid[cls]
        gbox = t.boxes[bi, mi]
        area = (gbox[:, 2:] - gbox[:, :2]).prod(-1)
        oks = oks_pairwise(out.keypoints[bi, ai].float(), tk[..., :2], vis, area, sigmas[cls])
        overlap = torch.where(vis.any(-1), (iou + oks) / 2, iou)
        score = out.cls_logits[bi, ai, cls].float().sigmoid()
        align_c = score.pow(self.alpha) * overlap.pow(self.beta)
        align = torch.zeros(b, m, a, device=device)
        overlaps = torch.zeros(b, m, a, device=device)
        align[bi, mi, ai] = align_c
        overlaps[bi, mi, ai] = overlap
        k = min(self.topk, a)
        top = align.topk(k, dim=-1).indices  # (B, M, k)
        pos = torch.zeros_like(cand)
        pos.scatter_(-1, top, True)
        pos &= cand
        # a location claimed by several instances goes to the one it overlaps most
        multi = pos.sum(1) > 1  # (B, A)
        if multi.any():
            best = overlaps.argmax(1)  # (B, A)
            best_mask = F.one_hot(best, m).permute(0, 2, 1).bool()
            pos = torch.where(multi[:, None, :], best_mask & pos, pos)
        fg = pos.any(1)
        gt_idx = pos.float().argmax(1)
        align = align * pos
        norm = overlaps.mul(pos).amax(-1, keepdim=True) / align.amax(-1, keepdim=True).clamp(
            min=1e-9
        )
        quality = (align * norm).amax(1)  # (B, A)
        tcls = t.classes.gather(1, gt_idx)  # (B, A)
        scores = F.one_hot(tcls, nc).float() * (quality * fg)[..., None]
        return fg, gt_idx, scores
