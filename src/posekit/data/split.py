"""`posekit data split`: seeded split of a dataset into train / val / test, by image.

Re-splitting a dataset on disk moves the annotation file entries as they are (every field and
top-level key kept, including those posekit does not read, such as `licenses`), refuses a
dataset whose loader skipped images or categories (they would be lost), and writes the new
split files as one unit (`posekit.utils.commit`): all of them are written to a staging folder
first and then renamed into place, and a failure at any rename undoes the ones before it, so
the old files are untouched. A split into a new folder is staged the same way.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from posekit.data.coco import load_json
from posekit.data.dataset import Annotation, ImageInfo, KeypointDataset
from posekit.data.formats import load_splits
from posekit.data.layout import SPLITS, place_image, resolve_posekit
from posekit.data.problems import DatasetError
from posekit.data.yamlfile import load_yaml
from posekit.utils.commit import commit_staged, staging_folder, write_staged
from posekit.utils.errors import UserError
from posekit.utils.outputs import claim_output, kept_entries, remove_earlier
from posekit.utils.paths import join_inside, write_text_replacing

#: The top-level entries a split into a new folder writes (never one it did not make).
WRITES = ("images", "annotations", "data.yaml")


def partition_ids(
    ids: list[int], *, val: float = 0.1, test: float = 0.0, seed: int = 0
) -> dict[str, list[int]]:
    """Shuffle image ids with `seed` and cut them into train / val / test (empty ones left
    out); fractions are of the number of images, rounded to the nearest image."""
    if not (0 <= val <= 1 and 0 <= test <= 1 and val + test <= 1):
        raise UserError(f"val ({val}) and test ({test}) must be fractions summing to <= 1")
    ordered = np.array(sorted(ids))
    order = np.random.default_rng(seed).permutation(len(ordered))
    n_val, n_test = round(val * len(ordered)), round(test * len(ordered))
    parts = {
        "val": ordered[order[:n_val]],
        "test": ordered[order[n_val : n_val + n_test]],
        "train": ordered[order[n_val + n_test :]],
    }
    return {s: parts[s].tolist() for s in SPLITS if len(parts[s])}


def split_dataset(
    ds: KeypointDataset, *, val: float = 0.1, test: float = 0.0, seed: int = 0
) -> dict[str, KeypointDataset]:
    """Split an in-memory dataset by image (see `partition_ids`): every image and every
    annotation lands in exactly one split."""
    parts = partition_ids([im.id for im in ds.images], val=val, test=test, seed=seed)
    return {s: ds.subset(ids, source=f"{ds.source} ({s})") for s, ids in parts.items()}


def merge_splits(splits: dict[str, KeypointDataset]) -> KeypointDataset:
    """All splits of one dataset as one. Ids are renumbered when two splits use the same ones;
    the splits must share their image folder (as in the posekit layout)."""
    first = next(iter(splits.values()))
    images = [im for ds in splits.values() for im in ds.images]
    anns = [a for ds in splits.values() for a in ds.annotations]
    if len({im.id for im in images}) != len(images) or len({a.id for a in anns}) != len(anns):
        images, anns = _renumber(splits)
    return KeypointDataset(images, anns, first.categories, first.image_root, first.source)


def _renumber(splits: dict[str, KeypointDataset]) -> tuple[list[ImageInfo], list[Annotation]]:
    images: list[ImageInfo] = []
    anns: list[Annotation] = []
    for ds in splits.values():
        remap = {}
        for im in ds.images:
            remap[im.id] = len(images) + 1
            images.append(replace(im, id=remap[im.id]))
        for a in ds.annotations:
            anns.append(replace(a, id=len(anns) + 1, image_id=remap[a.image_id]))
    return images, anns


# ---------------------------------------------------------------------- on disk
def split_on_disk(
    src: str | Path,
    out: str | Path | None = None,
    *,
    val: float = 0.1,
    test: float = 0.0,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Re-split a posekit dataset (all its current splits together), in place or into a new
    folder `out` (empty, an earlier split output, or any folder with `force`).

    Raises:
        DatasetError: the loader skipped images or categories (re-splitting would lose them),
            or the splits disagree on their categories.
    """
    src = Path(src)
    spec = resolve_posekit(src)
    _refuse_lossy(src, load_splits(src))
    raw = {s: load_json(f) for s, f in spec.annotations.items()}
    merged = _merge_raw(raw, src)
    ids = [im["id"] for im in merged["images"]]
    parts = partition_ids(ids, val=val, test=test, seed=seed)
    new = {s: _subset_raw(merged, set(p)) for s, p in parts.items()}
    target = Path(out) if out is not None else spec.root
    if target.resolve() == spec.root.resolve():
        return _replace_split_files(src, spec.annotations, new)
    claim_output(target, "data split", source=str(src), force=force, writes=WRITES,
                 keep_earlier=True)  # fmt: skip

    def write(stage: Path) -> None:  # the whole output, committed at once when complete
        for im in merged["images"]:
            name = im["file_name"]
            place_image(join_inside(spec.images, name), join_inside(stage / "images", name))
        files = {s: f"annotations/{s}.json" for s in new}
        for s, obj in new.items():
            write_text_replacing(stage / files[s], _dumps(obj))
        data = {"path": ".", "images": "images", **files}
        write_text_replacing(stage / "data.yaml", yaml.safe_dump(data, sort_keys=False))

    write_staged(target, "split", write)
    remove_earlier(target, [*kept_entries(target), *WRITES])  # an earlier run's rest
    return target


