"""`posekit train`: train a model; also what `torchrun -m posekit train ...` runs on each rank."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from posekit.cli.logs import setup_logging
from posekit.cli.options import field_comments, remaining_settings, setting_option
from posekit.engine.config import LR0_BY_OPTIMIZER, TrainConfig
from posekit.models.samples import AugmentConfig

#: The settings this command defines itself (with their own help); the rest are derived.
EXPLICIT = ("data", "model", "epochs", "imgsz", "batch", "workers", "optimizer", "lr0",
            "patience", "time_limit", "amp", "seed", "device", "project", "name", "exist_ok",
            "single_subject", "width", "depth", "augment")  # fmt: skip


@click.command()
@click.option(
    "--data",
    default=None,
    type=click.Path(path_type=Path),
    help="A posekit dataset folder or data YAML (train and val splits); not with --resume.",
)
@click.option(
    "--model",
    default=TrainConfig.model,
    show_default=True,
    help="A registered model (rtpose-n ... rtpose-x, heatpose-t ... heatpose-l, rtmpose-t ... "
    "rtmpose-l, vitpose-s ... vitpose-h) or a checkpoint to fine-tune.",
)
@setting_option(TrainConfig, "epochs")
@setting_option(TrainConfig, "imgsz", help="Training and validation input size.")
@setting_option(TrainConfig, "batch", help="Total batch size (split over distributed processes).")
@setting_option(TrainConfig, "workers", help="Data-loading processes per training process.")
@click.option(
    "--optimizer",
    type=click.Choice(list(LR0_BY_OPTIMIZER)),
    default=TrainConfig.optimizer,
    show_default=True,
    help="AdamW, or SGD with Nesterov momentum.",
)
@setting_option(TrainConfig, "lr0", help="Initial learning rate (default: AdamW 0.002, SGD 0.01).")
@setting_option(TrainConfig, "patience", help="Epochs without a better validation AP to stop.")
@setting_option(
    TrainConfig,
    "time_limit",
    help="Minutes (0: none); the epoch count (and the LR schedule) shrink to what fits.",
)
@click.option(
    "--amp/--no-amp",
    default=TrainConfig.amp,
    show_default=True,
    help="Mixed precision: float16 on CUDA, bfloat16 on CPUs that compute it natively.",
)
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True,
              help=field_comments(TrainConfig)["seed"])  # fmt: skip
@click.option("--device", default=TrainConfig.device, show_default=True,
              help=field_comments(TrainConfig)["device"])  # fmt: skip
@click.option("--project", default=TrainConfig.project, show_default=True,
              help="The folder that holds the run folders.")  # fmt: skip
@click.option("--name", default=TrainConfig.name, show_default=True,
              help="The run folder's name (name2, name3, ... when taken).")  # fmt: skip
@click.option("--exist-ok", is_flag=True, default=TrainConfig.exist_ok,
              help="Reuse project/name instead of making name2, ...")  # fmt: skip
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="Continue a run from its last.pt (with --epochs to extend it).",
)
@click.option(
    "--single-subject/--no-single-subject",
    default=TrainConfig.single_subject,
    help="Top-down models: read each whole frame as one subject (no detector), or train on "
    "instance crops. Default: single-subject when no training image has two labelled subjects.",
)
@setting_option(
    TrainConfig, "width", help="Multiply the size's channels (0.5 halves them; every family)."
)
@setting_option(
    TrainConfig, "depth", help="Multiply the size's depth: blocks or layers (every family)."
)
@remaining_settings(TrainConfig, exclude=EXPLICIT)
@remaining_settings(AugmentConfig)
def train(data: Path | None, model: str, resume: Path | None, **settings: Any) -> None:
    """Train a keypoint detector; writes weights/best.pt, last.pt, results.csv and curves.

    Every `TrainConfig` and `AugmentConfig` field is an option, with the dataclass's default."""
    from posekit.engine import distributed as dist
    from posekit.engine.trainer import Trainer

    if data is None and resume is None:
        raise click.UsageError("give --data (or --resume RUN/weights/last.pt)")
    setup_logging()
    aug = {f.name: settings.pop(f.name) for f in fields(AugmentConfig)}
    cfg = TrainConfig(data=str(data or ""), model=model, augment=AugmentConfig(**aug),
                      **settings)  # fmt: skip
    try:
        result = Trainer(cfg, resume=resume).fit()
        if dist.is_main():
            click.echo(f"done: {result.epochs_run} epochs, {result.describe_best()}; "
                       f"weights in {result.save_dir / 'weights'}, curves in "
                       f"{result.save_dir / 'results.png'}")  # fmt: skip
    finally:
        dist.cleanup()
