"""No file runs code when read: each reader gets a file with a payload that would create a
marker file, and must refuse it in one line (exit 2) or read it safely, never obey it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_output import error_lines
from conftest import MOUSE, needs_mouse, tiny_slp
from posekit.cli.main import main
from posekit.data import load_splits


class Payload:
    """Pickles as a call of os.system that creates `marker` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return os.system, (f"touch {self.marker}",)


def _one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1, err
    for n in needles:
        assert n in err, err
    return err


def _dlc_single(root: Path, n: int = 3) -> tuple[Path, list[str]]:
    """A single-animal DeepLabCut project with `n` labelled 64x48 frames; its image paths."""
    import cv2

    folder = root / "labeled-data" / "v1"
    folder.mkdir(parents=True)
    (root / "config.yaml").write_text("scorer: me\nbodyparts: [head, tail]\n")
    names = []
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((48, 64, 3), 90, np.uint8))
        names.append(f"labeled-data/v1/img{i}.png")
    return folder, names


def _dlc_frame(names: list[str], values: np.ndarray):  # type: ignore[no-untyped-def]
    import pandas as pd

    columns = pd.MultiIndex.from_product([["me"], ["head", "tail"], ["x", "y"]],
                                         names=["scorer", "bodyparts", "coords"])  # fmt: skip
    return pd.DataFrame(values, index=names, columns=columns)


