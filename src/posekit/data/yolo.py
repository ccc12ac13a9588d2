"""YOLO-pose datasets (Ultralytics layout): a data YAML plus one label txt per image.

Each label row is `cls cx cy w h x1 y1 [v1] ...`, all normalised by the image size; `kpt_shape`
[K, 3] has a visibility per keypoint, [K, 2] has none (then (0, 0) means unlabelled). Labels live
beside the images with the last `/images/` folder replaced by `/labels/` and a `.txt` suffix.
posekit also writes `kpt_names` (as Ultralytics does) and a `posekit:` block with the skeleton,
sigmas and category ids, so that COCO -> YOLO -> COCO loses nothing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from posekit.data.dataset import Annotation, Category, ImageInfo, KeypointDataset
from posekit.data.images import image_size
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.data.yamlfile import load_yaml
from posekit.schema import KeypointSchema, SchemaError, match_preset
from posekit.schema.presets import COCO17_KEYPOINTS
from posekit.utils.paths import join_inside, write_text_replacing

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def is_yolo_yaml(data: Any) -> bool:
    return isinstance(data, dict) and "kpt_shape" in data


def read_yolo_yaml(path: Path) -> dict[str, Any]:
    data = load_yaml(path)
    if not is_yolo_yaml(data):
        raise DatasetError(f"{path}: not a YOLO-pose data YAML (no 'kpt_shape')")
    return data


def label_path(image_path: Path) -> Path:
    """Ultralytics' rule: the last `/images/` in the path becomes `/labels/`, suffix `.txt`."""
    s = str(image_path)
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sa in s:
        head, tail = s.rsplit(sa, 1)
        s = head + sb + tail
    return Path(s).with_suffix(".txt")


def _schema_from_yaml(data: dict[str, Any], file: str) -> list[Category]:
    shape = data.get("kpt_shape")
    if not (isinstance(shape, list) and len(shape) == 2 and shape[1] in (2, 3) and shape[0] > 0):
        raise DatasetError(f"{file}: kpt_shape must be [K, 2] or [K, 3], got {shape!r}")
    k = int(shape[0])
    names = data.get("names")
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise DatasetError(f"{file}: 'names' must map class indices to names")
    extra = data.get("posekit") or {}
    kpt_names_all = data.get("kpt_names") or {}
    cats = []
    for cls in sorted(int(c) for c in names):
        kn = kpt_names_all.get(cls) or kpt_names_all.get(str(cls))
        if kn is None:  # Ultralytics' own COCO-pose YAML names no keypoints
            kn = list(COCO17_KEYPOINTS) if k == 17 else [f"kp{i}" for i in range(k)]
        if len(kn) != k:
            raise DatasetError(
                f"{file}: kpt_names for class {cls} has {len(kn)} names, kpt_shape says {k}"
            )
        preset = match_preset(tuple(kn))
        try:
            schema = KeypointSchema.create(
                str(names[cls] if cls in names else names[str(cls)]),
                kn,
                extra.get("skeleton", preset.skeleton if preset else ()),
                flip_idx=data.get("flip_idx"),
                sigmas=extra.get("sigmas", preset.sigmas if preset else None),
            )
        except SchemaError as e:
            raise DatasetError(f"{file}: {e}") from None
        ids = extra.get("category_ids")
        cid = int(ids[cls]) if isinstance(ids, list) and cls < len(ids) else cls + 1
        cats.append(Category(cid, schema.name, schema))
    return cats


def _split_images(data: dict[str, Any], root: Path, split: str, file: str) -> list[Path]:
    entry = data.get(split)
    if entry is None:
        return []
    entries = entry if isinstance(entry, list) else [entry]
    images: list[Path] = []
    for e in entries:
        p = (root / str(e)).resolve()
        if p.is_dir():
            images += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.suffix == ".txt" and p.is_file():
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip():
                    q = Path(line.strip())
                    # normalised, not resolved: a linked image stays where the list puts it
                    images.append(Path(os.path.normpath(root / q)))
        else:
            raise DatasetError(
                f"{file}: {split} path {e!r} ({p}) is neither a folder nor a list file"
            )
    return images


def yolo_splits(path: str | Path) -> list[str]:
    data = read_yolo_yaml(Path(path))
    return [s for s in ("train", "val", "test") if data.get(s) is not None]


