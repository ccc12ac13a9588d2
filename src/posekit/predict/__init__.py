"""Inference: sources -> letterbox -> network -> decode + NMS -> `Results`."""

from posekit.models.base import Detections
from posekit.predict.predictor import PredictConfig, Predictor
from posekit.predict.results import Boxes, Keypoints, Results
from posekit.predict.sources import Frame, SourceError, iter_frames

__all__ = [
    "Boxes",
    "Detections",
    "Frame",
    "Keypoints",
    "PredictConfig",
    "Predictor",
    "Results",
    "SourceError",
    "iter_frames",
]
