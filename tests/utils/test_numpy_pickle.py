"""Plain pickles from other tools (DeepFly3D's results) are read with NumPy data admitted and
nothing else: a pickle that names any other global is refused by that name, never called."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from posekit.utils.errors import UserError
from posekit.utils.serialization import UnsafeFileError, load_numpy_pickle


def test_numpy_data_loads(tmp_path: Path) -> None:
    data = {0: {"R": np.eye(3)}, "points": np.arange(6.0).reshape(2, 3), "n": np.int64(7)}
    path = tmp_path / "result.pkl"
    path.write_bytes(pickle.dumps(data))
    loaded = load_numpy_pickle(path)
    assert loaded["n"] == 7 and (loaded["points"] == data["points"]).all()
    assert (loaded[0]["R"] == np.eye(3)).all()


class _Runs:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/posekit-pwned",))


@pytest.mark.parametrize("payload", [_Runs(), {"a": os.path.join}, [np.eye(2), Path("x")]])
def test_any_other_global_is_refused_by_name(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafeFileError, match=r"evil.pkl: refused: loading it needs \w+\.\w+"):
        load_numpy_pickle(path)
    assert not Path("/tmp/posekit-pwned").exists()


def test_a_truncated_pickle_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    with pytest.raises(UserError, match=r"cut\.pkl: not a readable pickle"):
        load_numpy_pickle(path)
