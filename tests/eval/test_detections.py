"""Detector boxes from a COCO detection-results JSON, for top-down validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posekit.data import DatasetError, read_coco
from posekit.eval.detections import read_detections


def _ds(make_dataset, valid_coco):  # type: ignore[no-untyped-def]
    return read_coco(make_dataset(valid_coco) / "annotations" / "train.json")


def test_boxes_per_image_in_xyxy(make_dataset, valid_coco, tmp_path: Path) -> None:
    dets = [{"image_id": 1, "category_id": 1, "bbox": [4, 8, 20, 24], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [30, 10, 5, 5], "score": 0.01},
            {"image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]  # fmt: skip
    f = tmp_path / "dets.json"
    f.write_text(json.dumps(dets))
    out = read_detections(f, _ds(make_dataset, valid_coco), min_score=0.05)
    np.testing.assert_allclose(out[1][0], [[4, 8, 24, 32]])
    np.testing.assert_allclose(out[2][1], [0.5])
    assert out[1][2].tolist() == [0]


def test_bad_entries_are_reported_one_by_one(make_dataset, valid_coco, tmp_path: Path) -> None:
    dets = [{"image_id": 99, "bbox": [0, 0, 1, 1], "score": 1},
            {"image_id": 1, "bbox": [0, 0, -1, 1], "score": 1},
            {"image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1], "score": 1},
            {"image_id": 98, "bbox": [0, 0, 1, 1], "score": 1},
            "junk"]  # fmt: skip
    f = tmp_path / "dets.json"
    f.write_text(json.dumps(dets))
    with pytest.raises(DatasetError, match="5 bad detection") as e:
        read_detections(f, _ds(make_dataset, valid_coco))
    codes = [(p.code, p.field) for p in e.value.problems]
    assert codes == [("det-image", "[0]"), ("det-bbox", "[1]"), ("det-category", "[2]"),
                     ("det-image", "[3]"), ("det-entry", "[4]")]  # fmt: skip
    assert "image_id 99" in str(e.value.problems[0])


def test_ids_must_be_integers_and_boxes_bounded(make_dataset, valid_coco, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dets = [
        {"image_id": [1], "bbox": [0, 0, 1, 1], "score": 1},
        {"image_id": True, "bbox": [0, 0, 1, 1], "score": 1},
        {"image_id": 1, "category_id": {"a": 1}, "bbox": [0, 0, 1, 1], "score": 1},
        {"image_id": 1, "bbox": [0, 0, 1e308, 1], "score": 1},
        {"image_id": 1, "bbox": [0, 0, 1, 1], "score": float("nan")},
    ]
    f = tmp_path / "dets.json"
    f.write_text(json.dumps(dets))
    with pytest.raises(DatasetError, match="5 bad detection") as e:
        read_detections(f, _ds(make_dataset, valid_coco))
    codes = ["det-image", "det-image", "det-category", "det-bbox", "det-score"]
    assert [p.code for p in e.value.problems] == codes
