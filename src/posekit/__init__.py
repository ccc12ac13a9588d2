"""posekit: train, evaluate and run keypoint detectors for any set of landmarks."""

from typing import Any

from posekit.schema import KeypointSchema, get_schema

__version__ = "0.1.0"

__all__ = ["KeypointSchema", "Model", "__version__", "get_schema"]


def __getattr__(name: str) -> Any:
    # `Model` pulls in torch; importing it lazily keeps `posekit data ...` quick to start.
    if name == "Model":
        from posekit.model import Model

        return Model
    raise AttributeError(f"module 'posekit' has no attribute {name!r}")
