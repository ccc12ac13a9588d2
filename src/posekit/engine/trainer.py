"""The training loop: one process or many (torchrun + DistributedDataParallel).

Readable in one sitting: `Trainer.fit` runs epochs; an epoch is `train_epoch` then `validate`;
what happens around them (console lines, results.csv, curves, checkpoints, early stopping) is
in small methods with one job each. Only rank 0 writes files.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from posekit.data.dataset import KeypointDataset
from posekit.data.formats import load_splits
from posekit.data.problems import DatasetError
from posekit.data.sequences import PoseSequences, is_sequence_dataset, load_sequence_splits
from posekit.engine import distributed as dist
from posekit.engine.checkpoint import read_checkpoint, save_checkpoint, unwrap
from posekit.engine.config import TrainConfig
from posekit.engine.ema import ModelEMA
from posekit.engine.lifting import evaluate_lifting
from posekit.engine.mode import choose_input_mode
from posekit.engine.preflight import absolute_data, resumed_config, usable_splits
from posekit.engine.validate import (
    PredictionArrays,
    predict_images,
    to_predictions,
    validation_config,
)
from posekit.eval import EvalConfig, GroundTruth, evaluate
from posekit.models import create, list_models
from posekit.models.base import for_keypoints
from posekit.models.loading import load_any, local_source
from posekit.models.samples import EpochSampler, collate
from posekit.utils.device import select_device
from posekit.utils.errors import UserError
from posekit.utils.progress import progress_bar
from posekit.utils.runs import claim_run_dir, lock_run_dir, unlock_run_dir

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where a run wrote its files and how it ended."""

    save_dir: Path
    best: Path
    last: Path
    best_fitness: float  # `fitness` of the best validation (-inf: never validated)
    epochs_run: int
    metrics: dict[str, Any]
    lifting: bool = False  # a lifting network: `best_fitness` is minus its MPJPE in mm

    def describe_best(self) -> str:
        """The best validation in words, e.g. 'best AP 0.7312' or 'best MPJPE 41.2 mm'."""
        if not math.isfinite(self.best_fitness):
            return "not validated"
        if self.lifting:
            return f"best MPJPE {-self.best_fitness:.1f} mm"
        return f"best AP {self.best_fitness:.4f}"


def autocast_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The mixed-precision type to train in, or None for full precision: float16 on CUDA;
    on a CPU that computes bfloat16 natively (AVX512-BF16 or AMX), bfloat16 only when a short
    probe measures it faster. The flags alone mislead: on the 2-core EPYC of earlier sessions
    bfloat16 steps ran 1.5x faster, on a 2-core Xeon with AVX512-BF16 they ran 1.4x slower."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu":
        # private probes of torch.cpu (stable since 2.1); absent ones mean "not native"
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        native = any(getattr(torch.cpu, name, lambda: False)() for name in checks)
        if native and bfloat16_pays_on_cpu():
            return torch.bfloat16
    return None


def bfloat16_pays_on_cpu(repeats: int = 3) -> bool:
    """Whether a convolution training step (forward and backward, channels-last, as rtpose's
    layers) runs at least 10 % faster under bfloat16 autocast than in float32 (about a second)."""
    gen = torch.Generator().manual_seed(0)
    layer = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.SiLU(),
                          nn.Conv2d(64, 64, 3, padding=1))  # fmt: skip
    layer = layer.to(memory_format=torch.channels_last)
    x = torch.randn(8, 32, 64, 64, generator=gen).contiguous(memory_format=torch.channels_last)

    def step_time(dtype: torch.dtype | None) -> float:
        best = float("inf")
        for _ in range(repeats + 1):  # the first run warms up
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                out = layer(x)
            out.float().square().mean().backward()
            best = min(best, time.perf_counter() - t0)
        return best

    fp32, bf16 = step_time(None), step_time(torch.bfloat16)
    log.info("mixed precision probe: a step takes %.1f ms in float32, %.1f ms in bfloat16: "
             "training in %s", fp32 * 1e3, bf16 * 1e3,
             "bfloat16" if bf16 < 0.9 * fp32 else "float32")  # fmt: skip
    return bf16 < 0.9 * fp32


