"""COCO files that bend the format's conventions, as public datasets write them: read as they
mean, with a note, instead of being emptied (each file here is written by the test itself)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from posekit.cli.main import main
from posekit.data import read_coco, write_coco
from posekit.eval import evaluate


def _write(tmp_path: Path, coco: dict[str, Any], make_dataset) -> Path:  # type: ignore[no-untyped-def]
    return make_dataset(coco) / "annotations" / "train.json"


def test_json_boolean_iscrowd_is_read_as_pycocotools_reads_it(
    tmp_path: Path, valid_coco, make_dataset
) -> None:  # type: ignore[no-untyped-def]
    """PoseTrack18 writes `"iscrowd": false`; every annotation used to be dropped."""
    for a in valid_coco["annotations"]:
        a["iscrowd"] = False
    valid_coco["annotations"][1]["iscrowd"] = True
    path = _write(tmp_path, valid_coco, make_dataset)
    ds = read_coco(path)
    assert [a.iscrowd for a in ds.annotations] == [0, 1, 0] and not ds.report.problems
    # ground truth scored against itself: AP 1 (the crowd region is ignored, as pycocotools)
    preds = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
              "score": 1.0} for a in valid_coco["annotations"] if not a["iscrowd"]]  # fmt: skip
    pred_file = tmp_path / "pred.json"
    pred_file.write_text(json.dumps(preds))
    assert abs(evaluate(ds, pred_file).coco["AP"] - 1.0) < 1e-9


def test_a_zero_based_skeleton_is_read_as_such_with_a_note(
    tmp_path: Path, valid_coco, make_dataset, capsys
) -> None:  # type: ignore[no-untyped-def]
    """ATRW, ExLPose, Human3.6M, AnimalKingdom number skeleton edges from 0."""
    valid_coco["categories"][0]["skeleton"] = [[0, 1], [0, 2]]
    path = _write(tmp_path, valid_coco, make_dataset)
    ds = read_coco(path)
    assert ds.categories[0].schema.skeleton == ((0, 1), (0, 2))
    assert not ds.report.problems and [n.code for n in ds.report.notes] == ["skeleton-0-based"]
    assert main(["data", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note" in out and "0-based" in out
    # written back as COCO: 1-based again, and read without a note
    again = read_coco(write_coco(ds, tmp_path / "out.json"))
    assert again.categories[0].schema.skeleton == ((0, 1), (0, 2)) and not again.report.notes


def test_one_based_and_ambiguous_skeletons_stay_one_based(
    tmp_path: Path, valid_coco, make_dataset
) -> None:  # type: ignore[no-untyped-def]
    for skeleton, edges in (([[1, 2], [1, 3]], ((0, 1), (0, 2))), ([[1, 2]], ((0, 1),))):
        valid_coco["categories"][0]["skeleton"] = skeleton
        ds = read_coco(_write(tmp_path, valid_coco, make_dataset))
        assert ds.categories[0].schema.skeleton == edges and not ds.report.notes


def test_a_category_without_keypoint_names_takes_its_count_from_the_annotations(
    tmp_path: Path, valid_coco, make_dataset
) -> None:  # type: ignore[no-untyped-def]
    """300W, WFLW, COFW, AFLW, LaPa and Halpe fixtures list `"keypoints": []`."""
    valid_coco["categories"][0]["keypoints"] = []
    valid_coco["categories"][0]["skeleton"] = []
    ds = read_coco(_write(tmp_path, valid_coco, make_dataset))
    assert ds.categories[0].schema.keypoints == ("kpt_1", "kpt_2", "kpt_3")
    assert len(ds.annotations) == 3 and not ds.report.problems
    (note,) = ds.report.notes
    assert note.code == "keypoints-inferred" and "3 read from its annotations" in note.message


def test_wholebody_parts_are_reported_and_kept(tmp_path: Path, valid_coco, make_dataset) -> None:  # type: ignore[no-untyped-def]
    valid_coco["annotations"][0]["face_kpts"] = [1.0, 2.0, 1.0] * 68
    valid_coco["annotations"][0]["lefthand_kpts"] = [0.0] * 63
    ds = read_coco(_write(tmp_path, valid_coco, make_dataset))
    assert len(ds.annotations) == 3
    (note,) = ds.report.notes
    assert note.code == "wholebody-ignored" and "1 annotations" in note.message
    assert "face_kpts, lefthand_kpts" in note.message
    written = json.loads(write_coco(ds, tmp_path / "w.json").read_text())
    assert len(written["annotations"][0]["face_kpts"]) == 204
