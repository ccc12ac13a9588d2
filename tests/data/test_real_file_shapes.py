"""No silent loss on real files: each test reads a small file shaped like one from a public
dataset or tool that used to lose data without a word, and checks that every instance arrives
or that what is left out is counted and said."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from posekit.cli.main import main
from posekit.data import load_splits, read_coco

KPTS2 = ["head", "tail"]


def _coco_with_images(root: Path, file_names: list[str], anns: list[dict[str, Any]],
                      categories: list[dict[str, Any]] | None = None,
                      name: str = "train.json") -> Path:  # fmt: skip
    """A COCO file in `root/annotations/` whose images (64x48) lie under `root`."""
    images = []
    for i, fn in enumerate(file_names, start=1):
        (root / fn).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / fn), np.full((48, 64, 3), 90, np.uint8))
        images.append({"id": i, "file_name": fn, "width": 64, "height": 48})
    cats = categories or [{"id": 1, "name": "animal", "keypoints": KPTS2, "skeleton": [[1, 2]]}]
    path = root / "annotations" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _ann(aid: int, iid: int, *, crowd: int = 0, cid: int = 1) -> dict[str, Any]:
    return {"id": aid, "image_id": iid, "category_id": cid, "iscrowd": crowd,
            "keypoints": [10, 10, 2, 30, 20, 2], "num_keypoints": 2,
            "bbox": [5, 5, 30, 20], "area": 600}  # fmt: skip


def test_posetrack_file_names_with_folders_convert_to_yolo_where_readers_look(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PoseTrack18's `file_name`s hold `images/val/<sequence>/`: the labels were written to
    labels/train/images/val/..., where neither Ultralytics nor posekit looks."""
    names = [f"images/val/000342_mpii_test/{i:06d}.jpg" for i in range(3)]
    src = _coco_with_images(tmp_path / "pt", names, [_ann(1, 1), _ann(2, 2), _ann(3, 3)])
    assert main(["data", "convert", str(src), str(tmp_path / "yolo"), "--to", "yolo"]) == 0
    assert "train: 3 images / 3 instances" in capsys.readouterr().out
    (back,) = load_splits(tmp_path / "yolo" / "data.yaml").values()
    assert len(back.images) == 3 and len(back.annotations) == 3
    assert not back.report.problems
    # Ultralytics' rule: the last /images/ of the image path becomes /labels/
    img = tmp_path / "yolo" / "images" / "train" / names[0]
    label = Path(str(img).rsplit("/images/", 1)[0] + "/labels/" + str(img).rsplit("/images/",
                 1)[1]).with_suffix(".txt")  # fmt: skip
    assert label.is_file() and len(label.read_text().splitlines()) == 1


def test_yolo_export_counts_and_says_the_crowd_annotations_it_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _coco_with_images(tmp_path / "c", ["images/a.jpg", "images/b.jpg"],
                            [_ann(1, 1), _ann(2, 1, crowd=1), _ann(3, 2)])  # fmt: skip
    assert main(["data", "convert", str(src), str(tmp_path / "yolo"), "--to", "yolo"]) == 0
    out, err = capsys.readouterr()
    assert "1 crowd annotations" in err and "[yolo-crowd]" in err
    assert "train: 2 images / 2 instances" in out and "1 annotation (yolo-crowd)" in out


def test_convert_refuses_an_output_that_does_not_read_back(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """convert reads its own output back: a writer that drops instances is caught."""
    import importlib

    convert_module = importlib.import_module("posekit.data.convert")
    from posekit.data import DatasetError

    src = _coco_with_images(tmp_path / "c", ["images/a.jpg"], [_ann(1, 1)])
    real = convert_module.write_posekit

    def lossy(splits, out, **kw):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        return real({k: replace(ds, annotations=[]) for k, ds in splits.items()}, out, **kw)

    monkeypatch.setattr(convert_module, "write_posekit", lossy)
    with pytest.raises(DatasetError, match="read back, the output has train: 1 images / 0 inst"):
        convert_module.convert(src, tmp_path / "out")


def test_coco_category_without_a_keypoints_key_is_inferred_from_its_annotations(
    tmp_path: Path,
) -> None:
    """300VW and UBody3D name no keypoints and have no "keypoints" key: every annotation was
    lost and the category then reported as missing."""
    cats = [{"id": 1, "name": "face", "supercategory": "face"}]
    src = _coco_with_images(tmp_path / "f", ["images/a.jpg", "images/b.jpg"],
                            [_ann(1, 1), _ann(2, 2)], cats)  # fmt: skip
    ds = read_coco(src)
    assert len(ds.annotations) == 2 and not ds.report.problems
    assert ds.categories[0].schema.keypoints == ("kpt_1", "kpt_2")
    (note,) = ds.report.notes
    assert note.code == "keypoints-inferred" and "has no 'keypoints' key" in note.message


def test_val_with_an_annotation_id_0_warns_names_it_and_fix_ids_corrects_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ExLPose's val starts its annotation ids at 0: pycocotools scores that instance as a
    miss (ground truth against itself below AP 1). The number stays pycocotools', but is
    warned about with the id named, and --fix-ids gives the corrected one."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from posekit.eval.metrics import evaluate

    anns = [_ann(0, 1), _ann(1, 2), _ann(2, 3)]
    for a, dx in zip(anns, (0, 10, 20), strict=True):  # one instance per image, apart
        a["keypoints"] = [10 + dx, 10, 2, 30 + dx, 25, 2]
    src = _coco_with_images(tmp_path / "ex", [f"images/{i}.jpg" for i in range(3)], anns,
                            name="val.json")  # fmt: skip
    preds = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
              "score": 1.0} for a in anns]  # fmt: skip
    pred_file = tmp_path / "pred.json"
    pred_file.write_text(json.dumps(preds))
    ref = COCO(str(src))
    ev = COCOeval(ref, ref.loadRes(str(pred_file)), "keypoints")
    ev.params.kpt_oks_sigmas = np.array([0.05, 0.05])  # posekit's default for custom points
    ev.evaluate(), ev.accumulate(), ev.summarize()
    ours = evaluate(read_coco(src, repair=False), preds).coco["AP"]
    assert ours == pytest.approx(ev.stats[0], abs=1e-9) and ours < 0.9  # pycocotools' number
    capsys.readouterr()
    main(["val", "--gt", str(src), "--pred", str(pred_file), "--no-per-keypoint"])
    out, err = capsys.readouterr()
    assert "annotation id(s) 0:" in err and "--fix-ids" in err
    main(["val", "--gt", str(src), "--pred", str(pred_file), "--no-per-keypoint", "--fix-ids"])
    fixed_out, fixed_err = capsys.readouterr()
    assert "renumbered ground-truth annotation id(s) 0" in fixed_err
    ap = [line for line in fixed_out.splitlines() if "AP @[OKS .50:.95 | all]" in line]
    assert ap and "1.0000" in ap[0], fixed_out
    assert f"{ours:.4f}" in next(ln for ln in out.splitlines() if "AP @[OKS .50:.95 | all]" in ln)
    assert {n.code for n in read_coco(src).report.notes} == {"annotation-id-0"}