def read_yolo(path: str | Path, split: str = "train") -> KeypointDataset:
    """Read one split of a YOLO-pose dataset from its data YAML.

    Image sizes come from the image headers (the labels are normalised). Image `file_name`s are
    relative to the split's image folder.
    """
    path = Path(path)
    data = read_yolo_yaml(path)
    file = str(path)
    root = (path.parent / str(data.get("path", "."))).resolve()
    if not root.is_dir():  # Ultralytics resolves a relative `path` against its datasets dir
        root = path.parent.resolve()
    cats = _schema_from_yaml(data, file)
    k, ndim = int(data["kpt_shape"][0]), int(data["kpt_shape"][1])
    entry = data.get(split)
    if entry is None:
        raise DatasetError(f"{file}: no '{split}' split")
    image_paths = _split_images(data, root, split, file)
    split_root = (root / str(entry)).resolve() if not isinstance(entry, list) else root
    if split_root.is_file():
        split_root = root
    report = LoadReport()
    images, anns = [], []
    for iid, img_path in enumerate(image_paths, start=1):
        try:
            rel = img_path.relative_to(split_root).as_posix()
        except ValueError:
            report.add(
                Problem(
                    "image-path",
                    f"image {img_path} is outside the split's folder {split_root}",
                    file,
                    image_id=iid,
                ),
                skipped="image",
            )
            continue
        try:
            w, h = image_size(img_path)
        except (OSError, ValueError):
            w, h = -1, -1
        if w <= 0 or h <= 0:
            missing = not img_path.exists()
            report.add(
                Problem(
                    "image-missing" if missing else "image-unreadable",
                    f"image {'not found' if missing else 'has no readable size'}: {img_path}",
                    file,
                    image_id=iid,
                ),
                skipped="image",
            )
            continue
        images.append(ImageInfo(iid, rel, int(w), int(h)))
        lp = label_path(img_path)
        if lp.exists():
            anns += _read_label_file(lp, iid, w, h, k, ndim, cats, len(anns), report)
    _report_orphan_labels(image_paths, split_root, file, report)
    return KeypointDataset(images, anns, cats, split_root, f"{file}:{split}", report)


def _report_orphan_labels(
    image_paths: list[Path], split_root: Path, file: str, report: LoadReport
) -> None:
    """Label files with no image are never read: report each, with how many rows it holds."""
    if not split_root.is_dir():
        return
    labels_root = label_path(split_root / "x.jpg").parent
    if labels_root == split_root or not labels_root.is_dir():
        return
    expected = {label_path(p) for p in image_paths}
    for lp in sorted(labels_root.rglob("*.txt")):
        if lp not in expected:
            rows = sum(
                1
                for line in lp.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip()
            )
            msg = f"label file has no image (its {rows} row(s) are not loaded)"
            report.add(Problem("orphan-label", msg, str(lp)), skipped="label file")


def _read_label_file(
    lp: Path,
    iid: int,
    w: int,
    h: int,
    k: int,
    ndim: int,
    cats: list[Category],
    n_before: int,
    report: LoadReport,
) -> list[Annotation]:
    out = []
    expected = 5 + k * ndim
    for lineno, line in enumerate(
        lp.read_text(encoding="utf-8", errors="replace").splitlines(), start=1
    ):
        if not line.strip():
            continue
        aid = n_before + len(out) + 1

        def problem(code: str, msg: str, lineno: int = lineno) -> None:
            report.add(Problem(code, msg, str(lp), lineno, image_id=iid), skipped="annotation")

        parts = line.split()
        alt = 5 + k * (5 - ndim)  # the other variant (2 <-> 3 values per keypoint)
        if len(parts) not in (expected, alt):
            problem(
                "kpt-length",
                f"row has {len(parts)} values, expected {expected} (5 + {k} keypoints x {ndim})",
            )
            continue
        try:
            vals = np.array([float(p) for p in parts])
        except ValueError:
            problem("kpt-type", "row has a value that is not a number")
            continue
        if not np.isfinite(vals).all():
            problem("non-finite", "row has NaN/inf")
            continue
        cls = vals[0]
        if cls != int(cls) or not 0 <= int(cls) < len(cats):
            problem("missing-category", f"class {parts[0]} is not in 'names'")
            continue
        per = (len(parts) - 5) // k
        kp = vals[5:].reshape(k, per)
        kpts = np.zeros((k, 3))
        kpts[:, 0], kpts[:, 1] = kp[:, 0] * w, kp[:, 1] * h
        if per == 3:
            kpts[:, 2] = kp[:, 2]
        else:
            kpts[:, 2] = np.where((kp[:, 0] != 0) | (kp[:, 1] != 0), 2, 0)
        if not np.isin(kpts[:, 2], (0, 1, 2)).all():
            problem("visibility", "visibility outside {0, 1, 2}")
            continue
        cx, cy, bw, bh = vals[1] * w, vals[2] * h, vals[3] * w, vals[4] * h
        if bw <= 0 or bh <= 0:
            problem("bbox-size", f"box has non-positive size {vals[3]:g} x {vals[4]:g}")
            continue
        bbox = np.array([cx - bw / 2, cy - bh / 2, bw, bh])
        kpts[kpts[:, 2] == 0, :2] = 0.0
        out.append(Annotation(aid, iid, cats[int(cls)].id, kpts, bbox, float(bw * bh)))
    return out


