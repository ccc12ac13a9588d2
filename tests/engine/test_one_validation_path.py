"""One validation path: `posekit val --model` is `Model.val`, with `predict`'s settings (the
same fp16 and flip defaults, settable from both), and the same rule for which split is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posekit import Model
from posekit.cli.main import main
from posekit.data.problems import DatasetError
from posekit.engine.checkpoint import save_checkpoint
from posekit.models import create


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = create("rtmpose-t", "coco17", input_size=(64, 64))
    return save_checkpoint(tmp_path_factory.mktemp("m") / "m.pt", net)


def test_model_val_and_posekit_val_give_the_same_figures(
    checkpoint: Path, four_people: Path, tmp_path: Path
) -> None:
    ours = Model(checkpoint).val(four_people, batch=2, flip=False)
    assert main(["val", "--data", str(four_people), "--model", str(checkpoint), "--batch", "2",
                 "--no-flip", "--out", str(tmp_path / "m"), "--no-plots"]) == 0  # fmt: skip
    cli = json.loads((tmp_path / "m" / "metrics.json").read_text())
    for key, value in ours.to_dict().items():
        if isinstance(value, float):
            assert cli[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key


def test_a_single_coco_file_is_evaluated_by_both(checkpoint: Path, four_people: Path) -> None:
    """Before: `Model.val` raised "no 'val' split" on a one-file dataset that `posekit val`
    evaluated."""
    coco = four_people.parent / "annotations" / "train.json"
    assert Model(checkpoint).val(coco).counts["images"] == 4
    assert main(["val", "--data", str(coco), "--model", str(checkpoint)]) == 0
    with pytest.raises(DatasetError, match="no 'test' split"):
        Model(checkpoint).val(four_people, split="test")


def test_validation_takes_prediction_settings_and_refuses_unknown_ones(
    checkpoint: Path, four_people: Path
) -> None:
    flipped = Model(checkpoint).val(four_people, flip=True).epe
    plain = Model(checkpoint).val(four_people, flip=False).epe
    assert flipped != plain  # the flip test changes the (untrained) keypoints
    with pytest.raises(ValueError, match="unknown prediction setting 'flip_test'"):
        Model(checkpoint).val(four_people, flip_test=False)
