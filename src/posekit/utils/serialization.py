"""Loading PyTorch files without running code.

`torch.load` unpickles, and an unpickled file can call any function: a `.pt` file from the
internet can delete files or open a shell. posekit therefore only ever loads with
`weights_only=True`, which rebuilds tensors, containers and plain values and refuses every other
global. Files written by other tools sometimes hold NumPy arrays or scalars too (MMPose 1.x keeps
some in its `meta`); `allow_numpy=True` admits exactly the NumPy types needed to rebuild those,
which construct data and call nothing else.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posekit.utils.errors import UserError


class UnsafeFileError(UserError):
    """A file that would need arbitrary code (or unknown classes) to load, so it is refused."""


def numpy_safe_globals() -> list[Any]:
    """The NumPy globals that arrays, dtypes and scalars are pickled with, under both the
    NumPy 2 module names and the NumPy 1 ones (`numpy.core`) that older files carry."""
    core = np._core.multiarray  # the module NumPy 2 pickles name as numpy._core.multiarray
    dtype_classes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    out: list[Any] = [core._reconstruct, core.scalar, np.ndarray, np.dtype, *dtype_classes]
    out += [(core._reconstruct, "numpy.core.multiarray._reconstruct"),
            (core.scalar, "numpy.core.multiarray.scalar")]  # fmt: skip
    return out


def load_torch_file(path: str | Path, *, allow_numpy: bool = False) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU, with one-line errors.

    Args:
        path: a file written by `torch.save`.
        allow_numpy: also admit NumPy arrays, dtypes and scalars (see the module docstring).

    Raises:
        FileNotFoundError: no such file.
        UnsafeFileError: the file needs other globals than tensors and plain data, i.e. it
            could run code when loaded; it is refused, not obeyed.
        ValueError: the file is not a readable PyTorch file.

    Example:
        >>> state = load_torch_file("runs/train/exp/weights/best.pt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    extra = numpy_safe_globals() if allow_numpy else []
    try:
        with torch.serialization.safe_globals(extra):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:  # not a pickle of anything: refused as unreadable
            raise UserError(f"{path}: not a readable PyTorch file ({_reason(e)})") from None
        raise UnsafeFileError(
            f"{path}: refused: loading it needs more than tensors and plain data (it names "
            f"{found.group(1)}), so it could run code; posekit loads model files without "
            "running code"
        ) from None
    except Exception as e:  # torch raises many types for a corrupt or foreign file
        raise UserError(f"{path}: not a readable PyTorch file ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    """The last non-empty line of an exception's message (torch's are paragraphs)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


#: the largest plain pickle `load_numpy_pickle` reads
MAX_PICKLE_BYTES = 1 << 30


def load_numpy_pickle(path: str | Path) -> Any:
    """A plain pickle of containers, numbers and NumPy arrays (other tools' result files,
    e.g. DeepFly3D's `pose_result*.pkl`), unpickled with only the NumPy globals of
    `numpy_safe_globals` admitted: any other global is refused by name, never called."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    size = path.stat().st_size
    if size > MAX_PICKLE_BYTES:
        raise UserError(f"{path}: {size} bytes, more than the {MAX_PICKLE_BYTES} allowed")
    allowed = {}
    for item in numpy_safe_globals():
        obj, name = item if isinstance(item, tuple) else (item, "")
        allowed[name or f"{obj.__module__}.{obj.__qualname__}"] = obj

    class _NumpyOnly(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found = allowed.get(f"{module}.{name}")
            if found is None:
                raise UnsafeFileError(
                    f"{path}: refused: loading it needs {module}.{name}, which is not NumPy "
                    "data, so it could run code"
                )
            return found

    try:
        with path.open("rb") as stream:
            return _NumpyOnly(stream).load()
    except UnsafeFileError:
        raise
    except Exception as e:  # a truncated or foreign file raises many types
        raise UserError(f"{path}: not a readable pickle ({_reason(e)})") from None
