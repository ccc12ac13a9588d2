"""Tensor operations without torchvision: box geometry, OKS and non-maximum suppression."""

from posekit.ops.boxes import (
    batched_greedy_keep,
    batched_nms,
    box_iou,
    ciou,
    greedy_keep,
    nms,
    pairwise_iou,
    xywh_to_xyxy,
)
from posekit.ops.oks import batched_keypoint_nms, keypoint_nms, oks_pairwise

__all__ = [
    "batched_greedy_keep",
    "batched_keypoint_nms",
    "batched_nms",
    "box_iou",
    "ciou",
    "greedy_keep",
    "keypoint_nms",
    "nms",
    "oks_pairwise",
    "pairwise_iou",
    "xywh_to_xyxy",
]
