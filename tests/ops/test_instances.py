"""`Instances`, the one container of an image's instances: its checks, and that no module
defines another container of boxes and keypoints under other names."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import numpy as np
import pytest
import torch

import posekit
from posekit.ops.instances import Instances

#: containers of instances that are other shapes on purpose (see posekit.ops.instances)
OTHER_SHAPES = {
    "posekit.models.base.Targets",  # a padded batch with a mask
    "posekit.models.rtpose.model.RTPoseOutput",  # raw per-anchor network outputs
    "posekit.data.dataset.Annotation",  # one COCO annotation record (bbox x, y, w, h, area)
    "posekit.data.synth.generator.SynthInstance",  # one rendered figure's COCO record
    "posekit.eval.inputs.CategoryGT",  # the evaluator's columns, in COCO's names
    "posekit.eval.inputs.CategoryPred",
    "posekit.predict.results.Results",  # the public result, named as Ultralytics names it
}


def _instance_like_dataclasses() -> set[str]:
    found = set()
    for info in pkgutil.walk_packages(posekit.__path__, "posekit."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed here
            continue
        for obj in vars(module).values():
            if (isinstance(obj, type) and dataclasses.is_dataclass(obj)
                    and obj.__module__ == module.__name__):  # fmt: skip
                names = {f.name for f in dataclasses.fields(obj)}
                holds_keypoints = names & {"keypoints", "kpts", "kp"}
                holds_instances = names & {"boxes", "bbox", "scores", "score", "classes", "cls"}
                if holds_keypoints and holds_instances:
                    found.add(f"{obj.__module__}.{obj.__qualname__}")
    return found


def test_no_second_container_of_boxes_and_keypoints():
    assert _instance_like_dataclasses() == {"posekit.ops.instances.Instances"} | OTHER_SHAPES


def test_every_field_needs_one_row_per_instance():
    with pytest.raises(ValueError, match="one row per instance"):
        Instances(boxes=np.zeros((2, 4)), keypoints=np.zeros((3, 17, 3)), classes=np.zeros(2))
    with pytest.raises(ValueError, match="scores"):
        Instances(np.zeros((2, 4)), np.zeros((2, 5, 3)), np.zeros(2), scores=np.zeros(1))


def test_select_moves_every_field_alike():
    inst = Instances(
        boxes=torch.arange(12.0).reshape(3, 4),
        keypoints=torch.arange(27.0).reshape(3, 3, 3),
        classes=torch.tensor([0, 1, 2]),
        scores=torch.tensor([0.9, 0.5, 0.7]),
    )
    picked = inst.select(inst.scores > 0.6)
    assert len(picked) == 2
    torch.testing.assert_close(picked.classes, torch.tensor([0, 2]))
    torch.testing.assert_close(picked.keypoints[1], inst.keypoints[2])
    torch.testing.assert_close(picked.boxes[1], inst.boxes[2])


def test_ground_truth_has_no_scores_and_keeps_none_through_select():
    gt = Instances(boxes=np.zeros((2, 4)), keypoints=np.ones((2, 4, 3)), classes=np.zeros(2))
    assert gt.select(np.array([1])).scores is None
    assert len(gt.select(np.array([1]))) == 1
