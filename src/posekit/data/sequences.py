"""Pose sequences: clips of one subject's 2D keypoints as a camera saw them, with the 3D truth
in that camera's frame; the training and validation data of 2D-to-3D lifting.

On disk a sequence dataset is a folder with `sequences.yaml` and one `.npz` per split:

    format: posekit.sequences/1
    schema: {...}              # the keypoint schema (KeypointSchema.to_dict)
    unit: m                    # of the 3D points
    splits: {train: train.npz, val: val.npz}

Each split's archive holds, for N clips of T frames and the schema's K keypoints:
`keypoints2d` (N, T, K, 3): x, y in pixels (OpenCV's convention, the centre of the top-left
pixel at 0, 0) and a confidence, x and y NaN where the detector reported nothing;
`keypoints3d` (N, T, K, 3): the truth in the camera's frame (x right, y down, z forward),
NaN where unknown; `intrinsics` (N, 4): fx, fy, cx, cy of each clip's camera;
`image_size` (N, 2): width, height. `posekit data motion` writes one from synthetic motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from posekit.data.dataset import Category
from posekit.data.problems import DatasetError
from posekit.data.yamlfile import load_yaml
from posekit.schema import KeypointSchema
from posekit.utils.errors import UserError
from posekit.utils.npz import read_npz
from posekit.utils.paths import join_inside, write_bytes_replacing, write_text_replacing

SEQUENCES_FORMAT = "posekit.sequences/1"
INDEX_FILE = "sequences.yaml"
ARRAYS = ("keypoints2d", "keypoints3d", "intrinsics", "image_size")


@dataclass
class PoseSequences:
    """One split of a sequence dataset (see the module docstring for the arrays)."""

    schema: KeypointSchema
    keypoints2d: np.ndarray  # (N, T, K, 3) float32
    keypoints3d: np.ndarray  # (N, T, K, 3) float32, metres
    intrinsics: np.ndarray  # (N, 4) fx, fy, cx, cy
    image_size: np.ndarray  # (N, 2) width, height
    source: str = ""

    def __len__(self) -> int:
        return len(self.keypoints2d)

    @property
    def frames(self) -> int:
        return int(self.keypoints2d.shape[1])

    @property
    def categories(self) -> list[Category]:
        """One category, the subject, so that a sequence split names its schema as an image
        dataset's categories do."""
        return [Category(1, self.schema.name, self.schema)]

    def category(self, category_id: int) -> Category:
        return self.categories[0]


def is_sequence_dataset(path: str | Path) -> bool:
    """Whether `path` is a sequence dataset's folder or its `sequences.yaml`."""
    path = Path(path)
    return (path / INDEX_FILE).is_file() if path.is_dir() else path.name == INDEX_FILE


def load_sequence_splits(path: str | Path) -> dict[str, PoseSequences]:
    """Every split of the sequence dataset at `path` (its folder or `sequences.yaml`); any
    problem is a `DatasetError` naming the file and what is wrong."""
    index = Path(path) / INDEX_FILE if Path(path).is_dir() else Path(path)
    meta = load_yaml(index)
    if not isinstance(meta, dict):
        raise DatasetError(f"{index}: not a mapping of format, schema and splits")
    if meta.get("format") != SEQUENCES_FORMAT:
        raise DatasetError(f"{index}: format is {meta.get('format')!r}, not {SEQUENCES_FORMAT}")
    if meta.get("unit", "m") != "m":
        raise DatasetError(f"{index}: unit {meta.get('unit')!r}: sequences are in metres ('m')")
    try:
        schema = KeypointSchema.from_dict(meta["schema"])
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{index}: schema: {e}") from None
    splits = meta.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise DatasetError(f"{index}: 'splits' must map split names to .npz files")
    out = {}
    for name, relative in splits.items():
        file = join_inside(index.parent, str(relative))
        if not file.is_file():
            raise DatasetError(f"{index}: split {name!r}: {file} not found")
        out[str(name)] = _read_split(file, schema)
    return out


def _read_split(file: Path, schema: KeypointSchema) -> PoseSequences:
    arrays = read_npz(file, ARRAYS)
    k2, k3 = arrays["keypoints2d"], arrays["keypoints3d"]
    intrinsics, size = arrays["intrinsics"], arrays["image_size"]
    k = schema.num_keypoints
    if k2.ndim != 4 or k2.shape[2:] != (k, 3):
        raise DatasetError(f"{file}: keypoints2d has shape {k2.shape}, not (clips, frames, {k}, 3)")
    n = len(k2)
    expected = {
        "keypoints3d": (k3, k2.shape),
        "intrinsics": (intrinsics, (n, 4)),
        "image_size": (size, (n, 2)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise DatasetError(f"{file}: {name} has shape {array.shape}, not {shape}")
    for name, array in arrays.items():
        if not np.issubdtype(array.dtype, np.number):
            raise DatasetError(f"{file}: {name} is {array.dtype}, not numbers")
    if n == 0 or k2.shape[1] == 0:
        raise DatasetError(f"{file}: no clips (shape {k2.shape})")
    bad = ~np.isfinite(intrinsics).all(1) | (intrinsics[:, :2] <= 0).any(1) | (size <= 0).any(1)
    if bad.any():
        clip = int(np.nonzero(bad)[0][0])
        raise DatasetError(
            f"{file}: clip {clip}: intrinsics {intrinsics[clip].tolist()} or image size "
            f"{size[clip].tolist()} is not a camera (focal lengths and sizes must be positive)"
        )
    infinite = np.isinf(k2).any() or np.isinf(k3).any()
    if infinite:
        raise DatasetError(f"{file}: keypoints hold infinities (missing values are NaN)")
    return PoseSequences(
        schema,
        k2.astype(np.float32),
        k3.astype(np.float32),
        intrinsics.astype(np.float64),
        size.astype(np.int64),
        str(file),
    )


def write_sequence_dataset(
    out: str | Path, schema: KeypointSchema, splits: dict[str, dict[str, np.ndarray]]
) -> Path:
    """Write a sequence dataset (`splits`: name -> the arrays of the module docstring) into
    the folder `out`, each file replaced atomically; returns the index file."""
    out = Path(out)
    for name, arrays in splits.items():
        buffer = BytesIO()
        np.savez_compressed(buffer, **{k: np.asarray(arrays[k]) for k in ARRAYS})
        write_bytes_replacing(out / f"{name}.npz", buffer.getvalue())
    meta: dict[str, Any] = {
        "format": SEQUENCES_FORMAT,
        "unit": "m",
        "splits": {name: f"{name}.npz" for name in splits},
        "schema": schema.to_dict(),
    }
    return write_text_replacing(out / INDEX_FILE, yaml.safe_dump(meta, sort_keys=False))


def check_schema_matches(ds: PoseSequences, schema: KeypointSchema, what: str) -> None:
    """A `UserError` when `ds`'s keypoints are not `schema`'s (by name, in order)."""
    if list(ds.schema.keypoints) != list(schema.keypoints):
        raise UserError(
            f"{ds.source}: its keypoints ({ds.schema.name}, {ds.schema.num_keypoints}) are not "
            f"{what}'s ({schema.name}, {schema.num_keypoints})"
        )
