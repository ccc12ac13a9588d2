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
    formats = importlib.import_module("posekit.data.formats")
    from posekit.data import DatasetError

    src = _coco_with_images(tmp_path / "c", ["images/a.jpg"], [_ann(1, 1)])
    real = formats.write_posekit

    def lossy(splits, out, **kw):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        return real({k: replace(ds, annotations=[]) for k, ds in splits.items()}, out, **kw)

    monkeypatch.setattr(formats, "write_posekit", lossy)
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


def _grey_frames(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"img{i:03d}.png" for i in range(n)]
    for i, f in enumerate(files):
        cv2.imwrite(str(f), np.full((48, 64, 3), 30 + 40 * i, np.uint8))
    return files


def test_sleap_predictions_file_leaves_out_frames_without_a_user_instance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real predictions file: 447 of 450 frames hold only predictions. Each such frame
    became an image without instances (its animal trained as background)."""
    sio = pytest.importorskip("sleap_io")
    files = _grey_frames(tmp_path / "frames", 5)
    video = sio.Video.from_filename([str(f) for f in files])
    sk = sio.Skeleton(list(KPTS2), name="mouse")

    def pred(x: float) -> object:
        return sio.PredictedInstance.from_numpy(np.array([[x, 10.0], [x + 5, 20]]), skeleton=sk,
                                                score=0.9)  # fmt: skip

    frames = [sio.LabeledFrame(video=video, frame_idx=i, instances=[pred(10 + i)])
              for i in (0, 1, 3, 4)]  # fmt: skip
    frames.append(sio.LabeledFrame(video=video, frame_idx=2, instances=[
        sio.Instance.from_numpy(np.array([[20.0, 10.0], [30, 20]]), skeleton=sk)]))  # fmt: skip
    slp = tmp_path / "predictions.slp"
    sio.Labels(frames).save(str(slp))
    (ds,) = load_splits(slp).values()
    assert len(ds.images) == 1 and len(ds.annotations) == 1
    assert ds.report.skipped["frame (sleap-predicted-only)"] == 4
    assert "4 frames that have no user instance" in ds.report.notes[0].message
    assert len(load_splits(slp, include_predicted=True)["train"].images) == 5
    assert main(["data", "convert", str(slp), str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert "note" in err and "4 frames that have no user instance" in err
    assert "train: 1 images / 1 instances" in out and "4 frame (sleap-predicted-only)" in out


def test_sleap_image_sequence_videos_find_their_frames(tmp_path: Path) -> None:
    """An ImageVideo's file name is a list of images: it was looked up by the list's repr,
    so every frame was "video-missing"."""
    sio = pytest.importorskip("sleap_io")
    files = _grey_frames(tmp_path / "proj" / "frames", 4)
    video = sio.Video.from_filename([str(f) for f in files])
    sk = sio.Skeleton(list(KPTS2), name="mouse")
    frames = [sio.LabeledFrame(video=video, frame_idx=i, instances=[
        sio.Instance.from_numpy(np.array([[10.0 + i, 10], [20, 30]]), skeleton=sk)])
        for i in (1, 3)]  # fmt: skip
    slp = tmp_path / "proj" / "labels.slp"
    sio.Labels(frames).save(str(slp))
    (ds,) = load_splits(slp).values()
    assert not ds.report.problems and len(ds.images) == 2 and len(ds.annotations) == 2
    assert [(im.width, im.height) for im in ds.images] == [(64, 48), (64, 48)]
    dst = tmp_path / "coco"
    assert main(["data", "convert", str(slp), str(dst), "--frame-format", "png"]) == 0
    coco = read_coco(dst / "annotations" / "train.json")
    greys = [int(cv2.imread(str(dst / "images" / im.file_name)).mean()) for im in coco.images]
    assert greys == [70, 150] and len(coco.annotations) == 2
    # moved: found by name in --video-dir, as a media file would be
    moved = tmp_path / "moved"
    (tmp_path / "proj" / "frames").rename(moved)
    assert len(load_splits(slp)["train"].images) == 0
    assert len(load_splits(slp, video_dir=moved)["train"].images) == 2


CVAT_LABELS = """<labels>
    <label><name>mouse</name><type>skeleton</type><svg></svg></label>
    <label><name>head</name><type>points</type><parent>mouse</parent></label>
    <label><name>tail</name><type>points</type><parent>mouse</parent></label>
    <label><name>corner</name><type>points</type></label>
  </labels>"""


def _track(tid: int, frames: dict[int, tuple[float, float]], outside: int | None = None) -> str:
    shapes = "".join(
        f'<skeleton frame="{f}" keyframe="1" outside="0" occluded="0" z_order="0">'
        f'<points label="head" keyframe="1" outside="0" occluded="0" points="{x},{y}"/>'
        f'<points label="tail" keyframe="1" outside="0" occluded="1" points="{x + 10},{y}"/>'
        "</skeleton>"
        for f, (x, y) in frames.items()
    )
    if outside is not None:
        shapes += (f'<skeleton frame="{outside}" keyframe="1" outside="1" occluded="0">'
                   '<points label="head" outside="1" points="0,0"/></skeleton>')  # fmt: skip
    return f'<track id="{tid}" label="mouse" source="manual">{shapes}</track>'


def test_cvat_for_video_tracks_are_read_as_instances_of_their_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A "CVAT for video" export (`<track>` with `<skeleton frame=...>`) read as an empty,
    clean dataset and converted to an empty one with exit 0."""
    export = tmp_path / "cvat"
    (export / "images").mkdir(parents=True)
    for f in range(3):
        cv2.imwrite(str(export / "images" / f"frame_{f:06d}.PNG"), np.full((48, 64, 3), 50,
                                                                          np.uint8))  # fmt: skip
    xml = export / "annotations.xml"
    xml.write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
  <meta><task><size>3</size><mode>interpolation</mode>{CVAT_LABELS}
    <original_size><width>64</width><height>48</height></original_size></task></meta>
  {_track(0, {0: (10, 10), 1: (12, 10), 2: (14, 10)})}
  {_track(1, {0: (30, 30), 1: (31, 30)}, outside=2)}
  <track id="2" label="corner" source="manual">
    <points frame="0" outside="0" occluded="0" keyframe="1" points="1,1"/></track>
