"""Benchmark 2 of the RTMPose issue: speed on this CPU, every model in one run.

Network only (BatchNorm folded, float32, inference mode), PyTorch and ONNX Runtime (each
model exported by `Model.export`, dynamic batch): crops/s of the top-down models at 256x192
(rtmpose-t/s/m, rtmpose-s with the published gated-attention block, heatpose-t/s,
vitpose-s) at batch 1
and 16, and images/s of rtpose-n at 640x640 next to them; then the prediction pipeline with 16
given boxes on a 640x480 frame (crops, network with the flip test, decoding, inverse), PyTorch.

    python benchmarks/topdown_speed.py [--models rtmpose-t rtmpose-s ...] [--no-onnx]

Random weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from posekit import Model
from posekit.models import create

VARIANTS = {"rtmpose-s +GAU": ("rtmpose-s", {"gau": True})}


def rate(fn: Callable[[], object], items: int, seconds: float = 1.5, rounds: int = 5) -> float:
    """Items per second: the median over `rounds` of as many calls as fit in `seconds`."""
    fn()  # warm-up
    t0 = time.perf_counter()
    fn()
    calls = max(1, int(seconds / rounds / max(time.perf_counter() - t0, 1e-6)))
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(items * calls / (time.perf_counter() - t0))
    return statistics.median(rates)


def build(name: str) -> Model:
    base, overrides = VARIANTS.get(name, (name, {}))
    model = Model(base, "coco17")
    if overrides:
        model.net = create(base, "coco17", **overrides)
    return model


def measure(
    model: Model, name: str, hw: tuple[int, int], args: argparse.Namespace, tmp: Path
) -> dict[str, float]:
    """Rates of one model: network under PyTorch and ONNX Runtime, and (top-down) the
    pipeline on 16 given boxes."""
    net = model.inference_net
    row = {}
    for batch in (1, 16):
        x = torch.rand(batch, 3, *hw).contiguous(memory_format=torch.channels_last)

        def forward(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                net(x)

        row[f"torch b{batch}"] = rate(forward, batch, args.seconds)
    crops = net.input_mode.per_instance
    if args.onnx:
        path = tmp / f"{name.replace(' ', '_').replace('(', '').replace(')', '')}.onnx"
        model.export(out=path, imgsz=None if crops else hw[0], check=False)
        _, backend = Model(path).runner(torch.device("cpu"))
        for batch in (1, 16):
            x = torch.rand(batch, 3, *hw)
            row[f"ort b{batch}"] = rate(lambda x=x: backend(x), batch, args.seconds)
    if crops:
        frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
        boxes = np.tile([[200.0, 60.0, 360.0, 420.0]], (16, 1))
        row["pipeline"] = rate(lambda: model.predict(frame, boxes=boxes, flip=True), 16,
                               args.seconds)  # fmt: skip
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["rtmpose-t", "rtmpose-s", "rtmpose-s +GAU", "rtmpose-m",
                                 "heatpose-t", "heatpose-s", "vitpose-s",
                                 "rtpose-n"])  # fmt: skip
    parser.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seconds", type=float, default=1.5, help="Per measurement.")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32; "
          "median of 5 rounds")  # fmt: skip
    header = (f"{'model':20s} {'params':>7s} {'input':>8s} {'unit':>6s} | {'torch b1':>9s} "
              f"{'torch b16':>9s} | {'ort b1':>9s} {'ort b16':>9s} | {'pipeline':>9s}")  # fmt: skip
    print(header)
    print("-" * len(header))
    tmp = Path(tempfile.mkdtemp())
    for name in args.models:
        model = build(name)
        crops = model.net.input_mode.per_instance
        h, w = model.net.config.input_size if crops else (640, 640)
        row = measure(model, name, (h, w), args, tmp)
        params = sum(p.numel() for p in model.net.parameters()) / 1e6

        def cell(key: str, row: dict[str, float] = row) -> str:
            return f"{row[key]:9.1f}" if key in row else f"{'-':>9s}"

        unit = "crop/s" if crops else "img/s"
        print(f"{name:20s} {params:6.2f}M {w:>4d}x{h:<3d} {unit:>6s} | {cell('torch b1')} "
              f"{cell('torch b16')} | {cell('ort b1')} {cell('ort b16')} | "
              f"{cell('pipeline')}", flush=True)  # fmt: skip
    print("pipeline: Model.predict on one 640x480 frame with 16 given boxes, flip test on "
          "(the network runs on 32 crops), PyTorch; in crops/s")  # fmt: skip


if __name__ == "__main__":
    main()
