"""The model contract, for every registered model: build, forward, the family's own training
samples and loss with backward, decode, and a checkpoint round trip, using only what the
trainer, validation and the predictor use (so a new family is covered by registering it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from posekit.data import read_coco
from posekit.engine.checkpoint import load_model, save_checkpoint
from posekit.models import REGISTRY, Detections, KeypointModel, create, list_models
from posekit.models.base import model_from_description
from posekit.models.samples import AugmentConfig, collate
from posekit.predict import PredictConfig

#: The largest sizes take minutes on 2 CPU cores: run with the slow tests.
HEAVY = {"vitpose-l", "vitpose-h", "rtpose-x"}

#: decode's settings, from PredictConfig (decoders have no defaults of their own)
SETTINGS = {k: getattr(PredictConfig(conf=0.0), k) for k in ("conf", "iou", "max_det", "oks_nms")}


def _params(name: str) -> object:
    return pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name


@pytest.mark.parametrize("name", [_params(n) for n in sorted(list_models())])
def test_model_contract(name: str, tmp_path: Path, valid_coco, make_dataset) -> None:
    torch.manual_seed(0)
    ds = read_coco(make_dataset(valid_coco) / "annotations" / "train.json")
    schema = ds.categories[0].schema
    model = create(name, schema)
    assert isinstance(model, KeypointModel) and REGISTRY.family(model.family) is type(model)

    # one training step through the family's own samples, collate and loss
    samples = model.training_samples(ds, 64, AugmentConfig(), category_ids=[1], seed=0,
                                     rect=False)  # fmt: skip
    loader = DataLoader(samples, batch_size=2, collate_fn=getattr(samples, "collate", collate))
    images, targets, _, _ = next(iter(loader))
    loss, parts = model.loss(model(images.float() / 255), targets)
    assert loss.ndim == 0 and torch.isfinite(loss) and parts
    assert all(isinstance(v, float) for v in parts.values())
    loss.backward()
    grads = [p.grad is not None for p in model.parameters()]
    assert sum(grads) > 0.9 * len(grads)
    assert model.param_groups(5e-4)

    model.eval()
    x = model.example_input(2)
    with torch.no_grad():
        dets = model.decode(model(x), **dict(SETTINGS, max_det=5))
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    for d in dets:
        n = len(d.scores)
        assert d.boxes.shape == (n, 4) and d.keypoints.shape == (n, 3, 3) and n <= 5
    # the exported graph's flat outputs come back to what `decode` takes (ONNX Runtime, fp16)
    with torch.no_grad():
        flat = model.export_outputs(model(x))
        assert len(flat) == len(model.export_output_names())
        again_dets = model.decode(model.from_export_outputs(list(flat), tuple(x.shape[-2:])),
                                  **dict(SETTINGS, max_det=5))  # fmt: skip
    for da, db in zip(again_dets, dets, strict=True):
        torch.testing.assert_close(da.keypoints, db.keypoints)

    path = save_checkpoint(tmp_path / "m.pt", model, epoch=1)
    again, _ = load_model(path)
    assert type(again) is type(model) and again.schemas == model.schemas
    assert model_from_description(model.describe()).config == model.config
    with torch.no_grad():
        a, b = again.decode(again(x), **SETTINGS), model.decode(model(x), **SETTINGS)
    for da, db in zip(a, b, strict=True):
        torch.testing.assert_close(da.keypoints, db.keypoints)


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown model family 'nope'; registered: heatpose, rt"):
        model_from_description({"architecture": "nope"})
