"""Training configuration: one dataclass, saved with every checkpoint and as args.yaml."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from posekit.engine.dataset import AugmentConfig
from posekit.utils.bounds import check_ranges, ranged


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Defaults suit a small model on a CPU or one GPU."""

    data: str = ""
    model: str = "rtpose-n"  # a registered name, or a checkpoint to fine-tune
    # override the size's channel multiplier (e.g. a tiny model)
    width: float | None = ranged(None, 0.01, 4)
    depth: float | None = ranged(None, 0.01, 4)  # override the size's depth multiplier
    epochs: int = ranged(100, 1, 100_000)
    imgsz: int = ranged(640, 32, 8192)
    rect: bool = True  # images of one aspect ratio train on a rectangle, not a padded square
    batch: int = ranged(16, 1, 65_536)  # total over all processes
    workers: int = ranged(2, 0, 256)  # data-loading processes per training process
    optimizer: str = "adamw"  # or "sgd"
    lr0: float = ranged(0.002, 0, 10)  # AdamW; 0.01 suits SGD
    lrf: float = ranged(0.01, 0, 1)  # final learning rate, as a fraction of lr0 (cosine schedule)
    momentum: float = ranged(0.937, 0, 1)  # SGD momentum / Adam beta1
    weight_decay: float = ranged(5e-4, 0, 1)
    warmup_epochs: float = ranged(3.0, 0, 100_000)
    warmup_min_iters: int = ranged(100, 0, 10_000_000)
    ema_decay: float = ranged(0.9999, 0, 1)
    grad_clip: float = ranged(10.0, 0, 1e6)
    amp: bool = True  # mixed precision: float16 on CUDA, bfloat16 on CPUs that have it natively
    seed: int = 0
    deterministic: bool = True
    patience: int = ranged(50, 1, 100_000)  # epochs without a better validation AP before stopping
    val: bool = True
    val_period: int = ranged(1, 1, 100_000)
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    device: str = "auto"  # "cpu", "cuda", "cuda:1" or "auto"
    time_limit: float = ranged(0.0, 0, 1e7)  # minutes (0: none); the epoch count shrinks to fit it
    # top-down models: read whole frames as one subject (True), instance crops (False), or
    # decide from the data (None: single-subject when no image has two labelled subjects)
    single_subject: bool | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        check_ranges(self, "train")

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
