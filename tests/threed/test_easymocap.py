"""EasyMocap's `intri.yml` / `extri.yml` (OpenCV FileStorage YAML) read as a rig in metres:
the same cameras as the rig they were written from; a missing key is one line."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from rigs3d import rig

from posekit.threed import CameraRig
from posekit.threed.rig_files import read_rig
from posekit.utils.errors import UserError


def _write(folder: Path, cameras: CameraRig, *, sizes: bool, rotation_key: str = "R") -> None:
    """The two files as EasyMocap's `write_camera` lays them out (its T in metres)."""
    intri = cv2.FileStorage(str(folder / "intri.yml"), cv2.FILE_STORAGE_WRITE)
    extri = cv2.FileStorage(str(folder / "extri.yml"), cv2.FILE_STORAGE_WRITE)
    for storage in (intri, extri):
        storage.write("names", [c.name for c in cameras.cameras])
    for c in cameras.cameras:
        intri.write(f"K_{c.name}", c.matrix)
        intri.write(f"dist_{c.name}", c.distortions[None])
        if sizes:
            intri.write(f"H_{c.name}", c.size[1])
            intri.write(f"W_{c.name}", c.size[0])
        rotation = c.rotation[:, None] if rotation_key == "R" else c.rotation_matrix
        extri.write(f"{rotation_key}_{c.name}", rotation)
        extri.write(f"T_{c.name}", c.translation[:, None] / 1000)
    intri.release()
    extri.release()


@pytest.mark.parametrize("rotation_key", ["R", "Rot"])
def test_easymocap_files_read_as_the_rig_they_came_from(tmp_path: Path, rotation_key: str) -> None:
    original = rig(3)
    _write(tmp_path, original, sizes=True, rotation_key=rotation_key)
    read = read_rig(tmp_path)
    assert read.unit == "m" and read.names == original.names
    points = np.random.default_rng(0).uniform(-500, 500, (20, 3))
    for a, b in zip(read.cameras, original.cameras, strict=True):
        assert a.size == b.size
        np.testing.assert_allclose(a.project(points / 1000), b.project(points), atol=1e-6)
    assert read_rig(tmp_path / "intri.yml").names == original.names


def test_a_file_without_sizes_takes_twice_the_principal_point(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write(tmp_path, rig(2), sizes=False)
    with caplog.at_level(logging.WARNING, logger="posekit.threed.easymocap"):
        read = read_rig(tmp_path)
    assert read.cameras[0].size == (1281, 720)  # principal point (640.5, 360.25), rounded
    assert "no image size for cam0, cam1: taken as twice the principal point" in caplog.text


def test_a_missing_key_is_one_line(tmp_path: Path) -> None:
    _write(tmp_path, rig(2), sizes=True)
    text = (tmp_path / "extri.yml").read_text()
    (tmp_path / "extri.yml").write_text(text.replace("T_cam1", "X_cam1"))
    with pytest.raises(UserError, match=r"extri\.yml: no T_cam1$"):
        read_rig(tmp_path)
    (tmp_path / "extri.yml").write_text("%YAML:1.0\n---\nnames: [a]\n")
    with pytest.raises(UserError, match=r"names \['a'\] differ"):
        read_rig(tmp_path)
