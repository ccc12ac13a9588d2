"""DeepLabCut labels: `CollectedData_<scorer>.csv` files and whole project folders.

A CSV has a 3-row header (scorer / bodyparts / coords) for single-animal projects, or a 4-row
header (scorer / individuals / bodyparts / coords) for multi-animal ones; the image path is one
column (`labeled-data/video/img.png`) or, since DeepLabCut 2.2, three. An empty cell is an
unlabelled keypoint. Each individual with at least one labelled keypoint becomes one instance;
multi-animal projects' `single` individual (unique body parts) becomes a category of its own.

The bounding box is derived from the labelled keypoints: their extent grown on every side by
max(`min_margin` px, `margin` x the extent's longer side), clipped to the image. The defaults
(10 % and 10 px) cover the body between landmarks such as ears and tail base.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from posekit.data.dataset import (
    BOX_MARGIN,
    BOX_MIN_MARGIN,
    Annotation,
    Category,
    ImageInfo,
    KeypointDataset,
    bbox_from_keypoints,
    far_outside,
)
from posekit.data.images import image_size
from posekit.data.problems import DatasetError, LoadReport, Problem
from posekit.data.yamlfile import load_yaml
from posekit.schema import KeypointSchema, SchemaError
from posekit.utils.paths import escapes


def find_project_root(csv_path: Path) -> Path:
    """The DeepLabCut project folder of a label CSV: the first parent holding config.yaml
    (CSV paths are relative to it); else the parent of `labeled-data`."""
    for p in csv_path.resolve().parents:
        if (p / "config.yaml").is_file():
            return p
    parents = csv_path.resolve().parents
    return parents[2] if len(parents) > 2 else csv_path.resolve().parent


def read_dlc_config(project: Path) -> dict[str, Any]:
    path = project / "config.yaml"
    if not path.is_file():
        return {}
    data = load_yaml(path)
    return data if isinstance(data, dict) else {}


def project_csvs(project: Path) -> list[Path]:
    """Label files of a project, one per labelled video folder: its CSV, or its
    `CollectedData_*.h5` when it has no CSV (DeepLabCut writes both; some projects keep only
    the HDF5). DeepLabCut's `*_labeled` visualisation folders are skipped."""
    out = []
    for folder in sorted((project / "labeled-data").glob("*/")):
        if folder.name.endswith("_labeled"):
            continue
        csvs = sorted(folder.glob("CollectedData_*.csv"))
        out += csvs or sorted(folder.glob("CollectedData_*.h5"))
    return out


def read_dlc(
    path: str | Path, *, margin: float = BOX_MARGIN, min_margin: float = BOX_MIN_MARGIN
) -> KeypointDataset:
    """Read a DeepLabCut CSV, or every labelled video folder of a project folder.

    `file_name`s are relative to the project folder (`labeled-data/<video>/<image>`).
    """
    path = Path(path)
    if path.is_dir():
        project = path
        csvs = project_csvs(project)
        if not csvs:
            raise DatasetError(f"{path}: no labeled-data/*/CollectedData_*.csv (or .h5) in this "
                               "folder")  # fmt: skip
    elif path.is_file():
        project, csvs = find_project_root(path), [path]
    else:
        raise DatasetError(f"{path}: not found")
    config = read_dlc_config(project)
    builder = _Builder(project, config, margin, min_margin)
    for c in csvs:
        builder.add_csv(c)
    return builder.finish(str(path))


