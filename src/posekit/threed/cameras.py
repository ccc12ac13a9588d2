"""Calibrated cameras: a rig read and written as Anipose's / Pose2Sim's `calibration.toml`.

Each camera is a table (`[cam_0]`, ...) with the keys both tools use, so files move between
them: `name`, `size` ([width, height] pixels), `matrix` (3x3 intrinsics), `distortions`
(OpenCV's k1, k2, p1, p2[, k3 ...], or k1..k4 with `fisheye = true`), `rotation` (Rodrigues
vector, world to camera) and `translation` (world to camera, in the rig's unit). A
`[metadata]` table keeps anything else (Pose2Sim's `adjusted`, `error`; posekit's `unit`).
Floats are written with Python's shortest exact representation, so a round trip is exact.
Projection and undistortion are OpenCV's own (`cv2.projectPoints`, `cv2.undistortPoints`, and
their `cv2.fisheye` twins), over any number of points at once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posekit.threed.lens import distort_standard, undistort_standard
from posekit.utils.errors import UserError
from posekit.utils.paths import write_text_replacing

#: The keys of one camera's table, as Anipose and Pose2Sim write them.
CAMERA_KEYS = ("name", "size", "matrix", "distortions", "rotation", "translation")


@dataclass
class Camera:
    """One calibrated camera (see the module docstring for each field's meaning)."""

    name: str
    size: tuple[int, int]  # (width, height) in pixels
    matrix: np.ndarray  # (3, 3)
    distortions: np.ndarray  # (N,) OpenCV's model, or (4,) fisheye
    rotation: np.ndarray  # (3,) Rodrigues, world -> camera
    translation: np.ndarray  # (3,) world -> camera, in the rig's unit
    fisheye: bool = False

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        self.distortions = np.asarray(self.distortions, dtype=np.float64).reshape(-1)
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3)
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(3)
        if self.fisheye and len(self.distortions) != 4:
            raise UserError(f"camera {self.name!r}: a fisheye camera has 4 distortions")
        fx, fy = self.matrix[0, 0], self.matrix[1, 1]
        if not (fx > 0 and fy > 0 and np.array_equal(self.matrix[2], [0.0, 0.0, 1.0])):
            raise UserError(
                f"camera {self.name!r}: the intrinsic matrix must have focal lengths > 0 and "
                f"a last row 0 0 1 (singular or not a camera matrix: {self.matrix.tolist()})"
            )

    @property
    def rotation_matrix(self) -> np.ndarray:
        """(3, 3) world -> camera rotation."""
        return cv2.Rodrigues(self.rotation)[0]

    @property
    def extrinsics(self) -> np.ndarray:
        """(3, 4) [R | t]: world points to this camera's normalised image coordinates."""
        return np.hstack([self.rotation_matrix, self.translation[:, None]])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) pixels of world points (..., 3), lens distortion included."""
        pts = np.asarray(points, dtype=np.float64)
        flat = pts.reshape(-1, 1, 3)
        if self._standard:
            return distort_standard(
                pts @ self.rotation_matrix.T + self.translation, self.matrix, self.distortions
            )
        if self.fisheye:
            px, _ = cv2.fisheye.projectPoints(
                flat, self.rotation, self.translation, self.matrix, self.distortions
            )
        else:
            px, _ = cv2.projectPoints(
                flat, self.rotation, self.translation, self.matrix, self.distortions
            )
        return px.reshape(*pts.shape[:-1], 2)

    @property
    def _standard(self) -> bool:
        """OpenCV's standard model (k1 k2 p1 p2 k3, no skew), which `posekit.threed.lens`
        computes elementwise; the fisheye, rational, thin-prism and tilted models go through
        OpenCV's own functions."""
        d = self.distortions
        return not self.fisheye and self.matrix[0, 1] == 0 and len(d) >= 4 and not d[5:].any()

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) normalised image coordinates (x / z, y / z in the camera frame) of pixels
        (..., 2): the inverse of `project`'s intrinsics and distortion."""
        px = np.asarray(pixels, dtype=np.float64)
        flat = px.reshape(-1, 2)
        if self.fisheye:
            out = cv2.fisheye.undistortPoints(flat[:, None], self.matrix, self.distortions)
            return out.reshape(px.shape)
        k = self.matrix
        if not self._standard:
            return self._opencv_undistort(flat).reshape(px.shape)
        distorted = (flat - k[:2, 2]) / [k[0, 0], k[1, 1]]
        out, converged = undistort_standard(distorted, self.distortions[:5])
        if not converged.all():
            out[~converged] = self._opencv_undistort(flat[~converged])
        return out.reshape(px.shape)

    def _opencv_undistort(self, flat: np.ndarray) -> np.ndarray:
        """OpenCV's iteration, run to convergence (its default stops after 5 steps,
        hundredths of a pixel off for strong distortion)."""
        if not len(flat):
            return flat.copy()
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14)
        out = cv2.undistortPoints(
            flat[:, None], self.matrix, self.distortions, None, None, criteria=criteria
        )
        return out.reshape(-1, 2)

    def to_table(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": [int(self.size[0]), int(self.size[1])],
            "matrix": self.matrix.tolist(),
            "distortions": self.distortions.tolist(),
            "rotation": self.rotation.tolist(),
            "translation": self.translation.tolist(),
            "fisheye": bool(self.fisheye),
        }

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> Camera:
        missing = [k for k in CAMERA_KEYS if k not in table]
        if missing:
            raise UserError(f"{where}: no {', '.join(missing)}")
        try:
            width, height = (int(v) for v in table["size"])
            camera = cls(
                name=str(table["name"]),
                size=(width, height),
                matrix=table["matrix"],
                distortions=table["distortions"],
                rotation=table["rotation"],
                translation=table["translation"],
                fisheye=bool(table.get("fisheye", False)),
            )
        except (TypeError, ValueError, IndexError) as e:
            raise UserError(f"{where}: malformed camera ({e})") from None
        arrays = (camera.matrix, camera.distortions, camera.rotation, camera.translation)
        if not all(np.isfinite(a).all() for a in arrays) or min(camera.size) <= 0:
            raise UserError(f"{where}: a camera's values must be finite and its size positive")
        return camera


@dataclass
class CameraRig:
    """Several calibrated cameras in one world frame, and the metadata of their file."""

    cameras: list[Camera]
    unit: str = "mm"  # the unit of translations, hence of triangulated points
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise UserError(f"camera names must be unique, got {names}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def camera(self, name: str) -> Camera:
        for c in self.cameras:
            if c.name == name:
                return c
        raise UserError(f"no camera {name!r} in the rig (it has {', '.join(self.names)})")

    @classmethod
    def read_toml(cls, path: str | Path) -> CameraRig:
        """A rig from a `calibration.toml` (Anipose's or Pose2Sim's); cameras in file order."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: not a calibration TOML ({e})") from None
        metadata = dict(data.pop("metadata", {}))
        unit = str(metadata.pop("unit", "mm"))
        tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
        if not tables:
            raise UserError(f"{path}: no camera tables")
        cameras = [Camera.from_table(v, f"{path} [{k}]") for k, v in tables]
        return cls(cameras, unit, metadata)

    def write_toml(self, path: str | Path) -> Path:
        """Write the rig as a `calibration.toml` (atomically: a new file renamed into place)."""
        import tomli_w

        doc: dict[str, Any] = {f"cam_{i}": c.to_table() for i, c in enumerate(self.cameras)}
        doc["metadata"] = {**self.metadata, "unit": self.unit}
        return write_text_replacing(path, tomli_w.dumps(doc))
