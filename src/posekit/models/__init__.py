"""Keypoint models, found by name through a registry (`create("rtpose-n", "coco17")`)."""

from posekit.models import rtpose as _rtpose  # noqa: F401  (registers rtpose-n ... rtpose-x)
from posekit.models.registry import create, list_models, register_model
from posekit.models.rtpose import RTPose, RTPoseConfig, RTPoseOutput
from posekit.models.summary import ModelSummary, summarize_model

__all__ = [
    "ModelSummary",
    "RTPose",
    "RTPoseConfig",
    "RTPoseOutput",
    "create",
    "list_models",
    "register_model",
    "summarize_model",
]
