"""CVAT for images and CVAT for video (XML 1.1): skeletons as keypoint instances.

Each `skeleton` label of the task's meta is a category: its keypoints are the skeleton's
element labels and its bones the edges of the skeleton's SVG (`data-node-from/to`, mapped to
the elements through their node ids). Each `<skeleton>` shape of an `<image>` is one instance;
its `<points>` keep their visibility as COCO can hold it: `outside="1"` (marked as not in the
frame) becomes unlabelled (v=0), `occluded="1"` labelled but hidden (v=1), the rest visible
(v=2). Boxes are grown around the labelled keypoints (as for DeepLabCut).

A video export holds `<track>`s instead of `<image>`s: each track's `<skeleton frame=F>`
shapes are instances of frame F, the image `frame_{F:06d}.<ext>` that CVAT writes when it
exports a video task with its images (the track id is kept as `extra["cvat_track"]`). A
`<points>` shape drawn outside any skeleton is reported and counted.

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
    far_outside,
    keypoint_instance,
)
from posekit.data.images import image_size
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.schema import KeypointSchema, SchemaError
from posekit.utils.paths import escapes
from posekit.utils.xml_files import DoctypeError, parse_without_doctype


def read_cvat(path: str | Path, *, image_root: str | Path | None = None) -> KeypointDataset:
    """A CVAT for images or for video XML export as a keypoint dataset (see the module docs).
    Images are relative to `image_root`, by default `images/` beside the file when there is
    one (as CVAT exports a dataset), else the file's folder."""
    path = Path(path)
    text = path.read_bytes()
    try:
        root_el = parse_without_doctype(text)
    except DoctypeError:
        raise DatasetError(
            f"{path}: refused: the XML declares a DOCTYPE or entities (CVAT never writes "
            "them; they can expand without bound)"
        ) from None
    except ET.ParseError as e:
        line, col = e.position
        raise DatasetError(f"{path}:{line}:{col + 1}: invalid XML: {e}") from None
    except LookupError as e:  # an XML declaration naming an encoding that does not exist
        raise DatasetError(f"{path}: invalid XML: {e}") from None
    if root_el.tag != "annotations":
        raise DatasetError(f"{path}: not a CVAT XML file (root <{root_el.tag}>)")
    report = LoadReport()
    categories = _skeleton_categories(root_el, path, report)
    if not categories:
        raise DatasetError(f"{path}: no skeleton label in the task's meta (CVAT skeletons are "
                           "what posekit reads as keypoints)")  # fmt: skip
    by_label = {c.name: c for c in categories}
    folder = path.parent
    root = Path(image_root) if image_root is not None else (
        folder / "images" if (folder / "images").is_dir() else folder)  # fmt: skip
    builder = _Builder(path, by_label, report)
    for el in root_el.iter("image"):
        image = _image(el, path, len(builder.images) + 1, report)
        if image is None:
            continue
        builder.images.append(image)
        for n, sk in enumerate(el.iter("skeleton")):
            where = {"file": str(path), "image_id": image.id, "field": f"skeleton[{n}]"}
            extra = {"cvat_track": sk.get("group_id")} if sk.get("group_id") else {}
            builder.add(sk, image, where, extra)
        where = {"file": str(path), "image_id": image.id, "field": "points"}
        _loose_points(el.findall("points"), where, report)
    tracks = root_el.findall("track")
    if tracks:
        _read_tracks(tracks, root_el, root, builder)
    return KeypointDataset(builder.images, builder.annotations, categories, root, str(path),
                           report)  # fmt: skip


class _Builder:
    """Images and instances of one file; `add` turns a `<skeleton>` shape into an instance."""

    def __init__(self, path: Path, by_label: dict[str, Category], report: LoadReport) -> None:
        self.path, self.by_label, self.report = path, by_label, report
        self.images: list[ImageInfo] = []
        self.annotations: list[Annotation] = []

    def add(self, sk: ET.Element, image: ImageInfo, where: dict, extra: dict) -> None:
        cat = self.by_label.get(sk.get("label", ""))
        if cat is None:
            self.report.add(Problem("cvat-label", f"skeleton label {sk.get('label')!r} is not "
                                    "in the task's meta", **where), skipped="instance")  # fmt: skip
            return
        kpts = _keypoints(sk, cat.schema, image, where, self.report)
        ann = keypoint_instance(len(self.annotations) + 1, image, cat.id, kpts, extra=extra)
        if ann is None:  # every point outside the frame: an instance that is not there
            self.report.note(Problem("cvat-empty", "a skeleton with no point in the frame "
                                     "(all outside): not an instance", **where))  # fmt: skip
            return
        self.annotations.append(ann)


