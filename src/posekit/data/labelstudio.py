"""Label Studio JSON exports: `keypointlabels` results as keypoints.

A task's first annotation that was not cancelled is read (a note counts the tasks that hold
more). Keypoints are given in percent of the image (`original_width` / `original_height` give
its size in pixels); each point's label is its keypoint name. Points are grouped into
instances by their parent region (`parentID`, a rectangle drawn around the instance, which
then gives the box) where the export has one, else by the `relation` results that join them
(a group joined to a rectangle takes its box); the points of a task joined to nothing form
one instance, said in a note. Label Studio has no visibility flag: a marked point is visible
(v=2), an absent one unlabelled (v=0).

Images: the task's `data.image` is a URL or an upload path (`/data/upload/3/1a2b3c4d-a.png`);
its file name is looked up in the image folder (`images/` beside the JSON, or its folder),
without the 8-character prefix Label Studio adds to uploads when only that name exists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from posekit.data.coco import load_json
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

#: Label Studio names uploads `<8 hex>-<original name>`.
UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def is_labelstudio(obj: Any) -> bool:
    """Whether a parsed JSON object is a Label Studio export (a list of tasks with `data`)."""
    if not (isinstance(obj, list) and obj and isinstance(obj[0], dict)):
        return False
    return "data" in obj[0] and ("annotations" in obj[0] or "completions" in obj[0])


def looks_like_labelstudio(path: Path) -> bool:
    """Whether a JSON file is a list at its top level, as a Label Studio export is and a COCO
    or LabelMe file (an object) never is. Decided by structure, not by the keys in its first
    bytes: a task's `"data"` often comes after kilobytes of annotations."""
    with path.open("rb") as f:
        head = f.read(4096)
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


def read_labelstudio(path: str | Path, *, image_root: str | Path | None = None) -> KeypointDataset:
    """A Label Studio JSON export as a keypoint dataset (see the module docs)."""
    path = Path(path)
    tasks = load_json(path)
    if not is_labelstudio(tasks):
        raise DatasetError(f"{path}: not a Label Studio JSON export (a list of tasks)")
    folder = path.parent
    root = Path(image_root) if image_root is not None else (
        folder / "images" if (folder / "images").is_dir() else folder)  # fmt: skip
    report = LoadReport()
    results = [(t, _results(t, path, report)) for t in tasks if isinstance(t, dict)]
    names: dict[str, None] = {}
    for _, res in results:
        for r in res:
            if r.get("type") == "keypointlabels":
                for n in (r.get("value") or {}).get("keypointlabels") or []:
                    names.setdefault(str(n), None)
    if not names:
        raise DatasetError(f"{path}: no keypointlabels results in the export")
    schema = KeypointSchema.create(path.stem, list(names))
    index = {n: j for j, n in enumerate(schema.keypoints)}
    images: list[ImageInfo] = []
    anns: list[Annotation] = []
    whole = 0
    for task, res in results:
        image = _image(task, res, root, len(images) + 1, path, report)
        if image is None:
            continue
        images.append(image)
        regions = {r.get("id"): r for r in res if r.get("type") == "rectanglelabels"}
        group_of = _relation_groups(res, regions)
        groups: dict[Any, np.ndarray] = {}
        for n, r in enumerate(res):
            if r.get("type") != "keypointlabels":
                continue
            where = {"file": str(path), "image_id": task.get("id"),
                     "field": f"result[{n}] ({r.get('id')})"}  # fmt: skip
            value = r.get("value") or {}
            labels = value.get("keypointlabels") or []
            x, y = value.get("x"), value.get("y")
            finite = all(isinstance(v, int | float) and math.isfinite(v) for v in (x, y))
            if len(labels) != 1 or not finite:
                msg = f"a keypoint needs one label and finite x, y (got {labels}, {x}, {y})"
                report.add(Problem("labelstudio", msg, **where), skipped="point")
                continue
            px, py = x / 100 * image.width, y / 100 * image.height
            if far_outside(np.array([px, py]), image.width, image.height):
                report.add(Problem("kpt-outside", f"point {labels[0]!r} at ({x}%, {y}%) is far "
                                   "outside the image", **where), skipped="point")  # fmt: skip
                continue
            parent = r.get("parentID") if r.get("parentID") in regions else group_of(r.get("id"))
            kpts = groups.setdefault(parent, np.zeros((len(index), 3)))
            j = index[str(labels[0])]
            if kpts[j, 2] > 0:
                report.add(Problem("duplicate-point", f"a second {labels[0]!r} point in one "
                                   "instance", **where), skipped="point")  # fmt: skip
                continue
            kpts[j] = (px, py, 2.0)
        whole += None in groups
        for parent, kpts in groups.items():  # every group holds a placed point: never None
            box = _region_box(regions[parent], image) if parent in regions else None
            extra = {"labelstudio_region": parent} if parent in regions else {}
            if isinstance(parent, _Related):
                extra = {"labelstudio_related": parent.first}
            ann = keypoint_instance(len(anns) + 1, image, 1, kpts, box, extra)
            assert ann is not None
            anns.append(ann)
    if whole:
        report.note(Problem("labelstudio-ungrouped", f"{whole} tasks have keypoints without a "
                            "parent region: each such task's points are one instance",
                            str(path)))  # fmt: skip
    return KeypointDataset(images, anns, [Category(1, schema.name, schema)], root, str(path),
                           report)  # fmt: skip


