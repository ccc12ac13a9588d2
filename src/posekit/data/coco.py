"""COCO keypoints JSON: strict reading (every problem reported with its location) and writing.

posekit adds two optional fields to each category, ignored by other COCO tools: `flip_idx`
(0-based flip permutation) and `sigmas` (OKS sigma per keypoint), so that a dataset file carries
its whole schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from posekit.data.dataset import Annotation, Category, ImageInfo, KeypointDataset, far_outside
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.schema import KeypointSchema, SchemaError, match_preset
from posekit.utils.bounds import is_number
from posekit.utils.paths import escapes, write_text_replacing

#: A bbox may stick out of the image by this many pixels (float rounding) before it is reported.
BBOX_TOLERANCE = 1.0

_KNOWN_IMAGE_FIELDS = {"id", "file_name", "width", "height"}
_KNOWN_ANN_FIELDS = {
    "id",
    "image_id",
    "category_id",
    "keypoints",
    "num_keypoints",
    "bbox",
    "area",
    "iscrowd",
}


def read_coco(
    path: str | Path,
    *,
    image_root: str | Path | None = None,
    strict: bool = False,
    repair: bool = True,
) -> KeypointDataset:
    """Read a COCO keypoints file.

    Args:
        path: the JSON file.
        image_root: folder that `file_name`s are relative to; by default `../images` when the file
            sits in an `annotations/` folder (the posekit layout), else the file's folder.
        strict: raise `DatasetError` listing every problem instead of loading what is usable.
        repair: make keypoints with impossible values unlabelled (for training); evaluation
            passes False to see the file exactly as pycocotools does. Problems are reported
            either way.

    Raises:
        DatasetError: the file is missing, not JSON (the message gives line and column), or not
            a COCO keypoints file at all; with `strict`, also when any problem was found.
    """
    path = Path(path)
    obj = load_json(path)
    entries = obj.get("images") if isinstance(obj, dict) else None
    entries = entries if isinstance(entries, list) else []
    names = [im.get("file_name") for im in entries if isinstance(im, dict)]
    root = Path(image_root) if image_root is not None else default_image_root(path, names)
    ds = parse_coco(obj, file=str(path), image_root=root, repair=repair)
    if strict and not ds.report.ok:
        raise DatasetError(f"{path}: {ds.report.summary()}", ds.report.problems)
    return ds


def load_json(path: Path) -> Any:
    """Parse a JSON file; syntax errors become a `DatasetError` naming file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        p = Problem("json-syntax", f"malformed JSON: {e.msg}", str(path), e.lineno, e.colno)
        raise DatasetError(str(p), [p]) from None
    except RecursionError:  # e.g. 200,000 nested brackets: no dataset looks like that
        p = Problem("json-depth", "JSON nested too deeply to be a dataset file", str(path))
        raise DatasetError(str(p), [p]) from None


