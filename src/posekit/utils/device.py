"""Choosing the device to run on (training and inference share it)."""

from __future__ import annotations

import torch

from posekit.utils.errors import UserError


def select_device(name: str) -> torch.device:
    """ "auto" (CUDA when available, else the CPU), "cpu", "cuda" or "cuda:N"; anything else,
    or CUDA on a machine without it, is a `ValueError` that says what is accepted.

    Example:
        >>> select_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif device.type not in ("cpu", "mps"):
        raise UserError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
    return device
