"""LabelMe: one JSON file per image, keypoints as `point` shapes.

Points are grouped into instances by their `group_id`; the points of an image without one
form one instance (said in a note). A `rectangle` shape with the same `group_id` gives that
instance's box; without one the box is grown around its keypoints (as for DeepLabCut).
LabelMe has no visibility flag: a marked point is visible (v=2), an absent one unlabelled
(v=0). Keypoint names are the point labels, in order of first appearance over the files
(sorted by name), unless a schema names them.

Every problem is located (file, shape index, label) and what it leaves out is counted: a point
outside the image, a second point of one label in an instance, an image path that leaves the
folder, a file that is not LabelMe JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from posekit.data.dataset import (
    Annotation,
    Category,
    ImageInfo,
    KeypointDataset,
    far_outside,
    keypoint_instance,
)
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.schema import KeypointSchema
from posekit.utils.paths import escapes


def is_labelme(obj: Any) -> bool:
    """Whether a parsed JSON object is a LabelMe annotation file."""
    return isinstance(obj, dict) and isinstance(obj.get("shapes"), list) and "imagePath" in obj


def looks_like_labelme(path: Path) -> bool:
    """A quick look at the start of a JSON file (LabelMe writes `shapes` near the top; COCO
    files do not have the key)."""
    with path.open("rb") as f:
        head = f.read(4096)
    return b'"shapes"' in head


def labelme_files(path: Path) -> list[Path]:
    """The LabelMe files of a folder (sorted) or the one file given."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.json") if looks_like_labelme(p))


def read_labelme(path: str | Path, *, schema: KeypointSchema | None = None) -> KeypointDataset:
    """A folder of LabelMe files (or one file) as a keypoint dataset (see the module docs)."""
    path = Path(path)
    files = labelme_files(path)
    if not files:
        raise DatasetError(f"{path}: no LabelMe JSON files (with 'shapes') here")
    root = path if path.is_dir() else path.parent
    report = LoadReport()
    parsed: list[tuple[Path, dict[str, Any]]] = []
    for f in files:
        try:
            obj = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            report.add(Problem("json", f"not JSON: {e}", str(f)), skipped="file")
            continue
        if not is_labelme(obj):
            report.add(Problem("labelme", "not a LabelMe file (no 'shapes' and 'imagePath')",
                               str(f)), skipped="file")  # fmt: skip
            continue
        parsed.append((f, obj))
    names = list(schema.keypoints) if schema is not None else _point_labels(parsed)
    if not names:
        raise DatasetError(f"{path}: no point shapes in the LabelMe files")
    schema = schema or KeypointSchema.create(root.name or "object", names)
    index = {n: j for j, n in enumerate(names)}
    images: list[ImageInfo] = []
    anns: list[Annotation] = []
    ungrouped_images = 0
    for f, obj in parsed:
        image = _image(f, obj, root, len(images) + 1, report)
        if image is None:
            continue
        images.append(image)
        groups: dict[Any, np.ndarray] = {}
        boxes: dict[Any, np.ndarray] = {}
        for i, shape in enumerate(obj["shapes"]):
            where = {"file": str(f), "image_id": image.id, "field": f"shapes[{i}]"}
            if not isinstance(shape, dict):
                report.add(Problem("labelme", "a shape must be an object", **where),
                           skipped="shape")  # fmt: skip
                continue
            kind, label, gid = shape.get("shape_type", "polygon"), shape.get("label"), (
                shape.get("group_id"))  # fmt: skip
            pts = shape.get("points")
            if not (isinstance(gid, int | str | None) and isinstance(label, str | None)
                    and isinstance(kind, str)):  # fmt: skip
                report.add(Problem("labelme", "a shape's label, shape_type and group_id must "
                                   "be strings (group_id: an integer)", **where),
                           skipped="shape")  # fmt: skip
                continue
            if kind == "rectangle" and _points_ok(pts, 2):
                (x0, y0), (x1, y1) = pts
                boxes[gid] = np.array([min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)])
                continue
            if kind != "point":
                continue  # polygons, lines ...: not keypoints (counted below)
            if label not in index:
                report.add(Problem("labelme-label", f"point label {label!r} is not a keypoint "
                                   f"of {schema.name}", **where), skipped="point")  # fmt: skip
                continue
            if not _points_ok(pts, 1):
                report.add(Problem("labelme", "a point shape needs one [x, y] pair of numbers",
                                   **where), skipped="point")  # fmt: skip
                continue
            x, y = pts[0]
            if far_outside(np.array([x, y]), image.width, image.height):
                report.add(Problem("kpt-outside", f"point {label!r} at ({x}, {y}) is far "
                                   f"outside the {image.width}x{image.height} image", **where),
                           skipped="point")  # fmt: skip
                continue
            kpts = groups.setdefault(gid, np.zeros((len(names), 3)))
            j = index[label]
            if kpts[j, 2] > 0:
                report.add(Problem("duplicate-point", f"a second {label!r} point in instance "
                                   f"{gid if gid is not None else '(ungrouped)'}", **where),
                           skipped="point")  # fmt: skip
                continue
            kpts[j] = (x, y, 2.0)
        ungrouped_images += None in groups
        for gid, kpts in groups.items():  # every group holds a placed point: never None
            box = boxes.get(gid) if gid is not None else None
            extra = {"group_id": gid} if gid is not None else {}
            ann = keypoint_instance(len(anns) + 1, image, 1, kpts, box, extra)
            assert ann is not None
            anns.append(ann)
    if ungrouped_images:
        report.note(Problem("labelme-ungrouped", f"{ungrouped_images} images have points "
                            "without a group_id: each image's ungrouped points are one instance",
                            str(path)))  # fmt: skip
    return KeypointDataset(images, anns, [Category(1, schema.name, schema)], root, str(path),
                           report)  # fmt: skip


def _point_labels(parsed: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    names: dict[str, None] = {}
    for _, obj in parsed:
        for s in obj["shapes"]:
            if isinstance(s, dict) and s.get("shape_type") == "point" and isinstance(
                    s.get("label"), str):  # fmt: skip
                names.setdefault(s["label"], None)
    return list(names)


def _points_ok(pts: Any, n: int) -> bool:
    return (isinstance(pts, list) and len(pts) == n and all(
        isinstance(p, list) and len(p) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in p) for p in pts))  # fmt: skip


def _image(
    f: Path, obj: dict[str, Any], root: Path, iid: int, report: LoadReport
) -> ImageInfo | None:
    """The image a LabelMe file describes, its path relative to `root` (inside it)."""
    rel = obj.get("imagePath")
    w, h = obj.get("imageWidth"), obj.get("imageHeight")
    where = {"file": str(f)}
    if not isinstance(rel, str) or escapes(rel.replace("\\", "/")) is not None:
        report.add(Problem("image-path", f"imagePath {rel!r} must name a file inside "
                           f"{root}", field="imagePath", **where), skipped="file")  # fmt: skip
        return None
    if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
        report.add(Problem("image-size", "imageWidth and imageHeight must be positive integers",
                           field="imageWidth", **where), skipped="file")  # fmt: skip
        return None
    full = (f.parent / rel.replace("\\", "/")).resolve()
    try:
        name = full.relative_to(root.resolve()).as_posix()
    except ValueError:
        report.add(Problem("image-path", f"imagePath {rel!r} leaves {root}", field="imagePath",
                           **where), skipped="file")  # fmt: skip
        return None
    return ImageInfo(iid, name, w, h, {"labelme_file": f.name})
