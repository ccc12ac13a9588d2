"""Object keypoint similarity between predicted and ground-truth keypoints, in torch."""

from __future__ import annotations

import torch


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
