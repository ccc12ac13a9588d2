"""The command line: each data command end to end, errors as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from cli_output import error_lines
from posekit.cli.main import main


def test_synth_check_preview_convert_split(tmp_path: Path, capsys) -> None:
    data = tmp_path / "arms"
    rc = main(
        [
            "data",
            "synth",
            "--kind",
            "arm",
            "--images",
            "20",
            "--imgsz",
            "256",
            "--val",
            "0.25",
            "--seed",
            "2",
            "--workers",
            "1",
            "--out",
            str(data),
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in (data / "annotations").iterdir()) == ["train.json", "val.json"]
    assert len(list((data / "images").glob("*.jpg"))) == 20

    assert main(["data", "check", str(data)]) == 0
    out = capsys.readouterr().out
    assert "gripper_left" in out and "clean" in out

    prev = tmp_path / "prev"
    assert (
        main(["data", "preview", str(data), "--split", "val", "-n", "4", "--out", str(prev)]) == 0
    )
    grid = cv2.imread(str(prev / "grid.png"))
    assert grid is not None and grid.shape[1] == 4 * 320
    assert len(list(prev.glob("image_*.jpg"))) == 4

    assert main(["data", "convert", str(data), str(tmp_path / "y"), "--to", "yolo"]) == 0
    assert main(["data", "check", str(tmp_path / "y" / "data.yaml")]) == 0

    assert main(["data", "split", str(data), "--val", "0.5", "--out", str(tmp_path / "s")]) == 0
    val = json.loads((tmp_path / "s" / "annotations" / "val.json").read_text())
    assert len(val["images"]) == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "check", "/no/such/dataset"], "/no/such/dataset: not found"),
        (["data", "convert", "/no/such.json", "/tmp/x"], "/no/such.json: not found"),
        (["data", "check", "{tmp}/notes.txt"], "unknown dataset format"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    args: list[str], message: str, capsys, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "posekit", "data", "check", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = subprocess.run(
        [sys.executable, "-m", "posekit", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "posekit" in r.stdout


@pytest.mark.slow
def test_demo_leaves_what_it_promises(tmp_path: Path) -> None:
    """The README's main job, shrunk: generate, check, train, evaluate, predict."""
    out = tmp_path / "demo"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "posekit",
            "demo",
            "--out",
            str(out),
            "--images",
            "40",
            "--imgsz",
            "96",
            "--minutes",
            "0.3",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "open this first" in r.stdout
    for image in (
        "predictions/grid.png",
        "ground_truth/grid.png",
        "train/results.png",
        "eval/pr_curves.png",
        "eval/per_keypoint.png",
    ):
        assert cv2.imread(str(out / image)) is not None, image
    assert (out / "train" / "weights" / "best.pt").is_file()
    assert len(list((out / "predictions").glob("*.jpg"))) == 6  # every held-out image
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["AP"] <= 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val"]["AP"] == metrics["AP"] and summary["train"]["epochs"] >= 1
    check = json.loads((out / "check.json").read_text())
    assert check["val"]["images"] == 6 and check["train"]["problems"] == []
