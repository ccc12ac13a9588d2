"""NumPy `.npz` archives read without trusting them: no pickled objects (`allow_pickle=False`),
and every array's declared size checked against a budget before anything is allocated, so
a few-kilobyte archive that declares a terabyte array (or inflates to one) is one line."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from posekit.utils.bounds import Limit
from posekit.utils.errors import UserError

#: the most bytes the arrays of one archive may hold once read
MAX_NPZ_BYTES = Limit("POSEKIT_MAX_NPZ_BYTES", 4 << 30, "bytes of arrays in one .npz file")


def read_npz(path: str | Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays `names` of the archive at `path` (a missing one, an object array, or a
    total over `MAX_NPZ_BYTES` is a `UserError` naming the file and the array)."""
    path = Path(path)
    limit = MAX_NPZ_BYTES.value()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: not a readable .npz archive ({e})") from None
    with archive:
        members = {n.removesuffix(".npy"): n for n in archive.namelist()}
        missing = [n for n in names if n not in members]
        if missing:
            raise UserError(f"{path}: no array {missing[0]!r} (it has {', '.join(members)})")
        total, out = 0, {}
        for name in names:
            with archive.open(members[name]) as stream:
                try:
                    shape, dtype = _declared(stream)
                except (ValueError, OSError, SyntaxError, zipfile.BadZipFile) as e:
                    raise UserError(f"{path}: array {name!r} has no valid header ({e})") from None
                if dtype.hasobject:
                    raise UserError(f"{path}: array {name!r} holds Python objects (refused)")
                total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if total > limit:
                    raise UserError(
                        f"{path}: its arrays declare more than {limit:,} bytes (at {name!r}; "
                        f"set {MAX_NPZ_BYTES.env} to allow more)"
                    )
        with np.load(path, allow_pickle=False) as data:
            for name in names:
                try:
                    out[name] = data[name]
                except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                    raise UserError(f"{path}: array {name!r} cannot be read ({e})") from None
    return out


def _declared(stream: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an `.npy` stream's header declares (formats 1.0 and 2.0, what
    NumPy writes), read without reading the data."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f".npy format {version[0]}.{version[1]} is not read")
    return shape, dtype
