"""Tensor operations without torchvision: box geometry, OKS and non-maximum suppression."""

from posekit.ops.boxes import box_iou, ciou, greedy_keep, nms, pairwise_iou, xywh_to_xyxy
from posekit.ops.oks import keypoint_nms, oks_pairwise

__all__ = [
    "box_iou",
    "ciou",
    "greedy_keep",
    "keypoint_nms",
    "nms",
    "oks_pairwise",
    "pairwise_iou",
    "xywh_to_xyxy",
]
