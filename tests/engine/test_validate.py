"""One inference path: `Model.val` measures exactly what `Model.predict` returns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posekit import Model
from posekit.cli.main import main
from posekit.data import load_dataset
from posekit.eval.cocoeval import STAT_NAMES


@pytest.mark.slow
def test_val_equals_val_pred_on_predict_output(
    overfit_run, four_people: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    model = Model(overfit_run.best)
    metrics = model.val(four_people, split="val", imgsz=192, batch=2)
    assert metrics.coco["AP"] > 0.5  # a meaningful comparison, not two empty evaluations

    ds = load_dataset(four_people, "val")
    paths = [str(ds.image_path(im)) for im in ds.images]
    results = model(paths, conf=0.001, max_det=100, imgsz=192, batch=2)
    coco = [d for im, r in zip(ds.images, results, strict=True) for d in r.to_coco(im.id)]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(coco))
    out = tmp_path / "m"
    args = [
        "val",
        "--gt",
        str(four_people),
        "--split",
        "val",
        "--pred",
        str(pred),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    written = json.loads((out / "metrics.json").read_text())
    for name in STAT_NAMES:
        assert abs(written[name] - metrics.coco[name]) <= 1e-9, name
    for name, ours in (("PCK@0.05", metrics.pck), ("EPE_px", metrics.epe)):
        np.testing.assert_allclose(written[name], ours, rtol=0, atol=1e-9, err_msg=name)
