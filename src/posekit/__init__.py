"""posekit: train, evaluate and run keypoint detectors for any set of landmarks."""

from posekit.schema import KeypointSchema, get_schema

__version__ = "0.1.0"

__all__ = ["KeypointSchema", "__version__", "get_schema"]
