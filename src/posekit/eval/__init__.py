"""Keypoint evaluation: COCO OKS AP/AR identical to pycocotools, PCK, EPE, RMSE, NME."""

from posekit.eval.coco import CocoKeypointResult, evaluate_coco, per_keypoint_ap
from posekit.eval.cocoeval import STAT_NAMES, EvalParams
from posekit.eval.inputs import GroundTruth, Predictions, load_results

__all__ = [
    "STAT_NAMES",
    "CocoKeypointResult",
    "EvalParams",
    "GroundTruth",
    "Predictions",
    "evaluate_coco",
    "load_results",
    "per_keypoint_ap",
]
