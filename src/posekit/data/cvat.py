"""CVAT for images (XML 1.1): skeletons as keypoint instances.

Each `skeleton` label of the task's meta is a category: its keypoints are the skeleton's
element labels and its bones the edges of the skeleton's SVG (`data-node-from/to`, mapped to
the elements through their node ids). Each `<skeleton>` shape of an `<image>` is one instance;
its `<points>` keep their visibility as COCO can hold it: `outside="1"` (marked as not in the
frame) becomes unlabelled (v=0), `occluded="1"` labelled but hidden (v=1), the rest visible
(v=2). Boxes are grown around the labelled keypoints (as for DeepLabCut).

The XML is parsed with the standard library after refusing any DOCTYPE (no entities, no
external references: a hostile file is refused, never expanded). Every problem is located
(file, line, image, instance, point) and what it leaves out is counted.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from posekit.data.dataset import (
    Annotation,
    Category,
    ImageInfo,
    KeypointDataset,
    keypoint_instance,
)
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.schema import KeypointSchema, SchemaError
from posekit.utils.paths import escapes


def read_cvat(path: str | Path, *, image_root: str | Path | None = None) -> KeypointDataset:
    """A CVAT for images XML export as a keypoint dataset (see the module docs). Images are
    relative to `image_root`, by default `images/` beside the file when there is one (as CVAT
    exports a dataset), else the file's folder."""
    path = Path(path)
    text = path.read_bytes()
    if b"<!DOCTYPE" in text[:4096].upper() or b"<!ENTITY" in text.upper():
        raise DatasetError(f"{path}: refused: the XML declares a DOCTYPE or entities (CVAT "
                           "never writes them; they can expand without bound)")  # fmt: skip
    try:
        root_el = ET.fromstring(text)
    except ET.ParseError as e:
        line, col = e.position
        raise DatasetError(f"{path}:{line}:{col + 1}: invalid XML: {e}") from None
    if root_el.tag != "annotations":
        raise DatasetError(f"{path}: not a CVAT for images XML file (root <{root_el.tag}>)")
    report = LoadReport()
    categories = _skeleton_categories(root_el, path, report)
    if not categories:
        raise DatasetError(f"{path}: no skeleton label in the task's meta (CVAT skeletons are "
                           "what posekit reads as keypoints)")  # fmt: skip
    by_label = {c.name: c for c in categories}
    folder = path.parent
    root = Path(image_root) if image_root is not None else (
        folder / "images" if (folder / "images").is_dir() else folder)  # fmt: skip
    images: list[ImageInfo] = []
    anns: list[Annotation] = []
    for el in root_el.iter("image"):
        image = _image(el, path, len(images) + 1, report)
        if image is None:
            continue
        images.append(image)
        for n, sk in enumerate(el.iter("skeleton")):
            cat = by_label.get(sk.get("label", ""))
            where = {"file": str(path), "image_id": image.id, "field": f"skeleton[{n}]"}
            if cat is None:
                report.add(Problem("cvat-label", f"skeleton label {sk.get('label')!r} is not in "
                                   "the task's meta", **where), skipped="instance")  # fmt: skip
                continue
            kpts = _keypoints(sk, cat.schema, image, where, report)
            extra = {"cvat_track": sk.get("group_id")} if sk.get("group_id") else {}
            ann = keypoint_instance(len(anns) + 1, image, cat.id, kpts, extra=extra)
            if ann is None:  # every point outside the frame: an instance that is not there
                report.note(Problem("cvat-empty", "a skeleton with no point in the frame "
                                    "(all outside): not an instance", **where))  # fmt: skip
                continue
            anns.append(ann)
    return KeypointDataset(images, anns, categories, root, str(path), report)


def _skeleton_categories(root: ET.Element, path: Path, report: LoadReport) -> list[Category]:
    labels = root.findall("./meta//labels/label")
    out: list[Category] = []
    for lab in labels:
        if (lab.findtext("type") or "").strip() != "skeleton":
            continue
        name = (lab.findtext("name") or "").strip()
        children = [(c.findtext("name") or "").strip() for c in labels
                    if (c.findtext("parent") or "").strip() == name]  # fmt: skip
        svg = lab.findtext("svg") or ""
        try:
            shapes = ET.fromstring(f"<svg>{svg}</svg>") if svg.strip() else ET.Element("svg")
        except ET.ParseError as e:
            report.add(Problem("cvat-svg", f"skeleton {name!r}: unreadable svg ({e}): no bones",
                               str(path), field="meta.labels"))  # fmt: skip
            shapes = ET.Element("svg")
        nodes = {c.get("data-node-id"): c.get("data-label-name") for c in shapes.iter("circle")}
        names = children or [n for n in nodes.values() if n]
        if not names:
            report.add(Problem("cvat-label", f"skeleton {name!r} has no points",
                               str(path), field="meta.labels"), skipped="category")  # fmt: skip
            continue
        edges = []
        for line in shapes.iter("line"):
            a, b = nodes.get(line.get("data-node-from")), nodes.get(line.get("data-node-to"))
            if a in names and b in names:
                edges.append((a, b))
            else:
                report.add(Problem("skeleton-range", f"skeleton {name!r}: an edge between "
                                   f"unknown nodes {line.get('data-node-from')}-"
                                   f"{line.get('data-node-to')}", str(path),
                                   field="meta.labels"), skipped="skeleton edge")  # fmt: skip
        try:
            schema = KeypointSchema.create(name, names, edges)
        except SchemaError as e:
            report.add(Problem("schema", str(e), str(path), field="meta.labels"),
                       skipped="category")  # fmt: skip
            continue
        out.append(Category(len(out) + 1, name, schema))
    return out


def _image(el: ET.Element, path: Path, iid: int, report: LoadReport) -> ImageInfo | None:
    name, w, h = el.get("name", ""), el.get("width", ""), el.get("height", "")
    where = {"file": str(path), "image_id": el.get("id"), "field": "image"}
    why = escapes(name.replace("\\", "/"))
    if why is not None:
        report.add(Problem("image-path", f"image name {name!r} {why}: it must name a file "
                           "inside the image folder", **where), skipped="image")  # fmt: skip
        return None
    if not (w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
        report.add(Problem("image-size", f"image {name!r}: width and height must be positive "
                           "integers", **where), skipped="image")  # fmt: skip
        return None
    return ImageInfo(iid, name.replace("\\", "/"), int(w), int(h), {"cvat_id": el.get("id")})


def _keypoints(
    sk: ET.Element, schema: KeypointSchema, image: ImageInfo, where: dict, report: LoadReport
) -> np.ndarray:
    index = {n: j for j, n in enumerate(schema.keypoints)}
    kpts = np.zeros((schema.num_keypoints, 3))
    for p in sk.iter("points"):
        label = p.get("label", "")
        at = {**where, "field": f"{where['field']}.points[{label}]"}
        if label not in index:
            report.add(Problem("cvat-label", f"point {label!r} is not in skeleton "
                               f"{schema.name!r}", **at), skipped="point")  # fmt: skip
            continue
        if p.get("outside") == "1":
            continue  # marked as not in the frame: unlabelled
        try:
            x, y = (float(v) for v in p.get("points", "").split(";")[0].split(","))
        except ValueError:
            report.add(Problem("kpt-type", f"point {label!r}: {p.get('points')!r} is not "
                               "'x,y'", **at), skipped="point")  # fmt: skip
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            report.add(Problem("non-finite", f"point {label!r} is not finite", **at),
                       skipped="point")  # fmt: skip
            continue
        kpts[index[label]] = (x, y, 1.0 if p.get("occluded") == "1" else 2.0)
    return kpts
