"""Keypoint models, found by name through a registry (`create("rtpose-n", "coco17")`).

Each family is a package that registers its network class (`register_family`) and its sizes
(`register_sizes`, or `register_model` for one builder); importing it here is the one line
that adds a family.
"""

from posekit.models import heatpose as _heatpose  # noqa: F401  (registers heatpose-t ... heatpose-l)
from posekit.models import liftpose as _liftpose  # noqa: F401  (registers liftpose-27 ... -243)
from posekit.models import pafpose as _pafpose  # noqa: F401  (registers pafpose-s ... pafpose-l)
from posekit.models import rtmpose as _rtmpose  # noqa: F401  (registers rtmpose-t ... rtmpose-l)
from posekit.models import rtpose as _rtpose  # noqa: F401  (registers rtpose-n ... rtpose-x)
from posekit.models import vitpose as _vitpose  # noqa: F401  (registers vitpose-s ... vitpose-h)
from posekit.models import yolo as _yolo  # noqa: F401  (registers yolov8n-pose ... yolo26x-pose)
from posekit.models.base import KeypointModel, Targets, model_from_description
from posekit.models.registry import (
    REGISTRY,
    create,
    list_models,
    register_family,
    register_model,
    register_sizes,
)
from posekit.models.summary import ModelSummary, summarize_model
from posekit.ops.instances import Instances

__all__ = [
    "REGISTRY",
    "Instances",
    "KeypointModel",
    "ModelSummary",
    "Targets",
    "create",
    "list_models",
    "model_from_description",
    "register_family",
    "register_model",
    "register_sizes",
    "summarize_model",
]
