"""Finding datasets on disk: the posekit layout, and detection of every supported format.

A posekit dataset is a folder with `images/` and `annotations/{train,val,test}.json`, or a YAML
file naming them:

    path: .                       # root, relative to this file
    images: images                # image folder, relative to the root
    train: annotations/train.json
    val: annotations/val.json     # optional, as is test
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from posekit.data.coco import read_coco, write_coco
from posekit.data.cvat import read_cvat
from posekit.data.dataset import KeypointDataset
from posekit.data.dlc import read_dlc
from posekit.data.labelme import labelme_files, looks_like_labelme, read_labelme
from posekit.data.labelstudio import looks_like_labelstudio, read_labelstudio
from posekit.data.problems import DatasetError
from posekit.data.yolo import is_yolo_yaml, read_yolo, yolo_splits
from posekit.utils.paths import join_inside, write_text_replacing

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataSpec:
    """Where a posekit dataset's image folder and annotation files are."""

    root: Path
    images: Path
    annotations: dict[str, Path]


def resolve_posekit(path: str | Path) -> DataSpec:
    """The `DataSpec` of a posekit dataset folder or YAML file (`--data` accepts either)."""
    path = Path(path)
    if path.is_dir():
        ann_dir = path / "annotations"
        files = {s: ann_dir / f"{s}.json" for s in SPLITS if (ann_dir / f"{s}.json").is_file()}
        if not files:
            raise DatasetError(
                f"{path}: not a posekit dataset (no annotations/train.json, val.json or test.json)"
            )
        return DataSpec(path, path / "images", files)
    if path.suffix.lower() in {".yaml", ".yml"}:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DatasetError(f"{path}: file not found") from None
        except yaml.YAMLError as e:
            raise DatasetError(f"{path}: invalid YAML: {e}") from None
        if not isinstance(data, dict) or not any(s in data for s in SPLITS):
            raise DatasetError(f"{path}: a posekit data YAML needs 'train', 'val' or 'test'")
        root = (path.parent / str(data.get("path", "."))).resolve()
        files = {s: root / str(data[s]) for s in SPLITS if data.get(s)}
        for s, f in files.items():
            if not f.is_file():
                raise DatasetError(f"{path}: {s} annotations {f} not found")
        return DataSpec(root, root / str(data.get("images", "images")), files)
    if not path.exists():
        raise DatasetError(f"{path}: not found")
    raise DatasetError(f"{path}: expected a posekit dataset folder or data YAML")


def load_dataset(
    path: str | Path, split: str = "train", *, strict: bool = False, repair: bool = True
) -> KeypointDataset:
    """Load one split of any supported dataset (see `load_splits`)."""
    splits = load_splits(path, strict=strict, repair=repair)
    if split not in splits:
        raise DatasetError(f"{path}: no '{split}' split (has {', '.join(splits)})")
    return splits[split]


def detect_format(path: str | Path) -> str:
    """'posekit', 'coco', 'yolo', 'dlc', 'labelme', 'labelstudio', 'cvat' or 'sleap' for a
    path, or a `DatasetError` saying what it is not."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: not found")
    if path.is_dir():
        if (path / "annotations").is_dir():
            return "posekit"
        if (path / "labeled-data").is_dir():
            return "dlc"
        if labelme_files(path):
            return "labelme"
        raise DatasetError(
            f"{path}: folder is neither a posekit dataset (annotations/), a DeepLabCut project "
            "(labeled-data/) nor a folder of LabelMe files"
        )
    suffix = path.suffix.lower()
    if suffix == ".json":
        if looks_like_labelme(path):
            return "labelme"
        return "labelstudio" if looks_like_labelstudio(path) else "coco"
    if suffix == ".csv":
        return "dlc"
    if suffix == ".xml":
        return "cvat"
    if suffix == ".slp":
        return "sleap"
    if suffix in {".yaml", ".yml"}:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise DatasetError(f"{path}: invalid YAML: {e}") from None
        if is_yolo_yaml(data):
            return "yolo"
        if isinstance(data, dict) and (data.get("project_path") is not None or "bodyparts" in data):
            return "dlc"
        return "posekit"
    raise DatasetError(
        f"{path}: unknown dataset format (expected a folder, .json, .yaml, .csv, .xml or .slp)"
    )


def load_splits(
    path: str | Path,
    *,
    strict: bool = False,
    repair: bool = True,
    image_root: str | Path | None = None,
    video_dir: str | Path | None = None,
    include_predicted: bool = False,
    frame_format: str = "jpg",
) -> dict[str, KeypointDataset]:
    """Every split of a dataset in any supported format, by split name.

    Accepts a posekit folder or YAML, a COCO JSON (one split named after the file), a YOLO-pose
    data YAML, a DeepLabCut CSV, project folder or its config.yaml (one split, "train").
    `repair=False` keeps impossible keypoint values of COCO files as they are (for evaluation).
    `image_root`: the folder a COCO file's `file_name`s are relative to (default: guessed).
    SLEAP `.slp` files (one split, "train"): `video_dir` is where to look for videos not found
    at their stored path, `include_predicted` adds predicted-only instances, `frame_format`
    names the frames to extract ("jpg" or "png"; see `posekit.data.sleap`).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "posekit":
        spec = resolve_posekit(path)
        return {
            s: read_coco(f, image_root=image_root or spec.images, strict=strict, repair=repair)
            for s, f in spec.annotations.items()
        }
    if fmt == "coco":
        split = path.stem if path.stem in SPLITS else "train"
        return {split: read_coco(path, strict=strict, repair=repair, image_root=image_root)}
    if fmt == "cvat":
        return {"train": read_cvat(path, image_root=image_root)}
    if fmt == "sleap":
        from posekit.data.sleap import read_sleap

        return {"train": read_sleap(path, video_dir=video_dir, include_predicted=include_predicted,
                                    frame_format=frame_format)}  # fmt: skip
    if fmt == "labelstudio":
        return {"train": read_labelstudio(path, image_root=image_root)}
    if image_root is not None:
        raise ValueError(f"--image-root is for COCO, CVAT and Label Studio files; {path} is a "
                         f"{fmt} dataset")  # fmt: skip
    if fmt == "labelme":
        return {"train": read_labelme(path)}
    if fmt == "yolo":
        out = {s: read_yolo(path, s) for s in yolo_splits(path)}
    else:
        out = {"train": read_dlc(path.parent if path.suffix.lower() in {".yaml", ".yml"} else path)}
    if strict:
        for ds in out.values():
            if not ds.report.ok:
                raise DatasetError(f"{ds.source}: {ds.report.summary()}", ds.report.problems)
    return out


