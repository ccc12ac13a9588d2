"""Drawing keypoints and skeletons."""

from posekit.viz.annotator import SIDE_COLORS, SkeletonAnnotator, grid

__all__ = ["SIDE_COLORS", "SkeletonAnnotator", "grid"]