def write_yolo(
    splits: dict[str, KeypointDataset],
    out_dir: str | Path,
    *,
    link_images: bool = True,
    report: LoadReport | None = None,
) -> Path:
    """Write datasets (split name -> dataset) as a YOLO-pose folder; returns the data YAML.

    All categories must share one keypoint count (YOLO has a single `kpt_shape`). Images go
    to `images/<split>/<file_name>` and each label file where Ultralytics' rule looks for it
    (`label_path`), also when a file name has an `images/` folder of its own (PoseTrack's
    `images/val/...`). YOLO-pose has no crowd regions: crowd annotations are not written,
    and counted in `report` (as skipped "annotation (yolo-crowd)") when one is given.
    """
    from posekit.data.layout import place_image

    out = Path(out_dir)
    first = next(iter(splits.values()))
    cats = sorted(first.categories, key=lambda c: c.id)
    ks = {c.schema.num_keypoints for c in cats}
    if len(ks) != 1:
        raise DatasetError(
            f"YOLO-pose has one kpt_shape, but the categories have {sorted(ks)} "
            "keypoints; convert to COCO instead"
        )
    cls_of = {c.id: i for i, c in enumerate(cats)}
    for split, ds in splits.items():
        by_image = ds.annotations_by_image()
        for im in ds.images:
            dst_img = join_inside(out / "images" / split, im.file_name)
            place_image(ds.image_path(im), dst_img, link=link_images)
            anns = by_image.get(im.id, [])
            rows = [_label_row(a, cls_of[a.category_id], im) for a in anns if not a.iscrowd]
            write_text_replacing(label_path(dst_img), "".join(r + "\n" for r in rows))
        crowd = sum(a.iscrowd for a in ds.annotations)
        if crowd and report is not None:
            msg = (f"{crowd} crowd annotations (iscrowd=1) are not written: YOLO-pose has no "
                   "crowd regions (convert to COCO to keep them)")  # fmt: skip
            report.add(Problem("yolo-crowd", msg, ds.source, field=f"{split} annotations"))
            report.skipped["annotation (yolo-crowd)"] += crowd
    s = cats[0].schema
    data: dict[str, Any] = {"path": ".", **{sp: f"images/{sp}" for sp in splits}}
    data |= {
        "kpt_shape": [s.num_keypoints, 3],
        "flip_idx": list(s.flip_idx),
        "names": {i: c.name for i, c in enumerate(cats)},
        "kpt_names": {i: list(c.schema.keypoints) for i, c in enumerate(cats)},
        "posekit": {
            "skeleton": [list(e) for e in s.skeleton],
            "sigmas": list(s.sigmas),
            "category_ids": [c.id for c in cats],
        },
    }
    yaml_path = out / "data.yaml"
    write_text_replacing(yaml_path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return yaml_path


def _fmt(x: float) -> str:
    return f"{x:.10g}" if math.isfinite(x) else "0"


def _label_row(a: Annotation, cls: int, im: ImageInfo) -> str:
    w, h = im.width, im.height
    x, y, bw, bh = a.bbox
    vals = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
    kp = a.keypoints.copy()
    kp[kp[:, 2] == 0] = 0.0  # unlabelled keypoints are written as 0 0 0, as Ultralytics does
    kp[:, 0] /= w
    kp[:, 1] /= h
    vals += kp.reshape(-1).tolist()
    return f"{cls} " + " ".join(_fmt(v) for v in vals)
