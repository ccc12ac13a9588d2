"""How a family's network sees an image: the input mode, a small strategy object the family
supplies (`KeypointModel.input_mode`), read by the predictor, validation, the trainer and
export instead of branching on family names or kinds.

Three modes exist:

- `LETTERBOX`: the whole image, letterboxed to any multiple of the stride; the network finds
  the instances itself (rtpose). The exported graph has a dynamic height and width.
- `CROPS`: one fixed-size crop per instance box, the boxes given, detected or the whole
  image (top-down families: vitpose, rtmpose, heatpose).
- `WHOLE_FRAME`: one crop per image that is the whole frame, one subject per frame, no boxes
  and no detector (a top-down family trained in single-subject mode).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputMode:
    """What a network takes, and therefore what its callers must give it."""

    #: "letterbox", "crops" or "whole-frame" (shown to users)
    name: str
    #: the graph kind written in ONNX metadata: "letterbox" or "crops" (a whole frame is
    #: one crop)
    kind: str
    #: one network input per instance (a crop), not per image
    per_instance: bool
    #: callers may pass boxes or a detector to choose the instances
    takes_boxes: bool
    #: a user may be told that, with no boxes and no detector, each image is one instance
    whole_image_by_default: bool

    @property
    def dynamic_size(self) -> bool:
        """The input's height and width vary (any multiple of the stride); else the crop's."""
        return not self.per_instance

    @property
    def finds_instances(self) -> bool:
        """The network finds the instances itself (it can serve as a detector)."""
        return not self.per_instance


LETTERBOX = InputMode("letterbox", "letterbox", per_instance=False, takes_boxes=False,
                      whole_image_by_default=False)  # fmt: skip
CROPS = InputMode("crops", "crops", per_instance=True, takes_boxes=True,
                  whole_image_by_default=True)  # fmt: skip
WHOLE_FRAME = InputMode("whole-frame", "crops", per_instance=True, takes_boxes=False,
                        whole_image_by_default=False)  # fmt: skip
