"""`data convert` and `data check` on datasets as users bring them: every annotation dropped,
image files missing, `file_name`s that already start with `images/`, images elsewhere
(`--image-root`), and `check --json` for scripts."""

from __future__ import annotations

import json
from pathlib import Path

from posekit.cli.main import main
from posekit.data import read_coco


def test_convert_refuses_when_every_annotation_would_be_dropped(
    tmp_path: Path, valid_coco, make_dataset, capsys
) -> None:  # type: ignore[no-untyped-def]
    for a in valid_coco["annotations"]:
        a["iscrowd"] = "no"
    src = make_dataset(valid_coco)
    out = tmp_path / "out"
    assert main(["data", "convert", str(src), str(out)]) == 2
    err = capsys.readouterr().err
    assert "every annotation was dropped" in err and "3 annotation (iscrowd)" in err
    assert not out.exists()


def test_missing_images_stop_before_writing_or_are_skipped_with_a_count(
    tmp_path: Path, valid_coco, make_dataset, capsys
) -> None:  # type: ignore[no-untyped-def]
    src = make_dataset(valid_coco)
    (src / "images" / "b.png").unlink()
    out = tmp_path / "out"
    assert main(["data", "convert", str(src), str(out), "--to", "yolo"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 image files are missing" in err and "b.png" in err
    assert "--skip-missing-images" in err and not out.exists()
    assert main(["data", "convert", str(src), str(out), "--skip-missing-images"]) == 0
    said = capsys.readouterr()
    assert "image-missing" in said.err and "b.png" in said.err
    ds = read_coco(out / "annotations" / "train.json")
    assert len(ds.images) == 1 and len(ds.annotations) == 2


def test_file_names_with_an_images_prefix_are_not_doubled(
    tmp_path: Path, valid_coco, make_dataset, capsys
) -> None:  # type: ignore[no-untyped-def]
    for im in valid_coco["images"]:
        im["file_name"] = "images/" + im["file_name"]
    ann = make_dataset(valid_coco) / "annotations" / "train.json"
    ds = read_coco(ann)
    assert all(ds.image_path(im).is_file() for im in ds.images)
    assert main(["data", "check", str(ann)]) == 0


def test_image_root_and_check_json(tmp_path: Path, valid_coco, make_dataset, capsys) -> None:  # type: ignore[no-untyped-def]
    src = make_dataset(valid_coco)
    elsewhere = tmp_path / "labels" / "people.json"
    elsewhere.parent.mkdir()
    valid_coco["annotations"][1]["keypoints"][2] = 7  # one located problem
    elsewhere.write_text(json.dumps(valid_coco))
    assert main(["data", "check", str(elsewhere), "--json"]) == 1  # images not found there
    report = json.loads(capsys.readouterr().out)
    assert {p["code"] for p in report["splits"][0]["problems"]} >= {"image-missing"}
    images = str(src / "images")
    assert main(["data", "check", str(elsewhere), "--json", "--image-root", images]) == 1
    report = json.loads(capsys.readouterr().out)
    (split,) = report["splits"]
    # the bad visibility is made unlabelled (a located problem) and num_keypoints disagrees
    assert report["problems"] == 2 and split["images"] == 2 and split["instances"] == 3
    (cat,) = split["categories"]
    assert cat["keypoints"] == ["centre", "left_end", "right_end"]
    assert cat["labelled_keypoints"] == 7 and split["labelled_keypoints"] == 7
    first = split["problems"][0]
    assert first["code"] == "visibility" and first["annotation_id"] == 11
    assert first["file"] == str(elsewhere) and "annotation 11" in first["text"]
    assert split["skipped"] == {"keypoint (visibility)": 1}
    out = tmp_path / "converted"
    assert main(["data", "convert", str(elsewhere), str(out), "--image-root", images]) == 0
    assert (out / "images" / "a.png").is_file()
