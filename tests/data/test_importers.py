"""Importers of labelling tools' exports: each file here is written by the test, read, checked
(problems located in the source file) and round-tripped into COCO with equal instance and
labelled-keypoint counts, visibility and skeleton kept as COCO can hold them."""

from __future__ import annotations

import html
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

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


# the skeleton's bones and points as CVAT stores them: SVG, escaped inside the XML
SVG = html.escape(
    '<line data-type="edge" data-node-from="1" data-node-to="2"></line>'
    '<line data-type="edge" data-node-from="1" data-node-to="3"></line>'
    + "".join(
        f'<circle data-type="element node" data-node-id="{i}" data-label-name="{n}"></circle>'
        for i, n in ((1, "nose"), (2, "left_eye"), (3, "right_eye"))
    )
)
CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels>
    <label><name>face</name><type>skeleton</type>
      <svg>{svg}</svg>
    </label>
    <label><name>nose</name><type>points</type><parent>face</parent></label>
    <label><name>left_eye</name><type>points</type><parent>face</parent></label>
    <label><name>right_eye</name><type>points</type><parent>face</parent></label>
  </labels></task></meta>
  <image id="0" name="a.png" width="100" height="80">
    <skeleton label="face" source="manual" z_order="0">
      <points label="nose" occluded="0" outside="0" points="50.00,40.00"></points>
      <points label="left_eye" occluded="1" outside="0" points="60.00,30.00"></points>
      <points label="right_eye" occluded="0" outside="1" points="0.00,0.00"></points>
    </skeleton>
    <skeleton label="face" source="manual" z_order="0">
      <points label="nose" occluded="0" outside="0" points="20.5,20.5"></points>
      <points label="left_eye" occluded="0" outside="0" points="25,15"></points>
      <points label="right_eye" occluded="0" outside="0" points="15,15"></points>
    </skeleton>
  </image>
  <image id="1" name="b.png" width="100" height="80">
    <skeleton label="face" source="manual" z_order="0">
      <points label="nose" occluded="0" outside="0" points="10,10"></points>
      <points label="chin" occluded="0" outside="0" points="10,20"></points>
    </skeleton>
  </image>
