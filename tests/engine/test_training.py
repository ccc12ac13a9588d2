"""Training end to end: overfitting a few images, resuming, and DistributedDataParallel."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from posekit import Model
from posekit.engine.checkpoint import read_checkpoint

NO_AUG = {"scale": 0, "degrees": 0, "translate": 0, "flip": 0, "hsv": (0, 0, 0), "blur": 0}


@pytest.mark.slow
def test_tiny_run_overfits_a_handful_of_images(overfit_run, four_people: Path) -> None:  # type: ignore[no-untyped-def]
    result = overfit_run
    assert result.best_fitness > 0.9, result.metrics
    assert result.metrics["PCK@0.05"] > 0.9
    for f in ("results.csv", "results.png", "args.yaml", "weights/best.pt", "weights/last.pt"):
        assert (result.save_dir / f).is_file(), f
    metrics = Model(result.best).val(four_people, imgsz=192)
    assert metrics.coco["AP"] > 0.9


def test_resume_continues_from_the_saved_epoch(four_people: Path, tmp_path: Path) -> None:
    opts = dict(
        data=str(four_people),
        imgsz=96,
        batch=4,
        workers=0,
        width=0.5,
        project=str(tmp_path),
        name="r",
        **NO_AUG,
    )
    first = Model("rtpose-n").train(epochs=2, **opts)
    ck = read_checkpoint(first.last)
    assert ck["epoch"] == 1 and len(ck["history"]) == 2
    again = Model("rtpose-n").train(epochs=3, resume=first.last, **opts)
    assert again.save_dir == first.save_dir and again.epochs_run == 3
    rows = list(csv.DictReader((first.save_dir / "results.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    ck2 = read_checkpoint(again.last)
    assert ck2["epoch"] == 2 and ck2["ema_updates"] == ck["ema_updates"] + 1
    with pytest.raises(ValueError, match="already finished epoch 3 of 3"):
        Model("rtpose-n").train(epochs=3, resume=again.last, **opts)


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(four_people: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    report = tmp_path / "report.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            str(Path(__file__).parent / "ddp_worker.py"),
            str(four_people),
            str(tmp_path),
            str(report),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(report.read_text())
    assert rep == {
        "world_size": 2,
        "same_weights": True,
        "save_dir": rep["save_dir"],
        "nonzero_update": True,
    }
    weights = sorted(p.name for p in (Path(rep["save_dir"]) / "weights").iterdir())
    assert weights == ["best.pt", "last.pt"]  # written once, by rank 0
    assert (
        torch.load(Path(rep["save_dir"]) / "weights" / "last.pt", weights_only=True)["epoch"] == 0
    )


def test_time_limit_counts_the_epochs_that_fit() -> None:
    from posekit.engine.trainer import epochs_that_fit

    # first epoch 30 s (workers starting), then 10 s each: 3 done after 50 s of 500; 2 % of
    # the limit (10 s) is kept for the closing validation
    assert epochs_that_fit(3, 50.0, 20.0, 500.0) == 3 + 44
    assert epochs_that_fit(1, 30.0, 0.0, 500.0) == 1 + 15  # only the first epoch known
    assert epochs_that_fit(4, 130.0, 100.0, 120.0) == 4  # over the limit: stop now


@pytest.mark.slow
def test_tiny_vitpose_memorises_its_crops(four_people: Path, tmp_path: Path) -> None:
    """The top-down family through the same trainer: its crops, heatmap loss, layer-wise
    learning rates, and validation on ground-truth boxes through the prediction path."""
    result = Model("vitpose-s").train(
        data=str(four_people),
        epochs=60,
        batch=8,
        workers=0,
        width=0.25,
        depth=0.25,
        lr0=1e-3,
        warmup_epochs=1,
        val_period=30,
        project=str(tmp_path),
        name="v",
        **NO_AUG,
    )
    assert result.metrics["PCK@0.05"] > 0.95, result.metrics
    assert result.metrics["AP"] > 0.9, result.metrics
    assert Model(result.best).net.family == "vitpose"


@pytest.mark.parametrize("flip", [0.0, 0.5])
def test_a_model_trained_without_mirrored_images_is_not_flip_tested(
    flip: float, four_people: Path, tmp_path: Path
) -> None:
    """Before: rtmpose-t memorised 8 openfield frames trained without flips to 0.07 px, but
    predicted them at 32 px, because the flip test averaged in its guess for the mirrored
    frame, which it had never seen."""
    result = Model("rtmpose-t").train(
        data=str(four_people), epochs=1, batch=4, workers=0, width=0.25, depth=0.5, val=False,
        project=str(tmp_path), name="f", **{**NO_AUG, "flip": flip},
    )  # fmt: skip
    assert Model(result.last).net.config.flip_test is (flip > 0)