def test_dlc_h5_with_a_pickled_cell_is_refused_and_runs_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tables")
    folder, names = _dlc_single(tmp_path / "proj")
    marker = tmp_path / "pwned"
    df = _dlc_frame(names, np.arange(12.0).reshape(3, 4)).astype(object)
    df.iloc[1, 2] = Payload(marker)  # an object column: pandas pickles its cells
    df.to_hdf(folder / "CollectedData_me.h5", key="df_with_missing", mode="w")
    for args in (["data", "check", str(tmp_path / "proj")],
                 ["data", "convert", str(tmp_path / "proj"), str(tmp_path / "out")]):  # fmt: skip
        assert main(args) == 2
        _one_error_line(capsys, "CollectedData_me.h5", "refused", "pickled")
        assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_dlc_h5_with_a_pickled_attribute_is_refused_and_runs_nothing(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    import pickle

    h5py = pytest.importorskip("h5py")
    pytest.importorskip("tables")
    folder, names = _dlc_single(tmp_path / "proj")
    marker = tmp_path / "pwned"
    h5 = folder / "CollectedData_me.h5"
    _dlc_frame(names, np.arange(12.0).reshape(3, 4)).to_hdf(h5, key="df_with_missing", mode="w")
    with h5py.File(h5, "r+") as f:  # PyTables unpickles a byte string ending in "."
        f["df_with_missing/axis1"].attrs["name"] = np.bytes_(pickle.dumps(Payload(marker), 0))
    assert main(["data", "check", str(tmp_path / "proj")]) == 2
    _one_error_line(capsys, "axis1", "attribute 'name'", "refused")
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["fixed", "table"])
@needs_mouse()
def test_genuine_dlc_h5_reads_exactly_as_its_csv(tmp_path: Path, fmt: str) -> None:
    """The openfield project's labels as DeepLabCut writes them to HDF5 (both of pandas'
    formats: DeepLabCut's GUIs have used each) read back as the CSV does."""
    import pandas as pd

    pytest.importorskip("tables")
    project = tmp_path / "openfield"
    shutil.copytree(MOUSE, project, ignore=shutil.ignore_patterns("videos"))
    (csv,) = (project / "labeled-data" / "m4s1").glob("CollectedData_*.csv")
    from_csv = load_splits(project)["train"]
    # round_trip: the file's decimal numbers exactly (pandas 2's default parser can be off by
    # one unit in the last place, which would make the HDF5 file differ from the CSV)
    df = pd.read_csv(csv, header=[0, 1, 2], index_col=0, float_precision="round_trip")
    df.to_hdf(csv.with_suffix(".h5"), key="df_with_missing", format=fmt, mode="w")
    csv.unlink()
    from_h5 = load_splits(project)["train"]
    assert not from_h5.report.problems
    assert [im.file_name for im in from_h5.images] == [im.file_name for im in from_csv.images]
    assert len(from_h5.annotations) == len(from_csv.annotations) == 116
    for a, b in zip(from_h5.annotations, from_csv.annotations, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_array_equal(a.bbox, b.bbox)


def _png_header_only(width: int, height: int) -> bytes:
    """The start of a PNG that declares width x height (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))  # fmt: skip

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))  # fmt: skip


def test_sleap_package_frame_declaring_a_huge_size_is_refused_before_decoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `.pkg.slp` whose embedded PNG declares 20000x20000 pixels (1.2 GB decoded) is
    refused by the pixel cap, as an image file would be."""
    import cv2

    sio = pytest.importorskip("sleap_io")
    h5py = pytest.importorskip("h5py")
    files = []
    for i in range(2):
        files.append(tmp_path / f"f{i}.png")
        cv2.imwrite(str(files[-1]), np.full((48, 64, 3), 60, np.uint8))
    video = sio.Video.from_filename([str(f) for f in files])
    sk = sio.Skeleton(["head", "tail"], name="mouse")
    lf = sio.LabeledFrame(video=video, frame_idx=0, instances=[
        sio.Instance.from_numpy(np.array([[10.0, 10], [20, 30]]), skeleton=sk)])  # fmt: skip
    pkg = tmp_path / "labels.pkg.slp"
    sio.Labels([lf]).save(str(pkg), embed="user")
    with h5py.File(pkg, "r+") as f:
        frames = f["video0/video"]
        bomb = np.frombuffer(_png_header_only(20000, 20000), np.int8)
        assert frames.shape[1] >= len(bomb)
        row = np.zeros(frames.shape[1], np.int8)
        row[: len(bomb)] = bomb
        frames[0] = row
    for f in files:
        f.unlink()
    capsys.readouterr()  # sleap-io's own progress bars
    assert main(["data", "convert", str(pkg), str(tmp_path / "out")]) == 2
    _one_error_line(capsys, "20000x20000 pixels is over the limit", "image-too-large")


def test_labelme_image_path_climbing_out_and_huge_image_data_are_never_obeyed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """LabelMe's `imagePath` may not leave the folder (nor reach out through a link), and its
    `imageData` (base64 of the image) is never decoded: the image file is what is read."""
    import base64
    import json

    import cv2

    folder = tmp_path / "labelme"
    folder.mkdir()
    secret = tmp_path / "secret.png"
    cv2.imwrite(str(secret), np.full((48, 64, 3), 200, np.uint8))
    (folder / "link.png").symlink_to(secret)
    cv2.imwrite(str(folder / "ok.png"), np.full((48, 64, 3), 90, np.uint8))
    point = {"label": "head", "points": [[10, 10]], "group_id": None, "shape_type": "point"}
    bomb = base64.b64encode(_png_header_only(30000, 30000)).decode()
    for name, image_path, data in (("up", "../secret.png", None),
                                   ("abs", str(secret), None), ("link", "link.png", None),
                                   ("ok", "ok.png", bomb)):  # fmt: skip
        (folder / f"{name}.json").write_text(json.dumps({
            "shapes": [point], "imagePath": image_path, "imageData": data,
            "imageWidth": 64, "imageHeight": 48}))  # fmt: skip
    (ds,) = load_splits(folder).values()
    assert [im.file_name for im in ds.images] == ["ok.png"]
    problems = sorted((Path(p.file).name, p.code) for p in ds.report.problems)
    assert problems == [("abs.json", "image-path"), ("link.json", "image-path"),
                        ("up.json", "image-path")]  # fmt: skip
    out = tmp_path / "out"
    assert main(["data", "convert", str(folder), str(out), "--copy"]) == 0
    assert [p.name for p in (out / "images").iterdir()] == ["ok.png"]
    assert int(cv2.imread(str(out / "images" / "ok.png")).mean()) == 90


def test_label_studio_image_names_climbing_out_read_nothing_outside(tmp_path: Path) -> None:
    """A task's `data.image` is reduced to its file name and looked up in the image folder:
    `../` or an absolute path can neither read a file outside nor decide where one is
    written."""
    import json

    import cv2

    export = tmp_path / "ls"
    (export / "images").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "secret.png"), np.full((48, 64, 3), 200, np.uint8))
    cv2.imwrite(str(export / "images" / "a.png"), np.full((48, 64, 3), 90, np.uint8))
    point = {"id": "p", "type": "keypointlabels", "original_width": 64, "original_height": 48,
             "value": {"x": 10, "y": 10, "keypointlabels": ["head"]}}  # fmt: skip
    refs = ["/data/local-files/?d=../../secret.png", "../secret.png",
            str(tmp_path / "secret.png"), "/data/upload/1/a.png"]  # fmt: skip
    tasks = [{"id": i, "data": {"image": r}, "annotations": [{"result": [point]}]}
             for i, r in enumerate(refs)]  # fmt: skip
    (export / "export.json").write_text(json.dumps(tasks))
    (ds,) = load_splits(export / "export.json").values()
    assert all(ds.image_path(im).resolve().is_relative_to(export.resolve()) for im in ds.images)
    out = tmp_path / "out"
    assert main(["data", "convert", str(export / "export.json"), str(out), "--copy",
                 "--skip-missing-images"]) == 0  # fmt: skip
    written = sorted(p.name for p in (out / "images").iterdir())
    assert written == ["a.png"]
    assert int(cv2.imread(str(out / "images" / "a.png")).mean()) == 90


@pytest.mark.parametrize("stored", ["outside", "climbing"])
def test_sleap_video_path_leading_out_of_its_folder_is_not_followed(
    tmp_path: Path, stored: str
) -> None:
    """A .slp naming a video elsewhere on this machine (absolute, or `../`) does not get it
    read: the video is looked for by name beside the file and in --video-dir only."""
    sio = pytest.importorskip("sleap_io")
    secret = tmp_path / "private"
    slp = tiny_slp(tmp_path / "proj", video=secret / "secret.mp4")
    labels = sio.load_slp(str(slp))
    path = str(secret / "secret.mp4") if stored == "outside" else "../private/secret.mp4"
    labels.videos[0].replace_filename(path, open=False)
    labels.save(str(slp))
    (ds,) = load_splits(slp).values()
    assert not ds.images and [p.code for p in ds.report.problems] == ["video-missing"]
    assert "is not followed" in ds.report.problems[0].message
    assert main(["data", "convert", str(slp), str(tmp_path / "out")]) == 2
    # the user names the folder: then it is read
    (ds,) = load_splits(slp, video_dir=secret).values()
    assert len(ds.images) == 2 and not ds.report.problems
