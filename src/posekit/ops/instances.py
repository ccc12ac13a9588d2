"""`Instances`: the one container for the instances of one image, everywhere in posekit.

Annotations on their way through augmentation (NumPy), a decoder's detections in
network-input pixels (torch), pafpose's grouped people and the tracker's input are all
`Instances` with the same field names, so code that moves instances between layers never
renames a field. Ground truth has no `scores`; in ground truth the keypoints' third column is
the visibility flag v, in predictions the keypoint's confidence.

Other shapes stay separate on purpose: batches padded to one size (`models.base.Targets`),
raw network outputs, single COCO annotation records (`data.dataset.Annotation`, with COCO's
x, y, w, h `bbox` and `area`), the evaluator's column-per-field tables (`eval.inputs`, in
COCO's names) and the public `Results` (named as Ultralytics names them).
tests/ops/test_instances.py fails when a module defines another container of boxes and
keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Instances:
    """N instances of one image, in pixels (NumPy arrays or torch tensors, one kind per object).

    boxes: (N, 4) x1, y1, x2, y2; keypoints: (N, K, 3) x, y and v or confidence (None for
    a box-only tracker's input); classes: (N,) class index; scores: (N,) instance confidence,
    or None for ground truth.
    """

    boxes: Any
    keypoints: Any
    classes: Any
    scores: Any = None

    def __post_init__(self) -> None:
        n = len(self.boxes)  # checked once, where the instances are made
        sizes = {f.name: len(v) for f in fields(self) if (v := getattr(self, f.name)) is not None}
        if any(size != n for size in sizes.values()):
            raise ValueError(f"Instances need one row per instance in every field, got {sizes}")

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: Any) -> Instances:
        """The instances that `keep` (a boolean mask or indices) picks, every field alike."""
        return Instances(**{f.name: None if (v := getattr(self, f.name)) is None else v[keep]
                            for f in fields(self)})  # fmt: skip


#: the fields of `Instances` in order, for code that moves them together
INSTANCE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Instances))
