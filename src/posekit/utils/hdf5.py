"""HDF5 files written by pandas (DeepLabCut's `CollectedData_*.h5`), read without running code.

pandas stores tables through PyTables, and PyTables unpickles in two places when it reads: an
attribute whose value is a byte string ending in "." (how it stores Python objects such as
pandas' `non_index_axes` list or a `None` name), and every row of an array of Python objects
(pandas' "fixed" format puts object columns there). A label table with a pickled payload in
one cell or one attribute would run that payload while being read.

`plain_hdf5_image` therefore reads the file once into memory and walks it with h5py, which
never unpickles: every dataset must hold numbers or fixed-size strings, and every attribute
PyTables would unpickle must be a pickle that only builds plain values (lists, tuples, dicts,
strings, numbers, None) — checked opcode by opcode, without running it. Only then do pandas
and PyTables read the very same bytes from memory, so the file checked is the file read.
"""

from __future__ import annotations

import io
import pickletools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from posekit.utils.errors import UserError

#: A label table is a few MB; a larger file is refused before it is read into memory.
MAX_HDF5_BYTES = 512 * 2**20

#: Opcodes that import a name, call something or hand an object to a persistence hook: the
#: only ways a pickle runs code. A pickle without any of them builds plain values.
CODE_OPCODES = frozenset({
    "GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX",
    "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "NEXT_BUFFER", "READONLY_BUFFER",
})  # fmt: skip


class UnsafeHDF5Error(UserError):
    """An HDF5 file that would unpickle something other than plain values when read."""


def code_in_pickle(blob: bytes) -> str | None:
    """The first opcode of `blob` that could run code (e.g. "REDUCE"), or None when `blob`
    builds plain values only or is no pickle at all (then unpickling it fails harmlessly)."""
    try:
        for op, _, _ in pickletools.genops(blob):
            if op.name in CODE_OPCODES:
                return op.name
    except Exception:  # not a pickle: pickle.loads stops at the same bad byte
        return None
    return None


def _attribute_problem(value: Any) -> str | None:
    # PyTables tries to unpickle a byte-string scalar that ends in "." (attributeset.py)
    if isinstance(value, np.bytes_ | bytes) and bytes(value).endswith(b"."):
        op = code_in_pickle(bytes(value))
        return f"a pickled attribute that would call code ({op})" if op else None
    return None


def _dataset_problem(ds: Any, h5py: Any) -> str | None:
    if ds.attrs.get("PSEUDOATOM") in (b"object", "object"):
        return "an array of pickled Python objects"
    dtype = ds.dtype
    fields = [dtype[n] for n in dtype.names] if dtype.names else [dtype]
    for f in fields:
        base = f.base
        if h5py.check_vlen_dtype(base) is not None or base.kind in "OV":
            return f"a {base} array (pandas stores Python objects there)"
    return None


def plain_hdf5_image(path: str | Path, *, max_bytes: int = MAX_HDF5_BYTES) -> bytes:
    """The bytes of an HDF5 file in which nothing would run code when pandas reads it.

    Raises:
        UnsafeHDF5Error: a node holds pickled objects, or an attribute a pickle that calls
            code; the message names the node.
        ValueError: the file is larger than `max_bytes` or not HDF5.
    """
    from posekit.utils.extras import require

    h5py = require("h5py", "dlc", "reading HDF5 label tables")
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise UserError(f"{path}: {size} bytes, more than the {max_bytes} a label table may have")
    data = path.read_bytes()
    problems: list[str] = []

    def visit(name: str, node: Any) -> None:
        for key, value in node.attrs.items():
            why = _attribute_problem(value)
            if why:
                problems.append(f"{name or '/'} attribute {key!r}: {why}")
        if isinstance(node, h5py.Dataset):
            why = _dataset_problem(node, h5py)
            if why:
                problems.append(f"{name}: {why}")

    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            visit("", f)
            f.visititems(visit)
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file ({e})") from None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UnsafeHDF5Error(f"{path}: refused: {problems[0]}{more}; reading it would run "
                              "code, and a label table holds only numbers and names")  # fmt: skip
    return data


def read_pandas_hdf(path: str | Path, data: bytes) -> Any:
    """The one pandas object in an HDF5 file, read from `data` (see `plain_hdf5_image`) in
    memory, never from the disk again."""
    import pandas as pd

    # PyTables opens an in-memory image only under a name that no file has: an empty
    # temporary folder's, never created on disk (no backing store)
    with tempfile.TemporaryDirectory() as tmp, pd.HDFStore(
        str(Path(tmp) / Path(path).name), mode="r", driver="H5FD_CORE",
        driver_core_image=data, driver_core_backing_store=0,
    ) as store:  # fmt: skip
        keys = store.keys()
        if len(keys) != 1:
            raise UserError(f"{path}: holds {len(keys)} pandas objects ({keys}), expected one")
        return store.get(keys[0])
