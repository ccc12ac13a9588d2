"""Video: tracking with stable ids, temporal smoothing and the tracked-object event stream."""

from posekit.track.smoothing import OneEuroConfig, OneEuroFilter, TrackSmoother
from posekit.track.tracker import Tracker, TrackerConfig

__all__ = ["OneEuroConfig", "OneEuroFilter", "TrackSmoother", "Tracker", "TrackerConfig"]
