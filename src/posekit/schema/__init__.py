"""Keypoint schemas: names, skeleton, flip permutation and OKS sigmas of one object kind."""

from posekit.schema.presets import PRESETS, get_schema, load_schema_yaml, match_preset
from posekit.schema.schema import (
    DEFAULT_SIGMA,
    KeypointSchema,
    SchemaError,
    derive_flip_idx,
    validate_flip_idx,
)

__all__ = [
    "DEFAULT_SIGMA",
    "PRESETS",
    "KeypointSchema",
    "SchemaError",
    "derive_flip_idx",
    "get_schema",
    "load_schema_yaml",
    "match_preset",
    "validate_flip_idx",
]