def default_image_root(annotation_file: Path, file_names: list[Any] | None = None) -> Path:
    """Where `file_name`s are relative to: `../images` for a file in an `annotations/` folder
    beside an `images/` one (the posekit layout), but the folder above when the names already
    start with `images/` (never `images/images/...`); else the file's own folder."""
    parent = annotation_file.resolve().parent
    if parent.name == "annotations" and (parent.parent / "images").is_dir():
        names = [n for n in file_names or [] if isinstance(n, str)]
        if names and all(n.replace("\\", "/").startswith("images/") for n in names):
            return parent.parent
        return parent.parent / "images"
    return parent


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_coco(
    obj: Any, *, file: str, image_root: Path | None, repair: bool = True
) -> KeypointDataset:
    """Validate a parsed COCO object and build the dataset; see `read_coco`."""
    if not isinstance(obj, dict):
        raise DatasetError(f"{file}: top level must be a JSON object, got {type(obj).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in obj:
            raise DatasetError(f"{file}: not a COCO keypoints file: no '{key}' list")
        if not isinstance(obj[key], list):
            raise DatasetError(f"{file}: '{key}' must be a list")
    report = LoadReport()
    categories = _parse_categories(obj["categories"], file, report, obj["annotations"])
    images = _parse_images(obj["images"], file, report)
    annotations = _parse_annotations(obj["annotations"], images, categories, file, report, repair)
    if unmatched := unmatchable_ids(annotations):
        report.note(Problem("annotation-id-0", f"annotation id(s) {list_ids(unmatched)}: "
                            "pycocotools never counts an instance with an id <= 0 as found "
                            "(posekit val --fix-ids renumbers them)", file,
                            field="annotations.id"))  # fmt: skip
    return KeypointDataset(
        images=list(images.values()),
        annotations=annotations,
        categories=list(categories.values()),
        image_root=image_root,
        source=file,
        report=report,
    )


def unmatchable_ids(annotations: list[Annotation]) -> list[int]:
    """Ids of non-crowd annotations that pycocotools can never count as matched: it marks a
    ground truth as taken by storing the detection's id and a detection as matched by the
    ground truth's id, and tests both with `> 0`, so an instance with id 0 (ExLPose's first)
    is scored as a miss and the detection on it as a false positive."""
    return [a.id for a in annotations if a.id <= 0 and not a.iscrowd]


def with_matchable_ids(ds: KeypointDataset) -> KeypointDataset:
    """`ds` with each id `unmatchable_ids` names replaced by a new one above every id in use
    (the others keep theirs), so that every instance can be matched."""
    bad = set(unmatchable_ids(ds.annotations))
    if not bad:
        return ds
    fresh = iter(range(max((a.id for a in ds.annotations), default=0) + 1, 2**62))
    anns = [replace(a, id=next(fresh)) if a.id in bad and not a.iscrowd else a
            for a in ds.annotations]  # fmt: skip
    return replace(ds, annotations=anns)


def list_ids(ids: list[int], shown: int = 5) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(str(i) for i in ids[:shown]) + more


# ---------------------------------------------------------------------- categories
def _inferred_count(cid: int, annotations: list[Any]) -> int:
    """The keypoint count of category `cid`'s annotations (the largest whole number of x, y, v
    triples among them), for a category that lists no keypoint names."""
    lists = [a.get("keypoints") for a in annotations
             if isinstance(a, dict) and a.get("category_id") == cid]  # fmt: skip
    counts = [len(x) // 3 for x in lists if isinstance(x, list) and len(x) % 3 == 0]
    return max(counts, default=0)


def _parse_categories(
    items: list[Any], file: str, report: LoadReport, annotations: list[Any]
) -> dict[int, Category]:
    out: dict[int, Category] = {}
    for i, c in enumerate(items):
        where = f"categories[{i}]"
        if not isinstance(c, dict) or not _is_int(c.get("id")):
            report.add(
                Problem(
                    "missing-field", f"{where} needs an integer 'id'", file, field=f"{where}.id"
                ),
                skipped="category",
            )
            continue
        cid = c["id"]
        if cid in out:
            report.add(
                Problem(
                    "duplicate-id",
                    f"duplicate category id {cid} ({where})",
                    file,
                    field="categories.id",
                ),
                skipped="category",
            )
            continue
        names = c.get("keypoints")
        if names in ([], None) and (k := _inferred_count(cid, annotations)):
            # face and landmark sets (300W, WFLW, COFW, LaPa ...) often name no keypoints,
            # some (300VW, UBody3D) have no "keypoints" key at all
            names = [f"kpt_{j}" for j in range(1, k + 1)]
            said = "has no 'keypoints' key" if c.get("keypoints") is None else "names no keypoints"
            report.note(Problem(
                "keypoints-inferred",
                f"category {cid} {said}: {k} read from its annotations, named kpt_1..kpt_{k}",
                file,
                field=f"{where}.keypoints",
            ))  # fmt: skip
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            report.add(
                Problem(
                    "category-keypoints",
                    f"category {cid} needs a non-empty 'keypoints' list of names",
                    file,
                    field=f"{where}.keypoints",
                ),
                skipped="category",
            )
            continue
        schema = _category_schema(c, names, file, where, report)
        if schema is None:
            continue
        out[cid] = Category(
            cid, str(c.get("name", f"class{cid}")), schema, str(c.get("supercategory", ""))
        )
    return out


def _category_schema(
    c: Mapping[str, Any], names: list[str], file: str, where: str, report: LoadReport
) -> KeypointSchema | None:
    k = len(names)
    raw = c.get("skeleton") or []
    if not isinstance(raw, list):
        report.add(Problem("skeleton-range", f"skeleton {str(raw)[:80]} is not a list of pairs",
                           file, field=f"{where}.skeleton"), skipped="skeleton edge")  # fmt: skip
        raw = []
    pairs = [e for e in raw if isinstance(e, list) and len(e) == 2 and all(_is_int(x) for x in e)]
    # COCO numbers keypoints from 1; some datasets (ATRW, ExLPose, Human3.6M, AnimalKingdom)
    # from 0: an edge that uses 0 and none that uses K can only be 0-based
    used = {x for e in pairs for x in e}
    base = 0 if 0 in used and k not in used else 1
    if base == 0:
        msg = f"the skeleton uses keypoint 0 and never {k}: read as 0-based indices"
        report.note(Problem("skeleton-0-based", msg, file, field=f"{where}.skeleton"))
    edges = []
    for e in raw:
        if e in pairs and all(base <= x < k + base for x in e):
            edges.append((e[0] - base, e[1] - base))
        else:
            report.add(
                Problem(
                    "skeleton-range",
                    f"skeleton edge {e} is not a pair of {base}-based indices in "
                    f"{base}..{k - 1 + base}",
                    file,
                    field=f"{where}.skeleton",
                ),
                skipped="skeleton edge",
            )
    preset = match_preset(tuple(names))
    sigmas = c.get("sigmas", preset.sigmas if preset else None)
    name = str(c.get("name", "object"))
    try:
        return KeypointSchema.create(name, names, edges, flip_idx=c.get("flip_idx"), sigmas=sigmas)
    except SchemaError as e:
        report.add(Problem("schema", str(e), file, field=where))
    try:  # fall back to derived flip pairs and default sigmas
        return KeypointSchema.create(name, names, edges)
    except SchemaError as e:
        report.add(Problem("schema", str(e), file, field=where), skipped="category")
        return None


# ---------------------------------------------------------------------- images
def _parse_images(items: list[Any], file: str, report: LoadReport) -> dict[int, ImageInfo]:
    out: dict[int, ImageInfo] = {}
    for i, im in enumerate(items):
        if not isinstance(im, dict) or not _is_int(im.get("id")):
            report.add(
                Problem(
                    "missing-field",
                    f"images[{i}] needs an integer 'id'",
                    file,
                    field=f"images[{i}].id",
                ),
                skipped="image",
            )
            continue
        iid = im["id"]
        if iid in out:
            report.add(
                Problem(
                    "duplicate-id",
                    f"duplicate image id {iid} (images[{i}])",
                    file,
                    image_id=iid,
                    field="id",
                ),
                skipped="image",
            )
            continue
        missing = [f for f in ("file_name", "width", "height") if f not in im]
        if missing:
            report.add(
                Problem(
                    "missing-field",
                    f"missing {', '.join(missing)}",
                    file,
                    image_id=iid,
                    field=missing[0],
                ),
                skipped="image",
            )
            continue
        w, h = im["width"], im["height"]
        if not (_is_int(w) and _is_int(h) and w > 0 and h > 0):
            report.add(
                Problem(
                    "image-size",
                    f"width and height must be positive integers, got {w!r} x {h!r}",
                    file,
                    image_id=iid,
                    field="width",
                ),
                skipped="image",
            )
            continue
        name = im["file_name"]
        why = escapes(name) if isinstance(name, str) else "is not a string"
        if why is not None:
            report.add(
                Problem(
                    "image-path",
                    f"file_name {name!r} {why}: it must name a file inside the image folder",
                    file,
                    image_id=iid,
                    field="file_name",
                ),
                skipped="image",
            )
            continue
        extra = {k: v for k, v in im.items() if k not in _KNOWN_IMAGE_FIELDS}
        out[iid] = ImageInfo(iid, name, w, h, extra)
    return out


# ---------------------------------------------------------------------- annotations
def _parse_annotations(
    items: list[Any],
    images: dict[int, ImageInfo],
    categories: dict[int, Category],
    file: str,
    report: LoadReport,
    repair: bool,
) -> list[Annotation]:
    out: list[Annotation] = []
    seen: set[int] = set()
    for i, a in enumerate(items):
        ann = _parse_annotation(i, a, images, categories, seen, file, report, repair)
        if ann is not None:
            out.append(ann)
    parts = [f for f in WHOLEBODY_PARTS if any(f in a.extra for a in out)]
    if parts:
        n = sum(1 for a in out if any(f in a.extra for f in parts))
        report.note(Problem(
            "wholebody-ignored",
            f"{n} annotations carry COCO-WholeBody keypoints ({', '.join(parts)}): kept in the "
            "annotations as they are, not read as keypoints (the body's are)",
            file,
            field="annotations",
        ))  # fmt: skip
    return out


#: COCO-WholeBody's extra keypoint lists (face 68, hands 21 each, feet 6) beside the body's 17.
WHOLEBODY_PARTS = ("face_kpts", "lefthand_kpts", "righthand_kpts", "foot_kpts")


def _parse_annotation(
    i: int,
    a: Any,
    images: dict[int, ImageInfo],
    categories: dict[int, Category],
    seen: set[int],
    file: str,
    report: LoadReport,
    repair: bool,
) -> Annotation | None:
    if not isinstance(a, dict) or not _is_int(a.get("id")):
        report.add(
            Problem(
                "missing-field",
                f"annotations[{i}] needs an integer 'id'",
                file,
                field=f"annotations[{i}].id",
            ),
            skipped="annotation",
        )
        return None
    aid = a["id"]
    iid = a.get("image_id")

    def problem(code: str, msg: str, fld: str | None, skipped: str | None = None) -> None:
        report.add(
            Problem(code, msg, file, image_id=iid, annotation_id=aid, field=fld), skipped=skipped
        )

    if aid in seen:
        problem(
            "duplicate-id", f"duplicate annotation id {aid} (annotations[{i}])", "id", "annotation"
        )
        return None
    seen.add(aid)
    if not _is_int(iid) or iid not in images:
        problem("missing-image", f"image_id {iid!r} is not in 'images'", "image_id", "annotation")
        return None
    cid = a.get("category_id")
    if not _is_int(cid) or cid not in categories:
        problem(
            "missing-category",
            f"category_id {cid!r} is not in 'categories'",
            "category_id",
            "annotation",
        )
        return None
    image, schema = images[iid], categories[cid].schema
    kpts = _parse_keypoints(a.get("keypoints"), schema.num_keypoints, image, problem, repair)
    if kpts is None:
        return None
    iscrowd = a.get("iscrowd", 0)
    if isinstance(iscrowd, bool):  # JSON true / false (PoseTrack): pycocotools accepts them
        iscrowd = int(iscrowd)
    if iscrowd not in (0, 1):
        problem("iscrowd", f"iscrowd must be 0 or 1, got {iscrowd!r}", "iscrowd", "annotation")
        return None
    raw_box = a.get("bbox")
    if raw_box is None:
        raw_box, how = _derived_bbox(a, kpts)
        if raw_box is not None:
            derived = Problem(
                "bbox-derived",
                f"no 'bbox': {how}",
                file,
                image_id=iid,
                annotation_id=aid,
                field="bbox",
            )
            report.note(derived)
    bbox = _parse_bbox(raw_box, kpts, image, problem)
    if bbox is None:
        return None
    area = a.get("area")
    if area is None:
        problem("missing-field", "no 'area' (using bbox width x height)", "area")
        area = float(bbox[2] * bbox[3])
    elif not is_number(area) or not math.isfinite(area) or area < 0:
        problem(
            "non-finite" if is_number(area) and not math.isfinite(area) else "area",
            f"area must be a finite number >= 0, got {area!r} (using bbox width x height)",
            "area",
        )
        area = float(bbox[2] * bbox[3])
    labelled = int(np.count_nonzero(kpts[:, 2] > 0))
    nk = a.get("num_keypoints")
    if nk is not None and nk != labelled:
        problem(
            "num-keypoints",
            f"num_keypoints is {nk!r} but {labelled} keypoints have v > 0",
            "num_keypoints",
        )
    extra = {k: v for k, v in a.items() if k not in _KNOWN_ANN_FIELDS}
    return Annotation(aid, iid, cid, kpts, bbox, float(area), int(iscrowd), extra)


def _parse_keypoints(
    raw: Any, k: int, image: ImageInfo, problem: Any, repair: bool
) -> np.ndarray | None:
    """(K, 3) keypoints. Per-keypoint problems (NaN/inf, a visibility outside {0, 1, 2}, far
    outside the image) are reported; with `repair` the keypoint is made unlabelled and counted,
    without it the values are kept as they are (what evaluation needs to match pycocotools)."""
    if raw is None:
        problem("missing-field", "no 'keypoints'", "keypoints", "annotation")
        return None
    if not isinstance(raw, list) or len(raw) != 3 * k:
        n = len(raw) if isinstance(raw, list) else type(raw).__name__
        msg = f"keypoints has {n} values, expected 3*K = {3 * k} for K = {k}"
        problem("kpt-length", msg, "keypoints", "annotation")
        return None
    if not all(is_number(x) for x in raw):
        bad = next(x for x in raw if not is_number(x))
        problem("kpt-type", f"keypoints must be numbers, found {bad!r}", "keypoints", "annotation")
        return None
    kpts = np.asarray(raw, dtype=np.float64).reshape(k, 3)
    x, y, v = kpts[:, 0], kpts[:, 1], kpts[:, 2]
    w, h = image.width, image.height
    finite = np.isfinite(kpts).all(axis=1)
    far = finite & (v > 0) & far_outside(kpts[:, :2], w, h)
    checks = (
        ("non-finite", ~finite, lambda j: f"keypoint {j} is {kpts[j].tolist()} (NaN/inf)", ""),
        (
            "visibility",
            finite & ~np.isin(v, (0.0, 1.0, 2.0)),
            lambda j: f"keypoint {j} has visibility {v[j]:g}, expected 0, 1 or 2",
            ".v",
        ),
        (
            "kpt-outside",
            far,
            lambda j: (
                f"labelled keypoint {j} at ({x[j]:g}, {y[j]:g}) is far outside the {w}x{h} image"
            ),
            "",
        ),
    )
    outcome = ": made unlabelled" if repair else ": kept as is"
    for code, mask, describe, suffix in checks:
        for j in np.flatnonzero(mask):
            problem(
                code,
                describe(j) + outcome,
                f"keypoints[{j}]{suffix}",
                "keypoint" if repair else None,
            )
        if repair:
            kpts[mask] = 0.0
    return kpts


#: MMPose's `pixel_std`: a `scale` of 1 is 200 pixels.
PIXEL_STD = 200.0


def _derived_bbox(a: dict[str, Any], kpts: np.ndarray) -> tuple[list[float] | None, str]:
    """The box of an annotation without `bbox` (MMPose's face and face-video sets carry a
    `center` and `scale`): the box MMPose derives (centre +- scale * pixel_std / 2), else the
    extent of its labelled keypoints; (None, "") when it has neither."""
    centre, scale = a.get("center"), a.get("scale")
    if isinstance(scale, int | float) and not isinstance(scale, bool):
        scale = [scale, scale]
    if _pair(centre) and _pair(scale):
        w, h = scale[0] * PIXEL_STD, scale[1] * PIXEL_STD
        if w > 0 and h > 0:
            box = [centre[0] - w / 2, centre[1] - h / 2, w, h]
            return box, f"the box MMPose derives from center {centre} and scale {a['scale']}"
    labelled = kpts[kpts[:, 2] > 0, :2]
    if len(labelled):
        (x0, y0), (x1, y1) = labelled.min(0), labelled.max(0)
        box = [float(x0), float(y0), max(float(x1 - x0), 1.0), max(float(y1 - y0), 1.0)]
        return box, "the extent of its labelled keypoints"
    return None, ""


def _pair(v: Any) -> bool:
    """Two finite numbers."""
    return isinstance(v, list) and len(v) == 2 and all(is_number(x) and math.isfinite(x) for x in v)


def _parse_bbox(raw: Any, kpts: np.ndarray, image: ImageInfo, problem: Any) -> np.ndarray | None:
    if raw is None:
        problem("missing-field", "no 'bbox'", "bbox", "annotation")
        return None
    if not (isinstance(raw, list) and len(raw) == 4 and all(is_number(x) for x in raw)):
        problem(
            "bbox-format", f"bbox must be [x, y, w, h] numbers, got {raw!r}", "bbox", "annotation"
        )
        return None
    bbox = np.asarray(raw, dtype=np.float64)
    if not np.isfinite(bbox).all():
        problem("non-finite", f"bbox {raw} has NaN/inf", "bbox", "annotation")
        return None
    if bbox[2] <= 0 or bbox[3] <= 0:
        problem("bbox-size", f"bbox {raw} has non-positive width or height", "bbox", "annotation")
        return None
    x0, y0, x1, y1 = bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]
    t = BBOX_TOLERANCE
    if x0 < -t or y0 < -t or x1 > image.width + t or y1 > image.height + t:
        problem(
            "bbox-outside",
            f"bbox {raw} extends outside the {image.width}x{image.height} image",
            "bbox",
        )
    return bbox


# ---------------------------------------------------------------------- writing
def category_to_coco(c: Category) -> dict[str, Any]:
    s = c.schema
    return {
        "id": c.id,
        "name": c.name,
        "supercategory": c.supercategory or c.name,
        "keypoints": list(s.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in s.skeleton],
        "flip_idx": list(s.flip_idx),
        "sigmas": list(s.sigmas),
    }


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def annotation_to_coco(a: Annotation) -> dict[str, Any]:
    flat = a.keypoints.copy()
    out: dict[str, Any] = {
        "id": a.id,
        "image_id": a.image_id,
        "category_id": a.category_id,
        "keypoints": [_num(x) for x in flat.reshape(-1)],
        "num_keypoints": a.num_keypoints,
        "bbox": [_num(x) for x in a.bbox],
        "area": _num(a.area),
        "iscrowd": a.iscrowd,
    }
    out.update(a.extra)
    return out


def dataset_to_coco(ds: KeypointDataset) -> dict[str, Any]:
    return {
        "info": {"description": ds.source or "posekit dataset", "version": "1.0"},
        "images": [
            {
                "id": im.id,
                "file_name": im.file_name,
                "width": im.width,
                "height": im.height,
                **im.extra,
            }
            for im in ds.images
        ],
        "annotations": [annotation_to_coco(a) for a in ds.annotations],
        "categories": [category_to_coco(c) for c in ds.categories],
    }


def write_coco(ds: KeypointDataset, path: str | Path) -> Path:
    """Write `ds` as a COCO keypoints file (written to a temporary file, then renamed)."""
    return write_text_replacing(path, json.dumps(dataset_to_coco(ds), separators=(",", ":")))
