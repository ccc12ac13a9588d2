"""The rtpose family: a one-stage, anchor-free, multi-instance keypoint detector.

`model` holds the network and its registered sizes, `loss` the label assignment and losses,
`decode` the way from raw outputs to detections.
"""

from posekit.models.rtpose.model import (
    SIZES,
    STRIDES,
    RTPose,
    RTPoseConfig,
    RTPoseOutput,
    make_anchors,
)

__all__ = ["SIZES", "STRIDES", "RTPose", "RTPoseConfig", "RTPoseOutput", "make_anchors"]
