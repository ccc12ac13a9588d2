"""Object keypoint similarity (COCO's OKS) in torch, and greedy NMS on it."""

from __future__ import annotations

import torch

from posekit.ops.boxes import batched_greedy_keep, greedy_keep


def oks_pairwise(
    pred: torch.Tensor,
    gt: torch.Tensor,
    visible: torch.Tensor,
    area: torch.Tensor,
    sigmas: torch.Tensor,
    eps: float = 1e-9,
) -> torch.Tensor:
    """OKS of matching rows (COCO definition, mean over labelled keypoints).

    pred, gt: (..., K, 2); visible: (..., K) bool; area: (...); sigmas: (..., K) or (K,).
    Rows without a labelled keypoint get 0.
    """
    d2 = ((pred - gt) ** 2).sum(-1)
    e = d2 / ((2 * sigmas) ** 2 * (area[..., None] + eps) * 2)
    v = visible.to(pred.dtype)
    return (torch.exp(-e) * v).sum(-1) / v.sum(-1).clamp(min=1)


def keypoint_nms(
    keypoints: torch.Tensor,
    scores: torch.Tensor,
    areas: torch.Tensor,
    sigmas: torch.Tensor,
    threshold: float,
    classes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Greedy NMS on keypoint similarity (the OKS-NMS of top-down pose methods): indices of
    kept detections by decreasing score; a detection is dropped when its OKS with a kept,
    higher-scored one of its class exceeds `threshold`.

    Box NMS misses duplicates whose boxes differ (one covers a tail, one does not) while their
    keypoints coincide. keypoints: (N, K, 2); scores, areas: (N,), areas being the boxes' (the
    pair's mean scales the OKS, as HRNet's oks_nms does); sigmas: (K,) or (N, K) per
    detection (0 marks keypoint slots a class does not use).
    """
    if len(scores) == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    order = scores.argsort(descending=True, stable=True)
    kp, a = keypoints[order], areas[order]
    sig = (sigmas[order] if sigmas.dim() == 2 else sigmas.expand(len(order), -1)).to(kp.dtype)
    used = sig > 0  # (N, K) of the row (higher-ranked) detection
    sig = torch.where(used, sig, torch.ones_like(sig))  # unused slots: no division by zero
    scale = (a[:, None] + a[None]) / 2  # (N, N)
    oks = oks_pairwise(kp[:, None], kp[None], used[:, None], scale, sig[:, None])  # (N, N)
    over = oks > threshold
    if classes is not None:
        c = classes[order]
        over &= c[:, None] == c[None, :]
    return order[greedy_keep(over)]


def batched_keypoint_nms(
    keypoints: torch.Tensor,
    areas: torch.Tensor,
    sigmas: torch.Tensor,
    valid: torch.Tensor,
    threshold: float,
    classes: torch.Tensor | None = None,
) -> torch.Tensor:
    """`keypoint_nms` for a batch of lists ranked by decreasing score, without a loop over the
    lists: keypoints (B, N, K, 2), areas (B, N), sigmas (B, N, K) per detection (0 marks
    unused slots), valid (B, N) bool. Returns the (B, N) keep mask."""
    used = sigmas > 0
    sig = torch.where(used, sigmas, torch.ones_like(sigmas)).to(keypoints.dtype)

    def suppresses(rows: slice, cols: slice) -> torch.Tensor:
        scale = (areas[:, rows, None] + areas[:, None, cols]) / 2
        oks = oks_pairwise(keypoints[:, rows, None], keypoints[:, None, cols],
                           used[:, rows, None], scale, sig[:, rows, None])  # fmt: skip
        over = oks > threshold
        if classes is not None:
            over &= classes[:, rows, None] == classes[:, None, cols]
        return over

    return batched_greedy_keep(suppresses, valid)
