"""Paths from dataset files stay inside their folder; writes stay inside the output folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from posekit.cli.main import main
from posekit.data import KeypointDataset, check_dataset, convert, read_coco, read_dlc, write_yolo
from posekit.utils.paths import PathEscapeError, escapes, join_inside


@pytest.mark.parametrize(
    ("relative", "why"),
    [
        ("a.png", None),
        ("sub/dir/a.png", None),
        ("sub/../a.png", None),
        ("./a.png", None),
        ("../a.png", "climbs out"),
        ("sub/../../a.png", "climbs out"),
        ("/etc/passwd", "absolute"),
        ("C:\\images\\a.png", "absolute"),
        ("..\\a.png", "climbs out"),
        ("", "empty"),
    ],
)
def test_escapes(relative: str, why: str | None) -> None:
    got = escapes(relative)
    assert (got is None) if why is None else (why in got)


def test_join_inside() -> None:
    assert join_inside("out", "a/./b.png") == Path("out/a/b.png")
    with pytest.raises(PathEscapeError, match="climbs out"):
        join_inside("out", "a/../../b.png")


def _write_png(path: Path, w: int = 64, h: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))


@pytest.mark.parametrize("kind", ["dotdot", "absolute"])
def test_escaping_file_name_is_reported_and_never_written_through(
    tmp_path: Path, valid_coco, make_dataset, kind: str
) -> None:
    """The reported attack: a `file_name` that makes `data convert --to yolo` overwrite a
    `.txt` outside the destination."""
    victim_img = tmp_path / "victim.png"
    _write_png(victim_img)
    victim_txt = tmp_path / "victim.txt"
    victim_txt.write_text("precious\n")
    out = tmp_path / "out"
    # out/labels/train/<name>.txt lands on tmp_path/victim.txt in the old code
    name = "../../../victim.png" if kind == "dotdot" else str(victim_img)
    valid_coco["images"][0]["file_name"] = name
    root = make_dataset(valid_coco)

    ds = read_coco(root / "annotations" / "train.json")
    assert [im.id for im in ds.images] == [2]
    (p,) = [p for p in ds.report.problems if p.code == "image-path"]
    assert p.image_id == 1 and p.field == "file_name"
    assert ds.report.skipped["image (image-path)"] == 1

    assert main(["data", "check", str(root)]) == 1
    main(["data", "convert", str(root), str(out), "--to", "yolo"])
    assert victim_txt.read_text() == "precious\n"
    assert sorted(p.name for p in (out / "labels" / "train").iterdir()) == ["b.txt"]


def test_writers_refuse_an_escaping_name(tmp_path: Path, valid_coco, make_dataset) -> None:
    """Defence in depth: a dataset built in memory with such a name is refused on write."""
    ds = read_coco(make_dataset(valid_coco) / "annotations" / "train.json")
    ds.images[0].file_name = "../../x.png"
    with pytest.raises(PathEscapeError):
        write_yolo({"train": ds}, tmp_path / "out")
    assert not (tmp_path / "x.txt").exists()


def test_symlinked_image_is_copied_by_content(tmp_path: Path, valid_coco, make_dataset) -> None:
    root = make_dataset(valid_coco)
    elsewhere = tmp_path / "elsewhere" / "a.png"
    elsewhere.parent.mkdir()
    shutil.move(root / "images" / "a.png", elsewhere)
    (root / "images" / "a.png").symlink_to(elsewhere)

    out, _ = convert(root, tmp_path / "out")
    placed = out / "images" / "a.png"
    assert not placed.is_symlink()
    assert placed.stat().st_ino != elsewhere.stat().st_ino  # not a hard link to their file
    assert placed.read_bytes() == elsewhere.read_bytes()
    # our own regular files are still hard-linked (cheap), as documented
    assert (out / "images" / "b.png").stat().st_ino == (root / "images" / "b.png").stat().st_ino


def test_dlc_row_outside_the_project_is_reported(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    folder = project / "labeled-data" / "v1"
    _write_png(folder / "img0.png")
    _write_png(tmp_path / "outside.png")
    (project / "config.yaml").write_text("bodyparts: [snout, tail]\nscorer: me\n")
    rows = [
        "scorer,,,me,me,me,me",
        "bodyparts,,,snout,snout,tail,tail",
        "coords,,,x,y,x,y",
        "labeled-data,v1,img0.png,10,10,20,20",
        "..,..,outside.png,10,10,20,20",
    ]
    (folder / "CollectedData_me.csv").write_text("\n".join(rows) + "\n")
    ds = read_dlc(project)
    assert [im.file_name for im in ds.images] == ["labeled-data/v1/img0.png"]
    (p,) = [p for p in ds.report.problems if p.code == "image-path"]
    assert "climbs out" in str(p) and p.line == 5


def test_check_locates_the_escaping_name(tmp_path: Path, valid_coco, make_dataset) -> None:
    valid_coco["images"][1]["file_name"] = "/etc/hostname"
    root = make_dataset(valid_coco)
    problems = [p for r in check_dataset(root) for p in r.problems if p.code == "image-path"]
    assert len(problems) == 1 and "image 2" in str(problems[0])
    assert json.loads((root / "annotations" / "train.json").read_text())  # input untouched


def test_image_path_guard_on_the_dataset(tmp_path: Path) -> None:
    from posekit.data import ImageInfo

    ds = KeypointDataset([ImageInfo(1, "../x.png", 4, 4)], [], [], tmp_path)
    with pytest.raises(PathEscapeError):
        ds.image_path(ds.images[0])
