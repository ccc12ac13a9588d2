"""Format conversion: COCO <-> YOLO-pose round trip, DeepLabCut CSVs, posekit layout, splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import MOUSE, needs_mouse
from posekit.cli.main import main
from posekit.data import (
    DatasetError,
    check_dataset,
    convert,
    load_dataset,
    load_splits,
    read_dlc,
    read_yolo,
    split_dataset,
)
from posekit.data.synth import SynthConfig, generate


@pytest.fixture(scope="module")
def synth_people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "people"
    return generate(SynthConfig("person", images=24, imgsz=256, seed=3), out, val=0.25)


def _by_file(ds):
    anns = ds.annotations_by_image()
    return {
        im.file_name: sorted(anns[im.id], key=lambda a: (a.bbox[0], a.bbox[1])) for im in ds.images
    }


def test_coco_yolo_coco_round_trip_keeps_every_keypoint(synth_people: Path, tmp_path) -> None:
    yaml_path, _ = convert(synth_people, tmp_path / "yolo", to="yolo")
    back, report = convert(yaml_path, tmp_path / "back", to="coco")
    assert report.ok
    orig, again = load_splits(synth_people), load_splits(back)
    assert orig.keys() == again.keys() == {"train", "val"}
    for split in orig:
        a, b = _by_file(orig[split]), _by_file(again[split])
        assert a.keys() == b.keys()
        n = 0
        for name in a:
            assert len(a[name]) == len(b[name]), name
            for x, y in zip(a[name], b[name], strict=True):
                np.testing.assert_array_equal(x.keypoints[:, 2], y.keypoints[:, 2])
                lab = x.keypoints[:, 2] > 0
                np.testing.assert_allclose(x.keypoints[lab, :2], y.keypoints[lab, :2], atol=1e-6)
                np.testing.assert_allclose(x.bbox, y.bbox, atol=1e-6)
                n += 1
        assert n == len(orig[split].annotations) > 0
    cat = again["train"].categories[0]
    assert cat.schema == orig["train"].categories[0].schema  # names, skeleton, flip, sigmas


def test_yolo_two_value_variant_and_bad_rows(tmp_path: Path) -> None:
    import cv2

    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "train" / "x.jpg"), np.zeros((50, 100, 3), np.uint8))
    (tmp_path / "labels" / "train" / "x.txt").write_text(
        "0 0.5 0.5 0.4 0.4 0.5 0.4 0.0 0.0\n"  # kpt 2 unlabelled (0, 0)
        "0 0.5 0.5 0.4 0.4 0.5\n"  # wrong length: reported with file and line
    )
    (tmp_path / "data.yaml").write_text(
        "path: .\ntrain: images/train\nkpt_shape: [2, 2]\nnames: {0: stick}\n"
    )
    ds = read_yolo(tmp_path / "data.yaml")
    assert len(ds.annotations) == 1
    np.testing.assert_allclose(ds.annotations[0].keypoints, [[50, 20, 2], [0, 0, 0]])
    np.testing.assert_allclose(ds.annotations[0].bbox, [30, 15, 40, 20])
    (p,) = ds.report.problems
    assert p.code == "kpt-length" and "x.txt:2" in str(p) and "expected 9" in str(p)
    (tmp_path / "labels" / "train" / "lost.txt").write_text("0 0.5 0.5 0.1 0.1 0.5 0.5 0 0\n")
    ds = read_yolo(tmp_path / "data.yaml")
    orphan = [p for p in ds.report.problems if p.code == "orphan-label"]
    assert len(orphan) == 1 and "lost.txt" in str(orphan[0]) and "1 row(s)" in str(orphan[0])


def test_yolo_refuses_mixed_keypoint_counts(synth_people: Path, tmp_path: Path) -> None:
    from posekit.data import Category
    from posekit.schema import get_schema

    splits = load_splits(synth_people)
    splits["train"].categories.append(Category(2, "arm", get_schema("arm")))
    from posekit.data import write_yolo

    with pytest.raises(DatasetError, match="one kpt_shape"):
        write_yolo(splits, tmp_path / "y")


SINGLE_CSV = """scorer,me,me,me,me
bodyparts,snout,snout,tail,tail
coords,x,y,x,y
labeled-data/v1/img0.png,10.5,20.25,30,40
labeled-data/v1/img1.png,,,31,41
labeled-data/v1/img2.png,,,,
"""

MULTI_CSV = """scorer,,,me,me,me,me,me,me,me,me,me,me
individuals,,,mus1,mus1,mus1,mus1,mus2,mus2,mus2,mus2,single,single
bodyparts,,,snout,snout,tail,tail,snout,snout,tail,tail,feeder,feeder
coords,,,x,y,x,y,x,y,x,y,x,y
labeled-data,v1,img0.png,10,20,30,40,50,60,70,80,5,5
labeled-data,v1,img1.png,11,21,31,41,,,,,6,6
"""


def _dlc_project(tmp_path: Path, csv_text: str, config: str) -> Path:
    import cv2

    (tmp_path / "labeled-data" / "v1").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(
            str(tmp_path / "labeled-data" / "v1" / f"img{i}.png"), np.zeros((100, 120, 3), np.uint8)
        )
    (tmp_path / "labeled-data" / "v1" / "CollectedData_me.csv").write_text(csv_text)
    (tmp_path / "config.yaml").write_text(config)
    return tmp_path


def test_dlc_single_animal(tmp_path: Path) -> None:
    proj = _dlc_project(
        tmp_path, SINGLE_CSV, "bodyparts: [snout, tail]\nskeleton: [[snout, tail]]\n"
    )
    ds = read_dlc(proj)
    assert len(ds.images) == 3 and len(ds.annotations) == 2  # img2 has no labelled keypoint
    a0, a1 = ds.annotations
    np.testing.assert_allclose(a0.keypoints, [[10.5, 20.25, 2], [30, 40, 2]])
    np.testing.assert_allclose(a1.keypoints, [[0, 0, 0], [31, 41, 2]])  # empty cell: unlabelled
    # bbox: keypoint extent grown by max(10 px, 10 % of the longer side), clipped to the image
    np.testing.assert_allclose(a0.bbox, [0.5, 10.25, 39.5, 39.75])
    assert ds.categories[0].schema.skeleton == ((0, 1),)
    assert ds.report.ok


def test_dlc_multi_animal_with_unique_bodyparts(tmp_path: Path) -> None:
    proj = _dlc_project(tmp_path, MULTI_CSV, "multianimalbodyparts: [snout, tail]\n")
    ds = read_dlc(proj / "labeled-data" / "v1" / "CollectedData_me.csv")
    names = {c.id: c.name for c in ds.categories}
    assert sorted(names.values()) == ["animal", "single"]
    per_cat = ds.stats().instances
    assert per_cat == {1: 3, 2: 2}  # mus1 x2, mus2 x1 (absent in img1); feeder x2
    assert [im.file_name for im in ds.images] == [
        "labeled-data/v1/img0.png",
        "labeled-data/v1/img1.png",
    ]
    assert ds.report.ok


def test_dlc_short_rows_read_as_pandas_does_and_long_rows_are_reported(tmp_path: Path) -> None:
    # a row cut after the tail's x: pandas reads the missing y as NaN -> one half of a point
    csv = SINGLE_CSV.replace("10.5,20.25,30,40", "10.5,20.25,30")
    ds = read_dlc(_dlc_project(tmp_path / "short", csv, "bodyparts: [snout, tail]\n"))
    (p,) = ds.report.problems
    assert p.code == "kpt-partial" and "CollectedData_me.csv:4" in str(p)
    assert ds.report.skipped == {"keypoint (kpt-partial)": 1}
    # a row longer than the header cannot be placed
    csv = SINGLE_CSV.replace("10.5,20.25,30,40", "10.5,20.25,30,40,50")
    ds = read_dlc(_dlc_project(tmp_path / "long", csv, "bodyparts: [snout, tail]\n"))
    (p,) = ds.report.problems
    assert p.code == "row-length" and "CollectedData_me.csv:4" in str(p)
    assert ds.report.skipped == {"row (row-length)": 1}


def test_dlc_reports_bad_cells_and_missing_images(tmp_path: Path) -> None:
    csv = SINGLE_CSV.replace("31,41", "31,").replace("img2.png,,,,", "gone.png,1,2,3,4")
    ds = read_dlc(_dlc_project(tmp_path, csv, "bodyparts: [snout, tail]\n"))
    codes = {p.code: str(p) for p in ds.report.problems}
    assert "only one of x and y" in codes["kpt-partial"] and ":5" in codes["kpt-partial"]
    assert "gone.png not found" in codes["image-missing"]
    assert ds.report.skipped["row (image-missing)"] == 1


@needs_mouse()
def test_openfield_mouse_converts_clean(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mouse"
    assert main(["data", "convert", str(MOUSE), str(out), "--to", "coco"]) == 0
    ds = load_dataset(out, "train", strict=True)
    st = ds.stats()
    assert (st.images, st.total_instances, st.labelled_keypoints()) == (116, 116, 464)
    assert ds.categories[0].schema.keypoints == ("snout", "leftear", "rightear", "tailbase")
    assert ds.categories[0].schema.flip_idx == (0, 2, 1, 3)
    capsys.readouterr()
    assert main(["data", "check", str(out)]) == 0
    assert "clean" in capsys.readouterr().out
    # the CSV alone works too, and the split helper cuts it 50/50 by a seed
    assert main(["data", "split", str(out), "--val", "0.5", "--seed", "0"]) == 0
    halves = load_splits(out)
    assert len(halves["train"].images) == len(halves["val"].images) == 58


def test_split_is_seeded_disjoint_and_complete(synth_people: Path) -> None:
    from posekit.data.split import merge_splits

    ds = merge_splits(load_splits(synth_people))
    a = split_dataset(ds, val=0.2, test=0.1, seed=7)
    b = split_dataset(ds, val=0.2, test=0.1, seed=7)
    c = split_dataset(ds, val=0.2, test=0.1, seed=8)
    ids = {s: {im.id for im in d.images} for s, d in a.items()}
    assert ids == {s: {im.id for im in d.images} for s, d in b.items()}
    assert ids != {s: {im.id for im in d.images} for s, d in c.items()}
    assert set.union(*ids.values()) == {im.id for im in ds.images}
    assert sum(len(v) for v in ids.values()) == len(ds.images)
    assert (len(ids["val"]), len(ids["test"])) == (5, 2)
    assert sum(len(d.annotations) for d in a.values()) == len(ds.annotations)


def test_posekit_yaml_is_accepted_wherever_a_folder_is(synth_people: Path, tmp_path) -> None:
    dst = tmp_path / "copy"
    shutil.copytree(synth_people, dst)
    (dst / "mydata.yaml").write_text(
        "path: .\nimages: images\ntrain: annotations/train.json\nval: annotations/val.json\n"
    )
    from_yaml = load_splits(dst / "mydata.yaml")
    from_dir = load_splits(dst)
    assert {k: len(v.annotations) for k, v in from_yaml.items()} == {
        k: len(v.annotations) for k, v in from_dir.items()
    }
    assert all(not r.problems for r in check_dataset(dst / "mydata.yaml"))
