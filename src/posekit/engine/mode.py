"""How a model reads a training set, decided before training and said in one line: whole
images (one-stage families), instance crops, or whole frames as one subject (top-down
families in single-subject mode, for data with at most one subject per image, as most
DeepLabCut projects).

Single-subject mode picks an input that keeps the frames' aspect ratio at up to `imgsz` on the
longer side (a multiple of 32): squeezing a 640x480 frame into a 256x192 crop would cost 2.5x
in resolution.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from posekit.data.dataset import KeypointDataset
from posekit.utils.errors import UserError

#: crop sides are multiples of this (the CNN families' output stride; ViT patches divide it)
SIDE_MULTIPLE = 32


@dataclass(frozen=True)
class ModeChoice:
    """The decision: `overrides` to build the model with (the family's
    `posekit.models.input_mode` follows from them), and `reason` to print."""

    single_subject: bool
    overrides: dict[str, Any]
    reason: str


def subjects_per_image(ds: KeypointDataset) -> int:
    """The largest number of labelled, non-crowd instances in one image (0 for none)."""
    counts = Counter(a.image_id for a in ds.annotations if not a.iscrowd and a.num_keypoints)
    return max(counts.values(), default=0)


def frame_input_size(ds: KeypointDataset, imgsz: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((height, width) of the single-subject input, (width, height) of the frames it was
    fitted to): the most common frame size, its longer side brought to at most `imgsz`, both
    sides rounded to multiples of 32."""
    (w, h), _ = Counter((im.width, im.height) for im in ds.images).most_common(1)[0]
    long = max(SIDE_MULTIPLE, min(imgsz, max(w, h)) // SIDE_MULTIPLE * SIDE_MULTIPLE)
    short = max(SIDE_MULTIPLE, round(long * min(w, h) / max(w, h) / SIDE_MULTIPLE) * SIDE_MULTIPLE)
    return ((short, long) if w >= h else (long, short)), (w, h)


def choose_input_mode(
    model: Any, ds: KeypointDataset, imgsz: int, single_subject: bool | None
) -> ModeChoice:
    """The mode for a freshly built `model` (`single_subject`: None decides from the data,
    True or False forces it)."""
    name = model.config.name
    most = subjects_per_image(ds)
    if not model.input_mode.per_instance:
        if single_subject:
            raise UserError(f"single-subject mode needs a top-down model; {name} finds "
                             "instances itself (e.g. --model heatpose-s)")  # fmt: skip
        hint = (" (every image has at most one subject: top-down models can also train on "
                "whole frames, in single-subject mode)" if most <= 1 else "")  # fmt: skip
        return ModeChoice(False, {}, f"{name}: whole images letterboxed to {imgsz}, every "
                                    f"instance found by the model{hint}")  # fmt: skip
    if single_subject is None:
        single_subject = most <= 1
        why = ("every training image has at most one labelled subject" if single_subject
               else f"images have up to {most} labelled subjects")  # fmt: skip
    else:
        why = "forced"
    h, w = model.config.input_size
    if not single_subject:
        return ModeChoice(False, {}, f"{name}: instance crops of {w}x{h} around each box ({why}; "
                                    "prediction takes boxes or a detector; --single-subject "
                                    "reads whole frames instead)")  # fmt: skip
    if most > 1:
        raise UserError(f"single-subject mode: images have up to {most} labelled subjects; "
                         "train on instance crops (--no-single-subject)")  # fmt: skip
    (ih, iw), (fw, fh) = frame_input_size(ds, imgsz)
    scale = max(iw, ih) / max(fw, fh)
    return ModeChoice(
        True,
        {"input_size": (ih, iw), "single_subject": True, "box_padding": 1.0, "half_body": 0.0},
        f"{name}: single-subject mode, whole frames at {iw}x{ih} ({why}; {fw}x{fh} frames at "
        f"{scale:.2f}x their resolution, --imgsz sets the longer side; no detector, one "
        "subject per frame; --no-single-subject trains on instance crops)",
    )