</annotations>""")
    (ds,) = load_splits(xml).values()
    assert [im.file_name for im in ds.images] == [f"frame_{f:06d}.PNG" for f in range(3)]
    per_frame = [len(ds.annotations_by_image().get(im.id, [])) for im in ds.images]
    assert per_frame == [2, 2, 1] and len(ds.annotations) == 5
    assert [a.extra["cvat_track"] for a in ds.annotations] == ["0", "0", "0", "1", "1"]
    np.testing.assert_array_equal(ds.annotations[0].keypoints, [[10, 10, 2], [20, 10, 1]])
    (problem,) = ds.report.problems  # the corner points shape: said, counted
    assert problem.code == "cvat-points" and ds.report.skipped["points shape (cvat-points)"] == 1
    assert main(["data", "check", str(xml)]) == 1
    assert main(["data", "convert", str(xml), str(tmp_path / "coco")]) == 0
    assert "train: 3 images / 5 instances" in capsys.readouterr().out


def test_cvat_video_without_its_frames_is_never_clean(tmp_path: Path) -> None:
    xml = tmp_path / "annotations.xml"
    xml.write_text(f"""<annotations><version>1.1</version>
  <meta><task>{CVAT_LABELS}</task></meta>{_track(0, {0: (10, 10), 1: (12, 10)})}
