"""The posekit dataset layout on disk: finding its files, and writing datasets in it.

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

from posekit.data.coco import write_coco
from posekit.data.dataset import KeypointDataset
from posekit.data.problems import DatasetError
from posekit.data.yamlfile import load_yaml
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
        data = load_yaml(path)
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
