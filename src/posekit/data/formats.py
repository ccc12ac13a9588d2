"""Every dataset format posekit reads or writes, in one table.

Each `DatasetFormat` says once how a format is recognised (`detect`), read (`read`, into
splits by name), written (`write`, for the formats `posekit data convert --to` offers), which
reading options it takes and how it is described. `detect_format`, `load_splits`, convert's
targets, the CLI help and the README's format table all come from `FORMATS`, so a format is
added in one place (tests are parametrised over the table).

Detection is by structure, in table order: the first format whose `detect` accepts a path
wins (a JSON list is Label Studio, a JSON object with `shapes` LabelMe, any other JSON COCO).
The detectors look at one `Probe` of the path, which parses a YAML file once however many
formats ask what it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from posekit.data.coco import read_coco
from posekit.data.cvat import read_cvat
from posekit.data.dataset import KeypointDataset
from posekit.data.dlc import read_dlc
from posekit.data.labelme import labelme_files, looks_like_labelme, read_labelme
from posekit.data.labelstudio import looks_like_labelstudio, read_labelstudio
from posekit.data.layout import SPLITS, resolve_posekit, write_posekit
from posekit.data.problems import DatasetError, LoadReport
from posekit.data.yamlfile import load_yaml
from posekit.data.yolo import is_yolo_yaml, read_yolo, write_yolo, yolo_splits
from posekit.utils.errors import UserError

Splits = dict[str, KeypointDataset]


@dataclass(frozen=True)
class ReadOptions:
    """How to read a dataset; each format uses the options named in its `options`.

    `strict`: a dataset with any problem is refused (`DatasetError` listing them).
    `repair`: COCO keypoint values that cannot be (v > 0 at a point never placed ...) are
    repaired, with a note; `False` keeps them as pycocotools reads them (for evaluation).
    `image_root`: the folder image names are relative to (default: guessed from the layout).
    `video_dir`, `include_predicted`, `frame_format`: SLEAP (see `posekit.data.sleap`).
    """

    strict: bool = False
    repair: bool = True
    image_root: str | Path | None = None
    video_dir: str | Path | None = None
    include_predicted: bool = False
    frame_format: str = "jpg"


_YAML_SUFFIXES = frozenset({".yaml", ".yml"})


class Probe:
    """What the detectors know of a path: kind and suffix, and the YAML document of a YAML
    file, parsed on first use and kept (YOLO's, DeepLabCut's and posekit's detectors all
    read it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_dir = path.is_dir()
        self.is_file = path.is_file()
        self.suffix = path.suffix.lower()

    @property
    def is_yaml(self) -> bool:
        return self.is_file and self.suffix in _YAML_SUFFIXES

    @cached_property
    def yaml(self) -> Any:
        """The parsed YAML document (None for anything but a YAML file)."""
        return load_yaml(self.path) if self.is_yaml else None


@dataclass(frozen=True)
class DatasetFormat:
    """One dataset format: its name, how it is found, read and (optionally) written."""

    name: str  # as `detect_format` returns it and `--to` takes it
    title: str  # what users call it (the README's table names it so)
    accepts: str  # the paths it accepts, for help and errors
    detect: Callable[[Probe], bool]
    read: Callable[[Path, ReadOptions], Splits]
    #: writes splits into a folder, returns what was written (folder or data YAML)
    write: Callable[..., Path] | None = None
    #: the top-level entries `write` creates (a forced conversion replaces only these)
    writes: tuple[str, ...] = ()
    #: `ReadOptions` fields beyond strict/repair that this format uses (`image_root` given
    #: for a format that does not use it is refused)
    options: frozenset[str] = frozenset()
    #: removed from the front of image names when converted (DeepLabCut's `labeled-data/`)
    strip_prefix: str | None = None


def _suffix(*suffixes: str) -> Callable[[Probe], bool]:
    return lambda p: p.is_file and p.suffix in suffixes


def _is_yaml(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in _YAML_SUFFIXES


def _is_dlc_yaml(p: Probe) -> bool:
    data = p.yaml
    return isinstance(data, dict) and (data.get("project_path") is not None or "bodyparts" in data)


def _is_json(p: Probe) -> bool:
    return p.is_file and p.suffix == ".json"


def _read_posekit(path: Path, o: ReadOptions) -> Splits:
    spec = resolve_posekit(path)
    return {s: read_coco(f, image_root=o.image_root or spec.images, strict=o.strict,
                         repair=o.repair)
            for s, f in spec.annotations.items()}  # fmt: skip


def _read_coco(path: Path, o: ReadOptions) -> Splits:
    split = path.stem if path.stem in SPLITS else "train"
    return {split: read_coco(path, strict=o.strict, repair=o.repair, image_root=o.image_root)}


def _read_sleap(path: Path, o: ReadOptions) -> Splits:
    from posekit.data.sleap import read_sleap

    return {"train": read_sleap(path, video_dir=o.video_dir, include_predicted=o.include_predicted,
                                frame_format=o.frame_format)}  # fmt: skip


def _read_dlc(path: Path, o: ReadOptions) -> Splits:
    return {"train": read_dlc(path.parent if _is_yaml(path) else path)}


def _write_coco(splits: Splits, out: Path, *, link_images: bool, strip_prefix: str | None,
                report: LoadReport) -> Path:  # fmt: skip
    return write_posekit(splits, out, link_images=link_images, strip_prefix=strip_prefix)


def _write_yolo(splits: Splits, out: Path, *, link_images: bool, strip_prefix: str | None,
                report: LoadReport) -> Path:  # fmt: skip
    return write_yolo(splits, out, link_images=link_images, report=report)


_SLEAP_OPTIONS = frozenset({"video_dir", "include_predicted", "frame_format"})

_COCO_LAYOUT = ("images", "annotations", "data.yaml")

#: In detection order.
FORMATS: tuple[DatasetFormat, ...] = (
    DatasetFormat("posekit", "posekit dataset",
                  "a folder with annotations/{train,val,test}.json, or a data YAML naming them",
                  lambda p: p.is_dir and (p.path / "annotations").is_dir(), _read_posekit,
                  _write_coco, _COCO_LAYOUT, options=frozenset({"image_root"})),
    DatasetFormat("yolo", "YOLO-pose", "a data YAML with kpt_shape",
                  lambda p: is_yolo_yaml(p.yaml),
                  lambda p, o: {s: read_yolo(p, s) for s in yolo_splits(p)}, _write_yolo,
                  ("images", "labels", "data.yaml")),
    DatasetFormat("dlc", "DeepLabCut", "a project folder (labeled-data/), its config.yaml or a "
                  "CollectedData_*.csv", lambda p: (p.is_dir and (p.path / "labeled-data").is_dir())
                  or _suffix(".csv")(p) or _is_dlc_yaml(p), _read_dlc,
                  strip_prefix="labeled-data/"),
    DatasetFormat("posekit-yaml", "posekit dataset", "a data YAML naming train/val/test",
                  lambda p: p.is_yaml, _read_posekit, options=frozenset({"image_root"})),
    DatasetFormat("labelme", "LabelMe JSON", "a LabelMe .json, or a folder of them",
                  lambda p: (p.is_dir and bool(labelme_files(p.path)))
                  or (_is_json(p) and looks_like_labelme(p.path)),
                  lambda p, o: {"train": read_labelme(p)}),
    DatasetFormat("labelstudio", "Label Studio JSON", "a Label Studio export (a JSON list)",
                  lambda p: _is_json(p) and looks_like_labelstudio(p.path),
                  lambda p, o: {"train": read_labelstudio(p, image_root=o.image_root)},
                  options=frozenset({"image_root"})),
    DatasetFormat("coco", "COCO keypoints JSON", "a COCO keypoints .json", _is_json, _read_coco,
                  _write_coco, _COCO_LAYOUT, options=frozenset({"image_root"})),
    DatasetFormat("cvat", "CVAT for images / for video XML 1.1", "a CVAT .xml export",
                  _suffix(".xml"), lambda p, o: {"train": read_cvat(p, image_root=o.image_root)},
                  options=frozenset({"image_root"})),
    DatasetFormat("sleap", "SLEAP .slp", "a SLEAP .slp (or .pkg.slp) file", _suffix(".slp"),
                  _read_sleap, options=_SLEAP_OPTIONS),
)  # fmt: skip

#: the names `detect_format` returns (a posekit data YAML is "posekit", as its folder)
NAMES = tuple(dict.fromkeys(f.name.removesuffix("-yaml") for f in FORMATS))
#: the formats `posekit data convert --to` writes, by name
TARGETS = {f.name: f for f in FORMATS if f.write is not None}


def describe(option: str | None = None) -> str:
    """The formats as users call them, for help texts and messages ("posekit dataset,
    YOLO-pose, ..."); with `option`, only those that use that `ReadOptions` field."""
    return ", ".join(dict.fromkeys(f.title for f in FORMATS
                                   if option is None or option in f.options))  # fmt: skip


def format_of(path: str | Path) -> DatasetFormat:
    """The first format of `FORMATS` that recognises `path`, or a `DatasetError` listing what
    each format accepts."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: not found")
    probe = Probe(path)
    for fmt in FORMATS:
        if fmt.detect(probe):
            return fmt
    kind = "folder" if path.is_dir() else "file"
    expected = "; ".join(f"{f.title}: {f.accepts}" for f in FORMATS)
    raise DatasetError(f"{path}: unknown dataset format (no format recognises this {kind}); "
                       f"expected {expected}")  # fmt: skip


def detect_format(path: str | Path) -> str:
    """The name of a dataset's format (one of `NAMES`), or a `DatasetError` saying what it is
    not."""
    return format_of(path).name.removesuffix("-yaml")


def load_splits(
    path: str | Path,
    *,
    strict: bool = False,
    repair: bool = True,
    image_root: str | Path | None = None,
    video_dir: str | Path | None = None,
    include_predicted: bool = False,
    frame_format: str = "jpg",
) -> Splits:
    """Every split of a dataset in any supported format, by split name.

    Accepts each format of `FORMATS`: a posekit folder or YAML (its splits), a COCO JSON (one
    split named after the file), a YOLO-pose data YAML (its splits), and one split, "train",
    for the others. See `ReadOptions` for the options; an option a format has no use for
    (`image_root` for a YOLO dataset) is refused rather than ignored.
    """
    path = Path(path)
    fmt = format_of(path)
    if image_root is not None and "image_root" not in fmt.options:
        raise UserError(f"--image-root is for {describe('image_root')}; {path} is a "
                        f"{fmt.title} dataset")  # fmt: skip
    opts = ReadOptions(strict, repair, image_root, video_dir, include_predicted, frame_format)
    splits = fmt.read(path, opts)
    if strict:
        for ds in splits.values():
            if not ds.report.ok:
                raise DatasetError(f"{ds.source}: {ds.report.summary()}", ds.report.problems)
    return splits


def load_dataset(
    path: str | Path, split: str = "train", *, strict: bool = False, repair: bool = True
) -> KeypointDataset:
    """Load one split of any supported dataset (see `load_splits`)."""
    splits = load_splits(path, strict=strict, repair=repair)
    if split not in splits:
        raise DatasetError(f"{path}: no '{split}' split (has {', '.join(splits)})")
    return splits[split]


def validation_split(data: str | Path, split: str) -> KeypointDataset:
    """The split of a dataset that validation reads, its annotations as pycocotools sees
    them (not repaired); a dataset with one split is that split whatever `split` says."""
    splits = load_splits(data, repair=False)
    if split in splits:
        return splits[split]
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise DatasetError(f"{data}: no '{split}' split (has {', '.join(splits)})")