</annotations>
""".replace("{svg}", SVG)


def test_cvat_skeletons_keep_visibility_and_bones_and_locate_problems(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "cvat"
    (export / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(export / "images" / name), np.full((80, 100, 3), 70, np.uint8))
    xml = export / "annotations.xml"
    xml.write_text(CVAT_XML)
    (ds,) = load_splits(xml).values()
    schema = ds.categories[0].schema
    assert schema.keypoints == ("nose", "left_eye", "right_eye")
    assert schema.skeleton == ((0, 1), (0, 2)) and schema.flip_idx == (0, 2, 1)
    assert len(ds.annotations) == 3
    # outside -> unlabelled, occluded -> 1, the rest visible
    np.testing.assert_array_equal(ds.annotations[0].keypoints[:, 2], [2, 1, 0])
    np.testing.assert_array_equal(ds.annotations[1].keypoints[:, :2], [[20.5, 20.5], [25, 15],
                                                                      [15, 15]])  # fmt: skip
    (problem,) = ds.report.problems
    assert problem.code == "cvat-label" and "'chin'" in problem.message
    assert "image 2" in str(problem) and "skeleton[0].points[chin]" in str(problem)
    assert main(["data", "check", str(xml)]) == 1
    assert "chin" in capsys.readouterr().out
    dst = tmp_path / "coco"
    assert main(["data", "convert", str(xml), str(dst)]) == 0
    coco = read_coco(dst / "annotations" / "train.json")
    assert len(coco.annotations) == 3
    assert [a.keypoints[:, 2].tolist() for a in coco.annotations] == [
        a.keypoints[:, 2].tolist() for a in ds.annotations]  # fmt: skip
    assert coco.categories[0].schema.skeleton == schema.skeleton


def test_cvat_xml_with_entities_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                    "<annotations>&b;</annotations>")  # fmt: skip
    assert main(["data", "check", str(bomb)]) == 2
    assert "refused" in capsys.readouterr().err


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_doctype_after_the_first_bytes_or_in_utf16_is_refused(
    tmp_path: Path, encoding: str
) -> None:
    from posekit.data.cvat import read_cvat
    from posekit.data.problems import DatasetError

    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    doctype = '<!DOCTYPE a [<!ENTITY e "x">]><annotations>&e;</annotations>'
    text = declaration + "<!--" + "x" * 5000 + "-->" + doctype
    path = tmp_path / "late.xml"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(DatasetError, match="refused: the XML declares a DOCTYPE"):
        read_cvat(path)


def _ls_point(rid: str, label: str, x: float, y: float, parent: str | None = None) -> dict:
    r = {"id": rid, "type": "keypointlabels", "from_name": "kp", "to_name": "image",
         "original_width": 200, "original_height": 100,
         "value": {"x": x, "y": y, "width": 0.5, "keypointlabels": [label]}}  # fmt: skip
    return r | ({"parentID": parent} if parent else {})


def test_label_studio_points_in_percent_grouped_by_parent_region(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "ls"
    (export / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(export / "images" / name), np.full((100, 200, 3), 70, np.uint8))
    region = {"x": 10, "y": 10, "width": 30, "height": 50, "rectanglelabels": ["cat"]}
    box = {"id": "box1", "type": "rectanglelabels", "original_width": 200,
           "original_height": 100, "value": region}  # fmt: skip
    tasks = [
        {"id": 7, "data": {"image": "/data/upload/3/1a2b3c4d-a.png"}, "annotations": [
            {"id": 1, "was_cancelled": True, "result": []},
            {"id": 2, "result": [box, _ls_point("p1", "ear", 20, 20, "box1"),
                                 _ls_point("p2", "tail", 30, 50, "box1"),
                                 _ls_point("p3", "ear", 80, 80),
                                 _ls_point("p4", "tail", 130, 80)]}]},  # outside
        {"id": 8, "data": {"image": "http://host/files/b.png"}, "annotations": [
            {"id": 3, "result": [_ls_point("p5", "tail", 50, 50)]}]},
    ]  # fmt: skip
    ann = export / "export.json"
    ann.write_text(json.dumps(tasks))
    (ds,) = load_splits(ann).values()
    assert ds.categories[0].schema.keypoints == ("ear", "tail")
    assert [im.file_name for im in ds.images] == ["a.png", "b.png"]  # upload prefix dropped
    first, second, third = ds.annotations
    np.testing.assert_allclose(first.keypoints, [[40, 20, 2], [60, 50, 2]])  # percent -> px
    np.testing.assert_allclose(first.bbox, [20, 10, 60, 50])  # the parent region
    np.testing.assert_allclose(second.keypoints, [[160, 80, 2], [0, 0, 0]])
    assert third.image_id == 2
    (problem,) = ds.report.problems
    assert problem.code == "kpt-outside" and "p4" in str(problem) and "image 7" in str(problem)
    assert {n.code for n in ds.report.notes} == {"labelstudio-ungrouped"}
    dst = tmp_path / "coco"
    assert main(["data", "convert", str(ann), str(dst)]) == 0
    coco = read_coco(dst / "annotations" / "train.json")
    assert len(coco.annotations) == 3
    assert sum(a.num_keypoints for a in coco.annotations) == 4


def _dlc_project(root: Path) -> tuple[Path, list[list[str]]]:
    """A multi-animal DeepLabCut project whose CSV rows are ragged (the unique body part's
    cells left off where unlabelled, as SLEAP's exports write them)."""
    folder = root / "labeled-data" / "v1"
    folder.mkdir(parents=True)
    (root / "config.yaml").write_text(
        "scorer: me\nmultianimalproject: true\nindividuals: [mouse1, mouse2]\n"
        "multianimalbodyparts: [head, tail]\nuniquebodyparts: [corner]\n"
        "skeleton: [[head, tail]]\n")  # fmt: skip
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), np.full((60, 80, 3), 70, np.uint8))
    rows = [
        ["scorer", "", ""] + ["me"] * 10,
        ["individuals", "", ""] + ["mouse1"] * 4 + ["mouse2"] * 4 + ["single"] * 2,
        ["bodyparts", "", ""] + ["head", "head", "tail", "tail"] * 2 + ["corner", "corner"],
        ["coords", "", ""] + ["x", "y"] * 5,
        ["labeled-data", "v1", "a.png", "10", "12", "20", "22", "50", "30", "", "", "5", "5"],
        ["labeled-data", "v1", "b.png", "11", "13", "21", "23"],  # ragged: the rest unlabelled
    ]  # fmt: skip
    return folder, rows


