"""Inference: decoding network outputs into detections (prediction API comes with issue 5)."""

from posekit.predict.postprocess import Detections, postprocess

__all__ = ["Detections", "postprocess"]
