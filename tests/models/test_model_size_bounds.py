"""Model descriptions are bounded before anything is built: a field outside its declared range
is one line naming it, and a model larger than `POSEKIT_MAX_PARAMETERS` is refused after a
build on the meta device (no memory). Before the bounds, a `.pt` description with depth 1e6
hung, width 1e4 asked for 23 TB, and a transformers `config.json` with huge sizes asked for
tens of GB before any shape was compared."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cli_output import error_lines
from posekit import Model
from posekit.cli.main import main
from posekit.engine.checkpoint import save_checkpoint
from posekit.models import create, model_from_description
from posekit.models.rtmpose.model import RTMPoseConfig
from posekit.models.rtpose.model import RTPoseConfig
from posekit.models.vitpose.model import ViTPoseConfig
from posekit.utils.bounds import MAX_PARAMETERS


@pytest.fixture
def large_allocations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the real (not meta) tensors above 1e7 elements made by `torch.empty`
    (what every layer's weights are made with) while the test runs."""
    seen: list[int] = []
    real_empty = torch.empty

    def watching_empty(*size, **kw):  # type: ignore[no-untyped-def]
        t = real_empty(*size, **kw)
        if t.device.type != "meta" and t.numel() > 10**7:
            seen.append(t.numel())
        return t

    monkeypatch.setattr(torch, "empty", watching_empty)
    return seen


def _predict_one_line(model: Path, tmp_path: Path, capsys) -> str:  # type: ignore[no-untyped-def]
    img = tmp_path / "img.png"
    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    capsys.readouterr()
    code = main(["predict", "--model", str(model), "--source", str(img),
                 "--project", str(tmp_path / "runs")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(error_lines(err)) == 1, err
    return err


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda: RTPoseConfig(depth=1e6), "depth = 1000000.0 is outside its range"),
        (lambda: RTPoseConfig(width=1e4), "width = 10000.0 is outside its range"),
        (lambda: RTPoseConfig(imgsz=-5), "imgsz = -5"),
        (lambda: RTPoseConfig(std=(1.0, 0.0, 1.0)), "std"),
        (lambda: RTMPoseConfig(input_size=(256, 10**7)), "input_size"),
        (lambda: ViTPoseConfig(embed_dim=10**6), "embed_dim"),
        (lambda: ViTPoseConfig(depth=float("nan")), "depth"),  # type: ignore[arg-type]
        (lambda: ViTPoseConfig(mlp_ratio="4"), "mlp_ratio"),  # type: ignore[arg-type]
    ],
)
def test_a_config_field_outside_its_range_is_one_line(make, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="outside its range") as info:
        make()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_the_default_limit_admits_the_largest_published_model() -> None:
    """ViTPose-H (0.63 billion parameters) is counted on the meta device, under the limit."""
    from posekit.models.vitpose.model import SIZES, ViTPose
    from posekit.schema import get_schema
    from posekit.utils.bounds import count_parameters, meta_build

    net = meta_build(lambda: ViTPose(SIZES["h"], [get_schema("coco17")], ["person"]), "vitpose-h")
    assert 6.0e8 < count_parameters(net) < MAX_PARAMETERS.default


@pytest.mark.parametrize("key, value", [("depth", 1e6), ("width", 1e4), ("max_channels", 10**9)])
def test_a_checkpoint_describing_a_huge_network_is_refused(
    tmp_path: Path, capsys, key: str, value: float
) -> None:  # type: ignore[no-untyped-def]
    net = create("rtpose-n", "coco17")
    path = save_checkpoint(tmp_path / "huge.pt", net)
    data = torch.load(path, weights_only=True)
    data["model"]["config"][key] = value
    torch.save(data, path)
    err = _predict_one_line(path, tmp_path, capsys)
    assert f"{key} = " in err and "outside its range" in err, err


