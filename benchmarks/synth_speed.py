"""Synthetic data generation speed on one core (target: >= 100 images/s of 640x480).

Measures, in one run, for each kind: rendering alone, and the whole `generate` pipeline with one
worker (render + JPEG encode + write + annotation files). OpenCV is limited to one thread.

    python benchmarks/synth_speed.py [--images 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from posekit.data.synth import SynthConfig, generate, render
from posekit.data.synth.background import Backdrop

TARGET = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"{'kind':<8}{'stage':<28}{'images':>8}{'img/s':>10}{'vs target':>11}")
    for kind in ("person", "arm"):
        cfg = SynthConfig(kind, images=args.images, imgsz=640, seed=0)
        backdrop = Backdrop(*cfg.size, cfg.seed)
        t0 = time.perf_counter()
        n_inst = sum(len(render(cfg, i, backdrop).instances) for i in range(args.images))
        render_rate = args.images / (time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate(cfg, Path(tmp) / "ds", val=0.1, workers=1)
            full_rate = args.images / (time.perf_counter() - t0)
        w, h = cfg.size
        per_image = f"({n_inst / args.images:.2f} instances/image)"
        rows = [
            (f"render {w}x{h}", render_rate, ""),
            ("generate (jpeg+json, 1 core)", full_rate, per_image),
        ]
        for stage, rate, note in rows:
            print(
                f"{kind:<8}{stage:<28}{args.images:>8}{rate:>10.1f}{rate / TARGET:>10.2f}x  {note}"
            )


if __name__ == "__main__":
    main()
