"""`posekit val`: AP 1.0 on ground truth as predictions, pycocotools' numbers on perturbed ones,
and bad prediction files named entry by entry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cli_output import error_lines
from cocoproblems import pycocotools_stats
from posekit.cli.main import main
from posekit.data.synth import SynthConfig, generate
from posekit.eval.cocoeval import STAT_NAMES
from posekit.schema import get_schema


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("val") / "people"
    return generate(SynthConfig("person", images=40, imgsz=320, seed=9), out, val=0.5)


def _gt(people: Path) -> dict:
    return json.loads((people / "annotations" / "val.json").read_text())


def _write(tmp_path: Path, results: list | str, name: str = "pred.json") -> Path:
    p = tmp_path / name
    p.write_text(results if isinstance(results, str) else json.dumps(results))
    return p


def test_ground_truth_as_predictions_gives_ap_1(people: Path, tmp_path: Path, capsys) -> None:
    gt = _gt(people)
    res = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "keypoints": a["keypoints"],
            "score": 1.0,
        }
        for a in gt["annotations"]
    ]
    out = tmp_path / "eval"
    assert (
        main(["val", "--gt", str(people), "--pred", str(_write(tmp_path, res)), "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert re.search(r"AP @\[OKS \.50:\.95 \| all\]\s*│\s*1\.0000", text), text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["AP"] == pytest.approx(1.0) and metrics["PCK@0.05"] == 1.0
    assert metrics["EPE_px"] == 0.0
    for f in ("pr_curves.png", "per_keypoint.png", "instances.csv"):
        assert (out / f).stat().st_size > 0


def test_perturbed_predictions_match_pycocotools(people: Path, tmp_path: Path) -> None:
    gt = _gt(people)
    rng = np.random.default_rng(1)
    res = []
    for a in gt["annotations"]:
        for _ in range(3):
            kp = np.array(a["keypoints"], float).reshape(-1, 3)
            kp[:, :2] += rng.normal(0, rng.uniform(0.3, 8), kp[:, :2].shape)
            kp[:, 2] = rng.random(len(kp))
            res.append(
                {
                    "image_id": a["image_id"],
                    "category_id": 1,
                    "keypoints": kp.ravel().tolist(),
                    "score": round(rng.random(), 2),
                }
            )
    out = tmp_path / "eval"
    args = [
        "val",
        "--gt",
        str(people / "annotations" / "val.json"),
        "--pred",
        str(_write(tmp_path, res)),
        "--out",
        str(out),
        "--no-plots",
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    ref = pycocotools_stats(gt, res, list(get_schema("coco17").sigmas))
    np.testing.assert_allclose([metrics[n] for n in STAT_NAMES], ref, rtol=0, atol=1e-9)
    assert 0.1 < metrics["AP"] < 0.99


def _one(people: Path, **change) -> list:
    a = _gt(people)["annotations"][0]
    r = {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 0.9}
    r.update(change)
    return [r, *[r | {"score": 0.5}] * 2]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: _one(p, keypoints=[1.0] * 50),
            "entry 0: keypoints has 50 values, expected 3*K = 51",
        ),
        (lambda p: _one(p, image_id=99999), "entry 0: unknown image_id 99999"),
        (lambda p: _one(p, image_id=[1]), "entry 0: unknown image_id [1]"),
        (lambda p: _one(p, image_id=True), "entry 0: unknown image_id True"),
        (lambda p: _one(p, category_id={"a": 1}), "entry 0: unknown category_id {'a': 1}"),
        (lambda p: _one(p, bbox=[0, 0, 1e308, 5]), "with a size in [0, 1e6]"),
        (lambda p: _one(p, category_id=7), "entry 0: unknown category_id 7"),
        (lambda p: _one(p, score=float("nan")), "entry 0: score must be a finite number, got nan"),
        (lambda p: [{"image_id": 1, "category_id": 1, "score": 1.0}], "entry 0: missing keypoints"),
        (lambda p: "", "empty file"),
        (lambda p: "[]", "no predictions"),
        (lambda p: '{"a": 1}', "must be a JSON list"),
        (lambda p: "[{", "malformed JSON"),
    ],
)
def test_bad_predictions_are_named(people: Path, tmp_path: Path, capsys, make, message) -> None:
    pred = _write(tmp_path, make(people))
    assert main(["val", "--gt", str(people), "--pred", str(pred)]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and message in err[0] and str(pred) in err[0], err


def test_many_bad_entries_are_counted(people: Path, tmp_path: Path, capsys) -> None:
    res = _one(people, image_id=-5) * 4  # 12 bad entries
    assert main(["val", "--gt", str(people), "--pred", str(_write(tmp_path, res))]) == 2
    err = capsys.readouterr().err
    assert "12 of 12 predictions are invalid" in err and "and 7 more" in err


def test_unusable_ground_truth_is_reported_and_fails(
    tmp_path: Path, valid_coco, make_dataset, capsys
) -> None:  # type: ignore[no-untyped-def]
    """Ground truth that the loader must skip is listed like `data check` lists it; when none
    is left to evaluate, val exits 1 instead of printing AP -1 as if all were well."""
    preds = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
              "score": 1.0} for a in valid_coco["annotations"]]  # fmt: skip
    pred = _write(tmp_path, preds)
    valid_coco["annotations"][0]["iscrowd"] = "no"
    partial = make_dataset(valid_coco, "partial") / "annotations" / "train.json"
    assert main(["val", "--gt", str(partial), "--pred", str(pred), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "1 problem(s), skipped: 1 annotation (iscrowd)" in err and "annotation 10" in err
    for a in valid_coco["annotations"]:
        a["iscrowd"] = "no"
    broken = make_dataset(valid_coco, "broken") / "annotations" / "train.json"
    assert main(["val", "--gt", str(broken), "--pred", str(pred), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "skipped: 3 annotation (iscrowd)" in err
    assert "no ground-truth instance with a labelled keypoint could be evaluated" in err
