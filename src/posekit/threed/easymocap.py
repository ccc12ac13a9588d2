"""EasyMocap's calibration: `intri.yml` (per camera `K_<name>`, `dist_<name>`, and in newer
files `H_<name>`, `W_<name>`) and `extri.yml` (`R_<name>`, a Rodrigues vector, or
`Rot_<name>`, and `T_<name>`, in metres), OpenCV FileStorage YAML, both listing `names`.

Files without the image size get twice the principal point (as Pose2Sim's converter does),
said in one log line, since a size is only a guess then.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from posekit.threed.cameras import Camera, CameraRig
from posekit.utils.errors import UserError

log = logging.getLogger(__name__)

#: the largest calibration file read
MAX_BYTES = 16 << 20


def _storage(path: Path) -> cv2.FileStorage:
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    if path.stat().st_size > MAX_BYTES:
        raise UserError(f"{path}: more than the {MAX_BYTES} bytes a calibration file may have")
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1]
        raise UserError(f"{path}: not an OpenCV YAML file ({reason})") from None
    if not storage.isOpened():
        raise UserError(f"{path}: not an OpenCV YAML file")
    return storage


def _names(storage: cv2.FileStorage, path: Path) -> list[str]:
    node = storage.getNode("names")
    if node.empty() or not node.isSeq():
        raise UserError(f"{path}: no 'names' list of cameras")
    return [node.at(i).string() for i in range(node.size())]


def _matrix(storage: cv2.FileStorage, key: str, path: Path, size: int | None) -> np.ndarray | None:
    node = storage.getNode(key)
    if node.empty():
        return None
    value = node.mat()
    if value is None or (size is not None and value.size != size):
        raise UserError(f"{path}: {key} is not a matrix of {size} numbers")
    return np.asarray(value, dtype=np.float64)


def read_easymocap(folder_or_intri: str | Path) -> CameraRig:
    """A rig (in metres) from EasyMocap's `intri.yml` and the `extri.yml` beside it (or a
    folder holding both); every problem is one line naming the file and the key."""
    given = Path(folder_or_intri)
    intri = given / "intri.yml" if given.is_dir() else given
    extri = intri.with_name("extri.yml")
    inner, outer = _storage(intri), _storage(extri)
    names = _names(inner, intri)
    if _names(outer, extri) != names:
        raise UserError(f"{extri}: names {_names(outer, extri)} differ from {intri}'s {names}")
    cameras, guessed = [], []
    for name in names:
        k = _matrix(inner, f"K_{name}", intri, 9)
        if k is None:
            raise UserError(f"{intri}: no K_{name}")
        dist = _matrix(inner, f"dist_{name}", intri, None)
        dist = np.zeros(5) if dist is None else dist.ravel()
        rotation = _matrix(outer, f"R_{name}", extri, 3)
        if rotation is None:
            matrix = _matrix(outer, f"Rot_{name}", extri, 9)
            if matrix is None:
                raise UserError(f"{extri}: no R_{name} or Rot_{name}")
            rotation = cv2.Rodrigues(matrix.reshape(3, 3))[0]
        translation = _matrix(outer, f"T_{name}", extri, 3)
        if translation is None:
            raise UserError(f"{extri}: no T_{name}")
        h, w = inner.getNode(f"H_{name}"), inner.getNode(f"W_{name}")
        k = k.reshape(3, 3)
        if h.empty() or w.empty():
            size = (round(2 * k[0, 2]), round(2 * k[1, 2]))
            guessed.append(name)
        else:
            size = (int(w.real()), int(h.real()))
        cameras.append(Camera(name, size, k, dist, rotation.ravel(), translation.ravel()))
    if guessed:
        log.warning(
            "%s: no image size for %s: taken as twice the principal point",
            intri,
            ", ".join(guessed),
        )
    return CameraRig(cameras, unit="m")