def test_dlc_ragged_multi_animal_rows_and_individual_names(tmp_path: Path) -> None:
    folder, rows = _dlc_project(tmp_path / "proj")
    (folder / "CollectedData_me.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    (ds,) = load_splits(tmp_path / "proj").values()
    assert not ds.report.problems
    animals = [a for a in ds.annotations if a.category_id == 1]
    assert [a.extra["individual"] for a in animals] == ["mouse1", "mouse2", "mouse1"]
    np.testing.assert_array_equal(animals[1].keypoints[:, 2], [2, 0])  # mouse2: head only
    np.testing.assert_array_equal(animals[2].keypoints[:, :2], [[11, 13], [21, 23]])
    assert sum(a.category_id == 2 for a in ds.annotations) == 1  # the corner, in a.png only


def test_dlc_h5_is_read_when_there_is_no_csv(tmp_path: Path) -> None:
    import pandas as pd

    folder, rows = _dlc_project(tmp_path / "proj")
    (folder / "CollectedData_me.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    (from_csv,) = load_splits(tmp_path / "proj").values()
    # the same labels as DeepLabCut stores them in HDF5: MultiIndex columns and index
    levels = ["scorer", "individuals", "bodyparts", "coords"]
    columns = pd.MultiIndex.from_arrays([r[3:] for r in rows[:4]], names=levels)
    index = pd.MultiIndex.from_tuples([tuple(r[:3]) for r in rows[4:]])
    values = [[float(v) if v else np.nan for v in (r[3:] + [""] * 10)[:10]] for r in rows[4:]]
    (folder / "CollectedData_me.csv").unlink()
    pd.DataFrame(values, index=index, columns=columns).to_hdf(folder / "CollectedData_me.h5",
                                                              key="df_with_missing")  # fmt: skip
    (from_h5,) = load_splits(tmp_path / "proj").values()
    assert not from_h5.report.problems and len(from_h5.annotations) == len(from_csv.annotations)
    for a, b in zip(from_h5.annotations, from_csv.annotations, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert a.extra == b.extra


def _sleap_project(root: Path) -> Path:
    """A SLEAP project written with sleap-io: a 6-frame video (each frame a distinct grey),
    two labelled frames, a user instance with a track and a missing node, a user instance
    corrected from a prediction, a predicted-only instance, a node outside the frame and a
    user instance with no node placed."""
    sio = pytest.importorskip("sleap_io")
    root.mkdir(parents=True)
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), 10,
                             (80, 64))  # fmt: skip
    for i in range(6):
        writer.write(np.full((64, 80, 3), 30 + 40 * i, np.uint8))
    writer.release()
    sk = sio.Skeleton(["head", "tail"], edges=[("head", "tail")], name="mouse")
    video = sio.Video.from_filename(str(root / "clip.mp4"))
    track = sio.Track("mouse1")
    pred = sio.PredictedInstance.from_numpy(np.array([[40.0, 30.0], [50, 40]]), skeleton=sk,
                                            score=0.8)  # fmt: skip
    fixed = sio.Instance.from_numpy(np.array([[41.0, 31.0], [51, 41]]), skeleton=sk)
    fixed.from_predicted = pred
    frames = [
        sio.LabeledFrame(video=video, frame_idx=2, instances=[
            sio.Instance.from_numpy(np.array([[10.0, 12.0], [np.nan, np.nan]]), skeleton=sk,
                                    track=track),
            fixed, pred,
            sio.PredictedInstance.from_numpy(np.array([[60.0, 50.0], [70, 55]]), skeleton=sk,
                                             score=0.5)]),
        sio.LabeledFrame(video=video, frame_idx=4, instances=[
            sio.Instance.from_numpy(np.array([[20.0, 20.0], [95.0, 20.0]]), skeleton=sk,
                                    track=track),
            sio.Instance.from_numpy(np.full((2, 2), np.nan), skeleton=sk)]),  # nothing placed
    ]  # fmt: skip
    sio.Labels(frames).save(str(root / "labels.slp"))
    return root / "labels.slp"


def test_sleap_project_converts_with_frames_tracks_and_predictions_kept_apart(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    slp = _sleap_project(tmp_path / "proj")
    (ds,) = load_splits(slp).values()
    assert ds.categories[0].schema.keypoints == ("head", "tail")
    assert ds.categories[0].schema.skeleton == ((0, 1),)
    assert len(ds.images) == 2 and len(ds.annotations) == 3  # user instances only
    assert [a.extra.get("track") for a in ds.annotations] == ["mouse1", None, "mouse1"]
    np.testing.assert_array_equal(ds.annotations[0].keypoints[:, 2], [2, 0])  # missing node
    np.testing.assert_array_equal(ds.annotations[2].keypoints[:, 2], [2, 0])  # outside: 0
    (problem,) = ds.report.problems
    assert problem.code == "kpt-outside" and "frame 4" in str(problem) and "'tail'" in str(problem)
    notes = {n.code: n for n in ds.report.notes}
    assert "1 predicted-only instances" in notes["sleap-predicted"].message
    assert "instance 1 has no node placed" in str(notes["sleap-empty"])  # said, not dropped
    with_pred = load_splits(slp, include_predicted=True)["train"]
    (extra,) = [a.extra for a in with_pred.annotations if a.extra.get("predicted")]
    assert len(with_pred.annotations) == 4 and extra["score"] == pytest.approx(0.5)
    assert main(["data", "check", str(slp)]) == 1  # the node outside the frame
    # convert: frames extracted from the video (frame 2 and 4 by their grey level)
    dst = tmp_path / "coco"
    assert main(["data", "convert", str(slp), str(dst), "--frame-format", "png"]) == 0
    coco = read_coco(dst / "annotations" / "train.json")
    assert len(coco.annotations) == 3
    assert sum(a.num_keypoints for a in coco.annotations) == sum(
        a.num_keypoints for a in ds.annotations) == 4  # fmt: skip
    greys = [int(cv2.imread(str(dst / "images" / im.file_name)).mean()) for im in coco.images]
    assert all(im.file_name.endswith(".png") for im in coco.images)
    assert abs(greys[0] - 110) <= 3 and abs(greys[1] - 190) <= 3, greys
    assert not (dst / ".posekit-frames").exists()


def test_sleap_video_found_next_to_the_file_or_in_video_dir(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    slp = _sleap_project(tmp_path / "proj")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (slp.parent / "clip.mp4").rename(moved / "clip.mp4")
    (ds,) = load_splits(slp).values()
    assert [p.code for p in ds.report.problems] == ["video-missing"] and not ds.images
    assert ds.report.skipped["frame (video-missing)"] == 2
    assert main(["data", "convert", str(slp), str(tmp_path / "a")]) == 2  # nothing to write
    assert main(["data", "convert", str(slp), str(tmp_path / "b"), "--video-dir",
                 str(moved)]) == 0  # fmt: skip
    assert len(list((tmp_path / "b" / "images").rglob("*.jpg"))) == 2


def test_sleap_package_with_embedded_frames_needs_no_video(tmp_path: Path) -> None:
    sio = pytest.importorskip("sleap_io")
    slp = _sleap_project(tmp_path / "proj")
    pkg = tmp_path / "proj" / "labels.pkg.slp"
    sio.load_slp(str(slp)).save(str(pkg), embed="user")
    (slp.parent / "clip.mp4").unlink()
    dst = tmp_path / "coco"
    assert main(["data", "convert", str(pkg), str(dst)]) == 0
    coco = read_coco(dst / "annotations" / "train.json")
    greys = [int(cv2.imread(str(dst / "images" / im.file_name)).mean()) for im in coco.images]
    assert len(coco.annotations) == 3 and abs(greys[0] - 110) <= 3 and abs(greys[1] - 190) <= 3
