"""Actions from tracked keypoints: rules (repetitions, falls, dwell in a zone, leaving an
envelope, speed) on the posekit.track/1 event stream, run by Spark Structured Streaming
(`posekit actions`, extra `posekit[spark]`) or in-process (`detect_actions`), with one copy of
the logic (`posekit.actions.detect`). Importing this package does not import Spark."""

from posekit.actions.detect import ACTION_SCHEMA, detect_actions
from posekit.actions.rules import KINDS, Rule, load_rules

__all__ = ["ACTION_SCHEMA", "KINDS", "Rule", "detect_actions", "load_rules"]
