"""Qualisys calibrations (`.qca.txt`, the form Pose2Sim's demos ship) as a camera rig, read
as Pose2Sim's converter reads them, so that a rig made here equals the `Calib.toml` a Pose2Sim
user gets from the same file.

A Qualisys camera stores its pose in the world (`transform`: the rotation's rows r11..r33 and
the camera's position x, y, z in millimetres), with the camera looking along -z and y up;
OpenCV's camera looks along +z with y down, a half turn about x. Intrinsics are in 1/64 pixel
units of the sensor (`focalLengthU`, `centerPointU` ...), the principal point relative to the
video window (`fov_video`); Pose2Sim divides the distortion coefficients by 64 as well, and so
does this reader. Translations are converted to metres (the rig's unit), as Pose2Sim does.
Only video cameras (model "video" or "none") are kept, in natural order of their names.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from posekit.threed.cameras import Camera, CameraRig
from posekit.utils.errors import UserError
from posekit.utils.xml_files import DoctypeError, parse_without_doctype

#: Qualisys' sub-pixel unit: intrinsics are stored in 1/64 pixel.
SUBPIXELS = 64.0
#: A half turn about x: a Qualisys camera frame (-z forward, y up) to OpenCV's.
FLIP = np.diag([1.0, -1.0, -1.0])


def _natural(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _number(element: ET.Element, key: str, where: str) -> float:
    try:
        value = float(element.attrib[key])
    except (KeyError, ValueError):
        raise UserError(f"{where}: no number {key!r}") from None
    if not np.isfinite(value):
        raise UserError(f"{where}: {key} is not finite")
    return value


def read_qca(path: str | Path) -> CameraRig:
    """The video cameras of a Qualisys `.qca.txt` file as a rig in metres (see the module
    docstring); every problem is one line naming the file and the camera."""
    path = Path(path)
    try:
        root = parse_without_doctype(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except DoctypeError:
        raise UserError(f"{path}: refused: the XML declares a DOCTYPE or entities") from None
    except ET.ParseError as e:
        raise UserError(f"{path}: invalid XML: {e}") from None
    cameras = []
    for tag in root.findall("cameras/camera"):
        name = tag.attrib.get("serial", "?")
        where = f"{path}: camera {name}"
        if not any(m in tag.attrib.get("model", "").lower() for m in ("video", "none")):
            continue  # a marker camera
        fov, transform, intrinsic = (tag.find(k) for k in ("fov_video", "transform", "intrinsic"))
        if fov is None or transform is None or intrinsic is None:
            raise UserError(f"{where}: needs fov_video, transform and intrinsic")
        left, top = _number(fov, "left", where), _number(fov, "top", where)
        width = int(_number(fov, "right", where) - left + 1)
        height = int(_number(fov, "bottom", where) - top + 1)
        fu, fv = (
            _number(intrinsic, k, where) / SUBPIXELS for k in ("focalLengthU", "focalLengthV")
        )
        cu = _number(intrinsic, "centerPointU", where) / SUBPIXELS - left
        cv = _number(intrinsic, "centerPointV", where) / SUBPIXELS - top
        keys = ("radialDistortion1", "radialDistortion2", "tangentalDistortion1")
        distortions = [
            _number(intrinsic, k, where) / SUBPIXELS for k in (*keys, "tangentalDistortion2")
        ]
        rows = np.array(
            [[_number(transform, f"r{i}{j}", where) for j in (1, 2, 3)] for i in (1, 2, 3)]
        )
        centre = np.array([_number(transform, k, where) for k in "xyz"]) / 1000.0  # metres
        # rows r1., r2., r3. are the world -> Qualisys-camera rotation; OpenCV's is a half
        # turn further about x
        rotation = FLIP @ rows
        translation = -rotation @ centre
        cameras.append(
            Camera(
                name=name,
                size=(width, height),
                matrix=[[fu, 0.0, cu], [0.0, fv, cv], [0.0, 0.0, 1.0]],
                distortions=distortions,
                rotation=cv2.Rodrigues(rotation)[0].ravel(),
                translation=translation,
            )
        )
    if not cameras:
        raise UserError(f"{path}: no video camera")
    cameras.sort(key=lambda c: _natural(c.name))
    return CameraRig(cameras, unit="m", metadata={"source": path.name})