</annotations>""")
    (ds,) = load_splits(xml).values()
    assert not ds.annotations and [p.code for p in ds.report.problems] == ["image-missing"] * 2
    assert ds.report.skipped["instance (image-missing)"] == 2
    assert main(["data", "convert", str(xml), str(tmp_path / "out")]) == 2


def test_cvat_points_shapes_outside_a_skeleton_are_counted_not_ignored(tmp_path: Path) -> None:
    export = tmp_path / "cvat"
    (export / "images").mkdir(parents=True)
    cv2.imwrite(str(export / "images" / "a.png"), np.full((48, 64, 3), 50, np.uint8))
    xml = export / "annotations.xml"
    xml.write_text(f"""<annotations><version>1.1</version><meta><task>{CVAT_LABELS}</task></meta>
  <image id="0" name="a.png" width="64" height="48">
    <skeleton label="mouse"><points label="head" outside="0" points="10,10"/>
      <points label="tail" outside="0" points="20,10"/></skeleton>
    <points label="corner" occluded="0" source="manual" points="1.0,1.0;63.0,1.0"/>
  </image></annotations>""")
    (ds,) = load_splits(xml).values()
    assert len(ds.annotations) == 1
    (problem,) = ds.report.problems
    assert problem.code == "cvat-points" and "'corner'" in problem.message
    assert "image 1" in str(problem)


def _ls_point(rid: str, label: str, x: float, y: float) -> dict[str, Any]:
    return {"id": rid, "type": "keypointlabels", "from_name": "kp", "to_name": "image",
            "original_width": 200, "original_height": 100,
            "value": {"x": x, "y": y, "width": 0.5, "keypointlabels": [label]}}  # fmt: skip


def _relation(a: str, b: str) -> dict[str, Any]:
    return {"from_id": a, "to_id": b, "type": "relation", "direction": "right", "labels": []}


def test_label_studio_export_is_detected_by_structure_and_relations_group_points(
    tmp_path: Path,
) -> None:
    """A Label Studio export whose first task's `"data"` comes after 4 KB of results was
    read as COCO (and refused); points joined by `relation` results were mixed into one
    instance per task."""
    export = tmp_path / "ls"
    (export / "images").mkdir(parents=True)
    cv2.imwrite(str(export / "images" / "a.png"), np.full((100, 200, 3), 70, np.uint8))
    box = {
        "id": "box",
        "type": "rectanglelabels",
        "original_width": 200,
        "original_height": 100,
        "value": {"x": 50, "y": 50, "width": 40, "height": 40, "rectanglelabels": ["m"]},
    }
    result = [
        _ls_point("a1", "ear", 10, 10),
        _ls_point("a2", "tail", 20, 20),
        _ls_point("b1", "ear", 60, 60),
        _ls_point("b2", "tail", 70, 70),
        box,
        _relation("a1", "a2"),
        _relation("b2", "b1"),
        _relation("b1", "box"),
    ]
    filler = [{"id": f"t{i}", "type": "textarea", "value": {"text": ["x" * 100]}}
              for i in range(60)]  # more than 4 KB before "data"  # fmt: skip
    tasks = [{"annotations": [{"id": 1, "result": result + filler}], "id": 1,
              "data": {"image": "/data/upload/1/a.png"}}]  # fmt: skip
    path = export / "project-1-at-2026.json"
    path.write_text(json.dumps(tasks))
    assert path.read_text().index('"data"') > 4096
    (ds,) = load_splits(path).values()
    assert len(ds.annotations) == 2 and not ds.report.problems and not ds.report.notes
    a, b = ds.annotations
    np.testing.assert_allclose(a.keypoints, [[20, 10, 2], [40, 20, 2]])
    np.testing.assert_allclose(b.keypoints, [[120, 60, 2], [140, 70, 2]])
    np.testing.assert_allclose(b.bbox, [100, 50, 80, 40])  # the rectangle joined to b1
    assert a.extra == {"labelstudio_related": "a1"} and b.extra == {"labelstudio_region": "box"}


def test_dlc_keypoint_outside_the_image_is_caught_by_the_reader_as_by_coco(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DeepLabCut label far outside its 64x48 frame passed `data check` and then failed
    the converted COCO's: every reader applies the same rule now."""
    folder = tmp_path / "proj" / "labeled-data" / "v1"
    folder.mkdir(parents=True)
    (tmp_path / "proj" / "config.yaml").write_text("scorer: me\nbodyparts: [head, tail]\n")
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), np.full((48, 64, 3), 90, np.uint8))
    (folder / "CollectedData_me.csv").write_text(
        "scorer,me,me,me,me\nbodyparts,head,head,tail,tail\ncoords,x,y,x,y\n"
        "labeled-data/v1/a.png,10,10,20,20\n"
        "labeled-data/v1/b.png,10,10,640.5,20\n")  # fmt: skip
    (ds,) = load_splits(tmp_path / "proj").values()
    (problem,) = ds.report.problems
    assert problem.code == "kpt-outside" and problem.line == 5 and "'tail'" in problem.message
    np.testing.assert_array_equal(ds.annotations[1].keypoints[:, 2], [2, 0])
    assert main(["data", "check", str(tmp_path / "proj")]) == 1
    assert main(["data", "convert", str(tmp_path / "proj"), str(tmp_path / "coco")]) == 0
    capsys.readouterr()
    assert main(["data", "check", str(tmp_path / "coco")]) == 0  # as clean as it converted


