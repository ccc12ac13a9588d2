"""Every validation problem: a broken file goes in, a message naming problem and location comes
out (through the Python API and through `posekit data check`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_output import error_lines
from posekit.cli.main import main
from posekit.data import DatasetError, check_dataset, read_coco


def _ann(c: dict[str, Any], aid: int) -> dict[str, Any]:
    return next(a for a in c["annotations"] if a["id"] == aid)


def _set(path: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any):
    def mutate(c: dict[str, Any]) -> None:
        path(c)[key] = value

    return mutate


# (mutation, problem code, fragments the message must contain: problem and location)
CASES = [
    pytest.param(_set(lambda c: _ann(c, 10), "keypoints", [1, 2, 2, 3, 4, 2]), "kpt-length",
                 ["keypoints has 6 values, expected 3*K = 9", "image 1", "annotation 10",
                  "field 'keypoints'"], id="kpt-length"),
    pytest.param(_set(lambda c: _ann(c, 11), "keypoints", [40, 20, 3, 0, 0, 0, 50, 30, 2]),
                 "visibility", ["visibility 3", "annotation 11", "keypoints[0].v"],
                 id="visibility"),
    pytest.param(_set(lambda c: _ann(c, 12), "keypoints", [30, float("nan"), 2, 35, 31, 2,
                                                           25, 31, 2]),
                 "non-finite", ["NaN/inf", "image 2", "annotation 12", "keypoints[0]"],
                 id="nan-keypoint"),
    pytest.param(_set(lambda c: _ann(c, 12), "bbox", [20, 25, float("inf"), 10]),
                 "non-finite", ["NaN/inf", "annotation 12", "field 'bbox'"], id="inf-bbox"),
    pytest.param(_set(lambda c: _ann(c, 10), "keypoints", [10, 10, 2, 500, 12, 2, 5, 30, 2]),
                 "kpt-outside", ["far outside the 64x48 image", "annotation 10", "keypoints[1]"],
                 id="kpt-far-outside"),
    pytest.param(_set(lambda c: _ann(c, 10), "bbox", [4, 8, 0, 24]), "bbox-size",
                 ["non-positive width or height", "annotation 10", "field 'bbox'"],
                 id="bbox-zero"),
    pytest.param(_set(lambda c: _ann(c, 11), "bbox", [38, 18, 40, 14]), "bbox-outside",
                 ["extends outside the 64x48 image", "annotation 11", "field 'bbox'"],
                 id="bbox-outside"),
    pytest.param(_set(lambda c: _ann(c, 11), "num_keypoints", 3), "num-keypoints",
                 ["num_keypoints is 3 but 2 keypoints have v > 0", "annotation 11",
                  "field 'num_keypoints'"], id="num-keypoints"),
    pytest.param(_set(lambda c: _ann(c, 11), "image_id", 99), "missing-image",
                 ["image_id 99 is not in 'images'", "annotation 11", "field 'image_id'"],
                 id="missing-image"),
    pytest.param(_set(lambda c: _ann(c, 11), "category_id", 7), "missing-category",
                 ["category_id 7 is not in 'categories'", "annotation 11"],
                 id="missing-category"),
    pytest.param(_set(lambda c: _ann(c, 11), "id", 10), "duplicate-id",
                 ["duplicate annotation id 10", "annotation 10"], id="duplicate-annotation-id"),
    pytest.param(_set(lambda c: c["images"][1], "id", 1), "duplicate-id",
                 ["duplicate image id 1", "image 1"], id="duplicate-image-id"),
    pytest.param(lambda c: c["categories"].append(dict(c["categories"][0])), "duplicate-id",
                 ["duplicate category id 1", "categories"], id="duplicate-category-id"),
    pytest.param(_set(lambda c: c["categories"][0], "skeleton", [[1, 2], [1, 4]]),
                 "skeleton-range", ["skeleton edge [1, 4]", "1..3", "categories[0].skeleton"],
                 id="skeleton-out-of-range"),
    pytest.param(_set(lambda c: c["images"][0], "width", 65), "image-size",
                 ["annotation says 65x48 but the file is 64x48", "image 1", "a.png"],
                 id="image-size-mismatch"),
    pytest.param(_set(lambda c: c["images"][1], "file_name", "nothere.png"), "image-missing",
                 ["image file not found: nothere.png", "image 2"], id="image-missing"),
    pytest.param(lambda c: c["annotations"][0].update(bbox=None, keypoints=[0] * 9),
                 "missing-field", ["no 'bbox'", "annotation 10", "field 'bbox'"],
                 id="missing-field"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "code", "fragments"), CASES)
def test_problem_is_reported_with_location(
    mutate: Callable[[dict[str, Any]], None],
    code: str,
    fragments: list[str],
    valid_coco: dict[str, Any],
    make_dataset: Callable[..., Path],
) -> None:
    mutate(valid_coco)
    root = make_dataset(valid_coco)
    problems = [p for r in check_dataset(root) for p in r.problems]
    matching = [p for p in problems if p.code == code]
    assert matching, f"expected a {code!r} problem, got {[str(p) for p in problems]}"
    text = str(matching[0])
    for frag in fragments:
        assert frag in text, f"{frag!r} not in {text!r}"
    assert "train.json" in text or ".png" in text  # the file is always named


def test_clean_dataset_has_no_problems(valid_coco, make_dataset) -> None:
    results = check_dataset(make_dataset(valid_coco))
    assert [p for r in results for p in r.problems] == []
    stats = results[0].stats
    assert stats.images == 2
    assert stats.instances == {1: 3}
    # per keypoint (unlabelled, occluded, visible)
    np.testing.assert_array_equal(stats.visibility[1], [[0, 0, 3], [1, 1, 1], [0, 0, 3]])


def test_malformed_json_names_line_and_column(make_dataset) -> None:
    root = make_dataset('{\n  "images": [\n    {"id": 1,,}\n  ]\n}')
    with pytest.raises(DatasetError) as err:
        read_coco(root / "annotations" / "train.json")
    assert "train.json:3:14" in str(err.value)
    assert "malformed JSON" in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "malformed JSON"), ("[1, 2]", "top level must be a JSON object"),
     ('{"images": []}', "no 'annotations' list")],
)  # fmt: skip
def test_unusable_files(make_dataset, content: str, message: str) -> None:
    root = make_dataset(content)
    with pytest.raises(DatasetError, match=message):
        read_coco(root / "annotations" / "train.json")


def test_undecodable_and_unreadable_images(valid_coco, make_dataset) -> None:
    root = make_dataset(valid_coco)
    (root / "images" / "a.png").write_bytes(b"this is not a png")
    (root / "images" / "b.png").unlink()
    (root / "images" / "b.png").mkdir()  # exists but cannot be read as a file
    problems = {p.code: str(p) for p in check_dataset(root)[0].problems}
    assert "image 1" in problems["image-decode"] and "a.png" in problems["image-decode"]
    assert "image 2" in problems["image-unreadable"]


def test_loader_counts_what_it_skips(valid_coco, make_dataset) -> None:
    _ann(valid_coco, 10)["keypoints"] = [1, 2, 2]  # dropped: cannot be used
    _ann(valid_coco, 12)["keypoints"][3:6] = [35, 31, 7]  # one keypoint made unlabelled
    ds = read_coco(make_dataset(valid_coco) / "annotations" / "train.json")
    assert [a.id for a in ds.annotations] == [11, 12]
    assert ds.report.skipped == {"annotation (kpt-length)": 1, "keypoint (visibility)": 1}
    assert ds.annotations[1].keypoints[1].tolist() == [0, 0, 0]
    with pytest.raises(DatasetError, match="3 problem"):
        read_coco(make_dataset(valid_coco, "again") / "annotations" / "train.json", strict=True)


def test_cli_check_exit_codes(valid_coco, make_dataset, capsys) -> None:
    clean = make_dataset(valid_coco, "clean")
    assert main(["data", "check", str(clean)]) == 0
    assert "clean" in capsys.readouterr().out

    _ann(valid_coco, 11)["num_keypoints"] = 3
    broken = make_dataset(valid_coco, "broken")
    assert main(["data", "check", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "annotation 11" in out and "num-keypoints" in out

    bad_json = make_dataset("{oops", "badjson")
    assert main(["data", "check", str(bad_json)]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "train.json:1:2" in err[0] and "malformed JSON" in err[0]

    assert main(["data", "check", str(clean / "nope")]) == 2
    assert "not found" in capsys.readouterr().err


def test_several_categories_with_different_keypoint_counts(valid_coco, make_dataset) -> None:
    valid_coco["categories"].append(
        {"id": 2, "name": "stick", "keypoints": ["top", "bottom"], "skeleton": [[1, 2]]}
    )
    valid_coco["annotations"].append(
        {"id": 13, "image_id": 2, "category_id": 2, "keypoints": [60, 5, 2, 60, 40, 2],
         "num_keypoints": 2, "bbox": [55, 3, 10, 40], "area": 400, "iscrowd": 0}
    )  # fmt: skip
    ds = read_coco(make_dataset(valid_coco) / "annotations" / "train.json", strict=True)
    assert [c.schema.num_keypoints for c in ds.categories] == [3, 2]
    assert ds.annotations[-1].keypoints.shape == (2, 3)
    assert ds.stats().instances == {1: 3, 2: 1}


def test_write_read_round_trip_keeps_everything(valid_coco, make_dataset, tmp_path) -> None:
    src = make_dataset(valid_coco) / "annotations" / "train.json"
    ds = read_coco(src, strict=True)
    from posekit.data import write_coco

    out = write_coco(ds, tmp_path / "again.json")
    back = json.loads(out.read_text())
    for a, b in zip(valid_coco["annotations"], back["annotations"], strict=True):
        assert a["keypoints"] == b["keypoints"] and a["bbox"] == b["bbox"]
        assert a["num_keypoints"] == b["num_keypoints"]
    cat = back["categories"][0]
    assert cat["skeleton"] == [[1, 2], [1, 3]]
    assert cat["flip_idx"] == [0, 2, 1]  # derived from left_/right_ names, saved with the data


def test_an_annotation_without_bbox_gets_mmposes_box_or_its_keypoints_extent(
    valid_coco: dict[str, Any], make_dataset: Callable[..., Path]
) -> None:
    """MMPose's face sets carry `center` and `scale` (pixel_std 200) instead of a `bbox`: the
    annotation is kept with MMPose's box, or the extent of its keypoints, and a note."""
    from posekit.data import load_dataset

    first, second = valid_coco["annotations"][0], valid_coco["annotations"][1]
    first.pop("bbox")
    first.update(center=[30.0, 20.0], scale=0.1)
    second.pop("bbox")
    root = make_dataset(valid_coco)
    ds = load_dataset(root)
    boxes = {a.id: a.bbox.tolist() for a in ds.annotations}
    assert boxes[first["id"]] == [20.0, 10.0, 20.0, 20.0]  # 30 +- 10, 20 +- 10
    kp = np.asarray(second["keypoints"], dtype=float).reshape(-1, 3)
    seen = kp[kp[:, 2] > 0, :2]
    x0, y0 = seen.min(0)
    assert boxes[second["id"]][:2] == [x0, y0]
    notes = [p.code for p in ds.report.notes]
    assert notes.count("bbox-derived") == 2 and ds.report.ok