@dataclass(frozen=True)
class _Related:
    """The group of points that `relation` results join (named by its first point's id)."""

    first: Any


def _relation_groups(
    res: list[dict[str, Any]], regions: dict[Any, dict[str, Any]]
) -> Callable[[Any], Any]:
    """Group keys for the results that `relation` results join (Label Studio's way to tie
    the points of one animal together when no rectangle is their parent): the rectangle a
    joined group holds, else a `_Related` key shared by the group; None for a result joined
    to nothing."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    ids = {r.get("id") for r in res}
    order = {r.get("id"): i for i, r in enumerate(res)}
    for r in res:
        a, b = r.get("from_id"), r.get("to_id")
        if r.get("type") == "relation" and a in ids and b in ids:
            ra, rb = find(a), find(b)
            if ra != rb:  # the earlier result stays the root: keys follow the file's order
                ra, rb = sorted((ra, rb), key=order.__getitem__)
                parent[rb] = ra
    members: dict[Any, list[Any]] = {}
    for x in list(parent):
        members.setdefault(find(x), []).append(x)
    key: dict[Any, Any] = {}
    for root, group in members.items():
        boxes = [m for m in [root, *group] if m in regions]
        key |= dict.fromkeys([root, *group], boxes[0] if boxes else _Related(root))
    return lambda rid: key.get(rid)


def _results(task: dict[str, Any], path: Path, report: LoadReport) -> list[dict[str, Any]]:
    """The results of the task's first annotation that was not cancelled."""
    anns = task.get("annotations") or task.get("completions") or []
    anns = anns if isinstance(anns, list) else []
    kept = [a for a in anns if isinstance(a, dict) and not a.get("was_cancelled")]
    if len(kept) > 1:
        report.note(Problem("labelstudio-annotators", f"task {task.get('id')} has "
                            f"{len(kept)} annotations: the first is read", str(path)))  # fmt: skip
    res = kept[0].get("result") if kept else []
    return [_well_typed(r) for r in (res if isinstance(res, list) else []) if isinstance(r, dict)]


def _well_typed(r: dict[str, Any]) -> dict[str, Any]:
    """A result with every field the reader uses of the type Label Studio writes, or absent:
    ids are strings or integers, `value` a dict, label lists lists, sizes positive numbers
    (a hand-edited or hostile file then reads as missing fields, reported as such)."""
    out = {k: v for k, v in r.items()
           if k not in ("id", "from_id", "to_id", "parentID", "type")
           or (isinstance(v, str | int) and not isinstance(v, bool))}  # fmt: skip
    value = out.get("value")
    value = dict(value) if isinstance(value, dict) else {}
    for key in ("keypointlabels", "rectanglelabels"):
        if key in value and not isinstance(value[key], list):
            value[key] = []
    out["value"] = value
    for key in ("original_width", "original_height"):
        v = out.get(key)
        if key in out and not (isinstance(v, int | float) and not isinstance(v, bool)
                               and math.isfinite(v) and v > 0):  # fmt: skip
            del out[key]
    return out


def _region_box(r: dict[str, Any], image: ImageInfo) -> np.ndarray | None:
    v = r.get("value") or {}
    try:
        x, y, w, h = (float(v[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return None
    sx, sy = image.width / 100, image.height / 100
    return np.array([x * sx, y * sy, w * sx, h * sy])


def _image(
    task: dict[str, Any], res: list[dict[str, Any]], root: Path, iid: int, path: Path,
    report: LoadReport,
) -> ImageInfo | None:  # fmt: skip
    where = {"file": str(path), "image_id": task.get("id"), "field": "data.image"}
    data = task.get("data")
    ref = data.get("image") if isinstance(data, dict) else None
    if not isinstance(ref, str) or not ref:
        report.add(Problem("labelstudio", "the task has no data.image", **where),
                   skipped="task")  # fmt: skip
        return None
    name = PurePosixPath(unquote(urlparse(ref).path)).name
    bare = UPLOAD_PREFIX.sub("", name)
    if not (root / name).exists() and (root / bare).exists():
        name = bare
    if escapes(name) is not None:
        report.add(Problem("image-path", f"image {ref!r} has no usable file name", **where),
                   skipped="task")  # fmt: skip
        return None
    sizes = {(r.get("original_width"), r.get("original_height")) for r in res
             if r.get("original_width")}  # fmt: skip
    if len(sizes) != 1:
        from posekit.data.images import image_size

        try:
            w, h = image_size(root / name)
        except (OSError, ValueError):
            report.add(Problem("image-size", f"no original_width / original_height and "
                               f"{name} cannot be read for its size", **where),
                       skipped="task")  # fmt: skip
            return None
    else:
        w, h = next(iter(sizes))
    return ImageInfo(iid, name, int(w), int(h), {"labelstudio_task": task.get("id")})
