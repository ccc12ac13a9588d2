"""Model files of every kind posekit reads are refused, not obeyed, when hostile: a pickle
payload in a transformers folder's `pytorch_model.bin` or an MMPose-style `.pth`, and
`.safetensors` headers that lie about offsets or sizes. Each is one line and exit 2."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_output import error_lines
from posekit import Model
from posekit.cli.main import main


class _WritesAFile:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.target}",)


def _predict_refuses(model: Path, tmp_path: Path, capsys, *needles: str) -> str:  # type: ignore[no-untyped-def]
    img = tmp_path / "img.png"
    import cv2

    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--source", str(img)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_transformers_folder_with_a_pickle_bin_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "vitpose-hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "vitpose"}))
    marker = tmp_path / "pwned"
    torch.save({"w": torch.ones(2), "x": _WritesAFile(marker)}, folder / "pytorch_model.bin")
    _predict_refuses(folder, tmp_path, capsys, "refused", "pytorch_model.bin")
    assert not marker.exists()


def test_mmpose_style_pth_with_a_payload_in_its_meta_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    path = tmp_path / "td-hm_ViTPose-small.pth"
    torch.save({"state_dict": {"backbone.w": torch.ones(2)}, "meta": {"x": _WritesAFile(marker)}},
               path)  # fmt: skip
    _predict_refuses(path, tmp_path, capsys, "refused", "posix.system")
    assert not marker.exists()


def _safetensors(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize(
    "header, data",
    [
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),  # past end
        ({"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 16]}}, b"\0" * 16),
        ({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 2**62]}}, b"\0" * 16),
    ],
    ids=["offset-past-the-end", "shape-larger-than-its-bytes", "huge-declared-size"],
)
def test_safetensors_with_a_lying_header_is_refused_in_one_line(
    tmp_path: Path, capsys, header: dict, data: bytes
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("safetensors")
    path = _safetensors(tmp_path / "model.safetensors", header, data)
    with pytest.raises(ValueError, match=r"not a valid \.safetensors file"):
        Model(path)
    _predict_refuses(path, tmp_path, capsys, "refused", "model.safetensors")


def test_safetensors_whose_header_length_is_huge_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("safetensors")
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    _predict_refuses(path, tmp_path, capsys, "refused")


def test_transformers_config_that_is_not_json_is_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    _predict_refuses(folder, tmp_path, capsys, "config.json", "not valid JSON")
