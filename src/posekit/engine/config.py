"""Training configuration: one dataclass, saved with every checkpoint and as args.yaml."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from posekit.engine.dataset import AugmentConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Defaults suit a small model on a CPU or one GPU."""

    data: str = ""
    model: str = "rtpose-n"  # a registered name, or a checkpoint to fine-tune
    width: float | None = None  # override the size's channel multiplier (e.g. a tiny model)
    depth: float | None = None  # override the size's depth multiplier
    epochs: int = 100
    imgsz: int = 640
    rect: bool = True  # images of one aspect ratio train on a rectangle, not a padded square
    batch: int = 16  # total over all processes
    workers: int = 2  # data-loading processes per training process
    optimizer: str = "adamw"  # or "sgd"
    lr0: float = 0.002  # AdamW; 0.01 suits SGD
    lrf: float = 0.01  # final learning rate, as a fraction of lr0 (cosine schedule)
    momentum: float = 0.937  # SGD momentum / Adam beta1
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    warmup_min_iters: int = 100
    ema_decay: float = 0.9999
    grad_clip: float = 10.0
    amp: bool = True  # mixed precision: float16 on CUDA, bfloat16 on CPUs that have it natively
    seed: int = 0
    deterministic: bool = True
    patience: int = 50  # epochs without a better validation AP before stopping
    val: bool = True
    val_period: int = 1
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    device: str = "auto"  # "cpu", "cuda", "cuda:1" or "auto"
    time_limit: float = 0.0  # minutes (0: none); the epoch count shrinks to fit it
    # top-down models: read whole frames as one subject (True), instance crops (False), or
    # decide from the data (None: single-subject when no image has two labelled subjects)
    single_subject: bool | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(unknown)}")
        d = dict(d)
        if isinstance(d.get("augment"), dict):
            aug = dict(d["augment"])
            if "hsv" in aug:
                aug["hsv"] = tuple(aug["hsv"])
            d["augment"] = AugmentConfig(**aug)
        return cls(**d)