def test_a_network_above_the_parameter_limit_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desc = create("rtmpose-t", "coco17").describe()
    monkeypatch.setenv(MAX_PARAMETERS.env, "1000")
    with pytest.raises(ValueError, match=r"more than the limit of 1,000 \(set POSEKIT_MAX"):
        model_from_description(desc)
    monkeypatch.setenv(MAX_PARAMETERS.env, "5_000_000")  # raised again: it builds
    assert model_from_description(desc).num_keypoints == 17


def test_the_parameter_limit_is_counted_without_allocating(
    monkeypatch: pytest.MonkeyPatch, large_allocations: list[int]
) -> None:
    """Inside the ranges, the largest rtpose (width 4, 8192 channels) has ~1.6e9 parameters:
    above a limit of 1e9, refused after a meta-device build, never allocated."""
    desc = create("rtpose-n", "coco17").describe()
    desc["config"].update(width=4.0, depth=1.0, max_channels=8192)
    monkeypatch.setenv(MAX_PARAMETERS.env, str(10**9))
    with pytest.raises(ValueError, match="more than the limit"):
        model_from_description(desc)
    assert not large_allocations


def _hf_folder(tmp_path: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    bc = transformers.VitPoseBackboneConfig(hidden_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, out_indices=[1])  # fmt: skip
    model = transformers.VitPoseForPoseEstimation(transformers.VitPoseConfig(backbone_config=bc))
    folder = tmp_path / "hf"
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"hidden_size": 10**6}, "embed_dim = 1000000 is outside its range"),
        # inside every range, but 8192-wide blocks: 64 of them exceed the parameter limit
        ({"hidden_size": 8192, "num_hidden_layers": 64, "num_attention_heads": 64},
         "more than the limit"),
        # a self-consistent config for another network than the weights: shapes compared on
        # the meta device, nothing allocated
        ({"hidden_size": 4096, "num_attention_heads": 64}, "has shape"),
    ],
)  # fmt: skip
def test_a_transformers_config_with_huge_sizes_is_refused_before_allocation(
    tmp_path: Path, capsys, change: dict, needle: str, large_allocations: list[int]
) -> None:  # type: ignore[no-untyped-def]
    folder = _hf_folder(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["backbone_config"].update(change)
    (folder / "config.json").write_text(json.dumps(cfg))
    err = _predict_one_line(folder, tmp_path, capsys)
    assert needle in err, err
    assert not large_allocations


def test_the_small_transformers_folder_itself_loads(tmp_path: Path) -> None:
    """The folder the test above corrupts is a valid one (the refusals are the changes')."""
    assert Model(_hf_folder(tmp_path)).net.config.embed_dim == 32


@pytest.mark.parametrize(
    ("name", "key", "value", "pixels"),
    [
        ("pafpose-s", "imgsz", 8192, "67,108,864"),
        ("heatpose-t", "input_size", [2048, 4096], "8,388,608"),
    ],
)
def test_a_declared_input_size_is_bounded_by_what_it_costs(
    tmp_path: Path, capsys, name: str, key: str, value: object, pixels: str
) -> None:  # type: ignore[no-untyped-def]
    """Within its range, but 6.6 GB for one small image: refused before anything runs, in
    one line that names the file and the setting that raises the bound."""
    path = save_checkpoint(tmp_path / "big.pt", create(name, "coco17"))
    data = torch.load(path, weights_only=True)
    data["model"]["config"][key] = value
    torch.save(data, path)
    err = _predict_one_line(path, tmp_path, capsys)
    assert f"inputs of {pixels} pixels" in err and "POSEKIT_MAX_INPUT_PIXELS" in err, err
    assert str(path) in err


def test_class_names_must_match_the_networks_classes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = save_checkpoint(tmp_path / "names.pt", create("pafpose-s", "coco17"))
    data = torch.load(path, weights_only=True)
    data["model"]["names"] = ["a", "b", "c", "d", "e"]
    torch.save(data, path)
    err = _predict_one_line(path, tmp_path, capsys)
    assert "names 5 classes for 1 keypoint schemas" in err and str(path) in err, err
