"""`posekit train`: train a model; also what `torchrun -m posekit train ...` runs on each rank."""

from __future__ import annotations

from pathlib import Path

import click

from posekit.cli.logs import setup_logging
from posekit.cli.options import setting_option
from posekit.engine.config import TrainConfig


@click.command()
@click.option(
    "--data",
    default=None,
    type=click.Path(path_type=Path),
    help="A posekit dataset folder or data YAML (train and val splits); not with --resume.",
)
@click.option(
    "--model",
    default="rtpose-n",
    show_default=True,
    help="A registered model (rtpose-n ... rtpose-x, heatpose-t ... heatpose-l, rtmpose-t ... "
    "rtmpose-l, vitpose-s ... vitpose-h) or a checkpoint to fine-tune.",
)
@setting_option(TrainConfig, "epochs")
@setting_option(TrainConfig, "imgsz", help="Training and validation input size.")
@setting_option(TrainConfig, "batch", help="Total batch size (split over distributed processes).")
@setting_option(TrainConfig, "workers", help="Data-loading processes per training process.")
@click.option(
    "--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True
)
@setting_option(
    TrainConfig, "lr0", default=None, help="Initial learning rate (AdamW 0.002, SGD 0.01)."
)
@setting_option(TrainConfig, "patience", help="Epochs without a better validation AP to stop.")
@setting_option(
    TrainConfig,
    "time_limit",
    help="Minutes (0: none); the epoch count (and the LR schedule) shrink to what fits.",
)
@click.option(
    "--amp/--no-amp",
    default=True,
    show_default=True,
    help="Mixed precision: float16 on CUDA, bfloat16 on CPUs that compute it natively.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--project", default="runs/train", show_default=True)
@click.option("--name", default="exp", show_default=True)
@click.option("--exist-ok", is_flag=True, help="Reuse project/name instead of making name2, ...")
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="Continue a run from its last.pt (with --epochs to extend it).",
)
@click.option(
    "--single-subject/--no-single-subject",
    default=None,
    help="Top-down models: read each whole frame as one subject (no detector), or train on "
    "instance crops. Default: single-subject when no training image has two labelled subjects.",
)
@setting_option(TrainConfig, "width", help="Override the size's width multiplier.")
@setting_option(TrainConfig, "depth", help="Override the size's depth multiplier.")
def train(data: Path, model: str, epochs: int, imgsz: int, batch: int, workers: int, optimizer: str,
          lr0: float | None, patience: int, time_limit: float, amp: bool, seed: int, device: str,
          project: str, name: str, exist_ok: bool, resume: Path | None,
          single_subject: bool | None, width: float | None,
          depth: float | None) -> None:  # fmt: skip
    """Train a keypoint detector; writes weights/best.pt, last.pt, results.csv and curves."""
    from posekit.engine import distributed as dist
    from posekit.engine.trainer import Trainer

    if data is None and resume is None:
        raise click.UsageError("give --data (or --resume RUN/weights/last.pt)")
    setup_logging()
    lr = lr0 if lr0 is not None else (0.002 if optimizer == "adamw" else 0.01)
    cfg = TrainConfig(data=str(data or ""), model=model, epochs=epochs, imgsz=imgsz, batch=batch,
                      workers=workers, optimizer=optimizer, lr0=lr, patience=patience,
                      time_limit=time_limit, amp=amp, seed=seed, device=device, project=project,
                      name=name, exist_ok=exist_ok, width=width, depth=depth,
                      single_subject=single_subject)  # fmt: skip
    try:
        result = Trainer(cfg, resume=resume).fit()
        if dist.is_main():
            click.echo(f"done: {result.epochs_run} epochs, best AP {result.best_fitness:.4f}; "
                       f"weights in {result.save_dir / 'weights'}, curves in "
                       f"{result.save_dir / 'results.png'}")  # fmt: skip
    finally:
        dist.cleanup()
