"""`Model.predict` and `Model.track` take `PredictConfig`'s field names and its defaults, with
nothing retyped: an unknown name is refused with the list of valid ones."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from posekit import Model
from posekit.predict import PredictConfig


@pytest.fixture(scope="module")
def model() -> Model:
    return Model("rtpose-n")


def test_defaults_are_the_configs(model: Model) -> None:
    cfg = model.predict_config(torch.device("cpu"))
    for f in fields(PredictConfig):
        if f.name != "imgsz":
            assert getattr(cfg, f.name) == f.default, f.name
    assert cfg.imgsz == model.net.config.imgsz and not cfg.half


def test_every_field_can_be_set_and_is_range_checked(model: Model) -> None:
    cfg = model.predict_config(torch.device("cpu"), conf=0.5, crop_batch=8, rect=False, half=True)
    assert (cfg.conf, cfg.crop_batch, cfg.rect, cfg.half) == (0.5, 8, False, True)
    with pytest.raises(ValueError, match="outside its range"):
        model.predict_config(torch.device("cpu"), max_det=0)


def test_an_unknown_setting_is_refused_with_the_valid_names(model: Model) -> None:
    import numpy as np

    with pytest.raises(ValueError, match=r"unknown prediction setting 'confidence'.*conf, "):
        model.predict(np.zeros((32, 32, 3), np.uint8), confidence=0.3)
    with pytest.raises(ValueError, match="unknown prediction setting 'maxdet'"):
        model.track(np.zeros((32, 32, 3), np.uint8), maxdet=3)


def test_keypoints_of_the_wrong_shape_are_refused_not_reshaped() -> None:
    """Before: a (17, 2, 3) array was silently read as (2, 17, 3)."""
    import numpy as np

    from posekit.predict.results import Keypoints

    names = tuple(f"k{i}" for i in range(17))
    ok = Keypoints(np.zeros((2, 17, 3)), (10, 10), names)
    assert ok.data.shape == (2, 17, 3)
    assert Keypoints(np.zeros((0,)), (10, 10), names).data.shape == (0, 17, 3)
    with pytest.raises(ValueError, match=r"shape \(17, 2, 3\) is not \(N, 17, 3\)"):
        Keypoints(np.zeros((17, 2, 3)), (10, 10), names)
