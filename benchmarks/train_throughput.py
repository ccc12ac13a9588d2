"""Benchmark 3 of the rtpose issue: training and data-loading throughput of rtpose-n.

For each image size: data-loader images/s (decode + augment + letterbox + collate, one worker
process and in-process), and training images/s (forward + loss + backward + step + EMA on
batches from the loader) in float32 and in the mixed precision the trainer uses on this CPU
(bfloat16 where it is native). All measured in this run on the synthetic person data.

    python benchmarks/train_throughput.py [--sizes 320 640] [--batches 12]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from posekit.data.formats import load_dataset
from posekit.data.synth import SynthConfig, generate
from posekit.engine.ema import ModelEMA
from posekit.engine.trainer import autocast_dtype
from posekit.models import create
from posekit.models.samples import AugmentConfig, KeypointSamples, collate


def loader_rate(samples: KeypointSamples, batch: int, workers: int, n_batches: int) -> float:
    dl = DataLoader(
        samples,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
    )
    it = iter(dl)
    next(it)  # worker start-up is not throughput
    t0, n = time.perf_counter(), 0
    for _ in range(n_batches):
        n += len(next(it)[0])
    return n / (time.perf_counter() - t0)


def train_rate(
    samples: KeypointSamples, batch: int, n_batches: int, amp: torch.dtype | None
) -> float:
    # as the trainer runs it: channels-last convolutions, autocast to `amp` when given
    model = create("rtpose-n", "coco17").train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ema = ModelEMA(model)
    dl = DataLoader(
        samples,
        batch_size=batch,
        shuffle=True,
        num_workers=1,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
    )
    it = iter(dl)
    t0, n = 0.0, 0
    for i in range(n_batches + 2):
        images, targets, _, _ = next(it)
        if i == 2:  # two warm-up steps
            t0, n = time.perf_counter(), 0
        x = (images.float() / 255).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            out = model(x)
        loss, _ = model.loss(out, targets)  # what the trainer calls
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        ema.update(model)
        n += len(images)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(
            SynthConfig("person", images=400, imgsz=640, seed=0),
            Path(tmp) / "d",
            val=0.0,
            workers=2,
        )
        ds = load_dataset(root, "train")
        amp = autocast_dtype(torch.device("cpu"), True)  # what the trainer picks here
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}; "
              f"mixed precision on this CPU: {amp or 'none (no native bfloat16)'}")  # fmt: skip
        print(f"{'imgsz':>6}{'loader, 1 worker':>20}{'loader, in-process':>21}"
              f"{'training fp32':>16}{'training mixed':>17}")  # fmt: skip
        for size in args.sizes:
            samples = KeypointSamples(ds, size, AugmentConfig(), rect=True)  # as the trainer
            l1 = loader_rate(samples, args.batch, 1, args.batches)
            l0 = loader_rate(samples, args.batch, 0, args.batches)
            n = max(3, args.batches // 2)
            fp32 = train_rate(samples, args.batch, n, None)
            mixed = train_rate(samples, args.batch, n, amp) if amp else float("nan")
            tr = mixed if amp else fp32  # what training runs at
            w, h = samples.canvas
            print(
                f"{size:>6}{l1:>14.1f} img/s{l0:>15.1f} img/s{fp32:>10.1f} img/s"
                f"{mixed:>11.1f} img/s   (loader headroom {l1 / tr:.0f}x; {w}x{h} canvases)"
            )


if __name__ == "__main__":
    main()