class _Builder:
    """Accumulates images and instances across CSVs of one project."""

    def __init__(self, project: Path, config: dict[str, Any], margin: float, min_margin: float):
        self.project, self.config = project, config
        self.margin, self.min_margin = margin, min_margin
        self.report = LoadReport()
        self.images: dict[str, ImageInfo] = {}
        self.annotations: list[Annotation] = []
        self.categories: dict[str, Category] = {}

    def category(self, name: str, bodyparts: list[str], file: str) -> Category:
        if name in self.categories:
            cat = self.categories[name]
            if list(cat.schema.keypoints) != bodyparts:
                raise DatasetError(
                    f"{file}: body parts {bodyparts} differ from an earlier "
                    f"file's {list(cat.schema.keypoints)}"
                )
            return cat
        names = set(bodyparts)
        skeleton = [
            e
            for e in self.config.get("skeleton") or []
            if isinstance(e, list) and len(e) == 2 and set(e) <= names
        ]
        try:
            schema = KeypointSchema.create(name, bodyparts, skeleton)
        except SchemaError as e:
            raise DatasetError(f"{file}: {e}") from None
        cat = Category(len(self.categories) + 1, name, schema)
        self.categories[name] = cat
        return cat

    def add_csv(self, path: Path) -> None:
        file = str(path)
        if path.suffix.lower() == ".h5":
            rows = hdf_rows(path)
        else:
            try:
                with path.open(newline="", encoding="utf-8") as f:
                    rows = list(csv.reader(f))
            except (OSError, UnicodeDecodeError) as e:
                raise DatasetError(f"{file}: cannot read: {e}") from None
        header, n_index, columns = _parse_header(rows, file)
        expected = _expected_bodyparts(self.config, header)
        groups: dict[str, list[tuple[str, int, int]]] = defaultdict(list)  # ind -> (bp, xcol, ycol)
        for ind, bp, xcol, ycol in columns:
            groups[ind].append((bp, xcol, ycol))
        cats = {}
        for ind, parts in groups.items():
            bodyparts = [bp for bp, _, _ in parts]
            cat_name = "single" if ind == "single" else "animal"
            if expected is not None and ind != "single" and bodyparts != expected:
                self.report.add(
                    Problem(
                        "bodyparts",
                        f"body parts {bodyparts} differ from config.yaml's {expected}",
                        file,
                        line=len(header),
                        field="bodyparts",
                    )
                )
            cats[ind] = self.category(cat_name, bodyparts, file)
        width = len(header[-1])
        for r, row in enumerate(rows[len(header) :], start=len(header) + 1):
            if not any(cell.strip() for cell in row):
                continue
            # a shorter row ends in unlabelled cells (pandas reads it so: multi-animal files
            # with unique body parts leave them off); a longer one cannot be placed
            if len(row) > width:
                msg = f"row has {len(row)} cells, the header has {width}"
                self.report.add(Problem("row-length", msg, file, r), skipped="row")
                continue
            self._add_row(row, r, n_index, groups, cats, file, multi=len(header) == 4)

    def _add_row(
        self,
        row: list[str],
        lineno: int,
        n_index: int,
        groups: dict[str, list[tuple[str, int, int]]],
        cats: dict[str, Category],
        file: str,
        multi: bool = False,
    ) -> None:
        rel = "/".join(c.strip() for c in row[:n_index] if c.strip()).replace("\\", "/")
        if not rel:
            self.report.add(
                Problem("missing-field", "row has no image path", file, lineno), skipped="row"
            )
            return
        why = escapes(rel)
        if why is not None:
            msg = f"image path {rel!r} {why}: it must name a file inside the project"
            self.report.add(Problem("image-path", msg, file, lineno), skipped="row")
            return
        image = self.images.get(rel)
        if image is None:
            img_path = self.project / rel
            try:
                w, h = image_size(img_path)
            except (OSError, ValueError):
                w, h = -1, -1
            if w <= 0 or h <= 0:
                code = "image-missing" if not img_path.exists() else "image-unreadable"
                self.report.add(
                    Problem(
                        code,
                        f"image {rel} {'not found' if code == 'image-missing' else 'unreadable'} "
                        f"in {self.project}",
                        file,
                        lineno,
                    ),
                    skipped="row",
                )
                return
            image = ImageInfo(len(self.images) + 1, rel, int(w), int(h))
            self.images[rel] = image
        for ind, parts in groups.items():
            kpts = np.zeros((len(parts), 3))
            for j, (bp, xc, yc) in enumerate(parts):
                xs = row[xc].strip() if xc < len(row) else ""
                ys = row[yc].strip() if yc < len(row) else ""
                kpts[j] = self._cell(xs, ys, file, lineno, image.id, f"{ind}/{bp}")
            far = (kpts[:, 2] > 0) & far_outside(kpts[:, :2], image.width, image.height)
            for j in np.flatnonzero(far):
                bp = parts[j][0]
                msg = (f"{bp!r} at ({kpts[j, 0]:g}, {kpts[j, 1]:g}) is far outside the "
                       f"{image.width}x{image.height} image: treated as unlabelled")  # fmt: skip
                where = {"image_id": image.id, "field": f"{ind}/{bp}"}
                problem = Problem("kpt-outside", msg, file, lineno, **where)
                self.report.add(problem, skipped="keypoint")
                kpts[j] = 0.0
            bbox = bbox_from_keypoints(
                kpts, image.width, image.height, margin=self.margin, min_margin=self.min_margin
            )
            if bbox is None:  # this individual is not in the frame: nothing to drop
                continue
            aid = len(self.annotations) + 1
            area = float(bbox[2] * bbox[3])
            extra = {"individual": ind} if multi else {}  # multi-animal: the animal's name
            self.annotations.append(
                Annotation(aid, image.id, cats[ind].id, kpts, bbox, area, extra=extra)
            )

    def _cell(self, xs: str, ys: str, file: str, lineno: int, iid: int, fld: str) -> np.ndarray:
        if not xs and not ys:
            return np.zeros(3)

        def unlabelled(code: str, msg: str) -> np.ndarray:
            problem = Problem(code, f"{msg}: treated as unlabelled", file, lineno, image_id=iid,
                              field=fld)  # fmt: skip
            self.report.add(problem, skipped="keypoint")
            return np.zeros(3)

        if not xs or not ys:
            return unlabelled("kpt-partial", "only one of x and y is labelled")
        try:
            x, y = float(xs), float(ys)
        except ValueError:
            return unlabelled("kpt-type", f"({xs!r}, {ys!r}) is not a number")
        if not (math.isfinite(x) and math.isfinite(y)):
            return np.zeros(3)  # DeepLabCut writes NaN for unlabelled
        return np.array([x, y, 2.0])

    def finish(self, source: str) -> KeypointDataset:
        return KeypointDataset(
            list(self.images.values()),
            self.annotations,
            list(self.categories.values()),
            self.project,
            source,
            self.report,
        )