def epochs_that_fit(ran: int, elapsed: float, since_first: float, limit: float) -> int:
    """How many epochs (counting the `ran` done) fit in `limit` seconds, `elapsed` having
    passed, `since_first` of it after the first epoch. The pace leaves out the first epoch,
    which also starts the data workers, once later ones are known; 2 % of the limit is kept
    for the closing validation and checkpoint and the pace's jitter; never less than `ran`."""
    per_epoch = since_first / (ran - 1) if ran >= 2 else elapsed / max(ran, 1)
    left = max(0.0, 0.98 * limit - elapsed)
    return ran + int(left / max(per_epoch, 1e-9))


#: seconds between two drawings of the training curves
PLOT_EVERY_S = 10.0


def fitness(metrics: dict[str, float]) -> float:
    """What a better model has more of: COCO AP for detectors, less MPJPE for lifting
    networks (its negative, in millimetres)."""
    return metrics["AP"] if "AP" in metrics else -metrics["MPJPE_mm"]


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # numpy draws use explicit, seeded Generators
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


class Trainer:
    """Trains a model of any registered family on a posekit dataset (the family supplies its
    training samples and loss); see `TrainConfig` for the knobs.

    Example:
        >>> Trainer(TrainConfig(data="data/people", epochs=10, imgsz=320)).fit()  # doctest: +SKIP
    """

    def __init__(self, cfg: TrainConfig, resume: str | Path | None = None) -> None:
        self.ddp_device = dist.setup_from_env()
        self.device = self.ddp_device or select_device(cfg.device)
        self.resume_state: dict[str, Any] | None = None
        if resume is not None:
            self.resume_state = read_checkpoint(resume)
            cfg = resumed_config(self.resume_state["train_config"], cfg)
        cfg = absolute_data(cfg)
        self.train_ds, self.val_ds = self._splits(cfg.data)
        self.cfg = cfg
        seed_everything(cfg.seed + dist.rank(), cfg.deterministic)
        self.category_ids = [c.id for c in sorted(self.train_ds.categories, key=lambda c: c.id)]
        # channels-last convolutions: about 15 % faster training on CPU, and what CUDA's
        # tensor cores prefer
        self.model = self._build_model().to(self.device, memory_format=torch.channels_last)
        self.optimizer = self._build_optimizer(self.model)
        self.ema = ModelEMA(self.model, cfg.ema_decay)
        self.amp_dtype = autocast_dtype(self.device, cfg.amp)
        # loss scaling guards float16's narrow range; bfloat16 has float32's and needs none
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.start_epoch, self.best_fitness, self.history = 0, -math.inf, []
        self.plotted_at = -math.inf  # when results.png was last drawn (time.monotonic)
        if self.resume_state is not None:
            self._load_resume_state(self.resume_state)
        if dist.world_size() > 1:
            self.model = DistributedDataParallel(self.model)
        self.train_loader, self.sampler = self._train_loader()
        self.validating = self.val_ds is not None and cfg.val
        # the run folder is claimed last: a run refused by any check above leaves nothing
        self.save_dir = self._claim_run_dir(resume)
        self.wdir = self.save_dir / "weights"

    def _claim_run_dir(self, resume: str | Path | None) -> Path:
        """A new run folder, or the resumed run's, locked against a second writer (rank 0
        claims; the other ranks are told where)."""
        if resume is not None:
            folder = Path(resume).resolve().parent.parent
            if dist.is_main():
                lock_run_dir(folder)
            return folder
        cfg = self.cfg
        claimed = claim_run_dir(cfg.project, cfg.name, exist_ok=cfg.exist_ok) \
            if dist.is_main() else None  # fmt: skip
        return Path(dist.broadcast_from_main(str(claimed)))

    # ------------------------------------------------------------------ set-up
    def _splits(self, data: str) -> tuple[Any, Any]:
        """The train and (optional) val splits, each without the images whose files cannot be
        read (counted and logged, so that a bad file does not stop training mid-epoch);
        whatever the loader skipped is logged. A train split without labelled instances, or a
        val split without any, is said in one line (see `usable_splits`). A sequence dataset
        (`posekit.data.sequences`, what lifting networks train on) is read as it is."""
        if not data:
            raise DatasetError("no training data: give --data (a posekit dataset)")
        if is_sequence_dataset(data):
            sequences = load_sequence_splits(data)
            if "train" not in sequences:
                raise DatasetError(f"{data}: no 'train' split (has {', '.join(sequences)})")
            return sequences["train"], sequences.get("val")
        splits = load_splits(data)
        if "train" not in splits:
            raise DatasetError(f"{data}: no 'train' split (has {', '.join(splits)})")
        for name, ds in splits.items():
            if not ds.report.ok and dist.is_main():
                log.warning("%s split: %s (run `posekit data check %s`)", name,
                            ds.report.summary(), data)  # fmt: skip
        return usable_splits(data, splits["train"], splits.get("val"), dist.is_main())

    def _build_model(self) -> nn.Module:
        cfg = self.cfg
        model = self._new_or_loaded_model()
        wanted = "keypoints" if isinstance(self.train_ds, PoseSequences) else "images"
        if model.input_kind != wanted:
            reads = {
                "keypoints": "2D keypoint sequences (`posekit data motion` makes them)",
                "images": "images",
            }
            raise UserError(
                f"{cfg.model} reads {reads[model.input_kind]}, and {cfg.data} holds {reads[wanted]}"
            )
        return model

    def _new_or_loaded_model(self) -> nn.Module:
        cfg = self.cfg
        schemas = [self.train_ds.category(cid).schema for cid in self.category_ids]
        names = [self.train_ds.category(cid).name for cid in self.category_ids]
        source = local_source(cfg.model)  # a published name is fetched once
        if source not in list_models() and Path(source).exists():
            # a file to fine-tune: a posekit checkpoint, or published weights, which take the
            # dataset's schema (a new head when the keypoint or class count differs)
            # (an ONNX export is refused there: it cannot be trained)
            loaded = load_any(source)  # the dataset's schemas replace the file's below
            model = loaded.model
            if dist.is_main():
                log.info("fine-tuning: %s", loaded.summary)
            had = "/".join(str(s.num_keypoints) for s in model.schemas)
            wanted = "/".join(str(s.num_keypoints) for s in schemas)
            if had != wanted:
                model, fresh = for_keypoints(model, schemas, names)
                if dist.is_main():
                    log.info(
                        "%s was trained for %s keypoints, %s has %s: a new head (%d tensors "
                        "initialised anew, the body's kept)",
                        cfg.model,
                        had,
                        cfg.data,
                        wanted,
                        fresh,
                    )
            elif loaded.checkpoint is None:  # published weights: the dataset names the classes
                model.schemas, model.names = schemas, names
            if cfg.single_subject is not None and cfg.single_subject != model.single_subject:
                built = "in" if model.single_subject else "without"
                raise UserError(f"{cfg.model} was trained {built} single-subject mode; its "
                                 "input cannot change when fine-tuning")  # fmt: skip
            return model.train()
        overrides = {k: v for k, v in (("width", cfg.width), ("depth", cfg.depth)) if v}
        # the input mode depends on the family and its default input: read them from a
        # weightless (meta-device) build, then build the real network once, in that mode
        with torch.device("meta"):
            probe = create(cfg.model, schemas, names, imgsz=cfg.imgsz, **overrides)
        if probe.input_kind != "images" or not isinstance(self.train_ds, KeypointDataset):
            return create(cfg.model, schemas, names, **overrides).train()  # no input mode
        mode = choose_input_mode(probe, self.train_ds, cfg.imgsz, cfg.single_subject)
        if dist.is_main():
            log.info("input: %s", mode.reason)
        if cfg.augment.flip == 0 and getattr(probe.config, "flip_test", False):
            # a network never shown a mirrored image cannot be flip-tested: its mirrored
            # prediction is a guess that the average spoils (rtmpose-t memorising 8 mouse
            # frames without flips: 0.07 px without the flip test, 32 px with it)
            overrides["flip_test"] = False
        return create(cfg.model, schemas, names, imgsz=cfg.imgsz, **overrides,
                      **mode.overrides).train()  # fmt: skip

    def _build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        cfg = self.cfg
        groups = model.param_groups(cfg.weight_decay)  # the family's (e.g. layer-wise decay)
        if cfg.optimizer == "adamw":
            # fused: one kernel for all parameters (8.5 -> 2.1 ms per step for rtpose-n on 2 CPU
            # cores, 4 % of a training step); CPU and CUDA both have it
            fused = self.device.type in ("cpu", "cuda")
            return torch.optim.AdamW(groups, lr=cfg.lr0, betas=(cfg.momentum, 0.999),
                                     fused=fused)  # fmt: skip
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr0, momentum=cfg.momentum, nesterov=True)
        raise UserError(f"unknown optimizer {cfg.optimizer!r}: use 'adamw' or 'sgd'")

    def _train_loader(self) -> tuple[DataLoader, EpochSampler]:
        cfg = self.cfg
        samples = unwrap(self.model).training_samples(self.train_ds, cfg.imgsz, cfg.augment,
                                              rect=cfg.rect, category_ids=self.category_ids,
                                              seed=cfg.seed)  # fmt: skip
        ws = dist.world_size()
        g = torch.Generator().manual_seed(cfg.seed)
        base = (DistributedSampler(samples, seed=cfg.seed) if ws > 1
                else RandomSampler(samples, generator=g))  # fmt: skip
        sampler = EpochSampler(base, len(samples))
        # persistent workers: no new processes each epoch (a small dataset's epochs are short,
        # and starting workers cost a third of each); the sampler tells them the epoch
        loader = DataLoader(samples, batch_size=max(1, cfg.batch // ws), sampler=sampler,
                            num_workers=cfg.workers,
                            collate_fn=getattr(samples, "collate", collate),
                            drop_last=len(samples) >= cfg.batch,
                            persistent_workers=cfg.workers > 0,
                            pin_memory=self.device.type == "cuda")  # fmt: skip
        return loader, sampler

    def _load_resume_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["train_weights"])
        self.ema.ema.load_state_dict(state["weights"])
        self.ema.updates = state["ema_updates"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch = state["epoch"] + 1
        self.best_fitness = state["best_fitness"]
        self.history = state.get("history", [])
        if self.start_epoch >= self.cfg.epochs:
            raise UserError(f"the checkpoint already finished epoch {state['epoch'] + 1} of "
                             f"{self.cfg.epochs}; pass more --epochs to continue")  # fmt: skip

    # ------------------------------------------------------------------ schedule
    def lr_at(self, it: int, total_iters: int, warmup_iters: int) -> float:
        """Linear warm-up, then cosine decay from lr0 to lr0 * lrf."""
        lr0 = self.cfg.lr0
        if it < warmup_iters:
            return lr0 * (it + 1) / warmup_iters
        t = (it - warmup_iters) / max(1, total_iters - warmup_iters)
        return lr0 * (self.cfg.lrf + (1 - self.cfg.lrf) * 0.5 * (1 + math.cos(math.pi * t)))

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        """Train, then release the run folder's lock (also when training fails)."""
        try:
            return self._fit()
        finally:
            if dist.is_main():
                unlock_run_dir(self.save_dir)

    def _fit(self) -> TrainResult:
        cfg = self.cfg
        if dist.is_main():
            self.wdir.mkdir(parents=True, exist_ok=True)
            (self.save_dir / "args.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            log.info("training %s on %s -> %s", cfg.model, cfg.data, self.save_dir)
        started = first_done = time.time()
        nb = len(self.train_loader)
        warmup = max(round(cfg.warmup_epochs * nb), min(cfg.warmup_min_iters, nb * cfg.epochs // 2))
        stale, epoch, metrics = 0, self.start_epoch, {}
        self.epochs = cfg.epochs  # shortened to fit `time_limit` once an epoch's time is known
        while epoch < self.epochs:
            losses, speed = self.train_epoch(epoch, nb, warmup)
            if epoch == self.start_epoch:
                first_done = time.time()
            if cfg.time_limit:  # before deciding to validate: this may be the last epoch now
                self.fit_time_limit(epoch + 1, started, first_done)
            metrics = {}
            validated = self.validating and (
                (epoch + 1) % cfg.val_period == 0 or epoch + 1 == self.epochs
            )
            if validated:
                metrics = self.validate()
            improved = validated and fitness(metrics) > self.best_fitness
            if improved:
                self.best_fitness = fitness(metrics)
            if validated:  # patience counts validations, not epochs
                stale = 0 if improved else stale + cfg.val_period
            lr = self.optimizer.param_groups[0]["lr"]
            row = {"epoch": epoch + 1, **{f"loss_{k}": v for k, v in losses.items()},
                   "img_per_s": speed, "lr": lr, **metrics}  # fmt: skip
            self.history.append(row)
            if dist.is_main():  # without validation, the latest weights are the best we know
                self.record(row, epoch, improved or not self.validating)
            if self.validating and stale >= cfg.patience:
                what = "MPJPE" if isinstance(self.train_ds, PoseSequences) else "AP"
                log.info("no better %s for %d epochs: stopping early", what, cfg.patience)
                break
            epoch += 1
        if dist.is_main() and self.history:
            self.plot_curves()  # the final curves, whenever they were last drawn
        dist.barrier()
        lifting = isinstance(self.train_ds, PoseSequences)
        return TrainResult(self.save_dir, self.wdir / "best.pt", self.wdir / "last.pt",
                           self.best_fitness, epoch, metrics, lifting)  # fmt: skip

    def fit_time_limit(self, done: int, started: float, first_done: float) -> None:
        """Set the run's length to the epochs that fit in `time_limit` (see `epochs_that_fit`);
        the learning-rate schedule follows the new length, so it still ends annealed."""
        now = time.time()
        fits = epochs_that_fit(done - self.start_epoch, now - started, now - first_done,
                               self.cfg.time_limit * 60)  # fmt: skip
        new = dist.broadcast_from_main(min(self.cfg.epochs, self.start_epoch + fits))
        if new != self.epochs:  # ranks agree: rank 0 decided
            # the first estimate is news; later ones only follow the pace by an epoch or two
            level = logging.INFO if self.epochs == self.cfg.epochs else logging.DEBUG
            log.log(level, "time limit %.1f min: %d epochs fit", self.cfg.time_limit, new)
            self.epochs = new

    def train_epoch(self, epoch: int, nb: int, warmup: int) -> tuple[dict[str, float], float]:
        """One pass over the training data; returns mean loss parts and images (lifting:
        windows) per second."""
        cfg, model = self.cfg, self.model
        model.train()
        self.sampler.set_epoch(epoch)
        sums: dict[str, float] = {}
        seen, t0 = 0, time.time()
        desc = f"epoch {epoch + 1}/{self.epochs}"
        n_img = nb * (self.train_loader.batch_size or 1)
        loss_sum = 0.0
        unit = "img" if unwrap(model).input_kind == "images" else "window"  # lifting: windows
        with progress_bar(desc, n_img, unit=unit, enabled=dist.is_main()) as advance:
            for i, (images, targets, _, _) in enumerate(self.train_loader):
                it = epoch * nb + i
                lr = self.lr_at(it, self.epochs * nb, warmup)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr * g.get("lr_scale", 1.0)
                images = unwrap(model).prepare_inputs(images, self.device)
                targets = targets.to(self.device)
                with torch.autocast(self.device.type, dtype=self.amp_dtype,
                                    enabled=self.amp_dtype is not None):  # fmt: skip
                    out = model(images)
                loss, parts = unwrap(model).loss(out, targets)  # the family's own loss
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.ema.update(unwrap(model))
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                seen += len(images)
                loss_sum += float(loss.detach())
                advance(len(images), f"loss {loss_sum / (i + 1):.3f}")
        means = dist.mean_across_ranks({k: v / max(1, nb) for k, v in sums.items()})
        speed = seen * dist.world_size() / max(1e-9, time.time() - t0)
        if dist.is_main():
            log.info("epoch %d: %s, %.1f %s/s", epoch + 1,
                     " ".join(f"{k}={v:.4f}" for k, v in means.items()), speed, unit)  # fmt: skip
        return means, speed

    def validate(self) -> dict[str, float]:
        """Evaluate the EMA weights on the validation split through the prediction path users
        run. Each rank predicts its share of the images; rank 0 evaluates all of them and
        shares the metrics with the others."""
        cfg = self.cfg
        if isinstance(self.val_ds, PoseSequences):
            return self.validate_lifting()
        ws, rank = dist.world_size(), dist.rank()
        mine = self.val_ds.images[rank::ws]
        preds = predict_images(unwrap(self.ema.ema), self.val_ds, mine,
                               validation_config(cfg.imgsz, max(1, cfg.batch // ws)),
                               device=self.device)  # fmt: skip
        parts = dist.gather_to_main(preds)
        metrics: dict[str, float] = {}
        if dist.is_main():
            merged = PredictionArrays.concat(parts)
            gt = GroundTruth.from_dataset(self.val_ds)
            m = evaluate(gt, to_predictions(merged, gt, self.category_ids),
                         EvalConfig(per_keypoint_ap=False))  # fmt: skip
            metrics = {k: m.coco[k] for k in ("AP", "AP50", "AP75", "AR")}
            metrics |= {f"PCK@{m.pck_alpha:g}": _finite(m.pck), "EPE_px": _finite(m.epe)}
            log.info("val: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        return dist.broadcast_from_main(metrics)

    def validate_lifting(self) -> dict[str, float]:
        """Lift every validation clip with the EMA weights (on rank 0, shared with the
        others): MPJPE and the other errors in millimetres (`posekit.engine.lifting`)."""
        metrics: dict[str, float] = {}
        if dist.is_main():
            result = evaluate_lifting(unwrap(self.ema.ema), self.val_ds, self.device)
            metrics = result.as_dict()
            log.info("val: %s", result.summary())
        return dist.broadcast_from_main(metrics)

    # ------------------------------------------------------------------ records
    def plot_curves(self) -> None:
        """results.png: the loss and metric curves so far."""
        self.plotted_at = time.monotonic()
        try:
            from posekit.engine.plots import plot_results

            plot_results(self.history, self.save_dir / "results.png")
        except ImportError as e:
            log.warning("%s (curves not drawn)", e)

    def record(self, row: dict[str, Any], epoch: int, improved: bool) -> None:
        """results.csv, curves (at most every `PLOT_EVERY_S` seconds: drawing them costs more
        than a small model's whole epoch; `plot_curves` draws the last ones), last.pt and
        (when better) best.pt."""
        keys = list(dict.fromkeys(k for r in self.history for k in r))
        with (self.save_dir / "results.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.history)
        if time.monotonic() - self.plotted_at >= PLOT_EVERY_S:
            self.plot_curves()
        state = {
            "epoch": epoch,
            "category_ids": self.category_ids,  # class index -> dataset category id
            "train_config": self.cfg.to_dict(),
            "metrics": row,
            "best_fitness": self.best_fitness,
            "optimizer": self.optimizer.state_dict(),
            "train_weights": unwrap(self.model).state_dict(),
            "ema_updates": self.ema.updates,
            "history": self.history,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        save_checkpoint(self.wdir / "last.pt", self.ema.ema, **state)
        if improved:
            save_checkpoint(self.wdir / "best.pt", self.ema.ema, **state)


def _finite(x: float) -> float:
    return float(x) if np.isfinite(x) else float("nan")