def place_image(src: Path, dst: Path, *, link: bool = True) -> None:
    """Put a copy of an image at `dst` (inside an output folder the caller owns).

    A hard link when allowed and safe: `src` is a regular file, not a symbolic link, and
    belongs to the user running posekit (a link to someone else's file would let a later
    write to the output change theirs). Otherwise the content is copied, and the copy's
    permissions are never wider than the source's (an image readable by its owner only,
    reached through a link, stays so). An existing `dst` that is not already the same file
    is replaced; a link planted at `dst` is replaced, never written through.
    """
    if dst.exists() and dst.samefile(src):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mktemp(prefix=f".{dst.name}.", suffix=".posekit-tmp", dir=dst.parent))
    try:
        if link and _linkable(src):
            try:
                os.link(src, tmp, follow_symlinks=False)
            except OSError:  # another file system, or links not allowed there
                _copy_narrowed(src, tmp)
        else:
            _copy_narrowed(src, tmp)
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_narrowed(src: Path, tmp: Path) -> None:
    """Copy `src`'s content (following a symbolic link: the content, never the link) into a
    new file `tmp` whose mode is the usual one narrowed by the source's."""
    mode = stat.S_IMODE(src.stat().st_mode)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & mode)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
        shutil.copyfileobj(f, out, 1 << 20)


def _linkable(src: Path) -> bool:
    st = src.lstat()
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid()


def write_posekit(
    splits: dict[str, KeypointDataset],
    out_dir: str | Path,
    *,
    link_images: bool = True,
    strip_prefix: str | None = None,
) -> Path:
    """Write datasets as a posekit folder (images/ + annotations/<split>.json + data.yaml).

    Images are placed under `images/<file_name>` (with `strip_prefix` removed from the front
    of file names, e.g. DeepLabCut's `labeled-data/`). Two different source images that would
    land on the same name are an error rather than a silent overwrite.
    """
    out = Path(out_dir)
    placed: dict[str, Path] = {}
    written = {}
    for split, ds in splits.items():
        images = []
        for im in ds.images:
            name = im.file_name
            if strip_prefix and name.startswith(strip_prefix):
                name = name[len(strip_prefix) :]
            src = ds.image_path(im)
            if name in placed and placed[name] != src.resolve():
                raise DatasetError(
                    f"two images would both be written as images/{name}: {placed[name]} and {src}"
                )
            placed[name] = src.resolve()
            place_image(src, join_inside(out / "images", name), link=link_images)
            images.append(replace(im, file_name=name))
        new = KeypointDataset(images, ds.annotations, ds.categories, out / "images", ds.source)
        written[split] = write_coco(new, out / "annotations" / f"{split}.json")
    data = {"path": ".", "images": "images"}
    data |= {s: f"annotations/{s}.json" for s in SPLITS if s in written}
    write_text_replacing(out / "data.yaml", yaml.safe_dump(data, sort_keys=False))
    return out


def validation_split(data: str | Path, split: str) -> KeypointDataset:
    """The split of a dataset that validation reads, its annotations as pycocotools sees
    them (not repaired); a dataset with one split is that split whatever `split` says."""
    splits = load_splits(data, repair=False)
    if split in splits:
        return splits[split]
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise DatasetError(f"{data}: no '{split}' split (has {', '.join(splits)})")