def _parse_header(rows: list[list[str]], file: str) -> tuple[list[list[str]], int, list]:
    """Header rows, number of image-path columns, and (individual, bodypart, xcol, ycol)."""
    labels = [r[0].strip().lower() if r else "" for r in rows[:4]]
    if labels[:1] != ["scorer"]:
        raise DatasetError(f"{file}:1: not a DeepLabCut CSV (first cell should be 'scorer')")
    if labels[1:4] == ["individuals", "bodyparts", "coords"]:
        header, ind_row = rows[:4], rows[1]
    elif labels[1:3] == ["bodyparts", "coords"]:
        header, ind_row = rows[:3], None
    else:
        raise DatasetError(
            f"{file}: DeepLabCut header must be scorer/bodyparts/coords or "
            f"scorer/individuals/bodyparts/coords, got {labels}"
        )
    bp_row, coord_row = header[-2], header[-1]
    n_index = 1
    while n_index < len(coord_row) and coord_row[n_index].strip() == "":
        n_index += 1
    columns = []
    c = n_index
    while c < len(coord_row):
        kind = coord_row[c].strip()
        if kind == "x":
            if c + 1 >= len(coord_row) or coord_row[c + 1].strip() != "y":
                raise DatasetError(f"{file}:{len(header)}: column {c + 1}: 'x' not followed by 'y'")
            ind = ind_row[c].strip() if ind_row is not None else "animal"
            columns.append((ind, bp_row[c].strip(), c, c + 1))
            c += 2
        elif kind == "likelihood":
            c += 1
        else:
            raise DatasetError(
                f"{file}:{len(header)}: column {c + 1}: unexpected coords label {kind!r}"
            )
    if not columns:
        raise DatasetError(f"{file}: no body part columns")
    return header, n_index, columns


def _expected_bodyparts(config: dict[str, Any], header: list[list[str]]) -> list[str] | None:
    key = "multianimalbodyparts" if len(header) == 4 else "bodyparts"
    bp = config.get(key)
    return list(bp) if isinstance(bp, list) and bp else None


def hdf_rows(path: Path) -> list[list[str]]:
    """A DeepLabCut `CollectedData_*.h5` (a pandas table) as the rows of the CSV DeepLabCut
    would write beside it, so that it is validated exactly like one. Needs pandas, PyTables
    and h5py (`pip install 'posekit[dlc]'`). The file is checked before pandas reads it: a
    table that would unpickle anything but plain values is refused (`posekit.utils.hdf5`)."""
    from posekit.utils.extras import require
    from posekit.utils.hdf5 import UnsafeHDF5Error, plain_hdf5_image, read_pandas_hdf

    pd = require("pandas", "dlc", "reading DeepLabCut .h5 files")
    require("tables", "dlc", "reading DeepLabCut .h5 files")
    try:
        df = read_pandas_hdf(path, plain_hdf5_image(path))
    except UnsafeHDF5Error as e:
        raise DatasetError(str(e)) from None
    except Exception as e:  # h5py's, PyTables' and pandas' own errors: one line for the user
        raise DatasetError(f"{path}: not a readable DeepLabCut HDF5 table ({e})") from None
    if not isinstance(df, pd.DataFrame) or df.columns.nlevels not in (3, 4):
        raise DatasetError(f"{path}: not a DeepLabCut label table (3 or 4 column levels)")
    n_index = df.index.nlevels
    names = [str(n) for n in df.columns.names]
    levels = (["scorer", "individuals", "bodyparts", "coords"] if df.columns.nlevels == 4
              else ["scorer", "bodyparts", "coords"])  # fmt: skip
    if [n.lower() for n in names] != levels:
        raise DatasetError(f"{path}: column levels {names}, expected {levels}")
    rows = [[lvl] + [""] * (n_index - 1) + [str(c[i]) for c in df.columns]
            for i, lvl in enumerate(levels)]  # fmt: skip
    for key, values in zip(df.index, df.to_numpy(dtype=float), strict=True):
        parts = [str(k) for k in (key if isinstance(key, tuple) else (key,))]
        rows.append(parts + ["" if math.isnan(v) else repr(float(v)) for v in values])
    return rows
