"""Training configuration: one dataclass, saved with every checkpoint and as args.yaml."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from posekit.models.samples import AugmentConfig
from posekit.utils.bounds import check_ranges, ranged
from posekit.utils.errors import UserError

#: The initial learning rate each optimizer starts from unless `lr0` is given.
LR0_BY_OPTIMIZER = {"adamw": 0.002, "sgd": 0.01}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Defaults suit a small model on a CPU or one GPU."""

    data: str = ""
    model: str = "rtpose-n"  # a registered name, or a checkpoint to fine-tune
    # multiply the size's channels (relative, the same in every family: 0.5 halves them)
    width: float | None = ranged(None, 0.01, 4)
    depth: float | None = ranged(None, 0.01, 4)  # multiply the size's depth (blocks, layers)
    epochs: int = ranged(100, 1, 100_000)  # passes over the training split
    imgsz: int = ranged(640, 32, 8192)  # input size (whole-image models; crops: the model's)
    rect: bool = True  # images of one aspect ratio train on a rectangle, not a padded square
    batch: int = ranged(16, 1, 65_536)  # total over all processes
    workers: int = ranged(2, 0, 256)  # data-loading processes per training process
    optimizer: str = "adamw"  # or "sgd"
    # initial learning rate; None: the optimizer's (`LR0_BY_OPTIMIZER`), set when the config
    # is made, so the CLI and the API train alike
    lr0: float | None = ranged(None, 0, 10)
    lrf: float = ranged(0.01, 0, 1)  # final learning rate, as a fraction of lr0 (cosine schedule)
    momentum: float = ranged(0.937, 0, 1)  # SGD momentum / Adam beta1
    weight_decay: float = ranged(5e-4, 0, 1)  # AdamW's decoupled decay, SGD's L2 penalty
    warmup_epochs: float = ranged(3.0, 0, 100_000)  # linear learning-rate warm-up
    warmup_min_iters: int = ranged(100, 0, 10_000_000)  # the warm-up lasts at least this many steps
    ema_decay: float = ranged(0.9999, 0, 1)  # of the weights' moving average (what is saved)
    grad_clip: float = ranged(10.0, 1e-6, 1e6)  # gradients are clipped to this norm
    amp: bool = True  # mixed precision: float16 on CUDA, bfloat16 on CPUs that have it natively
    seed: int = 0  # of every random draw (same seed and data: the same run)
    deterministic: bool = True  # cuDNN's deterministic algorithms, no autotuning
    patience: int = ranged(50, 1, 100_000)  # epochs without a better validation AP before stopping
    val: bool = True  # validate during training (best.pt by validation AP)
    val_period: int = ranged(1, 1, 100_000)  # validate every this many epochs
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
        if self.optimizer not in LR0_BY_OPTIMIZER:
            raise UserError(f"train: optimizer {self.optimizer!r} is not one of "
                             f"{', '.join(LR0_BY_OPTIMIZER)}")  # fmt: skip
        if self.lr0 is None:  # frozen: set once, here
            object.__setattr__(self, "lr0", LR0_BY_OPTIMIZER[self.optimizer])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown training options: {', '.join(unknown)}")
        d = dict(d)
        if isinstance(d.get("augment"), dict):
            aug = dict(d["augment"])
            if "hsv" in aug:
                aug["hsv"] = tuple(aug["hsv"])
            d["augment"] = AugmentConfig(**aug)
        return cls(**d)
