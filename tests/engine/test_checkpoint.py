"""Model files load without running code; posekit's own checkpoints keep loading."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_output import error_lines
from posekit import Model
from posekit.cli.main import main
from posekit.engine.checkpoint import load_model, save_checkpoint
from posekit.models import create
from posekit.utils.serialization import UnsafeFileError, load_torch_file


class _WritesAFile:
    """A pickle payload: unpickling it runs `os.system("touch <path>")`."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.target}",)


def _payload_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "model": {}, "weights": {}, "x": _WritesAFile(target)}, path)
    return path, target


def test_pickle_payload_is_refused_not_run(tmp_path: Path) -> None:
    path, target = _payload_checkpoint(tmp_path)
    with pytest.raises(UnsafeFileError, match=r"posix\.system"):
        Model(path)
    assert not target.exists()


@pytest.mark.parametrize("command", ["predict", "val", "train"])
def test_cli_refuses_a_payload_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, make_dataset, valid_coco
) -> None:
    path, target = _payload_checkpoint(tmp_path)
    img = tmp_path / "img.png"
    img.write_bytes(b"")
    args = {
        "predict": ["predict", "--model", str(path), "--source", str(img)],
        "val": ["val", "--data", str(make_dataset(valid_coco)), "--model", str(path)],
        "train": ["train", "--resume", str(path)],
    }[command]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1 and "refused" in err, err
    assert not target.exists()


def test_posekit_checkpoint_round_trips_with_weights_only(tmp_path: Path) -> None:
    """Extra state with NumPy values and paths is stored as plain data."""
    net = create("rtpose-n", "coco17", width=0.5)
    state = {"metrics": {"AP": np.float64(0.5)}, "history": [{"lr": np.float32(1e-3)}],
             "where": tmp_path, "optimizer": {"state": {}, "param_groups": []}}  # fmt: skip
    path = save_checkpoint(tmp_path / "w.pt", net, **state)
    raw = torch.load(path, weights_only=True)  # plain torch, no allow-list needed
    assert raw["metrics"]["AP"] == 0.5 and raw["where"] == str(tmp_path)
    model, _ = load_model(path)
    for a, b in zip(model.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_numpy_only_through_the_allow_list(tmp_path: Path) -> None:
    """A third-party file holding NumPy arrays (as MMPose's meta) loads only when asked."""
    path = tmp_path / "third_party.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": {"a": np.arange(3.0)}}, path)
    with pytest.raises(UnsafeFileError, match="numpy"):
        load_torch_file(path)
    data = load_torch_file(path, allow_numpy=True)
    assert np.array_equal(data["meta"]["a"], np.arange(3.0))


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch file"):
        load_torch_file(path)
