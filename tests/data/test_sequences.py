"""Sequence datasets (what lifting networks train on): written and read back exactly, and a
broken or hostile folder is one located line, never a pickle run or a huge allocation."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from posekit.data.problems import DatasetError
from posekit.data.sequences import (
    is_sequence_dataset,
    load_sequence_splits,
    write_sequence_dataset,
)
from posekit.schema import get_schema
from posekit.utils.errors import UserError

COCO = get_schema("coco17")


def arrays(clips: int = 2, frames: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    k2 = rng.uniform(0, 500, (clips, frames, 17, 3)).astype(np.float32)
    k2[0, 0, 0, :2] = np.nan
    return {
        "keypoints2d": k2,
        "keypoints3d": rng.normal(0, 1, (clips, frames, 17, 3)).astype(np.float32),
        "intrinsics": np.tile([800.0, 800.0, 319.5, 239.5], (clips, 1)),
        "image_size": np.tile([640, 480], (clips, 1)),
    }


def test_round_trip(tmp_path: Path) -> None:
    written = {"train": arrays(3), "val": arrays(1)}
    index = write_sequence_dataset(tmp_path / "seq", COCO, written)
    assert is_sequence_dataset(tmp_path / "seq") and is_sequence_dataset(index)
    splits = load_sequence_splits(tmp_path / "seq")
    assert sorted(splits) == ["train", "val"] and len(splits["train"]) == 3
    train = splits["train"]
    assert train.schema == COCO and train.frames == 5 and train.categories[0].schema == COCO
    for name, value in written["train"].items():
        np.testing.assert_array_equal(getattr(train, name), value)


def _write_split(folder: Path, **changes: np.ndarray) -> Path:
    write_sequence_dataset(folder, COCO, {"train": arrays()})
    data = {**arrays(), **changes}
    np.savez(folder / "train.npz", **data)
    return folder


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keypoints3d": np.zeros((2, 4, 17, 3))}, r"keypoints3d has shape \(2, 4, 17, 3\)"),
        ({"keypoints2d": np.zeros((2, 5, 16, 3))}, r"keypoints2d has shape .*\(clips, frames, 17"),
        ({"intrinsics": np.array([[0, 800, 1, 1], [1, 1, 1, 1.0]])}, "clip 0: intrinsics"),
        ({"keypoints3d": np.full((2, 5, 17, 3), np.inf)}, "infinities"),
        ({"image_size": np.array([["a", "b"], ["c", "d"]])}, "image_size is <U1, not numbers"),
    ],
)
def test_a_broken_split_is_one_located_line(tmp_path: Path, changes: dict, message: str) -> None:
    folder = _write_split(tmp_path / "seq", **changes)
    with pytest.raises(DatasetError, match=message) as e:
        load_sequence_splits(folder)
    assert str(folder / "train.npz") in str(e.value) and "\n" not in str(e.value)


def test_an_object_array_is_refused_without_unpickling(tmp_path: Path) -> None:
    folder = _write_split(tmp_path / "seq")
    np.savez(folder / "train.npz", **{**arrays(), "intrinsics": np.array([{"a": 1}] * 2)})
    with pytest.raises(UserError, match="'intrinsics' holds Python objects"):
        load_sequence_splits(folder)


def test_a_huge_declared_array_is_refused_before_it_is_allocated(tmp_path: Path) -> None:
    """A 300-byte member whose header declares 8 TB: refused by the header, not read."""
    folder = _write_split(tmp_path / "seq")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    with zipfile.ZipFile(folder / "train.npz", "w") as z:
        for name, value in arrays().items():
            buffer = io.BytesIO()
            np.save(buffer, value)
            z.writestr(
                f"{name}.npy", header.getvalue() if name == "keypoints3d" else buffer.getvalue()
            )
    assert (folder / "train.npz").stat().st_size < 10_000
    with pytest.raises(UserError, match=r"declare more than .* bytes \(at 'keypoints3d'"):
        load_sequence_splits(folder)


def test_the_index_is_checked(tmp_path: Path) -> None:
    folder = _write_split(tmp_path / "seq")
    index = folder / "sequences.yaml"
    meta = yaml.safe_load(index.read_text())
    for change, message in [
        ({"format": "other/1"}, "format is 'other/1'"),
        ({"unit": "mm"}, "sequences are in metres"),
        ({"splits": {"train": "../../etc/passwd.npz"}}, "climbs out of its folder"),
        ({"splits": {"train": "nope.npz"}}, "split 'train': .*nope.npz not found"),
        ({"schema": {"name": "x"}}, "schema:"),
    ]:
        index.write_text(yaml.safe_dump({**meta, **change}))
        with pytest.raises(UserError, match=message):
            load_sequence_splits(folder)