def _loose_points(points: list[ET.Element], where: dict, report: LoadReport) -> None:
    """`<points>` shapes drawn on their own, outside any skeleton, belong to no instance
    posekit could place them in: each is reported and counted, never passed over."""
    for p in points:
        at = {**where, "field": f"{where['field']}[{p.get('label')}]"}
        report.add(Problem("cvat-points", f"a {p.get('label')!r} points shape outside any "
                           "skeleton is not read (posekit reads CVAT skeletons as keypoint "
                           "instances: draw the points as a skeleton)", **at),
                   skipped="points shape")  # fmt: skip


#: CVAT names the frames of a video task `frame_000000.PNG`, ... when it exports images.
FRAME_NAME = "frame_{:06d}"


def _read_tracks(tracks: list[ET.Element], root_el: ET.Element, root: Path, b: _Builder) -> None:
    """A CVAT for video export: each `<track>` holds one shape per frame (keyframes and the
    frames CVAT interpolated between them). Frame F is the image `frame_{F:06d}.<ext>` in the
    image folder, as CVAT exports a video task's frames, sized by the task's `original_size`
    (else by the image's header). A shape marked outside is a frame the object is not in: no
    instance, nothing lost."""
    size = root_el.find("./meta//original_size")
    w = (size.findtext("width") or "").strip() if size is not None else ""
    h = (size.findtext("height") or "").strip() if size is not None else ""
    frames: dict[int, ImageInfo | None] = {}
    for t, track in enumerate(tracks):
        for n, sk in enumerate(track.findall("skeleton")):
            where = {"file": str(b.path), "field": f"track[{t}] (id {track.get('id')})."
                     f"skeleton[{n}] (frame {sk.get('frame')})"}  # fmt: skip
            frame = sk.get("frame", "")
            if not frame.isdigit():
                b.report.add(Problem("cvat-frame", f"frame {frame!r} is not a frame number",
                                     **where), skipped="instance")  # fmt: skip
                continue
            if sk.get("outside") == "1":
                continue
            f = int(frame)
            if f not in frames:
                frames[f] = _frame_image(f, root, w, h, len(b.images) + 1, where, b.report)
                if frames[f] is not None:
                    b.images.append(frames[f])
            image = frames[f]
            if image is None:
                b.report.skipped["instance (image-missing)"] += 1
                continue
            sk.set("label", sk.get("label") or track.get("label", ""))
            b.add(sk, image, {**where, "image_id": image.id}, {"cvat_track": track.get("id")})
        where = {"file": str(b.path), "field": f"track[{t}].points"}
        _loose_points(track.findall("points"), where, b.report)


def _frame_image(
    frame: int, root: Path, w: str, h: str, iid: int, where: dict, report: LoadReport
) -> ImageInfo | None:
    """The image of a video frame (see `_read_tracks`), or None when it cannot be sized."""
    stem = FRAME_NAME.format(frame)
    found = sorted(p for p in root.glob(f"{stem}.*") if p.is_file()) if root.is_dir() else []
    name = found[0].name if found else f"{stem}.png"
    if w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0:
        return ImageInfo(iid, name, int(w), int(h), {"cvat_frame": frame})
    try:
        width, height = image_size(root / name)
    except (OSError, ValueError):
        report.add(Problem("image-missing", f"frame {frame}: no {stem}.* image in {root} and "
                           "no original_size in the task's meta to size it (export the task "
                           "with its images)", **where), skipped="frame")  # fmt: skip
        return None
    return ImageInfo(iid, name, width, height, {"cvat_frame": frame})


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
        if far_outside(np.array([x, y]), image.width, image.height):
            report.add(Problem("kpt-outside", f"point {label!r} at ({x:g}, {y:g}) is far "
                               f"outside the {image.width}x{image.height} image", **at),
                       skipped="point")  # fmt: skip
            continue
        kpts[index[label]] = (x, y, 1.0 if p.get("occluded") == "1" else 2.0)
    return kpts
