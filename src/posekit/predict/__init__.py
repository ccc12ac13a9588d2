"""Inference: sources -> letterbox -> network -> decode + NMS -> `Results`."""

from posekit.ops.instances import Instances
from posekit.predict.predictor import PredictConfig, Predictor
from posekit.predict.results import Boxes, Keypoints, Results
from posekit.predict.sources import Frame, SourceError, iter_frames

__all__ = [
    "Boxes",
    "Frame",
    "Instances",
    "Keypoints",
    "PredictConfig",
    "Predictor",
    "Results",
    "SourceError",
    "iter_frames",
]
