"""Command-line values are checked against the ranges their settings dataclasses declare:
one line and exit 2, before any work (before: `export --imgsz 100000` asked for 240 GB with a
traceback, `data synth --imgsz 100000` for 671 GiB, synthetic arms below width 112 crashed
in NumPy). The CLI's defaults are the dataclasses' own."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import click
import pytest

from cli_output import error_lines
from posekit.actions.job import ActionsConfig
from posekit.cli.main import cli, main
from posekit.data.synth import SynthConfig, render
from posekit.engine.config import TrainConfig
from posekit.eval.metrics import EvalConfig
from posekit.export.onnx import ExportConfig
from posekit.predict import PredictConfig
from posekit.serve.config import ServeConfig
from posekit.threed.reconstruct import TriangulationConfig
from posekit.track.sinks import EventSinkConfig
from posekit.track.smoothing import OneEuroConfig
from posekit.track.tracker import TrackerConfig


@pytest.mark.parametrize(
    "args, option",
    [
        ("predict --model m.pt --source x --imgsz 100000", "--imgsz"),
        ("predict --model m.pt --source x --crop-batch 0", "--crop-batch"),
        ("predict --model m.pt --source x --max-det 0", "--max-det"),
        ("predict --model m.pt --source x --batch 100000", "--batch"),
        ("track --model m.pt --source x --conf 1.5", "--conf"),
        ("train --data d --imgsz -5", "--imgsz"),
        ("train --data d --lr0 -1", "--lr0"),
        ("train --data d --time-limit -5", "--time-limit"),
        ("train --data d --width 1e6", "--width"),
        ("export --model m.pt --imgsz 100000", "--imgsz"),
        ("export --model m.pt --batch 0", "--batch"),
        ("export --model m.pt --opset 5", "--opset"),
        ("data synth --out {tmp}/s --imgsz 100000", "--imgsz"),
        ("data synth --out {tmp}/s --images 0", "--images"),
        ("val --model m.pt --data d --max-dets 0", "--max-dets"),
        ("val --model m.pt --data d --imgsz 100000", "--imgsz"),
    ],
)
def test_values_outside_their_ranges_are_one_line_and_exit_2(
    args: str, option: str, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    assert main(args.replace("{tmp}", str(tmp_path)).split()) == 2
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1 and f"'{option}'" in err and "range" in err, err
    assert not (tmp_path / "s").exists()


def _options(*path: str) -> dict[str, click.Option]:
    cmd: click.Command = cli
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return {p.name: p for p in cmd.params if isinstance(p, click.Option)}  # type: ignore[misc]


@pytest.mark.parametrize(
    "command, config, own_defaults",
    [
        (("predict",), PredictConfig, {"imgsz", "iou", "oks_nms"}),  # None: the model's
        (("track",), PredictConfig, {"imgsz"}),
        (("train",), TrainConfig, {"lr0"}),  # None: by optimizer
        (("export",), ExportConfig, set()),
        (("data", "synth"), SynthConfig, {"images"}),
        (("val",), PredictConfig, {"imgsz", "batch"}),
        (("val",), EvalConfig, set()),
        (("serve",), ServeConfig, set()),
        (("actions",), ActionsConfig, set()),
        (("track",), EventSinkConfig, set()),
        (("track",), TrackerConfig, {"kpt_conf"}),  # --kpt-conf is the prediction's
        (("track",), OneEuroConfig, set()),
        (("triangulate",), TriangulationConfig, set()),
    ],
)
def test_cli_ranges_and_defaults_are_the_dataclasses(command, config, own_defaults) -> None:  # type: ignore[no-untyped-def]
    options = _options(*command)
    ranged = [f for f in fields(config) if "range" in f.metadata and f.name in options]
    assert ranged, command
    for f in ranged:
        opt = options[f.name]
        low, high = f.metadata["range"]
        assert (opt.type.min, opt.type.max) == (low, high), f.name  # type: ignore[attr-defined]
        if f.name not in own_defaults:
            assert opt.default == f.default, f.name


@pytest.mark.parametrize(
    "command, config, not_options",
    [
        (("export",), ExportConfig, set()),
        (("track",), TrackerConfig, {"kpt_conf"}),
        (("track",), OneEuroConfig, set()),
        (("triangulate",), TriangulationConfig, set()),
    ],
)
def test_every_setting_is_an_option(command, config, not_options) -> None:  # type: ignore[no-untyped-def]
    """Each field of the settings dataclass can be set from the command (none is retyped or
    left out); the export's and tracker's settings were once written by hand, some missing."""
    options = _options(*command)
    for f in fields(config):
        if f.name not in not_options:
            assert f.name in options, f.name
            assert options[f.name].default == f.default, f.name


def test_model_export_takes_the_export_settings_by_name() -> None:
    from posekit import Model

    with pytest.raises(ValueError, match=r"unknown export setting 'opsett'.*opset"):
        Model("rtpose-n").export(opsett=18)


@pytest.mark.parametrize("kind", ["person", "arm"])
@pytest.mark.parametrize("imgsz", [64, 96])
def test_the_smallest_synthetic_images_render(kind: str, imgsz: int) -> None:
    for seed in range(10):
        frame = render(SynthConfig(kind, imgsz=imgsz, seed=seed), 0)
        assert frame.image.shape == (round(imgsz * 3 / 4), imgsz, 3)


def test_synth_settings_outside_their_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match=r"synth: imgsz = 100000 is outside its range"):
        SynthConfig(imgsz=100_000)
    with pytest.raises(ValueError, match="kind 'horse'"):
        SynthConfig(kind="horse")


def test_an_export_example_input_larger_than_the_bound_is_refused_before_allocation() -> None:
    from posekit.export.onnx import export_shape
    from posekit.models import create

    net = create("rtpose-n", "coco17")
    with pytest.raises(ValueError, match="1000x3x640x640 is larger than"):
        export_shape(net, 640, static=True, batch=1000)
    with pytest.raises(ValueError, match="2x3x8192x8192"):
        export_shape(net, 8192, static=False, batch=1)
    example, shape, _ = export_shape(net, 640, static=True, batch=4)
    assert shape == (4, 3, 640, 640) and example.shape == shape


def test_every_training_setting_is_an_option_with_the_dataclass_default() -> None:
    """Before: the command copied 19 settings by hand and 12 of TrainConfig's 31 fields
    could not be set from it."""
    from posekit.models.samples import AugmentConfig

    options = _options("train")
    for config in (TrainConfig, AugmentConfig):
        for f in fields(config):
            if f.name in ("data", "augment"):
                continue  # --data is a path option; augment is the AugmentConfig fields
            assert f.name in options, f"{config.__name__}.{f.name} has no option"
            assert options[f.name].default == f.default, f.name
            assert options[f.name].help, f.name


def test_sgd_starts_from_the_same_learning_rate_from_the_cli_and_the_api() -> None:
    """Before: `posekit train --optimizer sgd` used lr0 0.01, `Model.train(optimizer="sgd")`
    0.002. Now the config decides, wherever it is made."""
    assert TrainConfig(optimizer="sgd").lr0 == 0.01
    assert TrainConfig().lr0 == 0.002 and TrainConfig(lr0=0.05, optimizer="sgd").lr0 == 0.05
    assert TrainConfig.from_dict(TrainConfig(optimizer="sgd").to_dict()).lr0 == 0.01
    with pytest.raises(ValueError, match="optimizer 'lamb'"):
        TrainConfig(optimizer="lamb")