@pytest.mark.parametrize("fmt", ["cvat", "labelme", "labelstudio", "sleap"])
def test_every_point_reader_applies_the_coco_rule_for_points_outside(
    tmp_path: Path, fmt: str
) -> None:
    """One rule (`far_outside`): a point 5 % outside is kept, one 20 % outside is reported."""
    from posekit.data.dataset import far_outside

    w, h = 100, 80
    near, far = (-4.0, 10.0), (120.0, 10.0)
    assert not far_outside(np.array(near), w, h) and far_outside(np.array(far), w, h)
    path = _points_file(tmp_path, fmt, (w, h), [near, far])
    if path is None:
        pytest.skip(f"{fmt} needs an optional package")
    (ds,) = load_splits(path).values()
    assert [p.code for p in ds.report.problems] == ["kpt-outside"]
    (ann,) = ds.annotations
    np.testing.assert_array_equal(ann.keypoints[:, 2], [2, 0])
    np.testing.assert_allclose(ann.keypoints[0, :2], near, atol=1e-6)


def _points_file(
    root: Path, fmt: str, size: tuple[int, int], pts: list[tuple[float, float]]
) -> Path | None:
    """One image of `size` with one instance of `pts` (named head, tail) in format `fmt`."""
    w, h = size
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "a.png"), np.full((h, w, 3), 90, np.uint8))
    names = KPTS2
    if fmt == "cvat":
        points = "".join(f'<points label="{n}" outside="0" points="{x},{y}"/>'
                         for n, (x, y) in zip(names, pts, strict=True))  # fmt: skip
        path = root / "annotations.xml"
        path.write_text(f"""<annotations><meta><task>{CVAT_LABELS}</task></meta>
<image id="0" name="a.png" width="{w}" height="{h}"><skeleton label="mouse">{points}</skeleton>
</image></annotations>""")
        return path
    if fmt == "labelme":
        shapes = [{"label": n, "points": [[x, y]], "group_id": 1, "shape_type": "point"}
                  for n, (x, y) in zip(names, pts, strict=True)]  # fmt: skip
        path = root / "images" / "a.json"
        path.write_text(json.dumps({"shapes": shapes, "imagePath": "a.png", "imageWidth": w,
                                    "imageHeight": h}))  # fmt: skip
        return path
    if fmt == "labelstudio":
        res = [_ls_point(n, n, 100 * x / w, 100 * y / h) | {"original_width": w,
               "original_height": h} for n, (x, y) in zip(names, pts, strict=True)]  # fmt: skip
        path = root / "export.json"
        path.write_text(json.dumps([{"id": 1, "data": {"image": "a.png"},
                                     "annotations": [{"result": res}]}]))  # fmt: skip
        return path
    try:
        import sleap_io as sio
    except ImportError:
        return None
    video = sio.Video.from_filename([str(root / "images" / "a.png")])
    sk = sio.Skeleton(list(names), name="mouse")
    lf = sio.LabeledFrame(video=video, frame_idx=0, instances=[
        sio.Instance.from_numpy(np.array(pts), skeleton=sk)])  # fmt: skip
    sio.Labels([lf]).save(str(root / "labels.slp"))
    return root / "labels.slp"
