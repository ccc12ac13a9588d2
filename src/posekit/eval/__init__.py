"""Keypoint evaluation: COCO OKS AP/AR identical to pycocotools, PCK, EPE, RMSE, NME."""

from posekit.eval.coco import CocoKeypointResult, evaluate_coco, per_keypoint_ap
from posekit.eval.cocoeval import STAT_NAMES, EvalParams
from posekit.eval.inputs import GroundTruth, Predictions, load_results
from posekit.eval.metrics import EvalConfig, KeypointMetrics, evaluate
from posekit.eval.report import print_metrics, save_metrics

__all__ = [
    "STAT_NAMES",
    "CocoKeypointResult",
    "EvalConfig",
    "EvalParams",
    "GroundTruth",
    "KeypointMetrics",
    "Predictions",
    "evaluate",
    "evaluate_coco",
    "load_results",
    "per_keypoint_ap",
    "print_metrics",
    "save_metrics",
]
