"""Checkpoints: weights plus everything needed to rebuild, evaluate and resume.

A checkpoint is self-describing: architecture, size config, one keypoint schema per class
(names, skeleton, flip permutation, sigmas) and class names travel with the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from posekit.models.base import KeypointModel, load_weights, model_from_description
from posekit.utils.errors import UserError
from posekit.utils.serialization import load_torch_file

FORMAT_VERSION = 1


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper."""
    return model.module if hasattr(model, "module") else model


def save_checkpoint(path: str | Path, model: nn.Module, **state: Any) -> Path:
    """Write `model` (its description and weights) and any extra state (epoch, optimizer,
    metrics, train config ...) atomically."""
    m = unwrap(model)
    data = {"format": FORMAT_VERSION, "model": plain(m.describe()), "weights": m.state_dict(),
            **plain(state)}  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(path)
    return path


def plain(obj: Any) -> Any:
    """`obj` with NumPy values and paths turned into Python ones, recursively (tensors kept),
    so that every checkpoint loads with `weights_only=True` in any environment."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict of a posekit checkpoint, loaded without running code (`weights_only=True`;
    NumPy values, which older files may hold, are admitted as data)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    data = load_torch_file(path, allow_numpy=True)
    if not isinstance(data, dict) or "model" not in data or "weights" not in data:
        raise UserError(f"{path}: not a posekit checkpoint")
    return data


def load_model(path: str | Path) -> tuple[KeypointModel, dict[str, Any]]:
    """The model of a posekit checkpoint (in eval mode) and the whole checkpoint dict."""
    data = read_checkpoint(path)
    model = model_from_description(data["model"], str(path))
    load_weights(model, data["weights"], str(path))
    return model.eval(), data
