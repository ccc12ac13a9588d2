"""Training edge cases: each gets one line and exit 2, or the documented behaviour."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from cli_output import error_lines
from posekit import Model
from posekit.cli.main import main
from posekit.data.synth import SynthConfig, generate

TINY_KW = {"imgsz": 64, "batch": 4, "workers": 0, "width": 0.5, "epochs": 1}
TINY = ["--imgsz", "64", "--batch", "4", "--workers", "0", "--width", "0.5", "--epochs", "1"]


@pytest.fixture
def people(tmp_path: Path) -> Path:
    return generate(SynthConfig("person", images=6, imgsz=96, seed=4), tmp_path / "p", val=0.34)


def _train(data: Path | str, project: Path, *extra: str) -> int:
    return main(["train", "--data", str(data), "--project", str(project), *TINY, *extra])


def _one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("posekit: error:"), err
    for n in needles:
        assert n in err[0], err


def _rewrite(f: Path, change) -> None:  # type: ignore[no-untyped-def]
    obj = json.loads(f.read_text())
    change(obj)
    f.write_text(json.dumps(obj))


def test_zero_byte_image_is_left_out_and_counted(
    people: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train = json.loads((people / "annotations" / "train.json").read_text())
    (people / "images" / train["images"][0]["file_name"]).write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        result = Model("rtpose-n").train(data=str(people), project=str(tmp_path / "r"), **TINY_KW)
    assert result.best.is_file()
    assert "train split: 1 of 4 images cannot be read and are left out" in caplog.text
    assert "empty file" in caplog.text


def test_val_split_without_instances_still_writes_best(people: Path, tmp_path: Path) -> None:
    _rewrite(people / "annotations" / "val.json", lambda o: o.update(annotations=[]))
    result = Model("rtpose-n").train(data=str(people), project=str(tmp_path / "r"), **TINY_KW)
    assert result.best.is_file()
    Model(result.best)  # loads


def test_no_labelled_instances_is_one_error(people: Path, tmp_path: Path, capsys) -> None:
    def unlabel(o):  # type: ignore[no-untyped-def]
        for a in o["annotations"]:
            a["keypoints"] = [0] * len(a["keypoints"])
            a["num_keypoints"] = 0

    _rewrite(people / "annotations" / "train.json", unlabel)
    assert _train(people, tmp_path / "r") == 2
    _one_error_line(capsys, "no labelled instances to train on")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_empty_dataset_is_one_error(make_dataset, tmp_path: Path, capsys) -> None:
    root = make_dataset({"images": [], "annotations": [], "categories": []})
    assert _train(root, tmp_path / "r") == 2
    _one_error_line(capsys)


def test_unknown_device_is_one_error(people: Path, tmp_path: Path, capsys) -> None:
    assert _train(people, tmp_path / "r", "--device", "banana") == 2
    _one_error_line(capsys, "unknown device 'banana'")


def test_deeply_nested_json_is_one_error(tmp_path: Path, capsys) -> None:
    root = tmp_path / "deep"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.json").write_text("[" * 200_000 + "]" * 200_000)
    assert _train(root, tmp_path / "r") == 2
    _one_error_line(capsys, "nested too deeply")
    assert main(["data", "check", str(root)]) == 2
    _one_error_line(capsys, "nested too deeply")


def test_resume_from_another_directory(
    people: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A relative --data is stored as found; --data on resume says where the data is now."""
    monkeypatch.chdir(people.parent)
    assert _train(people.name, tmp_path / "r", "--name", "a") == 0
    last = tmp_path / "r" / "a" / "weights" / "last.pt"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(last), "--epochs", "2"]) == 0
    moved = tmp_path / "moved"
    shutil.move(people, moved)
    capsys.readouterr()
    assert main(["train", "--resume", str(last), "--epochs", "3"]) == 2
    _one_error_line(capsys, "pass --data")
    assert main(["train", "--resume", str(last), "--epochs", "3", "--data", str(moved)]) == 0
    from posekit.engine.checkpoint import read_checkpoint

    state = read_checkpoint(last)
    assert state["epoch"] == 2 and state["train_config"]["data"] == str(moved)


def test_time_limit_ending_the_run_still_validates_and_writes_best(
    people: Path, tmp_path: Path
) -> None:
    """A budget that one epoch exhausts ends the run there: that epoch is validated (it is
    the last) and best.pt is written, whatever `val_period` says."""
    result = Model("rtpose-n").train(data=str(people), project=str(tmp_path / "r"),
                                     **{**TINY_KW, "epochs": 300}, time_limit=0.001,
                                     val_period=5)  # fmt: skip
    assert result.epochs_run == 1 and result.best.is_file()
    assert "AP" in result.metrics
