"""Importers of labelling tools' exports: each file here is written by the test, read, checked
(problems located in the source file) and round-tripped into COCO with equal instance and
labelled-keypoint counts, visibility and skeleton kept as COCO can hold them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posekit.cli.main import main
from posekit.data import load_splits, read_coco


def _labelme(folder: Path, name: str, size: tuple[int, int], shapes: list[dict]) -> None:
    w, h = size
    cv2.imwrite(str(folder / f"{name}.png"), np.full((h, w, 3), 80, np.uint8))
    (folder / f"{name}.json").write_text(json.dumps({
        "version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.png",
        "imageData": None, "imageHeight": h, "imageWidth": w}))  # fmt: skip


def _pt(label: str, x: float, y: float, group: int | None = None) -> dict:
    return {"label": label, "points": [[x, y]], "group_id": group, "shape_type": "point",
            "flags": {}}  # fmt: skip


def test_labelme_folder_reads_groups_boxes_and_located_problems(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "labelme"
    folder.mkdir()
    _labelme(folder, "a", (100, 80), [
        _pt("head", 10, 10, 1), _pt("tail", 30, 20, 1),
        {"label": "mouse", "points": [[5, 5], [40, 30]], "group_id": 1,
         "shape_type": "rectangle", "flags": {}},
        _pt("head", 60, 50, 2), _pt("tail", 90, 70, 2), _pt("tail", 91, 71, 2),  # duplicate
        {"label": "arena", "points": [[0, 0], [5, 5], [0, 5]], "shape_type": "polygon"},
    ])  # fmt: skip
    _labelme(folder, "b", (100, 80), [_pt("head", 20, 20), _pt("tail", 150, 20),  # outside
                                      _pt("nose", 25, 22)])  # fmt: skip
    (ds,) = load_splits(folder).values()
    assert ds.categories[0].schema.keypoints == ("head", "tail", "nose")
    assert [len(ds.annotations_by_image().get(im.id, [])) for im in ds.images] == [2, 1]
    first = ds.annotations[0]
    np.testing.assert_array_equal(first.bbox, [5, 5, 35, 25])  # from the rectangle
    np.testing.assert_array_equal(first.keypoints[:, 2], [2, 2, 0])
    codes = sorted(p.code for p in ds.report.problems)
    assert codes == ["duplicate-point", "kpt-outside"]
    assert {n.code for n in ds.report.notes} == {"labelme-ungrouped"}
    assert main(["data", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "b.json" in out and "shapes[1]" in out and "outside the 100x80 image" in out
    # into COCO: the same instances and labelled keypoints
    dst = tmp_path / "coco"
    assert main(["data", "convert", str(folder), str(dst)]) == 0
    coco = read_coco(dst / "annotations" / "train.json")
    assert len(coco.annotations) == len(ds.annotations) == 3
    assert sum(a.num_keypoints for a in coco.annotations) == sum(
        a.num_keypoints for a in ds.annotations) == 6  # fmt: skip
    assert all((dst / "images" / im.file_name).is_file() for im in coco.images)
