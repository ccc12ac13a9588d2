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
v = 0 is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from posekit.models.rtpose import RTPoseOutput
from posekit.ops.boxes import box_iou, ciou
from posekit.ops.oks import oks_pairwise


@dataclass
class Targets:
    """A padded batch of ground truth in input pixels; `mask` marks real instances."""

    boxes: torch.Tensor  # (B, M, 4) xyxy
    classes: torch.Tensor  # (B, M) long
    keypoints: torch.Tensor  # (B, M, K, 3) x, y, v
    mask: torch.Tensor  # (B, M) bool

    def to(self, device: torch.device) -> Targets:
        parts = (self.boxes, self.classes, self.keypoints, self.mask)
        return Targets(*(t.to(device, non_blocking=True) for t in parts))


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
        l_cls = F.binary_cross_entropy_with_logits(out.cls_logits, target_scores,
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
            l_kobj = F.binary_cross_entropy_with_logits(out.kpt_logits[fg][used],
                                                        valid[used].float())  # fmt: skip
        w = self.w
        total = (w.box * l_box + w.cls * l_cls + w.pose * l_pose + w.pose_l1 * l_pose_l1
                 + w.kobj * l_kobj)  # fmt: skip
        parts = {k: float(v.detach()) for k, v in
                 (("box", l_box), ("cls", l_cls), ("pose", l_pose), ("pose_l1", l_pose_l1),
                  ("kobj", l_kobj))}  # fmt: skip
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