def _refuse_lossy(src: Path, splits: dict[str, KeypointDataset]) -> None:
    """Annotation entries are carried over as they are, but an image or category the loader
    skipped has no place in a new split: refuse rather than lose it."""
    lost = {what: n for ds in splits.values() for what, n in ds.report.skipped.items()
            if what.startswith(("image", "category")) or "missing-image" in what}  # fmt: skip
    if lost:
        listing = ", ".join(f"{n} {what}" for what, n in lost.items())
        raise DatasetError(
            f"{src}: the loader skipped {listing}; re-splitting would lose them, so nothing "
            f"was changed: fix them first (`posekit data check {src}` lists each one)"
        )


def _merge_raw(raw: dict[str, dict[str, Any]], src: Path) -> dict[str, Any]:
    """One COCO object from the split files: top-level keys of every file (the first file's
    value wins), all images and annotations, renumbered only when two files share ids."""
    first = next(iter(raw.values()))
    for name, obj in raw.items():
        if obj.get("categories") != first.get("categories"):
            raise DatasetError(f"{src}: the {name} split's categories differ from the others'")
    merged: dict[str, Any] = {}
    for obj in raw.values():
        for k, v in obj.items():
            merged.setdefault(k, v)
    images = [dict(im) for obj in raw.values() for im in obj["images"]]
    anns = [dict(a) for obj in raw.values() for a in obj["annotations"]]
    if len({im["id"] for im in images}) != len(images) or len({a["id"] for a in anns}) != len(anns):
        images, anns = [], []
        for obj in raw.values():
            remap = {}
            for im in obj["images"]:
                remap[im["id"]] = len(images) + 1
                images.append({**im, "id": remap[im["id"]]})
            for a in obj["annotations"]:
                anns.append({**a, "id": len(anns) + 1, "image_id": remap[a["image_id"]]})
    merged["images"], merged["annotations"] = images, anns
    return merged


def _subset_raw(merged: dict[str, Any], ids: set[int]) -> dict[str, Any]:
    return {
        **merged,
        "images": [im for im in merged["images"] if im["id"] in ids],
        "annotations": [a for a in merged["annotations"] if a["image_id"] in ids],
    }


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _replace_split_files(src: Path, old: dict[str, Path], new: dict[str, dict[str, Any]]) -> Path:
    """Write the new split files beside the old ones as one unit: everything is written into
    a temporary folder first; only when all of it is there are the files renamed into place
    and the old split files that the new split lacks removed."""
    folders = {f.parent.resolve() for f in old.values()}
    if len(folders) != 1:
        raise DatasetError(f"{src}: its split files are in different folders; split it with --out")
    ann_dir = folders.pop()
    targets = {s: old.get(s, ann_dir / f"{s}.json") for s in new}
    # the data YAML that names the split files, if any, is rewritten in the same unit
    yaml_file = src if src.is_file() else src / "data.yaml"
    if not yaml_file.is_file():
        yaml_file = None
    stage = staging_folder(ann_dir, "split")
    try:
        for s, obj in new.items():
            (stage / f"{s}.json").write_text(_dumps(obj), encoding="utf-8")
        moves = [(stage / f"{s}.json", f) for s, f in targets.items()]
        if yaml_file is not None:
            data = load_yaml(yaml_file)
            if not isinstance(data, dict):
                raise DatasetError(f"{yaml_file}: not a posekit data YAML; nothing was changed")
            root = yaml_file.parent / str(data.get("path", "."))
            for s in SPLITS:
                data.pop(s, None)
            for s, f in targets.items():
                data[s] = Path(_relative(f, root.resolve())).as_posix()
            (stage / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
            moves.append((stage / "data.yaml", yaml_file))
        gone = [f for s, f in old.items() if s not in new]
        try:
            commit_staged(moves, stage, remove=gone)
        except OSError as e:
            raise DatasetError(f"{src}: the new split could not be put in place ({e}); "
                               "nothing was changed") from None  # fmt: skip
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return src


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path.resolve())
